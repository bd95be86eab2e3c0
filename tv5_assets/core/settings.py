"""Every environment setting of the asset graph, with its default, read in this one place.

`Settings()` reads the process environment (pydantic-settings, names case-insensitive). The
definitions read it once when they load and hand values to resources as Config fields; secrets
(NEO4J_PASSWORD, MILVUS_TOKEN) are never copied: the resources get `dg.EnvVar`, resolved at run
time. The encoder reads its overrides at run time through `Settings()` too, so a step process sees
the variables of the run. `settings_table()` renders the README's table of defaults.
"""

from __future__ import annotations

from typing import Literal

import dagster as dg
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

SECRETS = ("NEO4J_PASSWORD", "MILVUS_TOKEN")


class Settings(BaseSettings):
    """The graph's environment variables (the field name upper-cased is the variable)."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore")

    tv5_data_dir: str = Field("data", description="data lake: Parquet assets, caches, the Milvus Lite file")
    tv5_executor: Literal["multiprocess", "in_process"] = Field(
        "multiprocess", description="run executor; in_process saves each step's ~3 s of imports on a small machine")
    tv5_instance: Literal["embedded", "team"] = Field(
        "embedded", description="Dagster instance of the scripts: embedded (SQLite in .dagster_home) or team "
        "(Postgres, data/dagster-team; tv5_assets/platform)")
    tv5_movielens_source: str = Field(
        "sample", description="default release of `movielens_release`: sample, a directory, or a release name "
        "to download (ml-latest-small, ml-25m)")
    tv5_landing_dir: str = Field("", description="folder the source sensor watches for new release "
                                 "directories; empty: <TV5_DATA_DIR>/landing/releases")
    tv5_milvus_uri: str = Field("", description="Milvus server (http://host:19530); empty: Milvus Lite at "
                                "<TV5_DATA_DIR>/milvus.db")
    milvus_db_name: str = Field("", description="database on the Milvus server; empty: default")
    milvus_token: str = Field("", description="secret: 'user:password' or an API key; passed as dg.EnvVar")
    neo4j_uri: str = Field("bolt://127.0.0.1:7687", description="Neo4j Bolt URI; default: the local server")
    neo4j_user: str = Field("neo4j", description="Neo4j user")
    neo4j_database: str = Field("neo4j", description="Neo4j database")
    neo4j_password: str = Field("", description="secret, required: Neo4j password; passed as dg.EnvVar "
                                "(scripts/services start writes one to .env)")
    tv5_neo4j_import: Literal["auto", "off"] = Field(
        "auto", description="off: never use the offline import tool for full rebuilds of the local server")
    tv5_outage_retries: int = Field(3, description="store steps (Milvus, Neo4j) retried this many times when the "
                                    "server stays unreachable past the adapter's own retries")
    tv5_outage_wait_s: float = Field(30, description="seconds before each such step retry")
    tv5_encoder_model: str = Field("", description="sentence-transformers model; empty: the packaged "
                                   "all-MiniLM-L6-v2 (offline)")
    tv5_encoder_precision: str = Field("auto", description="auto (int8 on CPU, fp16 on CUDA), fp32, fp16, int8")
    tv5_encoder_backend: str = Field("auto", description="auto (openvino for int8, else torch), torch, openvino")
    tv5_model_cache: str = Field("", description="exported encoder models; empty: $XDG_CACHE_HOME/tv5-assets/models")
    xdg_cache_home: str = Field("", description="the standard cache base (used when TV5_MODEL_CACHE is empty); "
                                "empty: ~/.cache")

    def milvus_uri(self) -> str:
        """The Milvus URI the graph uses: the server if one is named, else Lite under the data lake."""
        return self.tv5_milvus_uri or f"{self.tv5_data_dir}/milvus.db"

    def landing_dir(self) -> str:
        """The folder the source sensor watches for new releases."""
        return self.tv5_landing_dir or f"{self.tv5_data_dir}/landing/releases"

    def secret(self, name: str) -> str | dg.EnvVar:
        """A secret as `dg.EnvVar` (resolved at run time, never copied) when it is set, else ''."""
        if name.upper() not in SECRETS:
            raise KeyError(f"{name} is not a secret setting: {SECRETS}")
        return dg.EnvVar(name.upper()) if getattr(self, name.lower()) else ""


def settings_table(settings: type[BaseSettings] = Settings) -> str:
    """The Markdown table of every field of `settings`, its default and what it does (README, test-checked)."""
    lines = ["| variable | default | what it sets |", "| --- | --- | --- |"]
    for name, field in settings.model_fields.items():
        default = "" if name.upper() in SECRETS else field.default
        lines.append(f"| `{name.upper()}` | `{default}` | {field.description} |".replace("``", "(empty)"))
    return "\n".join(lines)
