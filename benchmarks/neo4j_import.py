"""Benchmark: the `graph` asset's two load paths on the ml-25m shape, in one run, on the project's local Neo4j.

Run: `flock /tmp/tv5-bench.lock python -m benchmarks.neo4j_import [--slice N] [--skip-online]`.
Target (issue 14, 2 cores): the 25M-RATED rebuild <= 4 min, with the same counts, schema and marker.

Both paths are the loader functions the asset calls, on the same rows and the same server (the one
`scripts/services` runs, as on the main job's defaults; it is stopped and restarted by the import):
1. `import_graph`: CSV files, `neo4j-admin database import full` into a stage of its own, its audit server
   started, schema, counts, marker (the live graph is not touched; `benchmarks.graph_release` times the swap);
2. `load_graph`: the online UNWIND load over Bolt (today's path; any server), as the baseline.
User and Platform attributes come from simple stand-ins for `demographics` and `availability`
(`benchmarks.neo4j_load`). The stage is removed at the end; the online load stays as an unserved slot.
"""

from __future__ import annotations

import argparse
import os
import time

from benchmarks.common import BENCH_DIR, ml25m_tables, report
from benchmarks.neo4j_load import stand_ins, user_slice
from tv5_assets import local_services
from tv5_assets.core.settings import Settings
from tv5_assets.graph_store import cypher, stages
from tv5_assets.graph_store.loader import import_graph, load_graph
from tv5_assets.graph_store.resources import Neo4jClient, Neo4jResource, project_local_server
from tv5_assets.graph_store.rows import graph_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slice", type=int, default=0, help="only the first N ratings, whole users (0: all)")
    parser.add_argument("--skip-online", action="store_true", help="only the import path")
    args = parser.parse_args()

    tables = ml25m_tables()
    ratings = user_slice(tables["ratings"], args.slice) if args.slice else tables["ratings"]
    demographics, availability = stand_ins(ratings, tables["movies"])
    started = time.perf_counter()
    rows = graph_rows(tables["movies"], ratings, tables["genome"], demographics, availability)
    rows_s = time.perf_counter() - started
    version = rows.fingerprint(salt=cypher.statements_digest())
    del tables, ratings

    local_services.start("neo4j")
    neo4j = local_services.ServiceSettings().neo4j_connection()  # environment, then .env (a first start writes it)
    uri = neo4j.uri
    resource = Neo4jResource(uri=uri, user=neo4j.user, password=neo4j.password,
                             **project_local_server(Settings(neo4j_uri=uri)))
    server = resource.local_server()
    if server is None:
        raise SystemExit(f"{uri} is not the project's local server (scripts/services): no import path")

    figures: list[tuple[str, str]] = [("graph rows (polars)", f"{rows_s:.1f} s"),
                                      ("rows", ", ".join(f"{k} {v:,}" for k, v in rows.counts().items()))]
    with Neo4jClient(resource.uri, resource.user, resource.password, log=print) as client:
        started = time.perf_counter()
        imported = import_graph(client, server, rows, version, BENCH_DIR / "neo4j-stages", resource.password,
                                force=True)
        import_s = time.perf_counter() - started
        stage = stages.Stage(BENCH_DIR / "neo4j-stages", imported.slot)
        assert imported.counts == rows.counts() and stage.ready()["version"] == version
        stage.remove()
        figures += [("import path, total", f"{import_s:.1f} s"),
                     ("  phases", ", ".join(f"{k} {v:.1f} s" for k, v in imported.seconds.items())),
                     ("  RATED per second (whole import path)", f"{rows.counts()['RATED'] / import_s:,.0f}")]
        if not args.skip_online:
            started = time.perf_counter()
            online = load_graph(client, rows, version, batch_rows=resource.batch_rows, force=True,
                                concurrency=resource.write_concurrency)
            online_s = time.perf_counter() - started
            assert online.counts == imported.counts
            figures += [("online path (today's), total", f"{online_s:.1f} s"),
                         ("  RATED per second (whole online path)", f"{rows.counts()['RATED'] / online_s:,.0f}"),
                         ("import vs online", f"{online_s / import_s:.2f}x faster, same counts")]
    figures.append(("load average at the end", " ".join(f"{x:.1f}" for x in os.getloadavg())))
    report(figures)


if __name__ == "__main__":
    main()
