"""The project's Neo4j launcher (services/neo4j): its Maven build and its JVM command line.

One JVM command line for the shared server and for private ones (tests, benchmarks), so a flag
changed here applies to both.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from tv5_assets.local_services.errors import ServiceError
from tv5_assets.local_services.processes import spawn
from tv5_assets.local_services.settings import ROOT, STATE_DIR, ServiceSettings

LAUNCHER_DIR = ROOT / "services" / "neo4j"
CLASSES = LAUNCHER_DIR / "target" / "classes"
DEPENDENCIES = LAUNCHER_DIR / "target" / "dependency"  # the Neo4j jars, the import tool's too
BUILD_STAMP = LAUNCHER_DIR / "target" / ".tv5-build-stamp"
JVM_FLAGS = (
    "-XX:-OmitStackTraceInFastThrow", "-XX:+ExitOnOutOfMemoryError", "-Djdk.nio.maxCachedBufferSize=1024",
    "-Dio.netty.tryReflectionSetAccessible=true", "-Dlog4j2.disable.jmx=true",
    "--add-opens=java.base/java.nio=ALL-UNNAMED", "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED", "--add-opens=java.base/java.lang=ALL-UNNAMED",
)


def is_built() -> bool:
    return BUILD_STAMP.is_file() and DEPENDENCIES.is_dir() and (CLASSES / "tv5" / "Neo4jLauncher.class").is_file()


def java_command(home: Path, heap: str = "512m", java_opts: tuple[str, ...] = (), gc: str = "G1") -> list[str]:
    """The launcher's JVM command line for a DBMS home.

    `gc`: "G1" (the shared server's: short pauses for queries) or "Parallel" (the benchmarks' bulk-load
    profile: more throughput, with the heap committed up front)."""
    if gc not in ("G1", "Parallel"):
        raise ValueError(f"gc must be 'G1' or 'Parallel', got {gc!r}")
    if not (CLASSES / "tv5" / "Neo4jLauncher.class").exists():
        raise ServiceError(f"the Neo4j launcher is not built ({CLASSES}): run `scripts/services start neo4j` once")
    heap_flags = [f"-Xmx{heap}"] + ([f"-Xms{heap}"] if gc == "Parallel" else [])
    return ["java", *heap_flags, f"-XX:+Use{gc}GC", *JVM_FLAGS, *java_opts,
            "-cp", f"{CLASSES}:{DEPENDENCIES}/*", "tv5.Neo4jLauncher", str(home)]


def _sources_newer_than_stamp() -> bool:
    stamp = BUILD_STAMP.stat().st_mtime
    files = [LAUNCHER_DIR / "pom.xml", *(p for p in (LAUNCHER_DIR / "src").rglob("*") if p.is_file())]
    return any(p.stat().st_mtime > stamp for p in files if p.exists())


def build_launcher(state_dir: Path, say: Callable[[str], None]) -> None:
    """Build the launcher with Maven when its jars or classes are missing or its sources changed (under the
    shared services lock whatever `state_dir` is: a private server's start never races a shared build)."""
    from tv5_assets.local_services.control import exclusive

    if is_built() and not _sources_newer_than_stamp():
        return
    with exclusive(STATE_DIR):
        if not is_built() or _sources_newer_than_stamp():
            _build(state_dir, say)


def _build(state_dir: Path, say: Callable[[str], None]) -> None:
    if shutil.which("mvn") is None:
        raise ServiceError("mvn not found (needs Maven 3 and Java 17 to build services/neo4j)")
    if shutil.which("java") is None:
        raise ServiceError("java not found (Neo4j 5.26 needs Java 17)")
    state_dir.mkdir(parents=True, exist_ok=True)
    log = state_dir / "neo4j-build.log"
    say("building the Neo4j launcher (first time: downloads ~125 MB from Maven Central) ...")
    shutil.rmtree(DEPENDENCIES, ignore_errors=True)
    with open(log, "wb") as out:
        built = subprocess.run(["mvn", "-q", "-B", "-f", str(LAUNCHER_DIR / "pom.xml"), "package",
                                "dependency:copy-dependencies"], stdout=out, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, check=False)
    if built.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
        raise ServiceError(f"Neo4j launcher build failed (full log: {log})\n{tail}")
    BUILD_STAMP.touch()


def launch(settings: ServiceSettings, log: Path) -> int:
    """Start the shared server's JVM in the background; returns its pid."""
    home = settings.neo4j_home
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "NEO4J_PASSWORD": settings.neo4j_password, "NEO4J_BOLT_PORT": str(settings.neo4j_bolt_port),
           "NEO4J_PAGECACHE": settings.neo4j_pagecache, "NEO4J_TX_MEMORY": settings.neo4j_tx_memory}
    command = java_command(home, settings.neo4j_heap, tuple(shlex.split(settings.neo4j_java_opts)))
    return spawn(command, LAUNCHER_DIR, env, log)
