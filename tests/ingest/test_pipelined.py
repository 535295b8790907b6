"""The pipelined ingest (ingest/feed.py, ingest/embedding_stage.py): files prepared ahead, chunks of
several files embedded together, and still each file all or nothing.

Real Chroma, the real manifest and the real embedding model; batches of a few chunks so that
every batch crosses file boundaries.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ingest_fixtures import write_pdf

TOPICS = ["sandbag levee", "rescue boat", "generator diesel", "radio check-in", "shelter tents", "water purification"]


@pytest.fixture
def many(tmp_path: Path) -> Path:
    """Six files of a few chunks each (two of them PDFs), plus one the tests make fail."""
    root = tmp_path / "kb"  # the knowledge-base folder: sources are named relative to it
    root.mkdir()
    for i, topic in enumerate(TOPICS):
        paragraphs = [f"Paragraph {j} about the {topic} plan for ward {i}: " + f"{topic} duty roster and stock. " * 12
                      for j in range(4)]
        if i % 3 == 2:
            write_pdf(root / f"doc{i}.pdf", paragraphs)
        else:
            (root / f"doc{i}.md").write_text(f"# {topic.title()}\n\n" + "\n\n".join(paragraphs), encoding="utf-8")
    (root / "doc3b-poison.md").write_text("# Poison\n\n" + "POISONED chunk text about nothing at all. " * 60,
                                          encoding="utf-8")
    return root


def stored_state(container) -> dict[str, tuple[str, np.ndarray]]:
    """chunk id -> (text, vector) for everything the knowledge base holds."""
    manifest = container.manifest
    ids = manifest.chunk_ids_of([d.doc_hash for d in manifest.documents()])
    chunks = manifest.chunks_by_id(ids)
    vectors = container.vectors.vectors(ids)
    assert set(vectors) == set(ids), "every chunk has its vector and no more"
    return {cid: (chunks[cid].text, vectors[cid]) for cid in ids}


def test_cross_file_batches_store_what_one_file_at_a_time_stores(make_container, many, tmp_path):
    pipelined = make_container(data_dir=tmp_path / "piped", store={"ingest_batch_chunks": 5, "ingest_prefetch_files": 3})
    sequential = make_container(data_dir=tmp_path / "seq", store={"ingest_batch_chunks": 1, "ingest_prefetch_files": 0})
    a, b = pipelined.assistant.ingest([many]), sequential.assistant.ingest([many])
    assert a.ok and b.ok and a.count("added") == 7 and a.chunks_added > 14
    assert [(o.source, o.status, o.chunks) for o in a.outcomes] == [(o.source, o.status, o.chunks) for o in b.outcomes]
    got, want = stored_state(pipelined), stored_state(sequential)
    assert set(got) == set(want)
    for cid, (text, vector) in want.items():
        assert got[cid][0] == text
        np.testing.assert_allclose(got[cid][1], vector, atol=1e-5)  # padding in a batch moves the last float digits
    assert pipelined.assistant.kb_version() == sequential.assistant.kb_version()


def test_a_file_that_cannot_be_embedded_fails_alone(make_container, many, tmp_path, monkeypatch):
    """Its chunks share batches with other files' chunks: those files are stored, it is not, at all."""
    container = make_container(store={"ingest_batch_chunks": 4, "ingest_prefetch_files": 2})
    real = container.embedder.encode

    def encode(texts, **kw):
        if any("POISONED" in t for t in texts):
            raise RuntimeError("the embedder ran out of memory")
        return real(texts, **kw)

    monkeypatch.setattr(container.embedder, "encode", encode)
    summary = container.assistant.ingest([many])
    failed = {o.source: o.reason for o in summary.failed}
    assert failed == {"doc3b-poison.md": "RuntimeError: the embedder ran out of memory"}
    assert summary.count("added") == 6
    sources = {s for d in container.manifest.documents() for s in d.sources}
    assert sources == {f"doc{i}.{'pdf' if i % 3 == 2 else 'md'}" for i in range(6)}
    state = stored_state(container)
    assert not any("POISONED" in text for text, _ in state.values())
    assert container.vectors.count() == len(state)  # nothing of the failed file reached Chroma
    monkeypatch.undo()
    again = container.assistant.ingest([many])
    assert [o.source for o in again.outcomes if o.status == "added"] == ["doc3b-poison.md"]
    assert again.count("unchanged") == 6


def test_a_write_failing_mid_run_keeps_the_others_and_nothing_of_that_file(make_container, many, monkeypatch):
    """The vector store refuses one file's vectors half-way through the run (files before and after it
    are committed): that file is fully out, and the next run cleans up and stores it."""
    container = make_container(store={"ingest_batch_chunks": 3, "ingest_prefetch_files": 2})
    real = container.vectors.upsert
    seen: list[str] = []
    victim: dict[str, str] = {}

    def upsert(ids, vectors, doc_hash, pages):
        seen.append(doc_hash)
        if len(seen) == 4:  # the fourth file: three were committed before it, three come after
            victim["hash"] = doc_hash
            half = len(ids) // 2
            real(ids[:half], vectors[:half], doc_hash, pages[:half])  # half written, then the disk fails
            raise RuntimeError("disk I/O error")
        return real(ids, vectors, doc_hash, pages)

    monkeypatch.setattr(container.vectors, "upsert", upsert)
    summary = container.assistant.ingest([many])
    monkeypatch.undo()
    failed = [o for o in summary.failed]
    assert len(failed) == 1 and "disk I/O error" in failed[0].reason
    assert summary.count("added") == 6
    assert not container.manifest.has_document(victim["hash"])
    assert failed[0].source not in {s for d in container.manifest.documents() for s in d.sources}
    assert container.manifest.pending_chroma_hashes() == [victim["hash"]]  # its half-written vectors are known
    again = container.assistant.ingest([many])
    assert [o.source for o in again.outcomes if o.status == "added"] == [failed[0].source]
    assert container.vectors.count() == container.manifest.counts()["chunks"] == len(stored_state(container))


def test_a_file_whose_parse_fails_between_others_is_reported_and_the_run_goes_on(make_container, many):
    (many / "doc2a-broken.pdf").write_bytes(b"%PDF-1.4 not really")
    container = make_container(store={"ingest_batch_chunks": 4, "ingest_prefetch_files": 4})
    progress: list[tuple[int, int, str]] = []
    summary = container.assistant.ingest([many], on_progress=lambda *a: progress.append(a))
    assert [o.source for o in summary.failed] == ["doc2a-broken.pdf"]
    assert summary.count("added") == 7
    assert progress[-1] == (8, 8, "")
    assert [p[2] for p in progress[:-1]] == sorted(p[2] for p in progress[:-1])  # in plan order
    assert all(a[0] <= b[0] for a, b in zip(progress, progress[1:]))  # files done only grows


def test_chunking_beside_the_embedder_does_not_break_its_batches(make_container):
    """The feed thread chunks the next files while the embedder encodes; with one shared fast tokenizer
    the chunker's calls reset its padding mid-encode ("Unable to create tensor"), and batches of
    files failed and were retried one by one during the FEMA ingests."""
    import sys
    import threading
    import time

    container = make_container()
    chunker, model = container.ingestor.chunker, container.embedder.model
    texts = ["Fourteen rescue boats are at Sunsari depot. " * n for n in range(1, 40)]
    errors: list[str] = []
    stop = time.monotonic() + 4

    def chunking() -> None:
        while time.monotonic() < stop:
            try:
                for text in texts:
                    chunker.count(text)
            except Exception as exc:  # noqa: BLE001 - the test reports it
                errors.append(repr(exc))
                return

    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads change hands often: the race shows within seconds, not hours
    thread = threading.Thread(target=chunking)
    thread.start()
    try:
        while time.monotonic() < stop:
            model.encode(texts, batch_size=8)
    finally:
        thread.join()
        sys.setswitchinterval(switch)
    assert not errors
