"""Release slots of the graph: every load is staged beside the served graph; publishing moves the public labels.

Neo4j Community has one user database and no aliases, so a staged graph lives in the same database as the served
one. A load creates its nodes under slot labels only (`Media_s1a2b3c4d5e6f`, `User_s…`) and its relationships
between them. Readers match the public labels (`Media`, `User`, `Genre`, `Tag`, `Platform`), which only the served
slot's nodes carry; every relationship joins two nodes of one slot, so a traversal from a public node stays in the
served release. Publishing is one transaction: the public labels leave the served slot's nodes and join the new
slot's, and `(:Release {key: 'graph'})` records the slot, its load version and the release id. The graph readers
query is never emptied or partly loaded; a query running while that transaction commits may see both releases
(Neo4j reads committed data), for the commit's own duration. Rollback is the same transaction back to a kept slot.

Readers must anchor on a public label: `MATCH ()-[r:RATED]->()` without one counts every slot's relationships.
Slot and label names come from `new_slot` and the model's constants only (checked), never from input.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import Any, Protocol

from tv5_assets.graph_store import model

SLOT = re.compile(r"s[0-9a-f]{12}")
_SLOT_LABEL = re.compile(rf"({'|'.join(spec.label for spec in model.NODES)})_({SLOT.pattern})")
MARKER_PREFIX = f"{model.LOAD_STATE_KEY}/"
# nodes detached and deleted per inner transaction (an ml-25m user has ~150 ratings): deleting a slot's relationships
# by a relationship pattern instead made the outer query gather all 25M first (over the server's 1 GiB of
# transaction memory, whatever the batch)
DROP_BATCH_ROWS = 500


class SlotClient(Protocol):
    def run(self, query: str, parameters: dict[str, Any] | None = None) -> Any: ...
    def read(self, query: str, parameters: dict[str, Any] | None = None) -> list[dict[str, Any]]: ...
    def write_all(self, statements: list[tuple[str, dict[str, Any]]]) -> Any: ...


def new_slot(version: str) -> str:
    """`s` + 8 hex characters of the load version's hash + 4 random ones: a forced reload of a served version gets
    a slot of its own."""
    return f"s{hashlib.sha256(version.encode()).hexdigest()[:8]}{secrets.token_hex(2)}"


def label(base: str, slot: str | None) -> str:
    """The label of `base` in `slot` (None: the public label readers match)."""
    if slot is None:
        return base
    if not SLOT.fullmatch(slot):
        raise ValueError(f"{slot!r} is not a graph slot name")
    return f"{base}_{slot}"


def marker_key(slot: str) -> str:
    return f"{MARKER_PREFIX}{slot}"


READ_RELEASE = """
MATCH (r:Release {key: $key})
RETURN r.slot AS slot, r.version AS version, r.release_id AS release_id, r.previous_slot AS previous_slot,
       toString(r.published_at) AS published_at
"""
_SET_RELEASE = """
MERGE (r:Release {key: $key})
SET r.previous_slot = CASE WHEN r.slot = $slot THEN r.previous_slot ELSE r.slot END,
    r.slot = $slot, r.version = $version, r.release_id = $release_id, r.published_at = datetime()
"""
_LIST_LABELS = "CALL db.labels() YIELD label RETURN label"
_LIST_MARKERS = "MATCH (s:LoadState) WHERE s.key STARTS WITH $prefix RETURN s.key AS key"
# nodes of a slot that was served before slots existed, or whose public labels left with a publish of an
# in-place graph: no label at all
DELETE_UNLABELLED = ("MATCH (n) WHERE size(labels(n)) = 0 "
                     "CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF $batch_rows ROWS")


def served(client: SlotClient) -> dict[str, Any] | None:
    """The `(:Release {key: 'graph'})` record (slot, version, release_id, previous_slot), None before any publish."""
    records = client.read(READ_RELEASE, {"key": model.RELEASE_KEY})
    return records[0] if records and records[0]["slot"] else None


def served_slot(client: SlotClient) -> str | None:
    record = served(client)
    return record["slot"] if record else None


def existing(client: SlotClient) -> set[str]:
    """Every slot with a node or a load marker in the database (complete or not)."""
    found = {m.group(2) for row in client.read(_LIST_LABELS) if (m := _SLOT_LABEL.fullmatch(row["label"]))}
    for row in client.read(_LIST_MARKERS, {"prefix": MARKER_PREFIX}):
        slot = row["key"][len(MARKER_PREFIX):]
        if SLOT.fullmatch(slot):
            found.add(slot)
    return found


def publish_statements(slot: str, version: str, release_id: str) -> list[tuple[str, dict[str, Any]]]:
    """One transaction's statements: every public label moves to `slot`'s nodes, and the Release node follows."""
    statements: list[tuple[str, dict[str, Any]]] = []
    for spec in model.NODES:
        public, staged = spec.label, label(spec.label, slot)
        statements.append((f"MATCH (n:{public}) WHERE NOT n:{staged} REMOVE n:{public}", {}))
        statements.append((f"MATCH (n:{staged}) WHERE NOT n:{public} SET n:{public}", {}))
    statements.append((_SET_RELEASE, {"key": model.RELEASE_KEY, "slot": slot, "version": version,
                                      "release_id": release_id}))
    return statements


def publish(client: SlotClient, slot: str, version: str, release_id: str = "") -> None:
    """Serve `slot`: one transaction (see the module docstring)."""
    client.write_all(publish_statements(slot, version, release_id))


def clear_statements(slot: str) -> list[str]:
    """Auto-commit statements deleting `slot`'s nodes with their relationships, `$batch_rows` nodes per inner
    transaction: the start labels of relationships first (User, then Media), so a film with 80,000 RATED has none
    left when its turn comes."""
    starts = [spec.start.label for spec in model.RELATIONSHIPS]
    ordered = sorted(model.NODES, key=lambda spec: (spec.label not in starts, spec.label != model.USER.label))
    return [f"MATCH (n:{label(spec.label, slot)}) CALL (n) {{ DETACH DELETE n }} IN TRANSACTIONS OF $batch_rows ROWS"
            for spec in ordered]


def clear(client: SlotClient, slot: str, batch_rows: int = DROP_BATCH_ROWS) -> None:
    """Empty `slot` (a re-load of it starts from nothing); its marker and constraints stay."""
    if served_slot(client) == slot:
        raise RuntimeError(f"graph slot {slot} is served: publish another before clearing it")
    for statement in clear_statements(slot):
        client.run(statement, {"batch_rows": batch_rows})


def drop(client: SlotClient, slot: str, batch_rows: int = DROP_BATCH_ROWS) -> None:
    """Remove `slot`, its load marker and its constraints; refused for the served one."""
    clear(client, slot, batch_rows)
    client.run("MATCH (s:LoadState {key: $marker}) DELETE s", {"marker": marker_key(slot)})
    for spec in model.NODES:
        client.run(f"DROP CONSTRAINT {constraint_name(spec, slot)} IF EXISTS")


def drop_unlabelled(client: SlotClient, batch_rows: int = DROP_BATCH_ROWS) -> None:
    """Delete nodes left with no label: a graph loaded in place before slots, once a slot was published."""
    client.run(DELETE_UNLABELLED, {"batch_rows": batch_rows})


def constraint_name(spec: model.NodeSpec, slot: str | None) -> str:
    return spec.constraint if slot is None else f"{spec.label.lower()}_{slot}_{spec.key}_unique"
