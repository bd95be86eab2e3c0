"""Benchmark: one Dagster run of the `whole_graph` job on the ml-25m-shaped release, as the main job runs it.

Run: `python -m benchmarks.whole_graph --label after [--compare before]`. Targets (2 cores / 24 GiB,
issue 14): the whole run <= 10 min wall and <= 8 GiB peak RSS for the Dagster process, every blocking
check green.

What runs: `dagster job execute -m tv5_assets.definitions -j whole_graph` in a child process (the README's
main job: in-process executor, the definitions' own resources: Parquet lake, Milvus Lite, the packaged
CPU encoder, the local Neo4j that `scripts/services` starts), with `movielens_release` configured to
the ml-25m shape (25,000,095 ratings, 162,541 users, 62,423 movies, 1,093,360 tags, 13,816 genome
movies). Each run starts from an empty lake (so no embedding cache, a fresh Milvus Lite) and forces
the graph rebuild; only the generated release CSVs are reused between runs (`data/bench/raw`), since
generating a sample is not a production step (a release is downloaded once).

What it prints: per asset, the step's wall time, the Dagster process's peak RSS during the step, the
throughput (rows of the output, or entities / relationships loaded, per second), the cores it kept busy
(CPU seconds of the Dagster process, its children, Neo4j and, with `TV5_MILVUS_URI`, the local
Milvus server over wall seconds) and the time of its checks; then the total, the peak RSS of the
Dagster process (with `--executor multiprocess`: of the largest step process), of its children (Node
for AgentDB, the Neo4j import tool) and of the Neo4j server, and the checks passed / failed / warned.
RSS is sampled every 0.2 s from /proc. The result is saved as `benchmarks/results/whole_graph-<label>.json` and `.md`
with the machine described; `--compare` prints the per-asset ratios against an earlier saved result.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata as package_metadata
from pathlib import Path

import psutil

from benchmarks.common import BENCH_DIR, ml25m_release
from tv5_assets import local_services
from tv5_assets.ingestion.release import sample_release
from tv5_assets.platform.instance import prepare_home
from tv5_assets.sample.generator import SampleSpec
from tv5_assets.vector_store.resources import MILVUS_STEP_TAGS

RESULTS = Path(__file__).parent / "results"
ROOT = Path(__file__).resolve().parents[1]
# the figures issue 14 reported for today's path on this machine (run FAILED on milvus/user_vectors)
ISSUE_REPORT_S = {"content_vectors": 296, "milvus/media_vectors": 47, "milvus/user_vectors": 68,
                  "graph": 512, "ratings": 20, "total": 1104}
DESIGN_TOTAL = "~4.5 h on an A100 machine (the design's figure for the same work)"
TARGETS_S = {"graph": 240, "content_vectors": 120, "total": 600}


@dataclass
class StepFigure:
    step: str
    kind: str  # asset | checks
    asset: str
    seconds: float
    peak_rss_mib: float
    status: str
    rows: int | None = None
    checks: list[dict] = field(default_factory=list)
    cpu_s: float = 0.0


# imported once by the forkserver, not by every step process: the definitions (the stack: ~7 s) and the
# instance's SQLite storage, which each step process opens (~2.5 s of imports otherwise)
FORKSERVER_PRELOAD = ("tv5_assets.definitions", "dagster._core.storage.sqlite_storage",
                      "dagster._core.storage.event_log.sqlite", "dagster._core.storage.runs.sqlite",
                      "dagster._core.storage.schedules.sqlite", "alembic.command")


def run_config(spec: SampleSpec, executor: str = "in_process", lite: bool = True) -> dict:
    """The release at `spec`'s shape, a forced graph rebuild; with the multiprocess executor, one step per
    core, step processes forked from a server that imported the definitions once, and (Milvus Lite: one
    process at a time) the steps that open the `milvus` resource one at a time."""
    config: dict = {"ops": {
        "movielens_release": {"config": {
            "source": "sample", "sample_seed": spec.seed, "sample_movies": spec.movies, "sample_users": spec.users,
            "sample_ratings": spec.ratings, "sample_tags": spec.tags, "sample_genome_movies": spec.genome_movies}},
        "graph": {"config": {"force_reload": True}},
    }}
    if executor == "multiprocess":
        [(key, value)] = MILVUS_STEP_TAGS.items()
        config["execution"] = {"config": {
            "max_concurrent": os.cpu_count() or 2,
            "start_method": {"forkserver": {"preload_modules": list(FORKSERVER_PRELOAD)}},
            "tag_concurrency_limits": [{"key": key, "value": value, "limit": 1}] if lite else []}}
    return config


class RssSampler(threading.Thread):
    """Samples the RSS of a process (and, separately, of its children and of the Neo4j server)."""

    def __init__(self, pid: int, every_s: float = 0.2, follow_milvus: bool = False) -> None:
        super().__init__(daemon=True)
        self.process = psutil.Process(pid)
        # services followed through their pid files: the graph import restarts Neo4j
        self.neo4j: psutil.Process | None = None
        # the local Milvus server's launcher (its components are its children), when the run uses it
        self.milvus: psutil.Process | None = None
        self.follow_milvus = follow_milvus
        self.every_s = every_s
        # (time, main MiB, children MiB, neo4j MiB, CPU seconds of all of them so far, Milvus server MiB,
        #  MiB of the largest single process among the main one and its children)
        self.samples: list[tuple[float, float, float, float, float, float, float]] = []
        self.done = threading.Event()

    @staticmethod
    def _rss(process: psutil.Process | None) -> float:
        try:
            return process.memory_info().rss / 2**20 if process else 0.0
        except psutil.Error:
            return 0.0

    @staticmethod
    def _cpu(process: psutil.Process | None) -> float:
        try:
            times = process.cpu_times() if process else None
        except psutil.Error:
            return 0.0
        return (times.user + times.system + times.children_user + times.children_system) if times else 0.0

    def run(self) -> None:
        while not self.done.is_set():
            try:
                live = self.process.children(recursive=True)
                sizes = [self._rss(c) for c in live]
                children, largest = sum(sizes), max(sizes, default=0.0)
                child_cpu = sum(self._cpu(c) for c in live)
            except psutil.Error:
                children, child_cpu, largest = 0.0, 0.0, 0.0
            self.neo4j = self._followed("neo4j", self.neo4j)
            milvus_rss, milvus_cpu = self._milvus_server()
            cpu = self._cpu(self.process) + child_cpu + self._cpu(self.neo4j) + milvus_cpu
            main = self._rss(self.process)
            self.samples.append((time.time(), main, children, self._rss(self.neo4j), cpu, milvus_rss,
                                 max(main, largest)))
            self.done.wait(self.every_s)

    @staticmethod
    def _followed(service: str, current: psutil.Process | None) -> psutil.Process | None:
        """The process of a `scripts/services` service now: `current` unless its pid file names another."""
        pid = local_services.running_pid(service)
        if pid and (current is None or current.pid != pid):
            try:
                return psutil.Process(pid)
            except psutil.Error:
                return None
        return current

    def _milvus_server(self) -> tuple[float, float]:
        """RSS (MiB) and CPU seconds of the local Milvus server's process tree; zeros on Milvus Lite."""
        if not self.follow_milvus:
            return 0.0, 0.0
        self.milvus = self._followed("milvus", self.milvus)
        if self.milvus is None:
            return 0.0, 0.0
        try:
            tree = [self.milvus, *self.milvus.children(recursive=True)]
        except psutil.Error:
            return 0.0, 0.0
        return sum(self._rss(p) for p in tree), sum(self._cpu(p) for p in tree)

    def peak(self, start: float = 0.0, end: float = float("inf"), column: int = 1) -> float:
        values = [s[column] for s in self.samples if start <= s[0] <= end]
        return max(values, default=0.0)

    def cpu_seconds(self, start: float, end: float) -> float:
        """CPU time the Dagster process, its children and the Neo4j server used in [start, end] (a child
        that exits inside the window and was not yet waited for is missed: a lower bound)."""
        inside = [s[4] for s in self.samples if start <= s[0] <= end]
        return max(0.0, max(inside) - inside[0]) if len(inside) > 1 else 0.0


def machine() -> dict:
    memory = psutil.virtual_memory().total / 2**30
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    versions = {}
    for name in ("dagster", "polars", "pymilvus", "milvus-lite", "neo4j", "sentence-transformers", "torch",
                 "openvino", "implicit"):
        try:
            versions[name] = package_metadata.version(name)
        except package_metadata.PackageNotFoundError:
            versions[name] = "absent"
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(memory, 1), "os": platform.platform(),
            "python": platform.python_version(), "packages": versions,
            "encoder_precision": os.environ.get("TV5_ENCODER_PRECISION", "default"),
            "milvus": os.environ.get("TV5_MILVUS_URI", "Milvus Lite (embedded default)"),
            "neo4j": "local Neo4j Community 5.26 via scripts/services"}


def step_figures(instance, run_id: str, sampler: RssSampler, rss_column: int = 1) -> list[StepFigure]:
    """Per step: wall time from the event log, peak RSS in that window, rows, check evaluations."""
    from dagster import DagsterEventType

    starts: dict[str, float] = {}
    figures: dict[str, StepFigure] = {}
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None or entry.step_key is None:
            continue
        key = entry.step_key
        if event.event_type == DagsterEventType.STEP_START:
            starts[key] = entry.timestamp
        elif event.event_type in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE):
            start = starts.get(key, entry.timestamp)
            figure = figures.setdefault(key, StepFigure(key, "checks", "", 0.0, 0.0, ""))
            figure.seconds = entry.timestamp - start
            figure.peak_rss_mib = sampler.peak(start, entry.timestamp, column=rss_column)
            figure.cpu_s = sampler.cpu_seconds(start, entry.timestamp)
            figure.status = "success" if event.event_type == DagsterEventType.STEP_SUCCESS else "failure"
        elif event.event_type == DagsterEventType.STEP_SKIPPED:
            figures[key] = StepFigure(key, "checks", "", 0.0, 0.0, "skipped")
        elif event.event_type == DagsterEventType.ASSET_MATERIALIZATION:
            figure = figures.setdefault(key, StepFigure(key, "asset", "", 0.0, 0.0, ""))
            figure.kind = "asset"
            figure.asset = event.asset_key.to_user_string()
            meta = event.event_specific_data.materialization.metadata
            for name in ("dagster/row_count", "entity_count", "relationships"):
                if name in meta:
                    figure.rows = int(meta[name].value) + (int(meta["nodes"].value)
                                                           if name == "relationships" and "nodes" in meta else 0)
                    break
        elif event.event_type == DagsterEventType.ASSET_CHECK_EVALUATION:
            data = event.event_specific_data
            figure = figures.setdefault(key, StepFigure(key, "checks", "", 0.0, 0.0, ""))
            figure.asset = figure.asset or data.asset_key.to_user_string()
            figure.checks.append({"asset": data.asset_key.to_user_string(), "check": data.check_name,
                                  "passed": bool(data.passed), "severity": data.severity.value})
    for key, figure in figures.items():
        if not figure.asset:
            figure.asset = key
    return sorted(figures.values(), key=lambda f: starts.get(f.step, float("inf")))


def summarise(figures: list[StepFigure]) -> list[dict]:
    """One row per asset: its own step, plus the time of the check steps that evaluate it."""
    rows: dict[str, dict] = {}
    for figure in figures:
        row = rows.setdefault(figure.asset, {"asset": figure.asset, "seconds": 0.0, "peak_rss_mib": 0.0,
                                             "rows": None, "check_seconds": 0.0, "status": "", "checks": [],
                                             "cpu_s": 0.0, "check_cpu_s": 0.0})
        if figure.kind == "asset":
            row.update(seconds=figure.seconds, peak_rss_mib=figure.peak_rss_mib, rows=figure.rows,
                       status=figure.status, cpu_s=figure.cpu_s)
        else:
            row["check_seconds"] += figure.seconds
            row["check_cpu_s"] += figure.cpu_s
            row["peak_rss_mib"] = max(row["peak_rss_mib"], figure.peak_rss_mib)
            row["status"] = row["status"] or figure.status
        row["checks"] += figure.checks
    return list(rows.values())


def check_counts(rows: list[dict]) -> dict[str, int]:
    checks = [c for row in rows for c in row["checks"]]
    return {"passed": sum(c["passed"] for c in checks),
            "failed": sum(not c["passed"] and c["severity"] == "ERROR" for c in checks),
            "warned": sum(not c["passed"] and c["severity"] == "WARN" for c in checks)}


def markdown(result: dict, baseline: dict | None) -> str:
    base = {r["asset"]: r for r in baseline["assets"]} if baseline else {}
    header = "| asset | wall s | checks s | cores busy | peak RSS MiB | rows | rows/s | issue report s |"
    if baseline:
        header += f" {baseline['label']} s | ratio |"
    lines = [header, "|" + " --- |" * (header.count("|") - 1)]
    for row in result["assets"]:
        rate = f"{row['rows'] / row['seconds']:,.0f}" if row["rows"] and row["seconds"] > 0 else ""
        issue = ISSUE_REPORT_S.get(row["asset"], "")
        busy = row.get("cpu_s", 0.0) + row.get("check_cpu_s", 0.0)
        wall = row["seconds"] + row["check_seconds"]
        cores = f"{busy / wall:.2f}" if wall > 1 and busy else ""
        line = (f"| {row['asset']} | {row['seconds']:.1f} | {row['check_seconds']:.1f} | {cores} "
                f"| {row['peak_rss_mib']:,.0f} "
                f"| {row['rows'] or ''} | {rate} | {issue} |")
        if baseline:
            before = base.get(row["asset"])
            if before and before["seconds"] > 0 and row["seconds"] > 0:
                line += f" {before['seconds']:.1f} | {before['seconds'] / row['seconds']:.2f}x |"
            else:
                line += " | |"
        lines.append(line)
    total = result["total_s"]
    outside = total - sum(f["seconds"] for f in result["steps"])
    multiprocess = result.get("executor") == "multiprocess"
    if multiprocess:  # steps overlap: their walls add up to more than the run's
        lines.append(f"| (steps overlap: their wall times add up to {total - outside:.1f} s) | | | | | | | |"
                     + (" | |" if baseline else ""))
    else:
        lines.append(f"| (outside steps: process start, resources, run bookkeeping) | {outside:.1f} | | | | | | |"
                     + (" | |" if baseline else ""))
    line = (f"| **total** | **{total:.1f}** | | | **{result['peak_rss_mib']:,.0f}** | | | "
            f"{ISSUE_REPORT_S['total']} |")
    if baseline:
        line += f" {baseline['total_s']:.1f} | {baseline['total_s'] / total:.2f}x |"
    lines.append(line)
    counts = result["checks"]
    lines += ["", f"run {result['run_status']} (run id {result['run_id']}); checks: {counts['passed']} passed, "
              f"{counts['failed']} failed, {counts['warned']} warned; steps skipped: {result['skipped_steps']}",
              f"peak RSS: {'largest step process' if multiprocess else 'Dagster process'} "
              f"{result['peak_rss_mib']:,.0f} MiB, its children (Node, the import tool"
              f"{', the step processes' if multiprocess else ''}) "
              f"{result['children_peak_rss_mib']:,.0f} MiB, Neo4j server {result['neo4j_peak_rss_mib']:,.0f} MiB"
              + (f", Milvus server {result['milvus_server_peak_rss_mib']:,.0f} MiB"
                 if result.get("milvus_server_peak_rss_mib") else ""),
              f"design: {DESIGN_TOTAL}; targets: whole run <= {TARGETS_S['total']} s and <= 8 GiB, graph <= "
              f"{TARGETS_S['graph']} s, content_vectors <= {TARGETS_S['content_vectors']} s",
              f"machine: {result['machine']['cpu']}, {result['machine']['cores']} cores, "
              f"{result['machine']['memory_gib']} GiB, {result['machine']['os']}"]
    failing = [f"{c['asset']}:{c['check']}" for row in result["assets"] for c in row["checks"] if not c["passed"]]
    if failing:
        lines.append("checks not passed: " + ", ".join(failing))
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", default="after", help="name of the saved result")
    parser.add_argument("--compare", help="label of an earlier saved result to print ratios against")
    parser.add_argument("--work-dir", type=Path, default=BENCH_DIR / "whole_graph")
    parser.add_argument("--small", action="store_true", help="the default small sample (a quick trial run)")
    parser.add_argument("--executor", choices=("in_process", "multiprocess"), default="in_process",
                        help="in_process: every step in the run's process (the README's main job); multiprocess: "
                             "one step per core at a time, forked from a server that imported the definitions once")
    args = parser.parse_args()

    spec = SampleSpec() if args.small else SampleSpec.ml25m()
    # generated once, reused: the lake's raw dir links to it
    raw = sample_release(BENCH_DIR / "raw", spec) if args.small else ml25m_release()
    work = args.work_dir.resolve()
    shutil.rmtree(work, ignore_errors=True)
    (work / "lake" / "raw").mkdir(parents=True)
    (work / "lake" / "raw" / raw.name).symlink_to(raw.resolve(), target_is_directory=True)
    home = prepare_home("embedded", work / "dagster_home")  # as scripts/materialize: store pools limited
    config = work / "run_config.json"
    lite = not os.environ.get("TV5_MILVUS_URI")
    config.write_text(json.dumps(run_config(spec, args.executor, lite)))

    local_services.start("neo4j")
    env = {**os.environ, "DAGSTER_HOME": str(home), "TV5_DATA_DIR": str(work / "lake"),
           "TV5_EXECUTOR": args.executor, "HF_HUB_OFFLINE": "1"}
    env.update({k: v for k, v in local_services.env_file_values().items() if k not in os.environ})
    started = time.time()
    child = subprocess.Popen([sys.executable, "-m", "dagster", "job", "execute", "-m", "tv5_assets.definitions",
                              "-j", "whole_graph", "-c", str(config)], env=env, cwd=ROOT,
                             stdout=open(work / "run.log", "w"), stderr=subprocess.STDOUT)
    sampler = RssSampler(child.pid, follow_milvus=not lite)
    sampler.start()
    code = child.wait()
    total = time.time() - started
    sampler.done.set()
    sampler.join()

    os.environ["DAGSTER_HOME"] = str(home)
    from dagster import DagsterInstance

    instance = DagsterInstance.get()
    run = instance.get_runs(limit=1)[0]
    # multiprocess: each step runs in its own process, so the figure that counts is the largest one
    rss_column = 6 if args.executor == "multiprocess" else 1
    figures = step_figures(instance, run.run_id, sampler, rss_column)
    rows = summarise(figures)
    result = {
        "label": args.label, "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "commit": _commit(),
        "run_id": run.run_id, "run_status": run.status.value, "exit_code": code, "total_s": round(total, 1),
        "executor": args.executor,
        "peak_rss_mib": round(sampler.peak(column=rss_column), 0),
        "children_peak_rss_mib": round(sampler.peak(column=2), 0),
        "neo4j_peak_rss_mib": round(sampler.peak(column=3), 0),
        "milvus_server_peak_rss_mib": round(sampler.peak(column=5), 0), "checks": check_counts(rows),
        "skipped_steps": sum(f.status == "skipped" for f in figures), "assets": rows, "machine": machine(),
        "steps": [asdict(f) for f in figures],
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"whole_graph-{args.label}.json").write_text(json.dumps(result, indent=1))
    baseline = None
    if args.compare:
        baseline = json.loads((RESULTS / f"whole_graph-{args.compare}.json").read_text())
    text = markdown(result, baseline)
    (RESULTS / f"whole_graph-{args.label}.md").write_text(f"# whole_graph at ml-25m shape: {args.label}\n\n{text}")
    print(text)



def _commit() -> str:
    out = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True)
    return out.stdout.strip()


if __name__ == "__main__":
    main()
