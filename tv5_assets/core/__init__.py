"""Shared plumbing of every stage: storage and IO manager, the data-lake resource, check helpers,
code versions, automation policies, metadata rendering and retries. Imports no stage package."""
