"""Benchmark (optional path): a full offline rebuild of the graph with the Neo4j import tool.

Run: `flock /tmp/tv5-bench.lock python -m benchmarks.neo4j_import`. Same ml-25m-shaped input and
stand-ins as `benchmarks.neo4j_load`. Writes the graph rows as CSV (polars), runs
`neo4j-admin database import full` (`org.neo4j.cli.AdminTool`, from the launcher's jars) into a
fresh, stopped DBMS home, starts a private server on it, creates the constraints and indexes online
(Community's record format takes no --schema in the importer) and checks the counts.

This is the path for full rebuilds when the server can be taken offline: it needs the store
directory (the server stopped, or a new one), which the online `graph` asset does not.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import time
from pathlib import Path

import polars as pl

from benchmarks.common import BENCH_DIR, ml25m_tables, report
from benchmarks.neo4j_load import stand_ins, user_slice
from tv5_assets.graph_store import cypher, model
from tv5_assets.graph_store.loader import create_schema, live_counts
from tv5_assets.graph_store.rows import GraphRows, graph_rows
from tv5_assets.resources.neo4j import Neo4jClient
from tv5_assets_tests.services import NEO4J_LAUNCHER_DIR, PrivateNeo4j, free_port

HOME = BENCH_DIR / "neo4j-import-home"
CSV_DIR = BENCH_DIR / "neo4j-import-csv"
_TYPES = {pl.Int64: "long", pl.Int32: "int", pl.Float64: "double", pl.Float32: "float"}


def _column(name: str, dtype: pl.DataType) -> tuple[pl.Expr, str]:
    """The CSV expression and header of one property column."""
    if dtype == pl.List(pl.String):
        return pl.col(name).list.join(";"), f"{name}:string[]"
    return pl.col(name), f"{name}:{_TYPES[dtype]}" if dtype in _TYPES else name


def write_csvs(rows: GraphRows, directory: Path) -> list[str]:
    """One CSV per label and per type (header included); returns the importer's --nodes/--relationships."""
    directory.mkdir(parents=True, exist_ok=True)
    arguments = []
    for spec in model.NODES:
        frame = rows.nodes[spec.label]
        columns = [_column(c, frame.schema[c]) for c in spec.properties]
        out = frame.select(pl.col(spec.key).cast(pl.String).alias(f":ID({spec.label})"),
                           *[expr.alias(header) for expr, header in columns])
        path = directory / f"{spec.label}.csv"
        out.write_csv(path)
        arguments.append(f"--nodes={spec.label}={path}")
    for spec in model.RELATIONSHIPS:
        frame = rows.relationships[spec.type]
        columns = [_column(c, frame.schema[c]) for c in spec.properties]  # the online load's types
        out = frame.select(pl.col(spec.start_column).cast(pl.String).alias(f":START_ID({spec.start.label})"),
                           pl.col(spec.end_column).cast(pl.String).alias(f":END_ID({spec.end.label})"),
                           *[expr.alias(header) for expr, header in columns])
        path = directory / f"{spec.type}.csv"
        out.write_csv(path)
        arguments.append(f"--relationships={spec.type}={path}")
    return arguments


def run_import(home: Path, arguments: list[str], max_off_heap: str) -> float:
    env = {**os.environ, "NEO4J_HOME": str(home), "NEO4J_CONF": str(home / "conf")}
    (home / "conf").mkdir(parents=True, exist_ok=True)
    command = ["java", "-Xmx2g", "-cp", f"{NEO4J_LAUNCHER_DIR / 'target' / 'dependency'}/*",
               "org.neo4j.cli.AdminTool", "database", "import", "full", "neo4j", "--overwrite-destination",
               f"--max-off-heap-memory={max_off_heap}", "--array-delimiter=;", f"--report-file={home / 'import.report'}",
               *arguments]  # the database name comes first: --nodes/--relationships take 1..n files
    started = time.perf_counter()
    subprocess.run(command, env=env, check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-off-heap", default="4g")
    parser.add_argument("--slice", type=int, default=0, help="only the first N ratings (0: all)")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    tables = ml25m_tables()
    ratings = user_slice(tables["ratings"], args.slice) if args.slice else tables["ratings"]
    demographics, availability = stand_ins(ratings, tables["movies"])
    started = time.perf_counter()
    rows = graph_rows(tables["movies"], ratings, tables["genome"], demographics, availability)
    rows_s = time.perf_counter() - started
    shutil.rmtree(HOME, ignore_errors=True)
    shutil.rmtree(CSV_DIR, ignore_errors=True)
    started = time.perf_counter()
    arguments = write_csvs(rows, CSV_DIR)
    csv_s = time.perf_counter() - started
    import_s = run_import(HOME, arguments, args.max_off_heap)

    server = PrivateNeo4j(HOME, port=free_port(), heap="2g", pagecache="3g")
    try:
        settings = server.start()
        with Neo4jClient(settings.uri, settings.user, settings.password) as client:
            # Community's record-format importer takes no --schema: constraints and indexes are
            # created online on the imported data (the same statements as the asset's load)
            started = time.perf_counter()
            create_schema(client)
            schema_s = time.perf_counter() - started
            counts = live_counts(client)
            schema_rows = client.read(cypher.SHOW_SCHEMA)
    finally:
        server.stop()
        if not args.keep:
            shutil.rmtree(HOME, ignore_errors=True)
            shutil.rmtree(CSV_DIR, ignore_errors=True)
    assert counts == rows.counts(), (counts, rows.counts())
    rated = rows.counts()["RATED"]
    report([
        ("rows (polars)", f"{rows_s:.1f} s"),
        ("CSV files (polars)", f"{csv_s:.1f} s"),
        ("import tool (all nodes and relationships)", f"{import_s:.1f} s"),
        ("schema created online after the import", f"{schema_s:.1f} s"),
        ("RATED via the import tool", f"{rated / import_s:,.0f} relationships/s (whole import time)"),
        ("counts after start", ", ".join(f"{k} {v:,}" for k, v in counts.items())),
        ("schema after start", f"{sum(r['unique'] for r in schema_rows)} constraints, "
                               f"{sum(not r['unique'] for r in schema_rows)} indexes"),
        ("load average at the end", " ".join(f"{x:.1f}" for x in os.getloadavg())),
    ])


if __name__ == "__main__":
    main()
