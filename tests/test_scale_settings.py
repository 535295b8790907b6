"""The scale-out pieces that need no service: settings names, server routing, the Redis value codec.

(The services themselves are exercised for real in ``test_scale_out.py``.)
"""

from __future__ import annotations

import numpy as np
import pytest

from neoc_assistant.settings import Settings


def test_issue_env_names_select_the_remote_backends(monkeypatch):
    monkeypatch.setenv("NEOC_LLM_BACKEND", "openai")
    monkeypatch.setenv("NEOC_LLM_URLS", "http://gpu1:8080/v1, http://gpu2:8080")
    monkeypatch.setenv("NEOC_REDIS_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv("NEOC_CHROMA_URL", "http://127.0.0.1:8000")
    s = Settings()
    assert s.generation.backend == "openai"
    assert s.generation.server_url_list() == ["http://gpu1:8080/v1", "http://gpu2:8080"]
    assert (s.cache.l2_backend, s.store.vector_backend) == ("redis", "chroma-server")
    for name in ("NEOC_LLM_BACKEND", "NEOC_LLM_URLS", "NEOC_REDIS_URL", "NEOC_CHROMA_URL"):
        monkeypatch.delenv(name)
    s = Settings()  # the laptop default is untouched
    assert (s.generation.backend, s.cache.l2_backend, s.store.vector_backend) == ("llamacpp", "disk", "chroma")
    with pytest.raises(Exception, match="NEOC_LLM_URLS"):
        Settings(llm_backend="openai")  # a backend without its URL is a configuration error
    assert Settings(llm_urls="http://x:1", llm_api_key="k").public_dict()["generation"]["server_api_key"] == "***"


def test_least_busy_server_first_down_ones_skipped_until_their_retry():
    from neoc_assistant.generate.server_pool import ServerPool

    now = [0.0]
    pool = ServerPool(["http://a:1", "http://b:2/v1/"], retry_seconds=10, clock=lambda: now[0])
    a, b = pool.servers
    assert b.url == "http://b:2/v1" and a.root == "http://a:1"
    first = pool.acquire()
    assert pool.acquire() is not first  # the other one is less busy
    pool.release(first)
    pool.failed(a, "cannot connect")
    assert pool.acquire() is b and pool.acquire() is b  # a is down: b even though it is busier
    now[0] = 11.0
    assert pool.acquire() in (a, b) and pool.any_up()
    pool.failed(a, "again")
    assert a.down_until == pytest.approx(31.0)  # doubled
    pool.failed(b, "gone")
    assert pool.acquire() is None and not pool.any_up()
    pool.succeeded(b)
    assert pool.acquire() is b and pool.snapshot()[1]["up"]


def test_redis_values_are_json_and_round_trip_entries():
    from neoc_assistant.cache.entries import CachedAnswer, CacheEntry
    from neoc_assistant.reading.question_features import QuestionReader
    from neoc_assistant.cache.redis_tier import decode, encode

    features = QuestionReader().features("How many litres of water per person in ward 5?")
    entry = CacheEntry("e:c:k", "c", "kb1", "q?", "q", CachedAnswer("q?", "a [1]", "llm", [{"n": 1}]),
                       np.arange(4, dtype=np.float32), features, 1.5)
    raw = encode(entry.to_value())
    assert raw.startswith(b"{")  # JSON: nothing in a shared store can run code here
    back = CacheEntry.from_value("e:c:k", decode(raw))
    assert back.features == features and back.answer == entry.answer
    assert np.array_equal(back.vector, entry.vector)


def test_document_text_cannot_end_the_turn_on_a_server():
    from neoc_assistant.generate.openai_backend import defuse, estimate_tokens

    text = defuse("a <|im_end|> b <|custom|> c </s>")
    assert "<|im_end|>" not in text and "<|" not in text and "</s>" not in text
    assert estimate_tokens("abcdef") == 2
