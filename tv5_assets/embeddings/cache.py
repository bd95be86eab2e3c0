"""The embedding cache: vectors keyed by (encoder identity, text hash), so only new or changed texts are encoded.

The encoder identity (TextEncoder.identity()) is everything that changes a vector: model name,
revision (fingerprint of the model's files), backend, precision and quantization recipe,
normalisation. One Parquet file per identity under the data lake
(`cache/embeddings/<model-slug>--<backend>-<precision>-<12 hex digits of the identity's sha256>.parquet`,
columns text_hash, vector), rewritten atomically; switching between fp32 and int8 (or to a changed
model) therefore reads another file and never reuses the other's vectors. Entries are never dropped, so going back to an earlier
release re-encodes nothing either. A file whose vector width is not the model's is ignored (and
replaced), and two runs writing at once lose at most the loser's new entries: a cost, not an error.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from tv5_assets.core.storage import write_parquet_atomic


def model_slug(model_name: str) -> str:
    """A file name for a model id or path: 'sentence-transformers/all-MiniLM-L6-v2' -> 'sentence-transformers--all-MiniLM-L6-v2'."""
    return re.sub(r"[^A-Za-z0-9._-]+", "--", model_name).strip("-.") or "model"


IDENTITY_FIELDS = ("model", "revision", "backend", "precision", "recipe", "normalisation")


def cache_key(identity: Mapping[str, str]) -> str:
    """'<model-slug>--<backend>-<precision>-<hash>' for an encoder identity (all of IDENTITY_FIELDS required)."""
    missing = [name for name in IDENTITY_FIELDS if not str(identity.get(name, ""))]
    if missing:
        raise ValueError(f"an embedding cache key needs every part of the encoder identity; missing: {missing}")
    canonical = json.dumps({name: str(identity[name]) for name in IDENTITY_FIELDS}, sort_keys=True)
    digest = hashlib.sha256(canonical.encode()).hexdigest()[:12]
    return f"{model_slug(identity['model'])}--{identity['backend']}-{identity['precision']}-{digest}"


def cache_path(base_dir: Path, identity: Mapping[str, str]) -> Path:
    return Path(base_dir, "cache", "embeddings", f"{cache_key(identity)}.parquet")


def empty_cache(dimension: int) -> pl.DataFrame:
    return pl.DataFrame(schema={"text_hash": pl.String, "vector": pl.Array(pl.Float32, dimension)})


def read_cache(path: Path, dimension: int) -> pl.DataFrame:
    """The stored entries, or an empty cache when there is none or it holds another width."""
    if not path.exists():
        return empty_cache(dimension)
    cached = pl.read_parquet(path)
    if cached.schema != empty_cache(dimension).schema:
        return empty_cache(dimension)
    return cached.unique("text_hash", keep="first", maintain_order=True)


def vector_column(vectors: np.ndarray) -> pl.Series:
    """A (n, dim) float32 matrix as a polars Array(Float32, dim) column."""
    return pl.Series("vector", np.ascontiguousarray(vectors, dtype=np.float32))


@dataclass(frozen=True)
class CachedEncoding:
    frame: pl.DataFrame  # the input texts frame plus `vector`
    cache: pl.DataFrame  # the cache extended with what was encoded
    encoded: int  # distinct texts encoded in this call
    reused: int  # rows whose vector came from the cache


def encode_with_cache(texts: pl.DataFrame, cache: pl.DataFrame,
                      encode: Callable[[list[str]], np.ndarray]) -> CachedEncoding:
    """Attach a vector to each row of `texts` (text, text_hash, ...), encoding only hashes not cached."""
    missing = texts.join(cache.select("text_hash"), on="text_hash", how="anti").unique("text_hash", keep="first",
                                                                                       maintain_order=True)
    if missing.height:
        fresh = pl.DataFrame({"text_hash": missing["text_hash"]}).with_columns(
            vector_column(encode(missing["text"].to_list()))
        )
        cache = pl.concat([cache, fresh], how="vertical")
    frame = texts.join(cache, on="text_hash", how="left", maintain_order="left")
    reused = texts.height - texts.join(missing.select("text_hash"), on="text_hash", how="semi").height
    return CachedEncoding(frame=frame, cache=cache, encoded=missing.height, reused=reused)


def write_cache(cache: pl.DataFrame, path: Path) -> Path:
    return write_parquet_atomic(cache, path)
