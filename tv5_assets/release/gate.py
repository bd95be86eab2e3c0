"""The release gate: may the staged stores be published? Read from Dagster's own records, not from run outcomes.

For each serving store, its latest materialization (the staged version) and, through the input-event pointers
Dagster records on every materialization, every asset upstream of it, at the materialization it actually read:
- the data version read must equal that asset's latest materialization's (a re-run with other data since blocks);
- for each blocking check of the asset, the latest evaluation on a materialization of that data version decides:
  none (never ran on it) blocks, a failure blocks even when it came from an earlier run than the one that built
  the store; a check whose evaluation has WARN severity is recorded, never blocks;
- the stores' own blocking checks: their latest evaluation on the store's latest materialization, the staged
  version itself (a restaging of the same rows is another physical version, audited again);
- a Parquet file whose bytes no longer hash to what its materialization recorded blocks, naming the file.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg

from tv5_assets.core.releases import CONTENT_SHA256
from tv5_assets.core.storage import file_sha256
from tv5_assets.release.lineage import DATA_VERSION, POINTER, materialization_at

CODE_VERSION = "dagster/code_version"


@dataclass(frozen=True)
class Finding:
    """One gating fact: `blocks` when it stops the release."""

    asset: str
    rule: str
    blocks: bool
    message: str
    figures: dict[str, Any] = field(default_factory=dict)


@dataclass
class Read:
    """An upstream asset as a store read it."""

    key: dg.AssetKey
    storage_id: int
    data_version: str | None
    code_version: str | None
    metadata: dict[str, Any]
    inputs: dict[str, str]  # input asset (user string) -> the storage id it read ('NULL': never materialized)


@dataclass
class GateReport:
    stores: dict[str, Read]
    lineage: dict[str, Read]
    findings: list[Finding]

    @property
    def blocking(self) -> list[Finding]:
        return [f for f in self.findings if f.blocks]

    @property
    def passed(self) -> bool:
        return not self.blocking


def _read(record: dg.EventLogRecord) -> Read:
    materialization = record.asset_materialization
    assert materialization is not None
    tags = materialization.tags or {}
    return Read(materialization.asset_key, record.storage_id, tags.get(DATA_VERSION), tags.get(CODE_VERSION),
                {name: value.value for name, value in materialization.metadata.items()},
                {tag[len(POINTER):]: pointer for tag, pointer in tags.items() if tag.startswith(POINTER)})


class Lineage:
    """Materialization records by storage id, fetched once each."""

    def __init__(self, instance: dg.DagsterInstance):
        self.instance = instance
        self._by_id: dict[tuple[dg.AssetKey, int], Read] = {}
        self._latest: dict[dg.AssetKey, Read | None] = {}

    def latest(self, key: dg.AssetKey) -> Read | None:
        if key not in self._latest:
            record = materialization_at(self.instance, key, None)
            self._latest[key] = _read(record) if record else None
        return self._latest[key]

    def at(self, key: dg.AssetKey, storage_id: int) -> Read | None:
        if (key, storage_id) not in self._by_id:
            record = materialization_at(self.instance, key, storage_id)
            if record is None:
                return None
            self._by_id[(key, storage_id)] = _read(record)
        return self._by_id[(key, storage_id)]

    def version_at(self, key: dg.AssetKey, storage_id: int) -> str | None:
        read = self.at(key, storage_id)
        return read.data_version if read else None

    def upstream(self, store: Read) -> dict[dg.AssetKey, list[Read]]:
        """Every asset upstream of `store`, at each materialization the chain of reads went through."""
        found: dict[dg.AssetKey, list[Read]] = {}
        queue, seen = [store], {(store.key, store.storage_id)}
        while queue:
            current = queue.pop()
            for name, pointer in current.inputs.items():
                parent = dg.AssetKey.from_user_string(name)
                if not pointer.isdigit():  # 'NULL': the input was never materialized
                    found.setdefault(parent, [])
                    continue
                read = self.at(parent, int(pointer))
                if read is None or (parent, read.storage_id) in seen:
                    continue
                seen.add((parent, read.storage_id))
                found.setdefault(parent, []).append(read)
                queue.append(read)
        return found


def _evaluations(instance: dg.DagsterInstance, check: dg.AssetCheckKey, limit: int = 100):
    """(target storage id, evaluation) of the check's finished executions, newest first."""
    for record in instance.event_log_storage.get_asset_check_execution_history(check, limit=limit):
        event = record.event.get_dagster_event() if record.event else None
        evaluation = event.event_specific_data if event is not None else None
        if isinstance(evaluation, dg.AssetCheckEvaluation) and evaluation.target_materialization_data:
            yield evaluation.target_materialization_data.storage_id, evaluation


def numeric_figures(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """A check's key figures: its numeric and short text metadata values."""
    figures = {}
    for name, value in metadata.items():
        raw = getattr(value, "value", value)
        if isinstance(raw, bool | int | float) or (isinstance(raw, str) and len(raw) <= 80):
            figures[name] = raw
    return figures


def audit_checks(instance: dg.DagsterInstance, lineage: Lineage, specs: Mapping[dg.AssetKey, list[dg.AssetCheckSpec]],
                 read: Read, exact: bool = False) -> list[Finding]:
    """The rule on every check of `read.key`, for the data version read; `exact`: on that very materialization
    (a store: two stagings of the same rows are two physical versions, each audited on its own)."""
    findings = []
    asset = read.key.to_user_string()
    for spec in sorted(specs.get(read.key, []), key=lambda s: s.name):
        check = spec.key
        latest = next(((target, evaluation) for target, evaluation in _evaluations(instance, check)
                       if (target == read.storage_id if exact
                           else lineage.version_at(read.key, target) == read.data_version)), None)
        if latest is None:
            where = f"its materialization {read.storage_id}" if exact else f"data version {read.data_version}"
            findings.append(Finding(asset, check.name, spec.blocking,
                                    f"{asset}:{check.name} has not run on {where}"
                                    + ("" if spec.blocking else " (not blocking)")))
            continue
        target, evaluation = latest
        warn = evaluation.severity == dg.AssetCheckSeverity.WARN
        figures = {"passed": evaluation.passed, "severity": evaluation.severity.value,
                   **numeric_figures(evaluation.metadata)}
        outcome = "passed" if evaluation.passed else "FAILED"
        earlier = "" if target == read.storage_id else f" (on an earlier materialization, storage id {target})"
        findings.append(Finding(asset, check.name, spec.blocking and not warn and not evaluation.passed,
                                f"{asset}:{check.name} {outcome} on data version {read.data_version}{earlier}: "
                                f"{evaluation.description or ''}".rstrip(": "), figures))
    return findings


def audit_file(read: Read) -> Finding | None:
    """A lake file that no longer holds the bytes its materialization hashed."""
    path, recorded = read.metadata.get("path"), read.metadata.get(CONTENT_SHA256)
    if not path or not recorded:
        return None
    asset = read.key.to_user_string()
    if not Path(str(path)).exists():
        return Finding(asset, "lake_file", True, f"{path} ({asset}) is missing")
    actual = file_sha256(Path(str(path)))
    if actual != recorded:
        return Finding(asset, "lake_file", True, f"{path} ({asset}) was changed outside Dagster: its sha256 is "
                       f"{actual[:12]}…, its materialization recorded {str(recorded)[:12]}…",
                       {"path": str(path)})
    return None


def audit(instance: dg.DagsterInstance, specs: Mapping[dg.AssetKey, list[dg.AssetCheckSpec]],
          stores: Iterable[dg.AssetKey], sources: Collection[dg.AssetKey] = ()) -> GateReport:
    """Every gating fact about publishing the latest materialization of each of `stores` (`specs`: each asset's
    checks, as defined). `sources`: observed, never materialized upstream assets (e.g. `published_days`), which
    the assets that read them answer for (`ratings` records the days it folded)."""
    lineage = Lineage(instance)
    findings: list[Finding] = []
    staged: dict[str, Read] = {}
    upstream: dict[dg.AssetKey, list[Read]] = {}
    for key in stores:
        read = lineage.latest(key)
        if read is None:
            findings.append(Finding(key.to_user_string(), "materialized", True,
                                    f"{key.to_user_string()} was never materialized: nothing staged"))
            continue
        staged[key.to_user_string()] = read
        for parent, reads in lineage.upstream(read).items():
            known = upstream.setdefault(parent, [])
            for read_ in reads:
                if all(read_.storage_id != k.storage_id for k in known):
                    known.append(read_)
    for key, reads in sorted(upstream.items(), key=lambda item: item[0].to_user_string()):
        if key in sources:
            continue
        asset, latest = key.to_user_string(), lineage.latest(key)
        if latest is None:
            findings.append(Finding(asset, "materialized", True, f"{asset} was never materialized"))
            continue
        for version in sorted({r.data_version or "" for r in reads} - {latest.data_version or ""}):
            findings.append(Finding(asset, "read_latest", True,
                                    f"a store read data version {version or 'none'} of {asset}, but its latest "
                                    f"materialization is {latest.data_version}: re-materialize the stores"))
        read = next((r for r in reads if r.data_version == latest.data_version), latest)
        findings.extend(audit_checks(instance, lineage, specs, read))
        if (changed := audit_file(latest)) is not None:
            findings.append(changed)
    for read in staged.values():
        findings.extend(audit_checks(instance, lineage, specs, read, exact=True))
    latest = {key.to_user_string(): lineage.latest(key) for key in upstream if key not in sources}
    return GateReport(staged, {asset: read for asset, read in latest.items() if read is not None}, findings)
