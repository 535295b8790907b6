"""The batched engine (continuous batching in one context) with the real SmolLM2 model.

What the pool promised stays true: the same answers as one at a time, busy
and memory errors before any text, Stop and a vanished client free the slot
at once, nothing leaks; plus what batching adds: prefix reuse and admission
control.
"""

from __future__ import annotations

import os
import threading
import time

import pytest
from generate_fixtures import make_engine, smollm2  # noqa: F401

from neoc_assistant.errors import BusyError, MemoryGuardError
from neoc_assistant.generate.memory_guard import MemoryReading

SYSTEM = "You are a helpful assistant for emergency operations officers. Answer briefly."
QUESTIONS = ["What is a flood?", "How do I prepare an emergency kit?", "What should I do in an earthquake?",
             "Who leads an incident?"]


def msgs(question: str) -> list[dict]:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}]


def _wait(predicate, timeout=10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


@pytest.fixture
def engine(make_engine, smollm2):
    return make_engine(smollm2, batching=True, pool_size=4, n_ctx=1024, n_threads=2, max_tokens=40,
                       pool_wait_timeout_seconds=60, loop_guard=True)


def test_concurrent_answers_match_one_at_a_time_and_free_their_slots(engine):
    alone = {q: engine.generate(msgs(q)) for q in QUESTIONS}
    together: dict[str, str] = {}
    stats: dict[str, dict] = {}

    def ask(q):
        stats[q] = {}
        together[q] = "".join(engine.stream(msgs(q), stats=stats[q]))

    threads = [threading.Thread(target=ask, args=(q,)) for q in QUESTIONS]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    # Greedy answers begin the same. llama.cpp is not batch-invariant (the sums of a batch of 4 are
    # added in another order than those of a batch of 1), so where two tokens are nearly tied the
    # continuation may drift (seen after 33 characters); mixed-up sequences differ from the start.
    shared = {q: len(os.path.commonprefix([together[q], alone[q]])) for q in QUESTIONS}
    for q in QUESTIONS:
        assert shared[q] >= 20, (q, together[q], alone[q])
    st = engine.pool_stats()
    assert st["batching"] and st["in_use"] == 0 and st["waiting"] == 0
    assert st["steps"] < st["batched_tokens"]  # several sequences shared decode steps
    assert all(s["finish_reason"] in ("stop", "length") for s in stats.values())


def test_the_system_prompt_is_evaluated_once(engine):
    first, second = {}, {}
    engine.generate(msgs(QUESTIONS[0]), stats=first)
    engine.generate(msgs(QUESTIONS[1]), stats=second)
    assert first["reused_tokens"] == 0
    assert second["reused_tokens"] >= 16  # the system turn came from the kept prefix
    assert second["evaluated_tokens"] == second["prompt_tokens"] - second["reused_tokens"]
    again = {}
    text = engine.generate(msgs(QUESTIONS[1]), stats=again)
    assert again["evaluated_tokens"] == 1
    # The reused cache gives the same answer. Not byte-identical to the end: the other slot's kept
    # tokens change the batch the last token is evaluated in, and llama.cpp is not batch-invariant
    # (seen on an AVX-512 build without AMX: identical for 60 characters, then a near-tie drifted).
    repeat = engine.generate(msgs(QUESTIONS[1]))
    assert len(os.path.commonprefix([text, repeat])) >= 20, (text, repeat)


def test_cancel_and_close_free_the_slot_at_once(engine):
    cancel = threading.Event()
    stream = engine.stream(msgs(QUESTIONS[1]), max_tokens=500, cancel=cancel)
    next(stream)
    assert engine.pool_stats()["in_use"] == 1
    cancel.set()
    assert _wait(lambda: engine.pool_stats()["in_use"] == 0)
    assert "".join(stream) is not None and stream.stats["finish_reason"] == "cancelled"

    other = engine.stream(msgs(QUESTIONS[2]), max_tokens=500)
    next(other)
    other.close()  # the client went away
    assert _wait(lambda: engine.pool_stats()["in_use"] == 0)


def test_a_queued_request_whose_client_left_costs_nothing(make_engine, smollm2):
    engine = make_engine(smollm2, batching=True, pool_size=1, n_ctx=1024, n_threads=2, max_tokens=300,
                         pool_wait_timeout_seconds=60)
    running = engine.stream(msgs(QUESTIONS[0]))
    next(running)
    cancel = threading.Event()
    result = {}

    def queued():
        result["stream"] = engine.stream(msgs(QUESTIONS[1]), cancel=cancel)

    t = threading.Thread(target=queued)
    t.start()
    assert _wait(lambda: engine.pool_stats()["waiting"] == 1)
    cancel.set()
    t.join(10)
    assert list(result["stream"]) == [] and result["stream"].stats["finish_reason"] == "cancelled"
    assert engine.pool_stats()["waiting"] == 0
    running.close()


def test_admission_refuses_at_once_when_the_wait_would_be_too_long(make_engine, smollm2):
    engine = make_engine(smollm2, batching=True, pool_size=1, n_ctx=1024, n_threads=2, max_tokens=300,
                         pool_wait_timeout_seconds=60, admission_wait_seconds=0.0)
    engine.generate(msgs(QUESTIONS[0]), max_tokens=20)  # learns how long an answer takes
    running = engine.stream(msgs(QUESTIONS[1]))
    next(running)
    t0 = time.monotonic()
    with pytest.raises(BusyError):
        engine.stream(msgs(QUESTIONS[2]))
    assert time.monotonic() - t0 < 1.0  # refused at once, not after a timeout
    assert engine.pool_stats()["busy_rejections"] == 1
    running.close()


def test_memory_guard_refuses_before_any_text(make_engine, smollm2):
    engine = make_engine(smollm2, batching=True, pool_size=2, n_ctx=1024, n_threads=2)
    engine.load()
    engine.guard.rss_limit_mb = 1000
    engine.guard.probe = lambda: MemoryReading(10_000, 50)  # stays over the limit whatever is freed
    with pytest.raises(MemoryGuardError):
        engine.stream(msgs(QUESTIONS[0]))
    assert engine.pool_stats()["in_use"] == 0
