"""What the two collections hold and how they are indexed, as plain values (no Milvus client here).

Every collection has `id` (INT64 primary key, from movie_id / user_id) and `vector` (FLOAT_VECTOR of
the source's dimension), then the scalar fields that filtered searches need. Milvus 2.3 has no
nullable fields: an unknown year is stored as 0 and an unknown archetype or country as "".
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

ID_FIELD = "id"
VECTOR_FIELD = "vector"
UNKNOWN_YEAR = 0
METRICS = ("COSINE", "L2", "IP")
INDEX_TYPES = ("HNSW", "FLAT", "IVF_FLAT")  # FLAT: exact search, no graph; IVF_FLAT: exact within probed lists (USERS)


class FieldKind(str, Enum):
    INT32 = "int32"
    VARCHAR = "varchar"
    VARCHAR_ARRAY = "varchar_array"


@dataclass(frozen=True)
class ScalarField:
    """A filterable scalar column. `max_length` is in UTF-8 bytes (strings and array elements), as Milvus
    counts it; `categorical` fields hold a small set of values, each of which a filter must find."""

    name: str
    kind: FieldKind
    max_length: int = 0
    max_capacity: int = 0  # elements, arrays only
    categorical: bool = False


@dataclass(frozen=True)
class FilterProbe:
    """The filtered search a check runs: the collection's `field` holds (for arrays: contains) `value`.

    The ground truth comes from the attribute asset's `column` (availability's `platform`,
    demographics' `country`). `value=None`, or a value no source row has, means the most frequent value
    there, so the probe always has something to find.
    """

    field: str
    column: str
    value: str | None = None


@dataclass(frozen=True)
class CollectionSpec:
    """One vector collection: the alias readers use and the scalar fields stored beside the vector."""

    alias: str
    source: str  # the upstream vector asset
    attributes: str  # the upstream asset of the filterable attributes
    id_column: str  # the key column of both, stored as `id`
    scalars: tuple[ScalarField, ...]
    probe: FilterProbe | None = None  # None: no filtered-search check (a collection without scalar fields)
    description: str = ""
    metric_type: str | None = None  # None: the `milvus` resource's (COSINE by default)
    hnsw_m: int | None = None  # None: the resource's
    hnsw_ef_construction: int | None = None  # None: the resource's (200)
    index_type: str | None = None  # None: the resource's (HNSW)
    search_ef: int | None = None  # None: the resource's
    ivf_nlist: int = 1024  # IVF_FLAT: lists (k-means centroids)
    ivf_nprobe: int = 64  # IVF_FLAT: lists searched per query

    @property
    def field_names(self) -> tuple[str, ...]:
        return (ID_FIELD, VECTOR_FIELD, *(f.name for f in self.scalars))


MEDIA = CollectionSpec(
    alias="media_vectors",
    source="content_vectors",
    attributes="availability",
    id_column="movie_id",
    scalars=(
        # limits from the domain, with a margin: ml-latest-small's longest display title is 152 bytes, the
        # genre and platform names are under 20 bytes ("Criterion Channel": 17), a movie has at most 10
        # genres and the 8 platforms
        ScalarField("title", FieldKind.VARCHAR, max_length=1024),
        ScalarField("year", FieldKind.INT32),
        ScalarField("genres", FieldKind.VARCHAR_ARRAY, max_length=64, max_capacity=32, categorical=True),
        ScalarField("platforms", FieldKind.VARCHAR_ARRAY, max_length=64, max_capacity=32, categorical=True),
    ),
    probe=FilterProbe("platforms", "platform", "TV5MONDE"),
    description="tv5 media vectors: one per movie, with title, year, genres and streaming platforms",
    # build breadth 100: on the ml-25m-shaped run's 62,423 content vectors (FAISS HNSW, Lite's engine, M=16,
    # searched at ef=100) efConstruction 100 builds in 9.9 s against 20.9 s at 200, with recall@10 0.997
    # (1.000 at 200) and every vector found at rank 1 either way
    hnsw_ef_construction=100,
)

HYBRID_MEDIA = CollectionSpec(
    alias="hybrid_media_vectors",
    source="hybrid_movie_vectors",
    attributes="availability",
    id_column="movie_id",
    scalars=MEDIA.scalars,
    probe=MEDIA.probe,
    description="tv5 hybrid media vectors (content + collaborative): the 'for you' row's search side",
    # inner product: the movie's collaborative norm (popularity) must count. A cosine index over vectors padded
    # to one norm ranks the same, but user queries (no padding) then sat far from every movie and HNSW found
    # only ~60 % of the exact top 50 at 62K movies; IP at M=32 finds ~91 % at ef=100, ~98 % at ef=500
    metric_type="IP",
    hnsw_m=32,
    # the "for you" search breadth. At ml-25m shape on the Milvus server, 300 user queries, top 50 against exact
    # inner product: ef=100 finds 94.3 % (p99 8.3 ms; recommendation_quality's ann_search_agrees_with_exact warned),
    # ef=200 97.2 % (p99 9.5 ms), ef=400 98.5 % (p99 12.4 ms, over the 10 ms serving budget)
    search_ef=200,
)

USERS = CollectionSpec(
    alias="user_vectors",
    source="user_vectors",
    attributes="demographics",
    id_column="user_id",
    scalars=(
        ScalarField("archetype", FieldKind.VARCHAR, max_length=128, categorical=True),  # names under 30 bytes
        ScalarField("country", FieldKind.VARCHAR, max_length=16, categorical=True),  # ISO 3166-1 alpha-2
    ),
    probe=FilterProbe("country", "country"),
    description="tv5 user taste vectors: one per user who rated, with archetype and country",
    # IVF_FLAT, nlist 1024, nprobe 64. A content user vector is the mean of ~150 movie vectors, so at ml-25m
    # shape the 162K of them sit in a narrow cone (mean vector norm 0.986) and their offsets look like noise in
    # ~50 dimensions (participation ratio 50.6): a user's 1st and 10th neighbours are almost equally far (cosine
    # distance 0.0096 vs 0.0102). Graph search cannot separate such near-ties: FAISS HNSW (Milvus Lite's engine)
    # finds 75 % of the exact top 10 at M=16/ef=100 and 93 % at M=48/ef=400, and a vector itself at rank 1 only
    # 70-97 % of the time. An inverted file compares exactly within the lists it probes, and near neighbours
    # share lists: on the same 162K vectors (FAISS, 200 queries) nprobe 32 finds 97.9 % of the exact top 10,
    # nprobe 64 99.7 % and 128 99.9 %, a vector itself at rank 1 always, at ~1.8 ms a query at nprobe 64, where
    # exact search (FLAT) took 42 ms p99 on the server (docs/scaling.md). Small collections index fine too
    # (Milvus searches lists with fewer vectors than lists exactly).
    index_type="IVF_FLAT",
    ivf_nlist=1024,
    ivf_nprobe=64,
)

HYBRID_USERS = CollectionSpec(
    alias="hybrid_user_vectors",
    source="hybrid_user_vectors",
    attributes="demographics",
    id_column="user_id",
    scalars=USERS.scalars,
    probe=USERS.probe,
    description="tv5 hybrid user vectors (content + collaborative): the 'for you' row's query side",
    # build breadth 100: on the ml-25m-shaped run's 162,541 hybrid user vectors (FAISS HNSW, M=16, ef=100)
    # efConstruction 100 builds in 33.0 s against 64.0 s at 200, recall@10 0.9935 (0.9990 at 200), every vector
    # found at rank 1 either way. The hybrid media collection keeps 200: the 'for you' search's agreement with
    # exact search is measured against a 0.95 floor there (recommendation_quality)
    hnsw_ef_construction=100,
)


@dataclass(frozen=True)
class VectorIndex:
    """The ANN index of the vector field and the search-time breadth used against it."""

    index_type: str = "HNSW"
    metric_type: str = "COSINE"
    m: int = 16
    ef_construction: int = 200
    search_ef: int = 100
    nlist: int = 1024  # IVF_FLAT only
    nprobe: int = 64  # IVF_FLAT only

    def __post_init__(self) -> None:
        if self.metric_type not in METRICS:
            raise ValueError(f"metric_type {self.metric_type!r} is not one of {METRICS}")
        if self.index_type not in INDEX_TYPES:
            raise ValueError(f"index_type {self.index_type!r} is not one of {INDEX_TYPES}")

    @property
    def exact(self) -> bool:
        return self.index_type == "FLAT"

    @property
    def build_params(self) -> dict[str, int]:
        if self.index_type == "IVF_FLAT":
            return {"nlist": self.nlist}
        return {} if self.exact else {"M": self.m, "efConstruction": self.ef_construction}

    def breadth(self, ef: int | None = None) -> dict[str, int]:
        """How widely a search looks: HNSW's `ef` (the argument overrides the configured one), IVF_FLAT's
        `nprobe` (lists searched), nothing for FLAT (every vector)."""
        if self.index_type == "IVF_FLAT":
            return {"nprobe": self.nprobe}
        return {} if self.exact else {"ef": self.search_ef if ef is None else ef}

    def search_params_with(self, ef: int | None = None) -> dict[str, object]:
        """The search parameters; `ef` (HNSW's breadth) overrides the configured one."""
        return {"metric_type": self.metric_type, "params": self.breadth(ef)}

    @property
    def search_params(self) -> dict[str, object]:
        return self.search_params_with()

    def describe(self) -> dict[str, object]:
        searched = {f"search_{k}": v for k, v in self.breadth().items()}
        return {"index_type": self.index_type, "metric_type": self.metric_type, **self.build_params, **searched}


def _field_kind(spec: CollectionSpec, field: str) -> FieldKind:
    kinds = {f.name: f.kind for f in spec.scalars}
    if field not in kinds:
        raise ValueError(f"{field!r} is not a scalar field of {spec.alias}")
    return kinds[field]


def _literal(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def filter_expression(spec: CollectionSpec, field: str, value: str) -> str:
    """A Milvus boolean expression: `ARRAY_CONTAINS(f, "v")` for arrays, `f == "v"` for strings."""
    if _field_kind(spec, field) is FieldKind.VARCHAR_ARRAY:
        return f"ARRAY_CONTAINS({field}, {_literal(value)})"
    return f"{field} == {_literal(value)}"


def any_of_expression(spec: CollectionSpec, field: str, values: list[str]) -> str:
    """Entities holding any of `values`: `ARRAY_CONTAINS_ANY(f, [...])` for arrays, `f in [...]` for strings."""
    literals = "[" + ", ".join(_literal(v) for v in values) + "]"
    if _field_kind(spec, field) is FieldKind.VARCHAR_ARRAY:
        return f"ARRAY_CONTAINS_ANY({field}, {literals})"
    return f"{field} in {literals}"
