"""Shared fixtures: real components, isolated data directories.

The embedding model is the real all-MiniLM-L6-v2 (loaded once per session and
shared); every test gets its own temp data dir, so its own Chroma store,
manifest and caches.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from neoc_assistant import runtime

runtime.configure_process()  # offline, no telemetry: before any library is imported

from neoc_assistant.container import Container  # noqa: E402
from neoc_assistant.settings import EmbeddingSettings, Settings  # noqa: E402
from neoc_assistant.store.embeddings import Embedder  # noqa: E402

from browser_fixtures import chromium, ingested, playwright  # noqa: E402,F401 - shared by the browser tests

REPO_ROOT = Path(__file__).resolve().parent.parent
KB_DIR = REPO_ROOT / "knowledge_base"
DATA_DIR = Path(__file__).resolve().parent / "data"
SHARED_DIR = REPO_ROOT.parent / "shared"


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    """One real embedding model for the whole session (it takes seconds to load)."""
    emb = Embedder(EmbeddingSettings())
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


@pytest.fixture
def gradio_uploads(tmp_path: Path, monkeypatch) -> Path:
    """Gradio's upload folder for this test: the only place the UI accepts uploaded files from."""
    folder = tmp_path / "gradio-uploads"
    folder.mkdir()
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(folder))
    return folder


KB_DIR = REPO_ROOT / "knowledge_base"


@pytest.fixture(scope="module")
def guard(embedder):
    """The cache guard over the default knowledge base's vocabulary."""
    from neoc_assistant.reading.guard import Guard
    from neoc_assistant.reading.lexicon import KBLexicon, wordpiece_common_words

    return Guard(KBLexicon.from_paths([KB_DIR], wordpiece_common_words(embedder)))


def verdict(guard, a: str, b: str):
    return guard.compare(guard.features(a), guard.features(b))
