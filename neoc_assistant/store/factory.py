"""Where ``store.vector_backend`` becomes an object: the only module that knows every vector store.

Kept out of ``vector_store.py`` so the interface imports no implementation and
the implementations can import ``VectorHit`` from it without a cycle
(``tests/test_import_graph.py`` holds the line).
"""

from __future__ import annotations

from pathlib import Path

from neoc_assistant.settings import StoreSettings
from neoc_assistant.store.vector_store import VectorStore


def open_vector_store(settings: StoreSettings, chroma_dir: Path) -> VectorStore:
    """The store ``settings.vector_backend`` names (opened lazily: building it touches no disk)."""
    match settings.vector_backend:
        case "chroma":
            from neoc_assistant.store.chroma_store import ChromaVectorStore

            return ChromaVectorStore(settings, chroma_dir)
        case "chroma-server":
            from neoc_assistant.store.chroma_server import ChromaServerStore

            return ChromaServerStore(settings, settings.chroma_url)  # type: ignore[arg-type]  # required by the setting
    raise ValueError(f"unknown store.vector_backend {settings.vector_backend!r}")  # pragma: no cover - Literal
