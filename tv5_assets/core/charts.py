"""Pictures for the asset pages: what people would rather look at than read (PNG inside Markdown).

Pure matplotlib + numpy: no Dagster here. Each chart takes at most a few thousand points (a sample),
so it costs well under a second even when the asset holds millions of rows.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # headless: charts are rendered to PNG for the Dagster UI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

from tv5_assets.core.metadata import png_markdown  # noqa: E402

PALETTE = ("#1f4e8c", "#d1495b", "#edae49", "#00798c", "#66a182", "#8d5a97", "#e07a5f", "#3d405b", "#b8b8b8")


def _render(figure, title: str) -> str:
    try:
        return png_markdown(figure, title)
    finally:
        plt.close(figure)


def rating_distribution_chart(distribution: pl.DataFrame) -> str:
    """Bars of `count` per `rating` (0.5 to 5.0 stars)."""
    figure, axes = plt.subplots(figsize=(6.0, 3.0))
    axes.bar(distribution["rating"].to_list(), distribution["count"].to_list(), width=0.4, color=PALETTE[0])
    axes.set_xlabel("stars")
    axes.set_ylabel("ratings")
    axes.set_xticks(np.arange(0.5, 5.01, 0.5))
    axes.set_title("Rating distribution")
    return _render(figure, "Rating distribution")


def norm_histogram(vectors: np.ndarray, title: str = "Vector L2 norms") -> str:
    """Histogram of the vectors' L2 norms: one spike at 1.0 when they are normalised."""
    norms = np.linalg.norm(vectors, axis=1) if vectors.size else np.zeros(0)
    figure, axes = plt.subplots(figsize=(6.0, 3.0))
    axes.hist(norms, bins=40, range=(min(0.9, float(norms.min(initial=1.0))), max(1.1, float(norms.max(initial=1.0)))),
              color=PALETTE[0])
    axes.set_xlabel("L2 norm")
    axes.set_ylabel("vectors")
    axes.set_title(title)
    return _render(figure, title)


def pca_2d(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The vectors on their two principal axes, and the share of variance each axis explains."""
    centred = vectors.astype(np.float64) - vectors.mean(axis=0, dtype=np.float64)
    _, singular, axes = np.linalg.svd(centred, full_matrices=False)
    variance = singular**2
    explained = variance[:2] / variance.sum() if variance.sum() > 0 else np.zeros(2)
    return centred @ axes[:2].T, explained


def sample_positions(n: int, size: int) -> np.ndarray:
    """Evenly spaced row positions (deterministic): the whole range, not just its start."""
    return np.unique(np.linspace(0, n - 1, num=min(n, size)).round().astype(np.int64)) if n else np.zeros(0, np.int64)


def projection_chart(vectors: np.ndarray, labels: list[str], title: str, top: int = 8) -> str:
    """A 2-D PCA scatter of `vectors` coloured by label (the `top` commonest labels, the rest grey)."""
    points, explained = pca_2d(vectors)
    names, counts = np.unique(np.asarray(labels, dtype=object).astype(str), return_counts=True)
    shown = [str(n) for n in names[np.argsort(-counts, kind="stable")][:top]]
    figure, axes = plt.subplots(figsize=(6.5, 5.0))
    label_array = np.asarray(labels, dtype=str)
    rest = ~np.isin(label_array, shown)
    axes.scatter(points[rest, 0], points[rest, 1], s=6, c=PALETTE[-1], alpha=0.5, label="other", linewidths=0)
    for colour, name in zip(PALETTE, shown):
        mask = label_array == name
        axes.scatter(points[mask, 0], points[mask, 1], s=8, c=colour, alpha=0.8, label=name, linewidths=0)
    axes.set_xlabel(f"PC1 ({100 * explained[0]:.1f}% of variance)")
    axes.set_ylabel(f"PC2 ({100 * explained[1]:.1f}% of variance)")
    axes.set_title(title)
    axes.legend(fontsize=7, markerscale=2, loc="best")
    return _render(figure, title)


def bar_chart(labels: list[str], values: list[float], title: str, ylabel: str) -> str:
    """Horizontal bars, one per label, value printed at the end of each bar."""
    figure, axes = plt.subplots(figsize=(7.0, 0.45 * max(len(labels), 1) + 1.0))
    positions = np.arange(len(labels))
    axes.barh(positions, values, color=[PALETTE[i % (len(PALETTE) - 1)] for i in positions])
    axes.set_yticks(positions, labels)
    axes.invert_yaxis()
    for position, value in zip(positions, values):
        axes.text(value, position, f" {value:.3f}", va="center", fontsize=8)
    axes.set_xlabel(ylabel)
    axes.set_title(title)
    return _render(figure, title)
