"""The k best columns of each row of a score matrix, best first.

Why torch: `torch.topk` selects in one multi-threaded pass; numpy's `argpartition` + `argsort` took
0.58 s per 512 x 62,423 block against torch's 0.03 s, and the evaluation ranks ~140 such blocks at ml-25m
shape. torch is already installed (the encoder's sentence-transformers); it is imported on first use.
"""

from __future__ import annotations

import numpy as np


def top_k_columns(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows, k) column positions (int64) and their scores (float32) of the k highest scores per row, best
    first. Ties keep no particular order; -inf scores come last."""
    import torch

    matrix = np.ascontiguousarray(scores, dtype=np.float32)
    if k > matrix.shape[1]:
        raise ValueError(f"k={k} is more than the {matrix.shape[1]} columns to choose from")
    best = torch.topk(torch.from_numpy(matrix), k, dim=1, largest=True, sorted=True)
    return best.indices.numpy().astype(np.int64, copy=False), best.values.numpy()
