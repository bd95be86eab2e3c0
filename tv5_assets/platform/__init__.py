"""How the graph is operated: the Dagster instance (embedded SQLite or the team's Postgres), the stores'
concurrency pools on it, and housekeeping. Imports the stages' shared plumbing only (core)."""
