"""`python -m tv5_assets.local_services {start,stop,restart,status} [neo4j|milvus|all]` (what scripts/services runs)."""

from __future__ import annotations

import argparse
import logging
import sys

from tv5_assets.local_services.control import restart, start, status, stop
from tv5_assets.local_services.errors import ServiceError

USAGE = """\
  start   [neo4j|milvus|all]   build if needed, start in the background, wait until it answers
  stop    [neo4j|milvus|all]   SIGTERM, wait, then SIGKILL
  restart [neo4j|milvus|all]
  status  [neo4j|milvus|all]   exit code 0 only if all asked-for services answer (else 3)

Neo4j Community 5.26 (services/neo4j) on 127.0.0.1:$NEO4J_BOLT_PORT (7687), the Milvus 2.3.5 standalone
server (services/milvus/launcher.py) on 127.0.0.1:$MILVUS_PORT (19530). Settings: environment, then .env
at the repo root, then the defaults (tv5_assets/local_services/settings.py). Logs, pid files: data/services/."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/services", description="Local real services for tv5-assets, "
                                     "without Docker, loopback only.", epilog=USAGE,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=("start", "stop", "restart", "status"))
    parser.add_argument("service", nargs="?", default="all", choices=("neo4j", "milvus", "all"))
    args = parser.parse_args(argv)
    # the probes report their own last error; the clients' retry chatter would only repeat it
    for name in ("neo4j", "pymilvus"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        if args.action == "status":
            states = status(args.service)
            for state in states:
                print(state.describe(), flush=True)
            return 0 if all(state.answering for state in states) else 3
        {"start": start, "stop": stop, "restart": restart}[args.action](args.service)
    except ServiceError as error:
        print(f"services: {error}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:  # a service already spawned keeps running: `stop` ends it
        print("services: interrupted", file=sys.stderr, flush=True)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
