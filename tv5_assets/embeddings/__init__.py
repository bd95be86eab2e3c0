"""Embeddings stage: one vector per movie (`content_vectors`) and per rating user (`user_vectors`)."""
