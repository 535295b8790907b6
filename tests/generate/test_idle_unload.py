"""The in-process model is freed after ``generation.idle_unload_seconds`` without a question, never while an
answer is being written, and loaded again by the next question (``generate/idle_unload.py``); real llama.cpp
on the tiny GGUF."""

# ruff: noqa: F811  (pytest fixtures are imported, then named as arguments)
from __future__ import annotations

import time

import pytest
from generate_fixtures import built_model, make_engine, messages, tiny_model  # noqa: F401


def _engine(make_engine, model, idle_seconds: float, **overrides):
    """The fixture takes the flat (legacy) setting names; the idle time is set on the engine's own section."""
    eng = make_engine(model, **overrides)
    eng.settings = eng.settings.model_copy(update={"idle_unload_seconds": idle_seconds})
    eng.idle.idle_seconds = eng.settings.idle_unload_seconds
    return eng


def test_the_setting_reaches_the_engine():
    from neoc_assistant.generate.engine import GenerationEngine
    from neoc_assistant.settings import Settings

    assert GenerationEngine(Settings().generation).idle.idle_seconds == 900.0  # the shipped default: 15 minutes
    assert GenerationEngine(Settings(generation={"idle_unload_seconds": 5}).generation).idle.idle_seconds == 5


def _wait_until(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


@pytest.mark.parametrize("batching", [True, False])
def test_an_idle_model_is_freed_and_the_next_question_loads_it_again(make_engine, tiny_model, batching):
    eng = _engine(make_engine, tiny_model, 0.3, batching=batching)
    first = eng.generate(messages(), max_tokens=8)
    assert eng.model_loaded
    assert _wait_until(lambda: eng.idle.unloads == 1), "the model stayed loaded after the idle time"
    assert not eng.model_loaded and eng.pool_stats()["size"] == 0  # contexts freed with it
    again = eng.generate(messages(), max_tokens=8)  # reloaded on demand, same greedy text
    assert eng.model_loaded and again == first
    assert _wait_until(lambda: eng.idle.unloads == 2) and not eng.model_loaded  # and watched again


def test_a_model_writing_an_answer_is_never_freed_one_context_per_answer(make_engine, tiny_model):
    eng = _engine(make_engine, tiny_model, 0.2, batching=False)
    with eng.stream(messages(), max_tokens=200) as pieces:  # written as it is read: the lease is held
        text = next(iter(pieces))
        time.sleep(1.0)  # five idle periods with the answer open
        assert eng.model_loaded and eng.idle.unloads == 0
        text += "".join(pieces)
    assert text
    assert _wait_until(lambda: not eng.model_loaded)  # once it is done, the idle clock runs


def test_a_model_writing_an_answer_is_never_freed_batched(make_engine, tiny_model):
    """The scheduler writes whether or not the text is read; while it writes, the model stays."""
    eng = _engine(make_engine, tiny_model, 0.1, batching=True, n_ctx=4096)
    stats: dict = {}
    t0 = time.monotonic()
    with eng.stream(messages(), max_tokens=4000, stats=stats) as pieces:
        while True:
            loaded = eng.model_loaded  # read before the answer's state: if it was still being written, it was then
            if stats.get("finish_reason") is not None:
                break
            assert loaded, "the model was freed while an answer was being written"
            time.sleep(0.01)
        written = time.monotonic() - t0
        text = "".join(pieces)  # the written text stays readable whatever happened since
    assert written > 0.5, f"the answer took {written:.2f} s: too short to span the idle time"
    assert text and stats["generated_tokens"] > 100
    assert _wait_until(lambda: not eng.model_loaded)


def test_zero_keeps_the_model_loaded(make_engine, tiny_model):
    eng = _engine(make_engine, tiny_model, 0)
    eng.generate(messages(), max_tokens=4)
    time.sleep(0.5)
    assert eng.model_loaded and eng.idle.unloads == 0
