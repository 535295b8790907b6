"""Search filters (``SearchFilters``: source prefixes, document types) turned into allowed documents,
and the vector search restricted to them.

Kept apart from the retriever's ranking stages because it is a question of
cost, not of ranking: Chroma's metadata-filtered query costs 30-70 ms on a
50k-chunk store whatever the filter (``scripts/bench_retrieval.py
--filtered``), so a small allowed set is scored exactly against the stored
vectors, a larger one by over-fetching unfiltered nearest neighbours and
keeping the allowed ones (the nearest allowed chunks, as long as enough come
back), and only when neither suffices is Chroma asked with a filter.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

from neoc_assistant.retrieve.search import SearchFilters
from neoc_assistant.store.manifest import Manifest
from neoc_assistant.store.vector_store import VectorStore


class FilteredVectorSearch:
    FILTER_EXACT_MAX_CHUNKS = 256
    FILTER_OVERFETCH_MAX = 1000

    def __init__(self, manifest: Manifest, vectors: VectorStore):
        self.manifest = manifest
        self.vectors = vectors
        self._filter_cache: OrderedDict[tuple, tuple[list[str], frozenset[str]]] = OrderedDict()
        self._filter_lock = threading.Lock()

    def allowed_documents(self, filters: SearchFilters | None) -> list[str] | None:
        """Document hashes the filters allow (None: no filter, every document)."""
        if not filters:
            return None
        return self.manifest.doc_hashes_matching(list(filters.sources) or None, list(filters.doc_types) or None)

    def search(
        self, query_vector: np.ndarray, n: int, doc_hashes: list[str] | None, k: int
    ) -> list[tuple[str, float]]:
        """The ``n`` nearest chunks of the allowed documents, as (chunk id, cosine)."""
        if doc_hashes is None:
            return [(h.chunk_id, h.similarity) for h in self.vectors.query(query_vector, n)]
        if not doc_hashes:
            return []
        allowed, allowed_set = self._allowed_chunks(doc_hashes)
        if not allowed:
            return []
        if len(allowed) <= self.FILTER_EXACT_MAX_CHUNKS:
            stored = self.vectors.vectors(allowed)
            if not stored:
                return []
            ids = list(stored)
            sims = np.stack([stored[i] for i in ids]) @ query_vector
            return [(ids[i], float(sims[i])) for i in np.argsort(-sims, kind="stable")[:n]]
        total = max(1, self.manifest.chunk_total())
        fetch = min(total, self.FILTER_OVERFETCH_MAX, max(n, int(np.ceil(1.5 * n * total / len(allowed)))))
        if fetch > 0 and fetch >= min(n, total):
            kept = [(h.chunk_id, h.similarity) for h in self.vectors.query(query_vector, fetch) if h.chunk_id in allowed_set]
            if len(kept) >= min(n, len(allowed)) or len(kept) >= k:
                return kept[:n]
        return [(h.chunk_id, h.similarity) for h in self.vectors.query(query_vector, n, doc_hashes)]

    def _allowed_chunks(self, doc_hashes: list[str]) -> tuple[list[str], frozenset[str]]:
        """Chunk ids of the filtered documents, cached per (knowledge-base version, filter)."""
        key = (self.manifest.kb_version(), tuple(sorted(doc_hashes)))
        with self._filter_lock:
            cached = self._filter_cache.get(key)
            if cached is not None:
                self._filter_cache.move_to_end(key)
                return cached
        allowed = self.manifest.chunk_ids_of(doc_hashes)
        value = (allowed, frozenset(allowed))
        with self._filter_lock:
            self._filter_cache[key] = value
            while len(self._filter_cache) > 16:
                self._filter_cache.popitem(last=False)
        return value
