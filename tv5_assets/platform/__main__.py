"""`python -m tv5_assets.platform ...`: prepare the Dagster instance and its store pools.

  env   [--kind embedded|team] [--home DIR]   write dagster.yaml, set the store pools' limits, print the
                                              `export` lines (DAGSTER_HOME, and the team's variables)
  pools apply [--limit N] | check             on the instance of $DAGSTER_HOME: set every store pool's limit,
                                              or exit 3 naming each store pool without one
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

import dagster as dg

from tv5_assets.core.pools import DEFAULT_LIMIT, STORE_POOLS, apply_limits, missing_limits
from tv5_assets.core.settings import Settings
from tv5_assets.platform.instance import KINDS, TEAM_ENV_DEFAULTS, TEAM_SECRET, prepare_home


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tv5_assets.platform", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    env = commands.add_parser("env", help="prepare the instance and print its environment")
    env.add_argument("--kind", choices=KINDS, default=None, help="default: TV5_INSTANCE (embedded)")
    env.add_argument("--home", type=Path, default=None, help="DAGSTER_HOME (default: per kind)")
    env.add_argument("--limit", type=int, default=DEFAULT_LIMIT)
    pools = commands.add_parser("pools", help="the store pools' limits on $DAGSTER_HOME's instance")
    pools.add_argument("action", choices=("apply", "check"))
    pools.add_argument("--limit", type=int, default=DEFAULT_LIMIT)
    args = parser.parse_args(argv)
    try:
        if args.command == "env":
            kind = args.kind or Settings().tv5_instance
            home = prepare_home(kind, args.home, args.limit)
            exports = {"DAGSTER_HOME": str(home)}
            if kind == "team":
                exports |= {key: os.environ[key] for key in (*TEAM_ENV_DEFAULTS, "TV5_COMPUTE_LOG_DIR")}
            for key, value in exports.items():
                print(f"export {key}={shlex.quote(value)}")
            print(f"# {kind} instance ready in {home}; store pools limited to {args.limit}: "
                  f"{', '.join(STORE_POOLS)}" + (f" ({TEAM_SECRET} from the environment)" if kind == "team" else ""))
            return 0
        with dg.DagsterInstance.get() as instance:
            if args.action == "apply":
                for pool, limit in apply_limits(instance, args.limit).items():
                    print(f"pool {pool}: limit {limit}")
                return 0
            if missing := missing_limits(instance):
                print(f"store pools without a limit on {os.environ.get('DAGSTER_HOME')}: {', '.join(missing)} "
                      "(python -m tv5_assets.platform pools apply)", file=sys.stderr)
                return 3
            print(f"every store pool has a limit: {', '.join(STORE_POOLS)}")
            return 0
    except dg.DagsterInvariantViolationError as error:
        print(f"platform: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
