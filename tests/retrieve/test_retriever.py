"""The hybrid retrieval pipeline: fusion, rerank (fallback and cross-encoder), MMR, filters, adapters."""

from __future__ import annotations

import json

import numpy as np
import pytest
from retrieval_fixtures import SMALL_CORPUS, build_tiny_cross_encoder, write_corpus

from neoc_assistant.errors import ModelError
from neoc_assistant.retrieve.retriever import KnowledgeBaseRetriever, SearchFilters, Stages, mmr
from neoc_assistant.settings import RetrievalSettings, Settings

FLOOD_QUERY = "How fast must the SMS warning and sirens go out when the river passes danger level?"


def _ingested(make_container, tmp_path, files=SMALL_CORPUS, **settings):
    corpus = write_corpus(tmp_path / "kb", files)
    container = make_container(kb_dir=corpus, **settings)
    assert container.ingestor.ingest([corpus]).ok
    return container, corpus


@pytest.fixture
def small(make_container, tmp_path):
    return _ingested(make_container, tmp_path)


def _minmax(x):
    x = np.asarray(x, dtype=float)
    return np.ones_like(x) if np.ptp(x) < 1e-12 else (x - x.min()) / np.ptp(x)


# -- fusion ---------------------------------------------------------------------------------
def _fuser(**overrides) -> KnowledgeBaseRetriever:
    return KnowledgeBaseRetriever(RetrievalSettings(**overrides), None, None, None)


def test_rrf_fusion_arithmetic():
    r = _fuser(fusion="rrf", rrf_k=60, fusion_vector_weight=0.5)
    fused = r._fuse([("a", 0.9), ("b", 0.8), ("c", 0.7)], [("c", 12.0), ("d", 3.0)], Stages())
    scores = {c.chunk_id: c.fused for c in fused}
    assert [c.chunk_id for c in fused][0] == "c"
    assert scores["c"] == pytest.approx(1 / 63 + 1 / 61)
    assert scores["a"] == pytest.approx(1 / 61)
    assert scores["d"] == pytest.approx(1 / 62)
    assert fused[0].vector == 0.7 and fused[0].lexical == 12.0


def test_weighted_fusion_normalises_each_list():
    r = _fuser(fusion="weighted", fusion_vector_weight=0.6)
    fused = r._fuse([("a", 0.9), ("b", 0.5), ("c", 0.1)], [("d", 10.0), ("c", 5.0), ("a", 0.0)], Stages())
    scores = {c.chunk_id: c.fused for c in fused}
    assert scores == pytest.approx({"a": 0.6, "b": 0.3, "c": 0.2, "d": 0.4})
    assert [c.chunk_id for c in fused] == ["a", "d", "b", "c"]
    # One list only: its own scores and order, untouched.
    only = r._fuse([], [("d", 10.0), ("c", 5.0)], Stages(vector=False))
    assert [(c.chunk_id, c.fused) for c in only] == [("d", 10.0), ("c", 5.0)]


def test_fused_list_uses_both_candidate_generators(small):
    container, _ = small
    r = container.retriever
    # An identifier only BM25 can match exactly, plus a paraphrase for the vectors.
    query = "GX-4471 diesel level at change of shift"
    fused = r.retrieve(query, k=6, stages=Stages.named("fused")).hits
    assert fused[0].source == "forms/generator-log.txt"
    assert {"vector", "lexical", "fused"} <= set(fused[0].scores)
    vector_only = r.retrieve(query, k=6, stages=Stages.named("vector")).hits
    bm25_only = r.retrieve(query, k=6, stages=Stages.named("bm25")).hits
    assert all("lexical" not in h.scores for h in vector_only)
    assert all("vector" not in h.scores for h in bm25_only)
    assert {h.chunk_id for h in fused} <= {h.chunk_id for h in vector_only} | {h.chunk_id for h in bm25_only}


# -- rerank ------------------------------------------------------------------------------------
def test_fallback_rerank_combines_cosine_bm25_and_coverage(make_container, tmp_path):
    container, _ = _ingested(
        make_container,
        tmp_path,
        feature_rerank_top_n=6,
        rerank_cosine_weight=0.5,
        rerank_bm25_weight=0.2,
        rerank_coverage_weight=0.3,
    )
    result = container.retriever.retrieve(FLOOD_QUERY, k=6, stages=Stages.named("fused+rerank"))
    assert result.reranker == "features"
    hits = result.hits
    assert len(hits) == 6 and all("rerank" in h.scores for h in hits)
    cos = [h.scores["cosine"] for h in hits]  # exact: stored vector . query vector
    bm25 = [h.scores.get("lexical", 0.0) for h in hits]
    coverage = np.array([h.scores["coverage"] for h in hits])
    expected = 0.5 * _minmax(cos) + 0.2 * _minmax(bm25) + 0.3 * coverage
    assert [h.scores["rerank"] for h in hits] == pytest.approx(expected.tolist(), abs=1e-5)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert hits[0].source == "sops/flood.md"
    assert 0.0 <= coverage.min() and coverage.max() <= 1.0 and coverage[0] > 0.5
    qv = container.embedder.embed_query_vector(FLOOD_QUERY)
    stored = container.vectors.vectors([h.chunk_id for h in hits])
    assert cos == pytest.approx([float(stored[h.chunk_id] @ qv) for h in hits], abs=1e-5)


def test_rerank_window_is_bounded(make_container, tmp_path):
    container, _ = _ingested(make_container, tmp_path, feature_rerank_top_n=3)
    hits = container.retriever.retrieve(FLOOD_QUERY, k=6, stages=Stages.named("fused+rerank")).hits
    assert [("rerank" in h.scores) for h in hits] == [True] * 3 + [False] * 3
    assert max(h.score for h in hits[3:]) < min(h.score for h in hits[:3])


def test_cross_encoder_rerank_is_bounded_to_top_n(make_container, tmp_path):
    model_dir = build_tiny_cross_encoder(tmp_path / "tiny-ce")
    container, _ = _ingested(
        make_container, tmp_path, reranker_model_path=str(model_dir), rerank_top_n=3, rerank_max_length=64
    )
    r = container.retriever
    result = r.retrieve(FLOOD_QUERY, k=6, stages=Stages.named("fused+rerank"))
    assert result.reranker == "cross-encoder"
    assert r.cross_encoder.max_seq_length == 64
    reranked = [h for h in result.hits if "rerank" in h.scores]
    assert len(reranked) == 3 and result.hits[:3] == reranked, "only the fused top-3 are scored, and lead"
    assert [h.scores["rerank"] for h in reranked] == sorted((h.scores["rerank"] for h in reranked), reverse=True)

    from sentence_transformers import CrossEncoder

    independent = CrossEncoder(str(model_dir), max_length=64, device="cpu")
    expected = independent.predict([(FLOOD_QUERY, h.text) for h in reranked])
    assert [h.scores["rerank"] for h in reranked] == pytest.approx(np.asarray(expected).ravel().tolist(), abs=1e-4)

    fused = r.retrieve(FLOOD_QUERY, k=6, stages=Stages.named("fused")).hits
    assert {h.chunk_id for h in reranked} == {h.chunk_id for h in fused[:3]}
    assert [h.chunk_id for h in result.hits[3:]] == [h.chunk_id for h in fused[3:]]
    assert result.timings_ms["rerank"] > 0


def test_missing_cross_encoder_dir_is_a_clear_error(make_container, tmp_path):
    container, _ = _ingested(make_container, tmp_path, reranker_model_path=str(tmp_path / "nope"))
    with pytest.raises(ModelError, match="Reranker model directory not found"):
        container.retriever.search(FLOOD_QUERY)


# -- diversity ----------------------------------------------------------------------------------
def test_mmr_selection_rule():
    rel = np.array([1.0, 0.95, 0.5])
    sim = np.array([[1.0, 0.99, 0.1], [0.99, 1.0, 0.1], [0.1, 0.1, 1.0]])
    assert mmr(rel, sim, 1.0, 3) == [0, 1, 2]
    assert mmr(rel, sim, 0.5, 2) == [0, 2]
    assert mmr(rel, sim, 0.5, 0) == []


def test_near_duplicates_do_not_fill_the_top_k(make_container, tmp_path):
    body = SMALL_CORPUS["sops/flood.md"]
    files = dict(SMALL_CORPUS)
    files["copies/flood-copy.md"] = body + "\n"  # other bytes, identical chunk text (same content_hash)
    files["copies/flood-2023.md"] = body.replace("15 June", "16 June")  # near-duplicate (cosine >= 0.97)
    container, _ = _ingested(make_container, tmp_path, files=files)
    r = container.retriever

    def gauge_copies(hits):  # the passage all three files share (two identical, one near-identical)
        return sum("river gauge at Chisapani" in h.text for h in hits)

    without = r.retrieve(FLOOD_QUERY, k=3, stages=Stages.named("fused+rerank")).hits
    assert gauge_copies(without) == 3, "without the filter the copies fill the top 3"

    hits = r.retrieve(FLOOD_QUERY, k=3).hits
    assert len(hits) == 3
    assert gauge_copies(hits) == 1
    assert len({" ".join(h.text.split()) for h in hits}) == 3
    assert container.manifest.counts()["chunks"] == 11
    assert len(r.retrieve(FLOOD_QUERY, k=11).hits) == 11 - 4, "the 4 duplicate passages never fill the list"


# -- filters ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def filter_kb(embedder, tmp_path_factory):
    """The small corpus plus a folder whose name extends "sops", ingested once for the filter tests."""
    from neoc_assistant.container import Container

    root = tmp_path_factory.mktemp("filters")
    files = dict(SMALL_CORPUS)
    files["sops-archive/old-flood.md"] = "# Old flood SOP\n\nSirens and SMS warning at danger level, 1998 edition.\n"
    corpus = write_corpus(root / "kb", files)
    container = Container(Settings(data_dir=root / "data", kb_dir=corpus, models_dir=root / "models"), embedder=embedder)
    assert container.ingestor.ingest([corpus]).ok
    return container


@pytest.mark.parametrize(
    "stages, vector_path",
    [("bm25", "exact"), ("vector", "exact"), ("vector", "overfetch"), ("vector", "chroma"), ("fused+rerank+mmr", "exact")],
)
def test_filters_by_source_folder_file_and_type(filter_kb, stages, vector_path, monkeypatch):
    container = filter_kb
    r = container.retriever
    st = Stages.named(stages)
    # The three ways a filtered vector search can run (small allowed set / over-fetch / Chroma where).
    if vector_path != "exact":
        monkeypatch.setattr(r.filtered, "FILTER_EXACT_MAX_CHUNKS", 0)
    if vector_path == "chroma":
        monkeypatch.setattr(r.filtered, "FILTER_OVERFETCH_MAX", 0)
    chroma_filtered = []
    real_query = container.vectors.query
    monkeypatch.setattr(
        container.vectors, "query", lambda v, n, dh=None: chroma_filtered.append(dh is not None) or real_query(v, n, dh)
    )

    hits = r.retrieve(FLOOD_QUERY, k=10, filters=SearchFilters(sources=("sops",)), stages=st).hits
    assert hits and all(h.source.startswith("sops/") for h in hits), "folder prefix must not match sops-archive/"

    one_file = SearchFilters(sources=("forms/radio-plan.txt",))
    hits = r.retrieve("SMS warning over the radio channel", k=10, filters=one_file, stages=st).hits
    assert hits and {h.source for h in hits} == {"forms/radio-plan.txt"}

    hits = r.retrieve(FLOOD_QUERY + " radio fuel", k=10, filters=SearchFilters(doc_types=("txt",)), stages=st).hits
    assert hits and {h.source for h in hits} <= {"forms/generator-log.txt", "forms/radio-plan.txt"}

    both = SearchFilters(sources=("sops", "handbook.md"), doc_types=("md",))
    hits = r.retrieve("shelter registration", k=10, filters=both, stages=st).hits
    assert hits and all(h.source.startswith("sops/") or h.source == "handbook.md" for h in hits)

    assert r.retrieve(FLOOD_QUERY, k=10, filters=SearchFilters(doc_types=("pdf",)), stages=st).hits == []
    if stages == "vector":
        assert any(chroma_filtered) == (vector_path == "chroma")
        assert chroma_filtered if vector_path != "exact" else not chroma_filtered


# -- API surface ---------------------------------------------------------------------------------------
def test_timings_and_query_vector_reuse(small, monkeypatch):
    container, _ = small
    r = container.retriever
    qv = container.embedder.embed_query_vector(FLOOD_QUERY)
    calls = []
    monkeypatch.setattr(container.embedder, "encode", lambda *a, **kw: calls.append(a) or pytest.fail("re-embedded"))
    result = r.retrieve(FLOOD_QUERY, query_vector=qv)
    assert calls == []
    assert {"embed", "filter", "vector", "lexical", "fuse", "resolve", "rerank", "mmr", "relevance", "retrieval"} <= set(
        result.timings_ms
    )
    assert result.timings_ms["retrieval"] == pytest.approx(
        sum(v for key, v in result.timings_ms.items() if key not in ("embed", "retrieval")), abs=0.01
    )
    assert len(r.search(FLOOD_QUERY, query_vector=qv)) == container.settings.retrieval.top_k
    assert r.search(FLOOD_QUERY, k=2, query_vector=qv)[0].to_json(1).keys() == {
        "rank", "score", "source", "page", "chunk_id", "text"
    }


def test_langchain_adapter(small, monkeypatch):
    container, _ = small
    from langchain_core.documents import Document
    from langchain_core.retrievers import BaseRetriever

    from neoc_assistant.retrieve.langchain_adapter import as_langchain

    lc = as_langchain(container.retriever, k=3)
    assert isinstance(lc, BaseRetriever)
    docs = lc.invoke(FLOOD_QUERY)
    assert len(docs) == 3 and all(isinstance(d, Document) for d in docs)
    assert docs[0].metadata["source"] == "sops/flood.md"
    assert {"source", "page", "chunk_id", "score", "relevance", "relevant"} <= set(docs[0].metadata)
    assert docs[0].metadata["relevant"] is True

    qv = container.embedder.embed_query_vector(FLOOD_QUERY)
    monkeypatch.setattr(container.embedder, "encode", lambda *a, **kw: pytest.fail("re-embedded"))
    filtered = lc.invoke(FLOOD_QUERY, query_vector=qv, filters=SearchFilters(sources=("forms",)), k=2)
    assert len(filtered) == 2 and all(d.metadata["source"].startswith("forms/") for d in filtered)


def test_search_queries_file_is_batch_embedded(small, tmp_path, monkeypatch):
    container, _ = small
    from typer.testing import CliRunner

    import neoc_assistant.cli.common as common
    from neoc_assistant.cli import _register, app

    _register()
    monkeypatch.setattr(common, "container", lambda: container)
    batches = []
    real_encode = container.embedder.encode

    def counting_encode(texts, *a, **kw):
        batches.append(list(texts))
        return real_encode(texts, *a, **kw)

    monkeypatch.setattr(container.embedder, "encode", counting_encode)
    qfile = tmp_path / "q.jsonl"
    qfile.write_text(
        "\n".join(
            json.dumps({"id": i, "text": t})
            for i, t in [("q1", FLOOD_QUERY), ("q2", "generator diesel level"), ("q3", "radio backup channel")]
        )
        + "\n\n",
        encoding="utf-8",
    )
    out = CliRunner().invoke(app, ["search", "--queries", str(qfile), "--json", "--k", "2"])
    assert out.exit_code == 0, out.output
    lines = [json.loads(line) for line in out.output.splitlines() if line.strip()]
    assert [line["id"] for line in lines] == ["q1", "q2", "q3"]
    assert all(len(line["hits"]) == 2 for line in lines)
    assert lines[1]["hits"][0]["source"] == "forms/generator-log.txt"
    assert len(batches) == 1 and len(batches[0]) == 3, "all queries embedded in one call"


def test_config_key_covers_every_result_setting():
    base = _fuser().config_key()
    defaults = RetrievalSettings()
    for name in RetrievalSettings.model_fields:
        value = getattr(defaults, name)
        if name == "fusion":
            other = "rrf" if value == "weighted" else "weighted"
        elif name == "reranker_model_path":
            other = "/some/cross-encoder"
        elif isinstance(value, bool):
            other = not value
        elif isinstance(value, int):
            other = value + 1
        else:
            other = round(value * 0.99 - 0.001, 4) if value > 0 else 0.01
        assert _fuser(**{name: other}).config_key() != base, name
