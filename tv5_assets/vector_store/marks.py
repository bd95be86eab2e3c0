"""Which release a collection serves: a collection property that `release` sets before it moves the alias.

Any reader can ask: the collection behind the alias names the release (`describe_collection(...)["properties"]`).
A collection reused by a later release (its content unchanged) is marked again with that release's id, and a
rollback marks it back, so the property always names the last release that published it. Kept out of the
resource's module: marking a collection at publish does not change what the collection assets write.
"""

from __future__ import annotations

from tv5_assets.vector_store.resources import MilvusResource

RELEASE_PROPERTY = "tv5.release_id"


def mark_release(milvus: MilvusResource, name: str, release_id: str) -> None:
    milvus._call(f"mark {name} with release {release_id}",
                 lambda c: c.alter_collection_properties(name, {RELEASE_PROPERTY: release_id},
                                                         timeout=milvus.timeout_s))


def release_of(milvus: MilvusResource, name: str) -> str | None:
    """The release id `name` is marked with, None when it has none (never published)."""
    properties = milvus._call(f"describe {name}", lambda c: c.describe_collection(name).get("properties") or {})
    return properties.get(RELEASE_PROPERTY) or None
