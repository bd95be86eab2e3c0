"""The knowledge graph's shape: node labels and keys, relationship types, constraints and indexes.

Labels, types and property names come only from these constants (Cypher cannot take them as
parameters); every value travels as a parameter.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NodeSpec:
    label: str
    key: str  # unique: a uniqueness constraint, and the index relationships are matched through
    properties: tuple[str, ...]  # key first; the row frame has exactly these columns

    @property
    def constraint(self) -> str:
        return f"{self.label.lower()}_{self.key}_unique"


@dataclass(frozen=True)
class RelSpec:
    type: str
    start: NodeSpec
    end: NodeSpec
    start_column: str  # row-frame column holding the start node's key (rows are sorted by it)
    end_column: str
    properties: tuple[str, ...] = ()  # row-frame columns stored on the relationship


@dataclass(frozen=True)
class IndexSpec:
    name: str
    label: str
    property: str


MEDIA = NodeSpec("Media", "id", ("id", "title", "year", "imdb_id", "tmdb_id"))
USER = NodeSpec("User", "id", ("id", "archetype", "age_band", "country"))
GENRE = NodeSpec("Genre", "name", ("name",))
TAG = NodeSpec("Tag", "id", ("id", "name"))
PLATFORM = NodeSpec("Platform", "name", ("name", "business_model"))
NODES: tuple[NodeSpec, ...] = (MEDIA, USER, GENRE, TAG, PLATFORM)

HAS_GENRE = RelSpec("HAS_GENRE", MEDIA, GENRE, "movie_id", "genre")
HAS_TAG = RelSpec("HAS_TAG", MEDIA, TAG, "movie_id", "tag_id", ("relevance", "rank"))
AVAILABLE_ON = RelSpec("AVAILABLE_ON", MEDIA, PLATFORM, "movie_id", "platform",
                       ("regions", "quality", "subtitle_languages"))
# RATED's properties fit one property record (4 blocks of 8 bytes), which is what makes 25M of them
# load fast: rating (a float: 2 blocks), timestamp as epoch seconds like ratings.csv (an integer below
# 2^35: 1 block; `datetime({epochSeconds: r.timestamp})` in Cypher), and time_of_day as the band's
# UTC hours, '18-23' (a short numeric string: 1 block). A zoned DateTime (3 blocks) or 'afternoon'
# (2 blocks) spill into a second record per relationship: ~20 % fewer RATED/s, measured on a
# 1M-rating slice of the ml-25m-shaped benchmark input.
RATED = RelSpec("RATED", USER, MEDIA, "user_id", "movie_id", ("rating", "timestamp", "time_of_day"))
# the `ratings` bands (see ingestion.movielens.time_of_day) as stored on RATED: inclusive UTC hours
TIME_OF_DAY_HOURS: dict[str, str] = {"night": "00-05", "morning": "06-11", "afternoon": "12-17", "evening": "18-23"}
RELATIONSHIPS: tuple[RelSpec, ...] = (HAS_GENRE, HAS_TAG, AVAILABLE_ON, RATED)

# lookups the recommender and the explanations make besides the node keys
INDEXES: tuple[IndexSpec, ...] = (
    IndexSpec("media_title", "Media", "title"),
    IndexSpec("media_year", "Media", "year"),
    IndexSpec("media_imdb_id", "Media", "imdb_id"),
    IndexSpec("user_archetype", "User", "archetype"),
    IndexSpec("user_country", "User", "country"),
    IndexSpec("platform_business_model", "Platform", "business_model"),
)

# One node per load records its state, so readers and checks can tell a complete slot from a half-loaded
# one: complete=false from the first write of a load until its last (key `graph/<slot>`, see slots).
LOAD_STATE = NodeSpec("LoadState", "key", ("key",))
LOAD_STATE_KEY = "graph"
# One node says which slot readers are served and which release it belongs to (see slots).
RELEASE = NodeSpec("Release", "key", ("key",))
RELEASE_KEY = "graph"

ALL_CONSTRAINTS: tuple[str, ...] = tuple(spec.constraint for spec in (*NODES, LOAD_STATE, RELEASE))
