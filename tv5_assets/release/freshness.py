"""`built_from_newest_source`: does a serving store hold the newest release the source sensor has seen?

A WARN check on each serving store (it never blocks: an old store is still a good store). It compares the
release data version(s) the store's latest build read (its lineage, `lineage.versions_read`) with the
newest release content the source sensor recorded (`newest_seen`), and reports the lag: 0 when the store
serves it, else the seconds since the sensor first saw it.
"""


import time

import dagster as dg

from tv5_assets.core.checking import RuleResult, check_result
from tv5_assets.ingestion.sensors import RELEASE_KEY, newest_seen
from tv5_assets.release.lineage import versions_read

CHECK = "built_from_newest_source"


def freshness_rule(newest: str | None, first_seen: float | None, served: set[str], now: float) -> RuleResult:
    """Pure rule: passed when the store's source versions are exactly the newest seen; lag in seconds."""
    if newest is None:
        return RuleResult(True, "the source sensor has not recorded a release yet: nothing newer to serve",
                          {"lag_s": 0.0, "served_release_versions": sorted(served)})
    fresh = served == {newest}
    lag = 0.0 if fresh else round(now - float(first_seen or now), 1)
    detail = ("built from the newest release seen" if fresh else
              f"built from {sorted(served) or 'no recorded release'}, not the newest seen ({newest}, first seen "
              f"{lag:.0f} s ago)")
    return RuleResult(fresh, detail, {"lag_s": lag, "newest_seen": newest,
                                      "served_release_versions": ", ".join(sorted(served))})


def served_freshness_check(asset_key: dg.AssetKey) -> dg.AssetChecksDefinition:
    """The WARN check of one serving store."""

    @dg.asset_check(asset=asset_key, name=CHECK, blocking=False,
                    description="the store was built from the newest MovieLens release content the source sensor "
                                "has seen (its lineage back to movielens_release); lag_s: seconds since that "
                                "content was first seen, 0 when served")
    def _check(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        seen = newest_seen(context.instance)
        served = versions_read(context.instance, asset_key, RELEASE_KEY)
        rule = freshness_rule(seen.fingerprint if seen else None, seen.first_seen if seen else None, served,
                              time.time())
        return check_result(asset_key, CHECK, rule, warn_only=True)

    return _check
