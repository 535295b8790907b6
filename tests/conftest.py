"""Shared fixtures: real components, isolated data directories.

The embedding model is the real all-MiniLM-L6-v2 (loaded once per session and
shared); every test gets its own temp data dir, so its own Chroma store,
manifest and caches.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from neoc_assistant.container import Container  # noqa: E402
from neoc_assistant.settings import Settings  # noqa: E402
from neoc_assistant.store.embeddings import Embedder  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parent.parent
KB_DIR = REPO_ROOT / "knowledge_base"
DATA_DIR = Path(__file__).resolve().parent / "data"
SHARED_DIR = REPO_ROOT.parent / "shared"


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    """One real embedding model for the whole session (it takes seconds to load)."""
    emb = Embedder(Settings(data_dir=Path("/nonexistent-unused")))
    _ = emb.model
    return emb


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", kb_dir=tmp_path / "kb", models_dir=tmp_path / "models")


@pytest.fixture
def make_container(embedder: Embedder, tmp_path: Path):
    """Build a Container on a fresh data dir; keyword args override settings."""

    def _make(**overrides) -> Container:
        components = {k: overrides.pop(k) for k in list(overrides) if k in {"engine", "response_cache"}}
        base = {
            "data_dir": tmp_path / "data",
            "kb_dir": tmp_path / "kb",
            "models_dir": tmp_path / "models",
        }
        base.update(overrides)
        return Container(Settings(**base), embedder=embedder, **components)

    return _make


@pytest.fixture
def container(make_container) -> Container:
    return make_container()
