"""Work in progress, parked: the Milvus (issue 5), Neo4j graph (issue 6) and staleness/browser (issue 8)
tests. Their stages are committed but not yet registered in `tv5_assets/definitions.py`, so these tests
are not collected. To resume: register the stages, give `harness.lake_resources` the "milvus" and "neo4j"
resources, move these files back to `tv5_assets_tests/`, and make them pass."""

collect_ignore_glob = ["test_*.py"]
