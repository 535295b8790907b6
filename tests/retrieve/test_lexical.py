"""BM25 side of retrieval: safe FTS5 queries and an index that stays in step with ingest."""

from __future__ import annotations

import pytest

from neoc_assistant.retrieve.lexical import fts_match_query, query_terms
from neoc_assistant.retrieve.retriever import Stages
from retrieval_fixtures import SMALL_CORPUS, write_corpus

NASTY = [
    'he said "hi" and left',
    "NEAR(flood gauge, 5) AND OR NOT",
    "text:flood* -sirens ^danger",
    "(((",
    "'; DROP TABLE chunks; --",
    "generator GX-4471 fuel % _ \\",
    "ünïcödé façade naïve",
    "🙂🔥 fire",
    '"',
    "a AND",
]


def test_query_terms_drop_stopwords_but_keep_domain_words():
    assert query_terms("What is the fire and the flood level in the Terai?") == ["fire", "flood", "level", "terai"]
    # Every token a stopword: keep them rather than search for nothing.
    assert query_terms("who is it") == ["who", "is", "it"]
    assert query_terms("?!.,") == []
    assert fts_match_query("   ") is None
    assert fts_match_query("Generator GX-4471!") == '"generator" OR "gx" OR "4471"'


def test_match_query_is_bounded():
    text = " ".join(f"term{i}" for i in range(500))
    assert fts_match_query(text, max_terms=32).count(" OR ") == 31


@pytest.fixture
def small_kb(make_container, tmp_path):
    corpus = write_corpus(tmp_path / "kb")
    container = make_container(kb_dir=corpus)
    summary = container.ingestor.ingest([corpus])
    assert summary.ok
    return container, corpus


def test_user_punctuation_never_breaks_the_lexical_query(small_kb):
    container, _ = small_kb
    for text in NASTY:
        match = fts_match_query(text)
        if match is not None:
            container.manifest.lexical_search(match, 10)  # must not raise
        result = container.retriever.retrieve(text, k=3)  # whole pipeline, must not raise
        assert len(result.hits) <= 3
    hits = container.manifest.lexical_search(fts_match_query("generator GX-4471 fuel % _ \\"), 3)
    assert container.manifest.chunks_by_id([hits[0][0]])[hits[0][0]].text.startswith("Generator fuel log GX-4471")


def _lexical_sources(container, text: str) -> set[str]:
    hits = container.retriever.retrieve(text, k=10, stages=Stages.named("bm25")).hits
    return {h.source for h in hits}


def _fts_rows(container) -> int:
    return container.manifest._conn().execute("SELECT COUNT(*) FROM chunks_fts").fetchone()[0]


def test_bm25_index_follows_updates_and_deletes(small_kb):
    container, corpus = small_kb
    counts = container.manifest.counts()
    assert _fts_rows(container) == counts["chunks"]
    assert _lexical_sources(container, "zebrafrost") == set()

    target = corpus / "forms" / "generator-log.txt"
    target.write_text("Generator fuel log\n\nThe zebrafrost valve must be checked every shift.\n", encoding="utf-8")
    summary = container.ingestor.ingest([corpus])
    assert summary.count("updated") == 1
    assert _lexical_sources(container, "zebrafrost") == {"forms/generator-log.txt"}
    assert _lexical_sources(container, "GX-4471") == set(), "the replaced text must leave the BM25 index"
    assert _fts_rows(container) == container.manifest.counts()["chunks"]

    container.ingestor.delete(["forms/generator-log.txt"])
    assert _lexical_sources(container, "zebrafrost") == set()
    assert _fts_rows(container) == container.manifest.counts()["chunks"]

    target.unlink()
    (corpus / "sops" / "flood.md").unlink()
    container.ingestor.ingest([corpus])  # prune: the deleted flood SOP leaves both indexes
    assert _lexical_sources(container, "Chisapani") == set()
    assert _fts_rows(container) == container.manifest.counts()["chunks"]


def test_lexical_scores_match_lexical_search(small_kb):
    container, _ = small_kb
    match = fts_match_query("river gauge danger level sirens")
    ranked = container.manifest.lexical_search(match, 20)
    exact = container.manifest.lexical_scores(match, [cid for cid, _ in ranked])
    assert exact == pytest.approx(dict(ranked))
    assert container.manifest.lexical_scores(match, ["no-such-chunk"]) == {}


def test_common_terms_are_dropped_within_the_postings_budget(small_kb):
    from neoc_assistant.retrieve.lexical import plan_lexical

    container, corpus = small_kb
    stats = container.retriever.term_stats
    # "sop" is in the heading of every chunk of the three SOPs; "sirens" in one chunk.
    full = plan_lexical("SOP sirens", stats, max_terms=32, max_postings=0)
    assert full.kept == ["sop", "sirens"] and full.dropped == []
    tight = plan_lexical("SOP sirens", stats, max_terms=32, max_postings=2)
    assert tight.kept == ["sirens"] and tight.dropped == ["sop"]
    assert tight.match == '"sirens"'
    assert tight.idf["siren"] > tight.idf["sop"] > 0, "IDF covers dropped terms too (relevance coverage)"
    only_common = plan_lexical("SOP", stats, max_terms=32, max_postings=1)
    assert only_common.kept == ["sop"], "the rarest term is always searched"
    absent_and_common = plan_lexical("zebrafrost SOP", stats, max_terms=32, max_postings=1)
    assert absent_and_common.kept == ["zebrafrost", "sop"], "...the rarest one that occurs at all"


def test_term_statistics_follow_the_knowledge_base(small_kb):
    container, corpus = small_kb
    stats = container.retriever.term_stats
    assert stats.wait_ready(60)
    freqs, total = stats.lookup({"siren", "sop", "zzzabsent"})
    assert total == container.manifest.counts()["chunks"]
    assert freqs == container.manifest.term_doc_freqs({"siren", "sop", "zzzabsent"}) == {
        "siren": 1, "sop": 4, "zzzabsent": 0
    }
    (corpus / "sops" / "storm.md").write_text("# Storm SOP\n\nSirens sound when winds pass 90 km/h.\n", encoding="utf-8")
    container.ingestor.ingest([corpus])
    freqs, total = stats.lookup({"siren", "sop"})  # new version: exact counts at once, cache reloads behind
    assert freqs == {"siren": 2, "sop": 5} and total == container.manifest.counts()["chunks"]
    assert stats.wait_ready(60)
    assert stats.lookup({"siren", "sop"})[0] == {"siren": 2, "sop": 5}


def test_cached_index_terms_match_the_fts_tokenizer(small_kb):
    container, _ = small_kb
    stats = container.retriever.term_stats
    texts = [
        "Generators' fuel levels: 50% at shift-changes; naïve Café RÉSUMÉ runs running ran",
        SMALL_CORPUS["sops/flood.md"],
        "",
    ]
    direct = container.manifest.index_terms(texts)
    assert stats.index_terms(texts) == direct
    assert stats.index_terms(texts) == direct  # second time from the word cache
    assert {"gener", "fuel", "level", "50", "cafe", "resum", "run", "ran"} <= direct[0]
