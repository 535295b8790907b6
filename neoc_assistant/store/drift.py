"""Manifest and vector store disagreeing ("drift"), and putting it right without reading a file again.

The manifest is the truth (``manifest.py``); the vector store should hold
exactly one vector per manifest chunk. It may not: the ``chroma/`` folder was
deleted or restored from an old backup, a disk filled up mid-write. Vectors
missing mean a search silently rests on BM25 alone; stray vectors take places
in the nearest-neighbour lists. Because every chunk's exact text is in the
manifest, a missing vector is re-embedded from it (the same text gives the
same vector the ingest computed), so repairing needs neither the documents
nor a re-ingest.

``find_drift`` compares the id sets (counts alone miss a lost vector replaced
by a stray one); ``vectors_probably_drifted`` is the cheap count comparison an
ingest runs first.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from neoc_assistant.store.embeddings import Embedder
from neoc_assistant.store.manifest import Manifest
from neoc_assistant.store.vector_store import VectorStore

REPAIR_HINT = "run `python -m neoc_assistant ingest --repair` (re-embeds from the manifest; no file is re-read)"


@dataclass(frozen=True)
class Drift:
    missing: list[str]  # manifest chunks without a vector
    stray: list[str]  # vectors of no manifest chunk

    @property
    def none(self) -> bool:
        return not self.missing and not self.stray

    def describe(self) -> str:
        parts = []
        if self.missing:
            parts.append(f"{len(self.missing)} chunk(s) have no vector (search falls back to keywords for them)")
        if self.stray:
            parts.append(f"{len(self.stray)} vector(s) belong to no document")
        return "; ".join(parts)


def vectors_probably_drifted(manifest: Manifest, vectors: VectorStore) -> bool:
    return vectors.count() != manifest.chunk_total()


def find_drift(manifest: Manifest, vectors: VectorStore) -> Drift:
    known = manifest.all_chunk_ids()
    stored = vectors.ids()
    return Drift(missing=sorted(known - stored), stray=sorted(stored - known))


def repair(manifest: Manifest, vectors: VectorStore, embedder: Embedder, drift: Drift) -> str:
    """Re-embed the missing chunks from their manifest text and delete the stray vectors; returns a note."""
    by_doc: dict[str, list] = defaultdict(list)
    for chunk in manifest.chunks_by_id(drift.missing).values():
        by_doc[chunk.doc_hash].append(chunk)
    for doc_hash, chunks in by_doc.items():
        chunks.sort(key=lambda c: c.chunk_index)
        vectors.upsert([c.chunk_id for c in chunks], embedder.encode([c.text for c in chunks]), doc_hash,
                       [c.page for c in chunks])
    if drift.stray:
        vectors.delete_ids(drift.stray)
    return (f"vector store repaired: re-embedded {len(drift.missing)} chunk(s) from the manifest, "
            f"removed {len(drift.stray)} stray vector(s)")
