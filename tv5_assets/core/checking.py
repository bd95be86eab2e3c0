"""What every stage's checks share: a rule's outcome as a plain value, its Dagster form, and what the
checked asset's last materialization recorded.

Rules are plain functions returning `RuleResult`, so they can be tested on a hand-made good frame
and a hand-made bad one; the asset checks only wrap them with `check_result`. Checks that compare
against what a materialization reported (its config, counts, versions) read it with `latest_metadata`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import dagster as dg

from tv5_assets.core.releases import STAGED


@dataclass(frozen=True)
class RuleResult:
    passed: bool
    description: str
    metadata: dict[str, object] = field(default_factory=dict)


def _metadata_value(value: object) -> object:
    return dg.MetadataValue.json(value) if isinstance(value, (dict, list)) else value


def check_result(asset: str | dg.AssetKey, name: str, result: RuleResult,
                 warn_only: bool = False) -> dg.AssetCheckResult:
    """The Dagster result of a rule: ERROR severity (blocks downstream when blocking) unless warn_only.
    `asset`: a one-part key's name, or the key itself (a prefixed key such as milvus/media_vectors)."""
    return dg.AssetCheckResult(
        asset_key=asset if isinstance(asset, dg.AssetKey) else dg.AssetKey(asset),
        check_name=name,
        passed=result.passed,
        severity=dg.AssetCheckSeverity.WARN if warn_only else dg.AssetCheckSeverity.ERROR,
        description=result.description,
        metadata={k: _metadata_value(v) for k, v in result.metadata.items()},
    )


def latest_metadata(context: dg.AssetCheckExecutionContext | dg.AssetExecutionContext,
                    asset: str | dg.AssetKey) -> dict[str, object] | None:
    """The metadata values (`.value` of each entry) of the asset's latest materialization; None when it has none."""
    key = asset if isinstance(asset, dg.AssetKey) else dg.AssetKey(asset)
    event = context.instance.get_latest_materialization_event(key)
    if event is None or event.asset_materialization is None:
        return None
    return {name: value.value for name, value in event.asset_materialization.metadata.items()}


def staged_version(context: dg.AssetCheckExecutionContext | dg.AssetExecutionContext,
                   asset: str | dg.AssetKey) -> str | None:
    """The version the asset's latest materialization staged (`staged_version`): what its checks audit, and the
    release candidate until a running materialization stages another. None when nothing was staged."""
    value = (latest_metadata(context, asset) or {}).get(STAGED)
    return str(value) if value else None
