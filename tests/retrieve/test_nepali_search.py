"""A Nepali question finds the Nepali notice that answers it, through ``Assistant.search``, default settings.

The default embedder (all-MiniLM-L6-v2) reads no Nepali, so this is the BM25 side:
Devanagari kept as whole words in the index and the question, joined postpositions
stripped (``वडा कार्यालयको`` meets ``वडा कार्यालय``), Devanagari digits as numbers. The
store holds the four Nepali sample notices of ``tests/data/nepali_kb`` and three English
SOPs on the same hazards (flood, shelter, relief stock) as distractors. Real Chroma,
real manifest, real MiniLM.

A Nepali question over an English SOP: MiniLM's cosines of Nepali text are noise (0.7-0.86 for
every chunk) that outvoted the English terms officers mix in ("duty officer", "family kit"), so
such a question is searched by BM25 alone (``retrieval.nepali_bm25_only``, issue 22).
"""

from __future__ import annotations

import shutil

import pytest

from conftest import DATA_DIR, KB_DIR
from neoc_assistant.container import Container
from neoc_assistant.language.devanagari import mostly_devanagari
from neoc_assistant.settings import Settings

ENGLISH = ["03-flood-response-sop.md", "10-shelter-management.md", "15-relief-stock-resource-requests.md"]

# (question, the notice, words of the sentence that answers it). The relief notice's place name
# is in its opening lines, the date in the next section: that section is found second.
CASES = [
    ("लम्कीचुहा वडा ४ मा राहत कहिले र कहाँ बाँडिन्छ?", "np-02-relief-distribution-notice.md", "साउन १२ गते"),
    ("कति पानी परेपछि भोटेगाउँका परिवार सामुदायिक भवनमा सर्नुपर्छ?", "np-04-landslide-warning-notice.md",
     "१५० मिलिमिटर"),
    ("टीकापुरमा बाढीको साइरन परीक्षण कहिले गरिन्छ?", "np-01-flood-early-warning-circular.md", "हरेक शुक्रबार"),
]


MIXED = "duty officer ले कसैको स्वीकृति बिना कति वटा family kit निकासा गर्न सक्छ?"
RELIEF_SOP = "15-relief-stock-resource-requests.md"


def _store(container):
    kb = container.settings.paths.kb_dir
    shutil.copytree(DATA_DIR / "nepali_kb", kb)
    for name in ENGLISH:
        shutil.copy2(KB_DIR / name, kb / name)
    assert container.assistant.ingest().ok
    return container


@pytest.fixture
def nepali_store(container):
    return _store(container)


@pytest.mark.parametrize("question,notice,words", CASES, ids=["relief", "landslide", "siren"])
def test_a_nepali_question_finds_its_nepali_notice(nepali_store, question, notice, words):
    hits = nepali_store.assistant.search(question, k=5)
    assert hits[0].source == notice, [h.source for h in hits]
    # the answering section, not only the notice's heading, is among what the chain quotes first
    assert any(words in h.text for h in hits[:3]), [h.text[:80] for h in hits]


def test_a_nepali_question_with_english_terms_finds_the_english_sop(nepali_store):
    hits = nepali_store.assistant.search(MIXED, k=5)
    assert [h.source for h in hits[:4]] == [RELIEF_SOP] * 4, [h.source for h in hits]
    assert "50 family kits" in " ".join(h.text for h in hits[:2])


def test_without_the_rule_minilm_noise_buries_the_english_sop(make_container):
    """The measured reason for the rule: the full pipeline puts the Nepali notices first."""
    container = _store(make_container(retrieval={"nepali_bm25_only": False}))
    hits = container.assistant.search(MIXED, k=5)
    assert hits[0].source != RELIEF_SOP, [h.source for h in hits]


def test_an_english_question_keeps_the_full_pipeline(nepali_store):
    hits = nepali_store.assistant.search("How many family kits can the duty officer release?", k=5)
    assert hits[0].source == RELIEF_SOP
    assert "rerank" in hits[0].scores  # fused and reranked, not BM25 alone


def test_which_questions_count_as_nepali():
    assert mostly_devanagari(MIXED)
    assert mostly_devanagari("ICS 205 रेडियो सञ्चार योजना कसले तयार गर्छ?")
    assert not mostly_devanagari("How many family kits can I release?")
    assert not mostly_devanagari("What does पानी mean in the water SOP for the shelters?")
    assert not mostly_devanagari("")


@pytest.mark.parametrize("model,reads", [("all-minilm-l6-v2", False), ("all-mpnet-base-v2", False),
                                         ("multilingual-e5-small", True)])
def test_the_rule_is_for_the_models_that_read_no_nepali(tmp_path, model, reads):
    """Wiring only (container.py): nothing is loaded, so the models need not be installed."""
    settings = Settings(data_dir=tmp_path / "data", kb_dir=tmp_path / "kb",
                        embedding={"model": model, "models_dir": tmp_path / "embedders"})
    assert Container(settings).retriever.reads_nepali is reads
