"""A full rebuild of the local Neo4j's graph with the offline import tool, as a stage beside the live server.

Why: the online load (UNWIND batches over Bolt) writes ~51,000 RATED relationships/s on 2 cores, so
ml-25m's 25M ratings take 8.5 minutes; `neo4j-admin database import full` writes the same store in
about 2 minutes. It needs the store directory, so it is only for the project's own local server
(`tv5_assets.local_services`, behind `scripts/services`), which this process may stop and start; any
other server gets the online load.

Here: the rows as CSV files (polars), one per label and per type, then the import tool builds a complete store
in a DBMS home of its own while the live server keeps serving (a failure changes nothing). `stages` audits that
store on a server of its own and swaps it in when `release` publishes it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from tv5_assets.graph_store import model, slots
from tv5_assets.graph_store.rows import GraphRows

_TYPES = {pl.Int64: "long", pl.Int32: "int", pl.Float64: "double", pl.Float32: "float", pl.Boolean: "boolean"}
STORE_DIRS = ("databases", "transactions")  # under <home>/data, one directory per database in each


class ImportToolError(RuntimeError):
    """The import tool failed; the live graph was not touched."""


@dataclass(frozen=True)
class LocalServer:
    """The project's own Neo4j: its DBMS home, the import tool's class path, and how to stop and start it."""

    home: Path
    classpath: str  # the launcher's jars, e.g. services/neo4j/target/dependency/*
    control: tuple[str, ...]  # a command with an "{action}" argument, replaced by `stop` or `start`
    database: str = "neo4j"
    max_off_heap: str = "2g"
    java_heap: str = "1g"

    def run_control(self, action: str) -> None:
        command = [part.replace("{action}", action) for part in self.control]
        completed = subprocess.run(command, capture_output=True, text=True)
        if completed.returncode != 0:
            raise RuntimeError(f"`{' '.join(command)}` failed ({completed.returncode}): "
                               f"{(completed.stderr or completed.stdout).strip()[-2000:]}")


def _column(name: str, dtype: pl.DataType) -> tuple[pl.Expr, str]:
    """The CSV expression and typed header of one property column (lists joined with ';')."""
    if dtype == pl.List(pl.String):
        return pl.col(name).list.join(";"), f"{name}:string[]"
    return pl.col(name), f"{name}:{_TYPES[dtype]}" if dtype in _TYPES else name


def write_csvs(rows: GraphRows, directory: Path, slot: str | None = None) -> list[str]:
    """One CSV per label and per type (header included); returns the import tool's --nodes/--relationships, the
    nodes labelled for `slot` (see slots)."""
    directory.mkdir(parents=True, exist_ok=True)
    arguments = []
    for spec in model.NODES:
        frame = rows.nodes[spec.label]
        columns = [_column(c, frame.schema[c]) for c in spec.properties]
        path = directory / f"{spec.label}.csv"
        frame.select(pl.col(spec.key).cast(pl.String).alias(f":ID({spec.label})"),
                     *[expr.alias(header) for expr, header in columns]).write_csv(path)
        arguments.append(f"--nodes={slots.label(spec.label, slot)}={path}")
    for spec in model.RELATIONSHIPS:
        frame = rows.relationships[spec.type]
        columns = [_column(c, frame.schema[c]) for c in spec.properties]
        path = directory / f"{spec.type}.csv"
        frame.select(pl.col(spec.start_column).cast(pl.String).alias(f":START_ID({spec.start.label})"),
                     pl.col(spec.end_column).cast(pl.String).alias(f":END_ID({spec.end.label})"),
                     *[expr.alias(header) for expr, header in columns]).write_csv(path)
        arguments.append(f"--relationships={spec.type}={path}")
    return arguments


def import_command(server: LocalServer, staging: Path, arguments: list[str]) -> list[str]:
    return ["java", f"-Xmx{server.java_heap}", "-cp", server.classpath, "org.neo4j.cli.AdminTool",
            "database", "import", "full", server.database, "--overwrite-destination",
            f"--max-off-heap-memory={server.max_off_heap}", "--array-delimiter=;",
            f"--report-file={staging / 'import.report'}", *arguments]  # the name first: the options take 1..n files


def build_staged_store(server: LocalServer, rows: GraphRows, work: Path, log: Callable[[str], None],
                       slot: str | None = None) -> Path:
    """CSV files, then the import tool into a fresh staging home under `work`; returns that home."""
    shutil.rmtree(work, ignore_errors=True)
    staging = work / "home"
    (staging / "conf").mkdir(parents=True)
    started = time.perf_counter()
    arguments = write_csvs(rows, work / "csv", slot)
    log(f"graph import: CSV files written in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    env = {**os.environ, "NEO4J_HOME": str(staging), "NEO4J_CONF": str(staging / "conf")}
    completed = subprocess.run(import_command(server, staging, arguments), env=env, capture_output=True, text=True)
    if completed.returncode != 0:
        raise ImportToolError(f"neo4j-admin database import failed ({completed.returncode}); the live graph is "
                              f"unchanged: {(completed.stderr or completed.stdout).strip()[-3000:]}")
    seconds = time.perf_counter() - started
    log(f"graph import: store built by the import tool in {seconds:.1f} s "
        f"({rows.counts()['RATED'] / max(seconds, 1e-9):,.0f} RATED/s over the whole import)")
    shutil.rmtree(work / "csv", ignore_errors=True)
    return staging
