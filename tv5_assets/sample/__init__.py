"""The project's own MovieLens-format release generator (offline development, tests, benchmarks).

Stands apart from `ingestion/`: ingestion reads any MovieLens release; this package writes one.
"""
