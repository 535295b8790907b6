"""The model rewriter of follow-ups (``reading/followup_model.py``): the guard is under test, so a
scripted backend stands in for the model; one test runs the real SmolLM2 through the real engine."""

from __future__ import annotations

import threading
import time

import pytest

from generate_fixtures import make_engine, smollm2  # noqa: F401
from neoc_assistant.errors import BusyError, UnavailableError
from neoc_assistant.reading.followup import resolve_conversation
from neoc_assistant.reading.followup_model import GRAMMAR, ModelFollowups, RulesFollowups, problem_with
from neoc_assistant.settings import ConversationSettings

SHELTER = ["Our shelter in the school has 300 people, how many toilets do we need?",
           "and how much water for them per day?"]
RULES_SHELTER = "how much water for 300 people per day?"


class _Stream:
    def __init__(self, text: str, finish: str, cancel: threading.Event, delay: float):
        self.text, self.cancel, self.delay = text, cancel, delay
        self.stats = {"finish_reason": finish}

    def __iter__(self):
        if self.delay:
            self.cancel.wait(self.delay)  # a slow model: stops when cancelled
            if self.cancel.is_set():
                self.stats["finish_reason"] = "cancelled"
                return
        yield from (self.text[i:i + 5] for i in range(0, len(self.text), 5))

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass


class FakeBackend:
    """Writes ``text`` (or raises ``error``); records what it was asked."""

    def __init__(self, text: str = "", *, finish: str = "stop", error: Exception | None = None,
                 available: bool = True, loaded: bool = True, delay: float = 0.0):
        self.text, self.finish, self.error, self.delay = text, finish, error, delay
        self._available, self.model_loaded = available, loaded
        self.calls: list[dict] = []

    def available(self):
        return self._available

    def load(self):
        time.sleep(0.05)
        self.model_loaded = True

    def stream(self, messages, *, max_tokens=None, cancel=None, grammar=None):
        self.calls.append({"messages": messages, "max_tokens": max_tokens, "grammar": grammar})
        if self.error is not None:
            raise self.error
        return _Stream(self.text, self.finish, cancel or threading.Event(), self.delay)


def _reader(backend, **settings) -> ModelFollowups:
    return ModelFollowups(backend, None, ConversationSettings(resolver="model", **settings))


def test_a_safe_rewrite_is_used_and_says_it_came_from_the_model():
    backend = FakeBackend("How much water per day do 300 people in a school shelter need?")
    reading = _reader(backend).read(SHELTER)
    assert reading.by == "model" and reading.note == ""
    assert reading.question == "How much water per day do 300 people in a school shelter need?"
    call = backend.calls[0]
    assert call["grammar"] == GRAMMAR and call["max_tokens"] == 48
    assert "and how much water for them per day?" in call["messages"][-1]["content"]
    assert "Draft (may be wrong): " + RULES_SHELTER in call["messages"][-1]["content"]
    assert all("toilets" not in m["content"] or m["role"] != "assistant" for m in call["messages"])


@pytest.mark.parametrize("text, why", [
    ("", "empty"),
    ("How much water do they need", "not one question"),
    ("How much water?\nAlso, toilets?", "not one question"),
    ("What " + "really " * 60 + "water?", "too long"),
    ("Sorry, I cannot rewrite that question?", "a refusal"),
    ("How much water per day do 350 people need?", "invented number 350"),
    ("How much water per day do 300 people in Kathmandu need?", "invented name Kathmandu"),
    ("How many toilets do 300 people need?", "dropped 'day'"),
    ("How much water per day do people need?", "dropped '300'"),
    ("And how much water for them per day?", "dropped '300'"),  # the count the rules carried
])
def test_an_unsafe_rewrite_falls_back_to_the_rules(text, why):
    reading = _reader(FakeBackend(text)).read(SHELTER)
    assert reading.by == "rules" and reading.question == RULES_SHELTER
    assert reading.note == why and reading.rejected == text


def test_a_follow_up_handed_back_as_asked_or_with_example_words_is_not_used():
    asked = ["Who leads the Post-Disaster Needs Assessment?", "when does it start?"]
    for text, why in (("When does it start?", "unchanged"),
                      ("When does the district disaster committee start it?", "copied 'committe' from the examples")):
        reading = _reader(FakeBackend(text)).read(asked)
        assert reading.by == "rules" and reading.note == why
    assert _reader(FakeBackend("When does the Post-Disaster Needs Assessment start?")).read(asked).by == "model"


def test_names_and_numbers_from_the_conversation_are_allowed():
    rules = resolve_conversation(SHELTER)[-1]
    assert problem_with("How much water per day do the 300 people in the school need?", SHELTER, rules) == ""
    asked = ["What's the danger level at Chatara on the Koshi?", "same for Chisapani?"]
    rules = resolve_conversation(asked)[-1]
    assert problem_with("What's the danger level at Chisapani on the Koshi?", asked, rules) == ""
    assert problem_with("What's the danger level at Chisapani on the Karnali?", asked, rules) == \
        "invented name Karnali"


@pytest.mark.parametrize("backend, note", [
    (FakeBackend("Fine?", available=False), "no model"),
    (FakeBackend(error=UnavailableError("no server answered")), "model failed: no server answered"),
    (FakeBackend(error=BusyError("every slot is busy")), "model failed: every slot is busy"),
    (FakeBackend("How much water per day do 300 people", finish="length"), "cut off (length)"),
])
def test_no_model_a_failing_one_or_a_cut_off_rewrite_leaves_the_rules_reading(backend, note):
    reading = _reader(backend).read(SHELTER)
    assert (reading.by, reading.question, reading.note) == ("rules", RULES_SHELTER, note)


def test_a_slow_model_times_out_to_the_rules():
    backend = FakeBackend("How much water per day do 300 people need?", delay=5.0)
    t0 = time.perf_counter()
    reading = _reader(backend, timeout_seconds=0.2).read(SHELTER)
    assert time.perf_counter() - t0 < 2.0
    assert reading.by == "rules" and reading.note.startswith("timed out")


def test_a_model_not_yet_loaded_loads_in_the_background_and_the_rules_read_meanwhile():
    backend = FakeBackend("How much water per day do 300 people need?", loaded=False)
    reader = _reader(backend)
    first = reader.read(SHELTER)
    assert (first.by, first.note, first.question) == ("rules", "model loading", RULES_SHELTER)
    reader._loading.join(timeout=5)
    assert backend.model_loaded and reader.read(SHELTER).by == "model"


def test_a_topic_change_stays_one_and_the_model_is_not_asked():
    backend = FakeBackend("What is the water minimum for 300 people?")
    reading = _reader(backend).read([SHELTER[0], "New topic: who signs off full activation?"])
    assert reading.kind == "topic-change" and reading.question == "Who signs off full activation?"
    assert reading.by == "rules" and not backend.calls


def test_a_first_question_is_left_alone():
    backend = FakeBackend("Anything?")
    assert _reader(backend).read([SHELTER[0]]).question == SHELTER[0] and not backend.calls
    assert RulesFollowups(None).read(SHELTER).question == RULES_SHELTER


def test_the_chain_records_who_read_the_follow_up(make_container):
    rewrite = "How much water per day do 300 people in a school shelter need?"
    container = make_container(engine=FakeBackend(rewrite), conversation={"resolver": "model"})
    answer = container.assistant.ask(SHELTER[1], history=[(SHELTER[0], "1 toilet per 50 people")], use_cache=False)
    assert answer.understood_as == rewrite and answer.understood_by == "model"
    assert "read" in answer.timings_ms
    rules = make_container(conversation={"resolver": "rules"})
    answer = rules.assistant.ask(SHELTER[1], history=[(SHELTER[0], "")], use_cache=False)
    assert answer.understood_as == RULES_SHELTER and answer.understood_by == "rules"


def test_the_real_small_model_gives_a_standalone_question_or_the_rules_reading(make_engine, smollm2):  # noqa: F811
    engine = make_engine(smollm2, n_ctx=1024, max_tokens=48)
    reader = ModelFollowups(engine, None, ConversationSettings(resolver="model", timeout_seconds=30))
    reader.warm()
    for asked in (SHELTER, ["Who prepares the ICS 205?", "who does he hand it to?"],
                  ["What time do sitreps go out at Level 2?", "and for Level 1?"]):
        reading = reader.read(asked)
        rules = resolve_conversation(asked)[-1]
        assert reading.question.strip()
        if reading.by == "model":  # one standalone question that passed the guard
            assert reading.question.endswith("?") and problem_with(reading.question, asked, rules) == ""
        else:
            assert reading.question == rules.question and reading.note
