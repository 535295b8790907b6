"""Retrieval quality regression and the relevance floor, on the default knowledge base.

Thresholds are the figures measured with the default settings (see the report
of scripts/eval_retrieval.py / scripts/calibrate_relevance.py) minus a margin,
so a change that makes retrieval clearly worse fails here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from neoc_assistant.container import Container
from neoc_assistant.retrieve.retriever import SearchFilters
from neoc_assistant.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
KB_DIR = ROOT / "knowledge_base"
DATA = Path(__file__).resolve().parents[1] / "data"


def _read(name: str) -> list[dict]:
    return [json.loads(line) for line in (DATA / name).read_text(encoding="utf-8").splitlines() if line.strip()]


def _squash(text: str) -> str:
    return " ".join(text.split()).lower()


@pytest.fixture(scope="module")
def kb(embedder, tmp_path_factory) -> Container:
    """The default knowledge base, ingested once for this module."""
    data_dir = tmp_path_factory.mktemp("kb-quality")
    container = Container(Settings(data_dir=data_dir, kb_dir=KB_DIR, models_dir=data_dir / "models"), embedder=embedder)
    summary = container.ingestor.ingest([KB_DIR])
    assert summary.ok and summary.count("added") == 17
    return container


def _quality(container: Container, questions: list[dict]) -> dict[str, float]:
    results = container.retriever.search_many([q["text"] for q in questions], k=5)
    file_hits = passage_hits = answered = 0
    rr = 0.0
    for q, hits in zip(questions, results):
        ranks = [i for i, h in enumerate(hits, start=1) if q["source"] in h.sources]
        file_hits += bool(ranks)
        rr += 1.0 / ranks[0] if ranks else 0.0
        passage_hits += any(_squash(q["answer_contains"]) in _squash(h.text) for h in hits)
        answered += any(container.retriever.is_relevant(h) for h in hits)
    n = len(questions)
    return {"file@5": file_hits / n, "passage@5": passage_hits / n, "mrr@5": rr / n, "answered": answered / n}


def test_kb_questions_find_the_right_passage(kb):
    # measured: file@5 1.000, passage@5 0.973, MRR 0.986, answered 1.000 (73 questions)
    q = _quality(kb, _read("kb_questions.jsonl"))
    assert q["file@5"] >= 0.95, q
    assert q["passage@5"] >= 0.93, q
    assert q["mrr@5"] >= 0.93, q
    assert q["answered"] >= 0.97, q


def test_kb_paraphrases_find_the_right_passage(kb):
    # measured: file@5 0.95, passage@5 0.95, answered 1.00 (20 paraphrased questions)
    q = _quality(kb, _read("kb_paraphrases.jsonl"))
    assert q["file@5"] >= 0.85, q
    assert q["passage@5"] >= 0.85, q
    assert q["answered"] >= 0.9, q


@pytest.mark.parametrize(
    "question",
    [
        "What is the capital city of Australia?",
        "What is the wifi password in the conference room?",
        "Which antivenom should be given for a krait snake bite?",
        "How do we respond to a ransomware attack on the ministry's servers?",
    ],
)
def test_absent_topic_is_reported_as_not_in_the_knowledge_base(kb, question):
    r = kb.retriever
    result = r.retrieve(question)
    assert result.hits, "search keeps returning the nearest passages"
    assert result.relevant == [], [(h.source, h.scores) for h in result.hits]
    assert r.search(question, relevant_only=True) == []
    assert len(r.search(question)) == kb.settings.retrieval.top_k
    assert all(0.0 <= h.scores["relevance"] < kb.settings.retrieval.relevance_floor for h in result.hits)


def test_absent_questions_mostly_refused(kb):
    # measured: 45 of 50 refused (fit set 28/30, held-out 17/20); the misses are near-topics
    # such as heat waves (the KB has a cold-wave SOP) or dam failure (it has landslide dams).
    absent = _read("kb_absent_questions.jsonl")
    results = [kb.retriever.retrieve(q["text"]) for q in absent]
    refused = sum(not r.relevant for r in results) / len(absent)
    assert refused >= 0.8, refused


def test_answerable_question_passes_the_floor(kb):
    result = kb.retriever.retrieve("Who has to sign off on moving the NEOC to full activation?")
    assert result.relevant and result.relevant[0].source == "01-eoc-activation-levels.md"
    assert result.relevant[0].scores["relevance"] > 0.9


def test_type_filters_on_real_formats(kb):
    r = kb.retriever
    pdf = r.search("Who prepares the radio plan?", k=5, filters=SearchFilters(doc_types=("pdf",)))
    assert pdf and {h.source for h in pdf} == {"13-ics-forms-guide.pdf"}
    assert all(h.page for h in pdf), "PDF hits carry page numbers"
    docx = r.search("When do sitreps go out?", k=5, filters=SearchFilters(doc_types=(".DOCX",)))
    assert docx and {h.source for h in docx} == {"16-situation-reports.docx"}
    md = r.search("Who prepares the radio plan?", k=5, filters=SearchFilters(doc_types=("md",)))
    assert md and all(h.source.endswith(".md") for h in md)
