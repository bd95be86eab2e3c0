"""Per-partition checks of a day's collaborative and hybrid user vectors."""

from tv5_assets.embeddings.day_checks import day_vector_checks

asset_checks = [day_vector_checks("day_collaborative_user_vectors", unit=False),
                day_vector_checks("day_hybrid_user_vectors", unit=True)]
