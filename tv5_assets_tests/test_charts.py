"""The asset pages' pictures: real PNGs, and a projection that finds the structure it should."""

from __future__ import annotations

import base64
import re

import numpy as np
import polars as pl

from tv5_assets.core import charts

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _png(markdown: str) -> bytes:
    match = re.fullmatch(r"!\[[^\]]*\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", markdown)
    assert match, markdown[:80]
    return base64.b64decode(match.group(1))


def test_pca_recovers_the_dominant_axes_in_order() -> None:
    rng = np.random.default_rng(0)
    # 3 independent directions with standard deviations 10, 3 and 0.1, rotated into 16 dimensions
    latent = rng.normal(size=(2_000, 3)) * np.array([10.0, 3.0, 0.1])
    rotation, _ = np.linalg.qr(rng.normal(size=(16, 16)))
    points, explained = charts.pca_2d(latent @ rotation[:3] + 5.0)
    assert explained[0] > explained[1] > 0
    assert abs(explained[0] - 100 / 109.01) < 0.02 and abs(explained[1] - 9 / 109.01) < 0.01
    # the first coordinate is the first latent direction (up to sign)
    assert abs(np.corrcoef(points[:, 0], latent[:, 0])[0, 1]) > 0.999


def test_sample_positions_span_the_whole_range_deterministically() -> None:
    positions = charts.sample_positions(10_000, 5)
    assert positions.tolist() == [0, 2500, 5000, 7499, 9999]
    assert charts.sample_positions(3, 10).tolist() == [0, 1, 2]
    assert charts.sample_positions(0, 10).size == 0


def test_charts_are_png_images_in_markdown() -> None:
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(300, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    labels = [("Drama", "Comedy", "Horror")[i % 3] for i in range(300)]
    distribution = pl.DataFrame({"rating": [0.5, 1.0, 4.0, 5.0], "count": [3, 10, 40, 20]})
    for markdown in (charts.rating_distribution_chart(distribution), charts.norm_histogram(vectors),
                     charts.projection_chart(vectors, labels, "by genre")):
        image = _png(markdown)
        assert image.startswith(PNG_MAGIC) and len(image) > 2_000
