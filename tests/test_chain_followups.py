"""A follow-up read with the conversation is also looked up as the officer asked it
(``conversation.bare_retrieval``, ``chain.py``): when the reading pulled in the wrong question, the
officer's own words answer - and that answer is never cached under the reading it did not use.

Real embedder, store, reader, verification and response cache over the default knowledge base (as the dialogue
sets are measured on); the model is scripted (it is not what this is about) and writes the radio-check sentence.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from generate_fixtures import ScriptedEngine

KB = Path(__file__).resolve().parent.parent / "knowledge_base"
# a dialogue of tests/data/dialogues_fresh.jsonl's tune half: the rules read the last turn as a slot
# replacement of the siren question ("how fast does the radio check and SMS have to get...")
HISTORY = [("Koshi Barrage reading 310,000 cusecs just now. Is that danger level for Sunsari?", "..."),
           ("ok so how fast does the siren and SMS have to get to the villages?", "...")]
FOLLOW_UP = "what about the radio check?"
EVIDENCE = "07:00 and 19:00"  # "The NEOC calls every Province EOC on HF ... every day at 07:00 and 19:00."


@pytest.fixture(scope="module")
def kb_copy(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("kb") / "kb"
    shutil.copytree(KB, root)
    return root


def _assistant(make_container, kb_copy, bare: bool):
    engine = ScriptedEngine("The NEOC calls every Province EOC on HF every day at 07:00 and 19:00 [1].")
    container = make_container(kb_dir=kb_copy, cache_enabled=True, conversation={"bare_retrieval": bare},
                               engine=engine)
    container.assistant.ingest([kb_copy])
    return container.assistant, engine


def test_the_officers_own_words_answer_when_the_reading_went_wrong_and_that_answer_is_not_cached(
        make_container, kb_copy):
    assistant, engine = _assistant(make_container, kb_copy, bare=True)
    first = assistant.ask(FOLLOW_UP, history=HISTORY)
    assert EVIDENCE in first.answer and engine.calls == 1, first.answer  # the radio-check passage answers
    assert first.understood_as == ""  # read as asked: the siren reading it did not use is not shown
    again = assistant.ask(FOLLOW_UP, history=HISTORY)
    assert not again.cached and engine.calls == 2  # answered again, not served from the cache


def test_without_it_the_reading_alone_decides(make_container, kb_copy):
    assistant, engine = _assistant(make_container, kb_copy, bare=False)
    answer = assistant.ask(FOLLOW_UP, history=HISTORY)
    assert EVIDENCE not in answer.answer, answer.answer  # the siren passages do not hold it: what the setting is for
    assert "radio check" in answer.understood_as  # the rules' reading, shown
    assert assistant.ask(FOLLOW_UP, history=HISTORY).cached and engine.calls == 1  # a resolved answer is cached
