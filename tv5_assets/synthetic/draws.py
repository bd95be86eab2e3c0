"""Keyed random draws: the same (seed, key) always gives the same numbers, whatever else is drawn.

A per-row `numpy.random.Generator` would make a row depend on how many rows came before it. Here each
key (a user id, a movie id) is hashed once with MD5 into a 64-bit seed (a pair such as (movie,
platform) mixes the movie's seed with the MD5 of the platform name through splitmix64), and every
number the row needs is a counter-based splitmix64 of (seed, stream): stream `k` is the k-th
independent uniform of that key. Adding a stream never moves another one; everything is vectorised
but the one MD5 per key (about 3 us each).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def key_seeds(seed: int, keys: Iterable[int], domain: str) -> np.ndarray:
    """One uint64 per integer key: the first 8 bytes (little-endian) of MD5(b"domain|seed|key")."""
    prefix = f"{domain}|{seed}|".encode()
    md5 = hashlib.md5
    digests = b"".join([md5(prefix + b"%d" % k).digest()[:8] for k in keys])
    return np.frombuffer(digests, dtype="<u8").astype(np.uint64)


def name_seed(name: str) -> np.uint64:
    """A uint64 for a name (a platform), to combine with key seeds."""
    return np.frombuffer(hashlib.md5(name.encode()).digest()[:8], dtype="<u8")[0].astype(np.uint64)


def combine(seeds: np.ndarray, other: np.uint64) -> np.ndarray:
    """Seeds for (key, other): splitmix64 of the key seed xor the other's seed."""
    return splitmix64(seeds ^ np.uint64(other))


def splitmix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser (Steele, Lea, Flood 2014): a bijective 64-bit mixer."""
    with np.errstate(over="ignore"):
        z = x.astype(np.uint64, copy=True)
        z ^= z >> np.uint64(30)
        z *= _MIX1
        z ^= z >> np.uint64(27)
        z *= _MIX2
        z ^= z >> np.uint64(31)
    return z


def uniform(seeds: np.ndarray, stream: int) -> np.ndarray:
    """Uniform floats in [0, 1), one per seed, independent across streams (53 random bits each)."""
    with np.errstate(over="ignore"):
        counter = seeds + _GOLDEN * np.uint64(stream + 1)
    return (splitmix64(counter) >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def categorical(u: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Index drawn from `weights` for each uniform; `weights` is (k,) or (n, k) for per-row tables."""
    weights = np.asarray(weights, dtype=np.float64)
    cdf = np.cumsum(weights, axis=-1)
    cdf = cdf / cdf[..., -1:]
    if cdf.ndim == 1:
        return np.minimum(np.searchsorted(cdf, u, side="right"), len(cdf) - 1)
    return np.minimum((u[:, None] >= cdf).sum(axis=1), cdf.shape[1] - 1)
