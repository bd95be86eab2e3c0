"""A full rebuild of the local Neo4j with the offline import tool, the previous graph served until the swap.

Why: the online load (UNWIND batches over Bolt) writes ~51,000 RATED relationships/s on 2 cores, so
ml-25m's 25M ratings take 8.5 minutes; `neo4j-admin database import full` writes the same store in
about 2 minutes. It needs the store directory, so it is only for the project's own local server
(`tv5_assets.local_services`, behind `scripts/services`), which this process may stop and start; any
other server gets the online load.

Order, each step leaving a readable graph behind it:
1. the rows as CSV files (polars), one per label and per type;
2. the import tool builds a complete store in a staging DBMS home, while the live server keeps
   serving the previous graph (a failure here changes nothing);
3. the live server stops; its store directories move aside (`<name>.previous`) and the staged ones
   move in; the server starts on the new store;
4. (by the loader) constraints and indexes online, counts compared, load marker set complete.
If 3 fails, or the caller's step 4 fails and calls `restore_previous`, the previous store moves
back and the server starts on it, so the last good graph is what is served.
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

from tv5_assets.graph_store import model
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


def write_csvs(rows: GraphRows, directory: Path) -> list[str]:
    """One CSV per label and per type (header included); returns the import tool's --nodes/--relationships."""
    directory.mkdir(parents=True, exist_ok=True)
    arguments = []
    for spec in model.NODES:
        frame = rows.nodes[spec.label]
        columns = [_column(c, frame.schema[c]) for c in spec.properties]
        path = directory / f"{spec.label}.csv"
        frame.select(pl.col(spec.key).cast(pl.String).alias(f":ID({spec.label})"),
                     *[expr.alias(header) for expr, header in columns]).write_csv(path)
        arguments.append(f"--nodes={spec.label}={path}")
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


def build_staged_store(server: LocalServer, rows: GraphRows, work: Path, log: Callable[[str], None]) -> Path:
    """CSV files, then the import tool into a fresh staging home under `work`; returns that home."""
    shutil.rmtree(work, ignore_errors=True)
    staging = work / "home"
    (staging / "conf").mkdir(parents=True)
    started = time.perf_counter()
    arguments = write_csvs(rows, work / "csv")
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


def _store_paths(home: Path, database: str) -> list[Path]:
    return [home / "data" / kind / database for kind in STORE_DIRS]


def swap_in(server: LocalServer, staging: Path, log: Callable[[str], None]) -> None:
    """Stop the live server, move its store aside and the staged one in, start it; on failure put it back."""
    live = _store_paths(server.home, server.database)
    staged = _store_paths(staging, server.database)
    missing = [str(p) for p in staged if not p.is_dir()]
    if missing:
        raise ImportToolError(f"the import tool left no store at {missing}; the live graph is unchanged")
    started = time.perf_counter()
    server.run_control("stop")
    try:
        for current, new in zip(live, staged, strict=True):
            previous = current.with_name(current.name + ".previous")
            shutil.rmtree(previous, ignore_errors=True)
            if current.exists():
                current.rename(previous)
            current.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(new), str(current))
        server.run_control("start")
    except BaseException:
        restore_previous(server, log)
        raise
    log(f"graph import: server restarted on the new store in {time.perf_counter() - started:.1f} s")


def restore_previous(server: LocalServer, log: Callable[[str], None]) -> bool:
    """Put the store moved aside by `swap_in` back and start the server on it; False when there is none."""
    live = _store_paths(server.home, server.database)
    previous = [p.with_name(p.name + ".previous") for p in live]
    if not all(p.is_dir() for p in previous):
        return False
    try:
        server.run_control("stop")
    except RuntimeError as error:
        log(f"graph import: stopping the server before the restore failed ({error}); restoring anyway")
    for current, kept in zip(live, previous, strict=True):
        shutil.rmtree(current, ignore_errors=True)
        kept.rename(current)
    server.run_control("start")
    log("graph import: the previous graph was restored and is served again")
    return True


def drop_previous(server: LocalServer) -> None:
    for current in _store_paths(server.home, server.database):
        shutil.rmtree(current.with_name(current.name + ".previous"), ignore_errors=True)
