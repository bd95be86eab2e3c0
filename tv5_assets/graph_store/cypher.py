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
    NODES,
    RELATIONSHIPS,
    IndexSpec,
    NodeSpec,
    RelSpec,
)


def create_constraint(spec: NodeSpec) -> str:
    return (f"CREATE CONSTRAINT {spec.constraint} IF NOT EXISTS "
            f"FOR (n:{spec.label}) REQUIRE n.{spec.key} IS UNIQUE")


def create_index(spec: IndexSpec) -> str:
    return f"CREATE INDEX {spec.name} IF NOT EXISTS FOR (n:{spec.label}) ON (n.{spec.property})"


def schema_statements() -> list[str]:
    """Constraints (one per node key, plus the load marker's) then the lookup indexes."""
    return [create_constraint(spec) for spec in (*NODES, LOAD_STATE)] + [create_index(i) for i in INDEXES]


AWAIT_INDEXES = "CALL db.awaitIndexes($timeout_s)"

SHOW_SCHEMA = """
SHOW INDEXES YIELD name, type, state, labelsOrTypes, properties, owningConstraint
WHERE type = 'RANGE'
RETURN name, state, labelsOrTypes[0] AS label, properties[0] AS property, owningConstraint IS NOT NULL AS unique
"""

# Relationships first, in large inner transactions (deleting a node with 80,000 RATED edges in one
# DETACH DELETE would pile them all into one transaction); then the nodes, the load marker excepted.
CLEAR_RELATIONSHIPS = "MATCH ()-[r]->() CALL (r) { DELETE r } IN TRANSACTIONS OF $batch_rows ROWS"
CLEAR_NODES = "MATCH (n) WHERE NOT n:LoadState CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF $batch_rows ROWS"


def create_nodes(spec: NodeSpec) -> str:
    """CREATE one node per index of the column lists (null properties are simply not stored)."""
    props = ", ".join(f"{p}: ${p}[i]" for p in spec.properties)
    return f"UNWIND range(0, size(${spec.key}) - 1) AS i CREATE (:{spec.label} {{{props}}})"


def create_relationships(spec: RelSpec) -> str:
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
        f"OPTIONAL MATCH (b:{spec.end.label} {{{spec.end.key}: $end_keys[j]}}) "
        f"WITH collect({{key: $end_keys[j], node: b}}) AS ends "
        f"UNWIND range(0, size($group_keys) - 1) AS g "
        f"MATCH (a:{spec.start.label} {{{spec.start.key}: $group_keys[g]}}) "
        f"UNWIND range($group_starts[g], $group_starts[g + 1] - 1) AS i "
        f"WITH a, i, ends[$end_pos[i]] AS e "
        f"WHERE e.node IS NOT NULL AND e.key = $end_keys[$end_pos[i]] "
        f"WITH a, i, e.node AS b "
        f"CREATE (a)-[:{spec.type}{body}]->(b)"
    )


def count_nodes(spec: NodeSpec) -> str:
    return f"MATCH (n:{spec.label}) RETURN count(n) AS n"  # answered from the count store


def count_relationships(spec: RelSpec) -> str:
    """Total, and how many start at the right label and end at the right label (all from the count store)."""
    return (f"CALL () {{ MATCH ()-[r:{spec.type}]->() RETURN count(r) AS total }} "
            f"CALL () {{ MATCH (:{spec.start.label})-[r:{spec.type}]->() RETURN count(r) AS from_start }} "
            f"CALL () {{ MATCH ()-[r:{spec.type}]->(:{spec.end.label}) RETURN count(r) AS to_end }} "
            f"RETURN total, from_start, to_end")


def missing_nodes(spec: NodeSpec) -> str:
    """How many of `$keys` have no node of this label (and a few of them)."""
    return (f"UNWIND $keys AS k OPTIONAL MATCH (n:{spec.label} {{{spec.key}: k}}) WITH k, n WHERE n IS NULL "
            f"RETURN count(k) AS missing, collect(k)[..10] AS sample")


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
# "Because you liked X": titles rated >= min_rating by (at most $max_users) users who rated X >= min_rating,
# available on platform P, ranked by how many of those users liked them.
EXPLANATION = """
MATCH (x:Media {id: $media_id})<-[liked:RATED]-(u:User)
WHERE liked.rating >= $min_rating
WITH x, u LIMIT $max_users
MATCH (u)-[also:RATED]->(y:Media)-[:AVAILABLE_ON]->(:Platform {name: $platform})
WHERE also.rating >= $min_rating AND y <> x
RETURN y.id AS id, y.title AS title, count(*) AS support
ORDER BY support DESC, id
LIMIT $limit
"""

# the title to explain from when none is given: the most-rated one (degrees come from each node's
# relationship groups or chain, not from scanning RATED)
EXPLANATION_SEED = """
MATCH (m:Media)
WITH m, COUNT { (m)<-[:RATED]-() } AS ratings
ORDER BY ratings DESC, m.id
LIMIT 1
RETURN m.id AS media_id, m.title AS title, ratings
"""

BUSIEST_PLATFORM = """
MATCH (p:Platform)
RETURN p.name AS platform, COUNT { (p)<-[:AVAILABLE_ON]-() } AS titles
ORDER BY titles DESC, platform
LIMIT 1
"""


def statements_digest() -> str:
    """A hash of every statement and of the model: part of the graph's data version."""
    texts = [*schema_statements(), CLEAR_RELATIONSHIPS, CLEAR_NODES, *(create_nodes(n) for n in NODES),
             *(create_relationships(r) for r in RELATIONSHIPS), *ALL_CONSTRAINTS]
    return hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]
