"""`python -m tv5_assets.local_services {start,stop,restart,status} [SERVICE|all|team]` (what scripts/services runs)."""

from __future__ import annotations

import argparse
import logging
import sys

from tv5_assets.local_services.control import restart, start, status, stop
from tv5_assets.local_services.errors import ServiceError
from tv5_assets.local_services.settings import TEAM

USAGE = """\
  start   [SERVICE|all|team]   build or initdb if needed, start in the background, wait until it answers
  stop    [SERVICE|all|team]   SIGTERM (postgres: SIGINT), wait, then SIGKILL; in reverse order
  restart [SERVICE|all|team]
  status  [SERVICE|all|team]   exit code 0 only if all asked-for services answer (else 3)

all (the default): neo4j, milvus. team: postgres, neo4j, milvus, dagster-code-server, dagster-webserver,
dagster-daemon (the team's Dagster on Postgres, DAGSTER_HOME data/dagster-team).

Neo4j Community 5.26 (services/neo4j) on 127.0.0.1:$NEO4J_BOLT_PORT (7687), the Milvus 2.3.5 standalone
server (services/milvus/launcher.py) on 127.0.0.1:$MILVUS_PORT (19530), PostgreSQL 15 (data/postgres) on
127.0.0.1:$DAGSTER_POSTGRES_PORT (5432), the code server on $DAGSTER_CODE_SERVER_PORT (4266), the webserver
on $DAGSTER_WEBSERVER_PORT (3000). Settings: environment, then .env at the repo root, then the defaults
(tv5_assets/local_services/settings.py). Logs, pid files: data/services/."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/services", description="Local real services for tv5-assets, "
                                     "without Docker, loopback only.", epilog=USAGE,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=("start", "stop", "restart", "status"))
    parser.add_argument("service", nargs="?", default="all", choices=(*TEAM, "all", "team"))
    args = parser.parse_args(argv)
    # the probes report their own last error; the clients' retry chatter would only repeat it
    for name in ("neo4j", "pymilvus", "dagster"):
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
