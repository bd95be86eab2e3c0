"""What every stage's checks share: a rule's outcome as a plain value, and its Dagster form.

Rules are plain functions returning `RuleResult`, so they can be tested on a hand-made good frame
and a hand-made bad one; the asset checks only wrap them with `check_result`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import dagster as dg


@dataclass(frozen=True)
class RuleResult:
    passed: bool
    description: str
    metadata: dict[str, object] = field(default_factory=dict)


def _metadata_value(value: object) -> object:
    return dg.MetadataValue.json(value) if isinstance(value, (dict, list)) else value


def check_result(asset: str, name: str, result: RuleResult, warn_only: bool = False) -> dg.AssetCheckResult:
    """The Dagster result of a rule: ERROR severity (blocks downstream when blocking) unless warn_only."""
    return dg.AssetCheckResult(
        asset_key=dg.AssetKey(asset),
        check_name=name,
        passed=result.passed,
        severity=dg.AssetCheckSeverity.WARN if warn_only else dg.AssetCheckSeverity.ERROR,
        description=result.description,
        metadata={k: _metadata_value(v) for k, v in result.metadata.items()},
    )
