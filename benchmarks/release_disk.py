"""Benchmark: every store's three versions on disk at ml-25m shape (previous, served, staged), and a rollback.

Run after `python -m benchmarks.whole_graph` (its work folder holds the lake, the instance and release 1):
`python -m benchmarks.release_disk [--work-dir data/bench/whole_graph]`. Issue 25's disk figure, measured on the
real stores (Milvus Lite, the local Neo4j, AgentDB) through the real runs:
1. `serving_stores` with every store forced to a new version (the four collections rebuilt, the graph re-imported,
   AgentDB with one recent step fewer per user: other rows, another file), but the collections named by
   `--unchanged` (staged again as they are): staged, audited, release 2 published.
   Release 1 stays the previous release: its collections loaded, its graph store and AgentDB file shelved.
2. The stores once more, forced again, without `release`: three versions of every store are on disk.
   Disk: everything the stores hold (Milvus Lite's folder, `agentdb.versions` with its shelf, the live graph store
   and every graph stage) against one release's stores (the served release's four collections, its AgentDB file,
   the live graph store).
3. `rollback` (every store back to release 1: shelved versions restored first): its wall time and reader-facing
   switch times from its log.
Peak RSS of each run's process (sampled every 0.2 s).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import BENCH_DIR, report
from benchmarks.whole_graph import RESULTS, ROOT, RssSampler
from tv5_assets import local_services
from tv5_assets.core.settings import Settings
from tv5_assets.graph_store import stages
from tv5_assets.graph_store.offline_import import STORE_DIRS
from tv5_assets.graph_store.resources import project_local_server

COLLECTIONS = ("media_vectors", "user_vectors", "hybrid_media_vectors", "hybrid_user_vectors")
STORES = ",".join([*(f"milvus/{c}" for c in COLLECTIONS), "graph", "agentdb"])


def du(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def forced(recent_steps: int, unchanged: set[str]) -> dict:
    """Every store forced to a new version, but the collections of `unchanged` (staged again: the same one)."""
    return {"ops": {**{f"milvus__{c}": {"config": {"force_rebuild": c not in unchanged}} for c in COLLECTIONS},
                    "graph": {"config": {"force_reload": True}},
                    "agentdb": {"config": {"recent_steps_per_user": recent_steps}}}}


def run(args: list[str], env: dict, log: Path) -> tuple[float, float, int]:
    """A dagster CLI command in a child process: wall seconds, its peak RSS (GiB), exit code."""
    started = time.perf_counter()
    with open(log, "w") as out:
        child = subprocess.Popen([sys.executable, "-m", "dagster", *args], env=env, cwd=ROOT, stdout=out,
                                 stderr=subprocess.STDOUT)
        sampler = RssSampler(child.pid)
        sampler.start()
        code = child.wait()
    sampler.done.set()
    sampler.join()
    return time.perf_counter() - started, sampler.peak() / 1024, code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", type=Path, default=BENCH_DIR / "whole_graph")
    parser.add_argument("--label", help="also save the figures as benchmarks/results/release_disk-<label>.md")
    parser.add_argument("--unchanged", nargs="*", default=[], choices=COLLECTIONS,
                        help="collections whose content the new releases leave as it is (e.g. media_vectors for "
                             "a release of new ratings: content vectors depend on movies, tags and the genome only)")
    args = parser.parse_args()
    work = args.work_dir.resolve()
    lake, home = work / "lake", work / "dagster_home"
    registry = json.loads((lake / "releases" / "registry.json").read_text())
    assert registry["served"], f"no release served in {lake}: run benchmarks.whole_graph first"
    local_services.start("neo4j")
    env = {**os.environ, "DAGSTER_HOME": str(home), "TV5_DATA_DIR": str(lake), "HF_HUB_OFFLINE": "1"}
    env.update({k: v for k, v in local_services.env_file_values().items() if k not in os.environ})
    neo4j_home = Path(project_local_server(Settings(neo4j_uri=local_services.ServiceSettings().neo4j_connection().uri))
                      ["local_home"])
    figures: list[tuple[str, str]] = [("release served before", registry["served"]),
                                      ("collections left unchanged by the new releases", ", ".join(args.unchanged)
                                       or "none: every store gets a new version")]

    for label, command, recent in (
        ("serving_stores: every store forced to a new version, release 2 published",
         ["job", "execute", "-m", "tv5_assets.definitions", "-j", "serving_stores"], 9),
        ("the stores forced once more, not published (three versions present)",
         ["asset", "materialize", "-m", "tv5_assets.definitions", "--select", STORES], 8),
    ):
        config = work / f"forced-{recent}.json"
        config.write_text(json.dumps(forced(recent, set(args.unchanged))))
        seconds, peak, code = run([*command, "-c", str(config)], env, work / f"release_disk-{recent}.log")
        assert code == 0, (work / f"release_disk-{recent}.log").read_text()[-3000:]
        figures.append((label, f"{seconds:.1f} s, peak RSS {peak:.2f} GiB"))

    served_id = json.loads((lake / "releases" / "registry.json").read_text())["served"]
    manifest = json.loads((lake / "releases" / f"{served_id}.json").read_text())
    release_metadata = re.findall(r"shelved .*? in [0-9.]+ s", (work / "release_disk-9.log").read_text())
    figures.append(("release 2: shelving the previous release", "; ".join(release_metadata) or "nothing shelved"))

    live = [neo4j_home / "data" / kind / "neo4j" for kind in STORE_DIRS]
    graph_all = sum(du(p) for p in live) + du(stages.stages_root(neo4j_home))
    graph_one = sum(du(p) for p in live)
    milvus_all = du(lake / "milvus.db")
    milvus_one = sum(du(lake / "milvus.db" / "collections" / manifest["stores"][f"milvus/{c}"]["version"])
                     for c in COLLECTIONS)
    agentdb_all = du(lake / "agentdb.versions")
    agentdb_one = du(lake / "agentdb.versions" / manifest["stores"]["agentdb"]["version"])
    every, one = graph_all + milvus_all + agentdb_all, graph_one + milvus_one + agentdb_one
    gib = 2**30
    for store, (all_, one_) in {"graph": (graph_all, graph_one), "milvus": (milvus_all, milvus_one),
                                "agentdb": (agentdb_all, agentdb_one)}.items():
        figures.append((f"disk, {store}: three versions vs the served one",
                        f"{all_ / gib:.2f} GiB vs {one_ / gib:.2f} GiB: {all_ / max(one_, 1):.2f}x"))
    figures.append(("disk, every store: three versions vs one release's stores",
                    f"{every / gib:.2f} GiB vs {one / gib:.2f} GiB: {every / max(one, 1):.2f}x (target <= 2.5x)"))
    figures.append(("graph stages on disk", ", ".join(
        f"{slot} ({'shelved' if not stage.built() else 'store'}, {du(stage.dir) / gib:.2f} GiB)"
        for slot, stage in stages.existing(stages.stages_root(neo4j_home)).items())))
    shelf = lake / "agentdb.versions" / "shelf"
    figures.append(("agentdb versions on disk", ", ".join(
        f"{p.relative_to(lake / 'agentdb.versions')} ({du(p) / gib:.2f} GiB)"
        for p in sorted((lake / "agentdb.versions").iterdir()) if p.is_file()) + (
        ", " + ", ".join(f"shelf/{p.name} ({du(p) / gib:.2f} GiB)" for p in sorted(shelf.iterdir()))
        if shelf.is_dir() else "")))

    seconds, peak, code = run(["job", "execute", "-m", "tv5_assets.definitions", "-j", "rollback"], env,
                              work / "release_disk-rollback.log")
    text = (work / "release_disk-rollback.log").read_text()
    assert code == 0, text[-3000:]
    after = json.loads((lake / "releases" / "registry.json").read_text())["served"]
    restored = re.findall(r"graph stage \S+: (?:restored from its shelf in [0-9.]+ s|swapped in, the live server "
                          r"restarted in [0-9.]+ s)", text)
    switched = re.findall(r"rolled back to \S+: (\{.*?\})", text)
    figures.append(("rollback to release 1 (a fresh process: imports and resources included)",
                    f"{seconds:.1f} s, peak RSS {peak:.2f} GiB; serves {after}; {'; '.join(restored)}; "
                    f"switch seconds {switched}"))
    report(figures)
    if args.label:
        width = max(len(k) for k, _ in figures)
        lines = "\n".join(f"{k:<{width}}  {v}" for k, v in figures)
        (RESULTS / f"release_disk-{args.label}.md").write_text(
            f"# release_disk at ml-25m shape: {args.label}\n\nCommand: `python -m benchmarks.release_disk --label "
            f"{args.label}` after `python -m benchmarks.whole_graph` ({time.strftime('%Y-%m-%d %H:%M UTC')}).\n\n"
            f"```\n{lines}\n```\n")


if __name__ == "__main__":
    main()
