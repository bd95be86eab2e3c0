"""The Cypher statements of the graph: schema, clearing, columnar batch writes, counts, the explanation.

Batch statements take columns, not rows: each property travels as one list parameter (`$title`,
`$rating`, ...) and row `i` reads `$column[i]`. Lists of plain values pack several times faster in
the driver than lists of maps, and need no per-row key strings on the wire.
"""

from __future__ import annotations

import hashlib

from tv5_assets.graph_store.model import (
    ALL_CONSTRAINTS,
    INDEXES,
    LOAD_STATE,
    MEDIA,
    NODES,
    PLATFORM,
    RELATIONSHIPS,
    RELEASE,
    USER,
    IndexSpec,
    NodeSpec,
    RelSpec,
)
from tv5_assets.graph_store.slots import constraint_name, label


def create_constraint(spec: NodeSpec, slot: str | None = None) -> str:
    return (f"CREATE CONSTRAINT {constraint_name(spec, slot)} IF NOT EXISTS "
            f"FOR (n:{label(spec.label, slot)}) REQUIRE n.{spec.key} IS UNIQUE")


def create_index(spec: IndexSpec) -> str:
    return f"CREATE INDEX {spec.name} IF NOT EXISTS FOR (n:{spec.label}) ON (n.{spec.property})"


def schema_statements(slot: str | None = None) -> list[str]:
    """The public schema readers use (a uniqueness constraint per node key, the load marker's and the release
    node's, then the lookup indexes), plus, for a slot, a uniqueness constraint per node key on its labels (the
    load finds endpoints through them, the audits look nodes up by key)."""
    public = [create_constraint(spec) for spec in (*NODES, LOAD_STATE, RELEASE)] + [create_index(i) for i in INDEXES]
    return public + ([create_constraint(spec, slot) for spec in NODES] if slot else [])


AWAIT_INDEXES = "CALL db.awaitIndexes($timeout_s)"

SHOW_SCHEMA = """
SHOW INDEXES YIELD name, type, state, labelsOrTypes, properties, owningConstraint
WHERE type = 'RANGE'
RETURN name, state, labelsOrTypes[0] AS label, properties[0] AS property, owningConstraint IS NOT NULL AS unique
"""

def create_nodes(spec: NodeSpec, slot: str | None = None) -> str:
    """CREATE one node per index of the column lists (null properties are simply not stored)."""
    props = ", ".join(f"{p}: ${p}[i]" for p in spec.properties)
    return f"UNWIND range(0, size(${spec.key}) - 1) AS i CREATE (:{label(spec.label, slot)} {{{props}}})"


def create_relationships(spec: RelSpec, slot: str | None = None) -> str:
    """CREATE relationships for rows grouped by start node.

    Parameters: `$end_keys` (the batch's distinct end keys), `$end_pos` (per row, the position of
    its end key in `$end_keys`), `$group_keys` (one start key per group), `$group_starts` (offsets
    into the row columns, one more than groups) and one list per property. Each end node is looked
    up once per batch and each start node once per group, both through the uniqueness constraints'
    indexes (a popular film appears in thousands of rows of a batch: one seek instead of thousands).
    The looked-up nodes carry their key, and a row is created only when the node it points at is
    there under the right key, so a missing endpoint drops its row (the count checks catch that)
    and never links a wrong node.
    """
    props = ", ".join(f"{p}: ${p}[i]" for p in spec.properties)
    body = f" {{{props}}}" if props else ""
    return (
        f"UNWIND range(0, size($end_keys) - 1) AS j "
        f"OPTIONAL MATCH (b:{label(spec.end.label, slot)} {{{spec.end.key}: $end_keys[j]}}) "
        f"WITH collect({{key: $end_keys[j], node: b}}) AS ends "
        f"UNWIND range(0, size($group_keys) - 1) AS g "
        f"MATCH (a:{label(spec.start.label, slot)} {{{spec.start.key}: $group_keys[g]}}) "
        f"UNWIND range($group_starts[g], $group_starts[g + 1] - 1) AS i "
        f"WITH a, i, ends[$end_pos[i]] AS e "
        f"WHERE e.node IS NOT NULL AND e.key = $end_keys[$end_pos[i]] "
        f"WITH a, i, e.node AS b "
        f"CREATE (a)-[:{spec.type}{body}]->(b)"
    )


def count_nodes(spec: NodeSpec, slot: str | None = None) -> str:
    return f"MATCH (n:{label(spec.label, slot)}) RETURN count(n) AS n"  # answered from the count store


def count_relationships(spec: RelSpec, slot: str | None = None) -> str:
    """Total (starting at any node label of `slot`, or of the served graph), how many start at the type's start
    label and how many end at its end label, all from the count store. A relationship ending outside the slot,
    or at a wrong label, makes them differ."""
    totals = " + ".join(f"COUNT {{ (:{label(n.label, slot)})-[:{spec.type}]->() }}" for n in NODES)
    return (f"RETURN {totals} AS total, "
            f"COUNT {{ (:{label(spec.start.label, slot)})-[:{spec.type}]->() }} AS from_start, "
            f"COUNT {{ ()-[:{spec.type}]->(:{label(spec.end.label, slot)}) }} AS to_end")


def missing_nodes(spec: NodeSpec, slot: str | None = None) -> str:
    """How many of `$keys` have no node of this label (and a few of them)."""
    return (f"UNWIND $keys AS k OPTIONAL MATCH (n:{label(spec.label, slot)} {{{spec.key}: k}}) "
            f"WITH k, n WHERE n IS NULL RETURN count(k) AS missing, collect(k)[..10] AS sample")


# ---------------------------------------------------------------- the load marker
START_LOAD = """
MERGE (s:LoadState {key: $key})
SET s.complete = false, s.version = $version, s.started_at = datetime(), s.finished_at = null,
    s.phase = $phase, s.counts = null
"""
SET_PHASE = "MATCH (s:LoadState {key: $key}) SET s.phase = $phase"
FINISH_LOAD = """
MATCH (s:LoadState {key: $key})
SET s.complete = true, s.phase = $phase, s.finished_at = datetime(), s.counts = $counts
"""
READ_LOAD_STATE = """
MATCH (s:LoadState {key: $key})
RETURN s.complete AS complete, s.version AS version, s.phase AS phase, s.counts AS counts,
       toString(s.started_at) AS started_at, toString(s.finished_at) AS finished_at
"""

# ---------------------------------------------------------------- reading
def explanation(slot: str | None = None) -> str:
    """"Because you liked X": titles rated >= min_rating by (at most $max_users) users who rated X >= min_rating,
    available on platform P, ranked by how many of those users liked them (readers: the public labels)."""
    media, user, platform = (label(s.label, slot) for s in (MEDIA, USER, PLATFORM))
    return f"""
MATCH (x:{media} {{id: $media_id}})<-[liked:RATED]-(u:{user})
WHERE liked.rating >= $min_rating
WITH x, u LIMIT $max_users
MATCH (u)-[also:RATED]->(y:{media})-[:AVAILABLE_ON]->(:{platform} {{name: $platform}})
WHERE also.rating >= $min_rating AND y <> x
RETURN y.id AS id, y.title AS title, count(*) AS support
ORDER BY support DESC, id
LIMIT $limit
"""


def explanation_seed(slot: str | None = None) -> str:
    """The title to explain from when none is given: the most-rated one (degrees come from each node's
    relationship groups or chain, not from scanning RATED)."""
    return f"""
MATCH (m:{label(MEDIA.label, slot)})
WITH m, COUNT {{ (m)<-[:RATED]-() }} AS ratings
ORDER BY ratings DESC, m.id
LIMIT 1
RETURN m.id AS media_id, m.title AS title, ratings
"""


def busiest_platform(slot: str | None = None) -> str:
    return f"""
MATCH (p:{label(PLATFORM.label, slot)})
RETURN p.name AS platform, COUNT {{ (p)<-[:AVAILABLE_ON]-() }} AS titles
ORDER BY titles DESC, platform
LIMIT 1
"""


EXPLANATION = explanation()
EXPLANATION_SEED = explanation_seed()
BUSIEST_PLATFORM = busiest_platform()


def statements_digest() -> str:
    """A hash of every statement that shapes what a load writes, and of the model: part of the graph's data
    version (the slot a load writes into is not: the same rows give the same graph in any slot)."""
    texts = [*schema_statements(), *(create_nodes(n) for n in NODES),
             *(create_relationships(r) for r in RELATIONSHIPS), *ALL_CONSTRAINTS]
    return hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]
