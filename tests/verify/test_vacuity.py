"""A model sentence that states nothing is not an answer, however well the passages "support" it.

The UI's own example question got "The answer to this question is: - Any details about the
shift handover briefing [1]." Through the real verifier (real embedding model, the real
handover section of the default knowledge base) and through the front door with the real
retrieval, composition and cache (the engine is scripted: what the model says is the input
here, not what is tested): such sentences are not shown, an answer with nothing else falls
back to the documents' own sentences, and it is never cached as a model answer. Real short
answers that reuse the question's words are kept.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from generate_fixtures import ScriptedEngine

from neoc_assistant.settings import Settings
from neoc_assistant.verify.support import SupportChecker, SupportThresholds
from neoc_assistant.verify.vacuity import heading_words, vacuous
from neoc_assistant.verify.verifier import AnswerVerifier

KB = Path(__file__).resolve().parents[2] / "knowledge_base"
HANDOVER_FILE = "02-shift-handover-duty-officer.md"
QUESTION = "What must be covered in a duty officer shift handover?"  # the UI's example question
REPORTED = "The answer to this question is:\n- Any details about the shift handover briefing [1]."


def _handover() -> str:
    text = (KB / HANDOVER_FILE).read_text(encoding="utf-8")
    start = text.index("## 4. Handover briefing")
    return text[start:text.index("## 5.", start)]


HANDOVER = _handover()


@pytest.fixture(scope="module")
def verifier(embedder) -> AnswerVerifier:
    s = Settings(data_dir=Path("/nonexistent"))
    return AnswerVerifier(SupportChecker(embedder, SupportThresholds.from_settings(s.verification)))


# -- the rule, on its own ------------------------------------------------------------------------------
@pytest.mark.parametrize("claim", [
    "Any details about the shift handover briefing.",  # a vague word + the section's own title
    "The handover covers every item on the handover checklist.",
    "All items in the handover checklist must be covered.",
    "A duty officer shift handover must cover several things.",  # the question, restated
    "The shift handover is described in the documents.",  # about the documents, not the world
])
def test_claims_that_state_nothing_are_recognised(claim):
    assert vacuous(claim, QUESTION, heading_words([HANDOVER]))


@pytest.mark.parametrize("claim, question", [
    ("Current activation level and the time it was last changed.", QUESTION),
    ("The outgoing officer covers every item, even if the answer is \"nothing to report\".", QUESTION),
    ("The handover is a face-to-face briefing at the watch desk, lasting 15 to 30 minutes.", QUESTION),
    # a yes/no question is answered by saying it back
    ("A telephone handover is allowed only if the NEOC building is evacuated.", "Is a telephone handover allowed?"),
    ("A telephone handover is allowed.", "Is a telephone handover allowed?"),
    # a heading's words are content when nothing vague is said: this is the answer
    ("Level 3 is Monitoring.", "What is Level 3 called?"),
    # a figure the question does not hold is something to check
    ("The handover uses form NEOC-F02.", "Which form is used for the shift handover?"),
])
def test_real_answers_that_reuse_the_questions_words_are_kept(claim, question):
    assert not vacuous(claim, question, heading_words([HANDOVER]))


# -- through the verifier ----------------------------------------------------------------------------------
@pytest.mark.parametrize("answer", [
    REPORTED,
    "The answer to this question is: - Any details about the shift handover briefing [1].",
    "The handover covers every item on the handover checklist [1].",
    "All items in the handover checklist must be covered [1].",
])
def test_a_vacuous_answer_is_not_shown_and_leaves_nothing_verified(verifier, answer):
    text, v = verifier.verify(QUESTION, [HANDOVER], answer)
    assert text == ""
    assert v.status == "extractive"  # nothing verified: the answer path falls back to quotes
    assert any(c.reason == "states nothing" for c in v.claims)
    assert not v.unsupported  # nothing false was said either: no "removed as not found" list


def test_a_real_item_after_the_vacuous_one_is_shown_alone(verifier):
    answer = ("The answer to this question is:\n- Any details about the shift handover briefing [1].\n"
              "- Current activation level and the time it was last changed [1].")
    text, v = verifier.verify(QUESTION, [HANDOVER], answer)
    assert "Any details" not in text
    assert text.endswith("- Current activation level and the time it was last changed [1].")
    assert v.status == "verified"


# -- through the front door: quotes instead, never cached as a model answer ------------------------------
@pytest.mark.parametrize("answer", [REPORTED, "The handover covers every item on the handover checklist [1]."])
def test_the_ui_example_gets_the_documents_sentences_not_the_empty_one(make_container, tmp_path, answer):
    kb = tmp_path / "kb-docs"
    kb.mkdir()
    shutil.copy(KB / HANDOVER_FILE, kb / HANDOVER_FILE)
    engine = ScriptedEngine(answer)
    container = make_container(kb_dir=kb, engine=engine)
    container.assistant.ingest([kb])
    said = answer.split("\n")[-1].lstrip("- ").split(" [")[0]  # the model's sentence, without its citation
    first = container.assistant.ask(QUESTION)
    assert engine.calls == 1
    assert first.mode == "extractive" and said not in first.answer
    assert first.answer.startswith("Quoted from the documents:")
    again = container.assistant.ask(QUESTION)
    assert again.mode == "extractive" and said not in again.answer  # never cached as a model answer
