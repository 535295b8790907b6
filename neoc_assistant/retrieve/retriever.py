"""Knowledge-base retrieval: query vector -> ranked, resolved passages.

This is the foundation version: dense HNSW search only, with results resolved
against the manifest (so vectors of half-written or replaced files are never
returned). The hybrid / rerank / MMR pipeline builds on this class.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from neoc_assistant.retrieve.hits import Hit
from neoc_assistant.settings import Settings
from neoc_assistant.store.embeddings import Embedder
from neoc_assistant.store.manifest import Manifest
from neoc_assistant.store.vector_store import VectorStore


@dataclass(frozen=True)
class SearchFilters:
    """Restrict retrieval to sources under these paths and/or of these document types."""

    sources: tuple[str, ...] = ()
    doc_types: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.sources or self.doc_types)

    def cache_key(self) -> str:
        return f"src={','.join(sorted(self.sources))};type={','.join(sorted(self.doc_types))}"


@dataclass
class RetrievalResult:
    hits: list[Hit]
    query_vector: np.ndarray | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)


class KnowledgeBaseRetriever:
    def __init__(self, settings: Settings, manifest: Manifest, vectors: VectorStore, embedder: Embedder):
        self.settings = settings
        self.manifest = manifest
        self.vectors = vectors
        self.embedder = embedder

    def search(
        self,
        query: str,
        k: int | None = None,
        filters: SearchFilters | None = None,
        query_vector: np.ndarray | None = None,
    ) -> list[Hit]:
        k = k or self.settings.retrieval_top_k
        if query_vector is None:
            query_vector = self.embedder.embed_query_vector(query)
        doc_hashes = self._allowed_documents(filters)
        raw = self.vectors.query(query_vector, max(k, self.settings.retrieval_candidates), doc_hashes)
        hits = self.resolve([(h.chunk_id, h.similarity) for h in raw])
        return hits[:k]

    def _allowed_documents(self, filters: SearchFilters | None) -> list[str] | None:
        if not filters:
            return None
        return self.manifest.doc_hashes_matching(list(filters.sources) or None, list(filters.doc_types) or None)

    def resolve(self, scored: list[tuple[str, float]]) -> list[Hit]:
        """Turn (chunk_id, score) into Hits; ids unknown to the manifest are dropped."""
        chunks = self.manifest.chunks_by_id(cid for cid, _ in scored)
        sources = self.manifest.sources_of(c.doc_hash for c in chunks.values())
        hits = []
        for cid, score in scored:
            chunk = chunks.get(cid)
            if chunk is None:
                continue
            names = sources.get(chunk.doc_hash) or []
            if not names:
                continue
            hits.append(
                Hit(
                    chunk_id=cid,
                    score=float(score),
                    text=chunk.text,
                    source=names[0],
                    page=chunk.page,
                    section=chunk.section,
                    doc_hash=chunk.doc_hash,
                    sources=list(names),
                )
            )
        return hits
