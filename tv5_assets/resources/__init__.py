"""One Dagster resource per external system; each owns its connection life-cycle."""
