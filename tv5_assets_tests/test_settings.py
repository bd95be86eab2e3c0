"""Settings: one table read from the environment, documented in the README, secrets only as EnvVar."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from tv5_assets.core.settings import Settings, settings_table
from tv5_assets.graph_store.resources import neo4j_from_env
from tv5_assets.local_services.settings import ServiceSettings
from tv5_assets.vector_store.resources import milvus_from_env

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_documents_every_setting_and_default() -> None:
    readme = README.read_text()
    assert settings_table() in readme, "README's settings table differs from core/settings.py"
    assert settings_table(ServiceSettings) in readme, "README's services table differs from local_services/settings.py"


def test_environment_overrides_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TV5_MILVUS_URI", raising=False)
    monkeypatch.setenv("TV5_DATA_DIR", "/lake")
    assert Settings().milvus_uri() == "/lake/milvus.db"
    monkeypatch.setenv("TV5_MILVUS_URI", "http://127.0.0.1:19530")
    assert Settings().milvus_uri() == "http://127.0.0.1:19530"
    monkeypatch.setenv("tv5_executor", "in_process")  # names are case-insensitive
    assert Settings().tv5_executor == "in_process"


def test_a_bad_value_fails_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TV5_EXECUTOR", "threads")
    with pytest.raises(ValueError, match="tv5_executor"):
        Settings()


def test_secrets_reach_resources_only_as_env_vars(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MILVUS_TOKEN", "user:not-in-code")
    monkeypatch.setenv("NEO4J_PASSWORD", "not-in-code")
    settings = Settings()
    milvus, neo4j = milvus_from_env(settings), neo4j_from_env(settings)
    assert milvus.token == dg.EnvVar("MILVUS_TOKEN") and neo4j.password == dg.EnvVar("NEO4J_PASSWORD")
    monkeypatch.delenv("MILVUS_TOKEN")
    assert milvus_from_env(Settings()).token == ""  # Lite: no token, and no EnvVar that would fail unset
    with pytest.raises(KeyError):
        settings.secret("NEO4J_USER")
