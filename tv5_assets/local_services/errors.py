"""The errors of the local services, so callers (CLI, tests, benchmarks) catch a single type."""

from __future__ import annotations


class ServiceError(RuntimeError):
    """A local service could not be built, started or stopped, or does not answer."""


class FatalProbeError(RuntimeError):
    """A readiness probe's answer that waiting cannot change (a rejected password, code that fails to load)."""
