"""Milvus connection facts shared by the resource: what a URI means, and what an error means.

A URI ending in `.db` is Milvus Lite (a local directory, one process at a time); http(s):// or tcp://
is a server. Errors are sorted into transient ones (retried with backoff) and permanent ones, which
the resource raises as the `MilvusError` subclasses below, each with a message saying what to fix.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import grpc
from pymilvus.exceptions import ConnectionConfigException, MilvusException


class MilvusError(RuntimeError):
    """A Milvus operation failed for a reason retrying will not fix."""


class MilvusConfigError(MilvusError):
    """The URI (or database) names nothing Milvus can open."""


class MilvusUnavailableError(MilvusError):
    """Nothing answers at the URI (after the retries)."""


class MilvusAuthError(MilvusError):
    """The server refused the token."""


class MilvusDimensionError(MilvusError):
    """Vectors do not have the dimension of the collection they go into."""


_TRANSIENT_GRPC = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                   grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.ABORTED}
_TRANSIENT_CODES = {2, 4, 8}  # service unavailable / request limit / rate limit (Milvus error codes)
_TRANSIENT_WORDS = ("not ready", "unavailable", "rate limit", "deadline exceeded", "connection refused",
                    "fail connecting", "temporarily", "too many requests")
_AUTH_WORDS = ("auth", "credential", "permission denied", "privilege", "unauthenticated")
ALIAS_MISSING_WORDS = ("alias not found", "not exist", "doesn't exist", "does not exist", "not found")
LITE_LOCK_FAILURE = "open local milvus failed"


def error_code(error: BaseException) -> Any:
    code = getattr(error, "code", None)
    return code() if callable(code) else code


def is_transient(error: BaseException) -> bool:
    """True for errors worth retrying: the server is starting, overloaded, or the connection dropped."""
    if isinstance(error, MilvusError) or is_auth_error(error):
        return False
    if isinstance(error, grpc.RpcError):
        return error_code(error) in _TRANSIENT_GRPC
    if isinstance(error, ConnectionConfigException):
        return False
    if isinstance(error, MilvusException):
        message = str(getattr(error, "message", error)).lower()
        return error_code(error) in _TRANSIENT_CODES or any(word in message for word in _TRANSIENT_WORDS)
    return isinstance(error, (ConnectionError, TimeoutError))


def is_auth_error(error: BaseException) -> bool:
    if isinstance(error, grpc.RpcError):
        return error_code(error) in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)
    message = str(getattr(error, "message", error)).lower()
    return isinstance(error, MilvusException) and any(word in message for word in _AUTH_WORDS)


def lite_path(uri: str) -> Path | None:
    """The data directory of a Milvus Lite URI (a path ending in `.db`), None for a server URI."""
    if uri.endswith(".db") and "://" not in uri:
        return Path(uri).expanduser().resolve()
    return None


def check_uri(uri: str) -> str:
    """The URI unchanged if Milvus can open it; else a `MilvusConfigError` saying what is expected."""
    if lite_path(uri) is not None:
        return uri
    parsed = urlparse(uri)
    if parsed.scheme in ("http", "https", "tcp") and parsed.hostname:
        return uri
    raise MilvusConfigError(
        f"Milvus URI {uri!r} is neither a Milvus Lite file (a path ending in .db, e.g. data/milvus.db) "
        "nor a server address (http://host:19530, https://..., tcp://...)")


def public_uri(uri: str) -> str:
    """The URI without any user:password part, for logs and metadata."""
    parsed = urlparse(uri)
    if parsed.password or parsed.username:
        return parsed._replace(netloc=parsed.hostname + (f":{parsed.port}" if parsed.port else "")).geturl()
    return uri


def lite_locked_elsewhere(path: Path) -> bool:
    """True while another process holds Milvus Lite's exclusive lock on the data directory."""
    lock = path / "LOCK"
    if not lock.exists():
        return False
    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)
