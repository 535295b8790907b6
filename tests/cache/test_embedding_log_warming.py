"""Embedding cache, query log, warming and the `cache` CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from neoc_assistant.cache.embedding_cache import EmbeddingCache
from neoc_assistant.cache.query_log import QueryLog
from neoc_assistant.cache.warming import load_questions_file, warm
from neoc_assistant.errors import InputError
from neoc_assistant.settings import Settings
from neoc_assistant.store.embeddings import Embedder

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(data_dir=tmp_path / "data", kb_dir=tmp_path / "kb", models_dir=tmp_path / "models")


# -- embedding cache -------------------------------------------------------------------------------

class _NoModel:
    def encode(self, *a, **k):
        raise AssertionError("the model was called although every vector was cached")


def test_embedding_cache_roundtrip_and_persistence(settings):
    cache = EmbeddingCache(settings.paths.cache_dir / "embeddings")
    vecs = np.random.default_rng(0).normal(size=(3, 8)).astype(np.float32)
    cache.set_many("m@1", ["a", "b", "c"], vecs)
    got = cache.get_many("m@1", ["b", "x", "a"])
    np.testing.assert_array_equal(got[0], vecs[1])
    assert got[1] is None
    np.testing.assert_array_equal(got[2], vecs[0])
    assert cache.get_many("m@2", ["a"]) == [None]  # keyed by model identity
    fresh = EmbeddingCache(settings.paths.cache_dir / "embeddings")  # another process: from disk
    np.testing.assert_array_equal(fresh.get_many("m@1", ["c"])[0], vecs[2])
    assert fresh.stats()["disk_items"] == 3


def test_embedder_reuses_cached_vectors_without_the_model(settings, embedder):
    texts = ["What triggers Level 2?", "Who approves the IAP?"]
    first = Embedder(settings.embedding, cache=EmbeddingCache(settings.paths.cache_dir / "embeddings"))
    first._model = embedder.model  # share the loaded session model
    v1 = first.encode(texts)
    np.testing.assert_allclose(v1, embedder.encode(texts), atol=1e-6)

    second = Embedder(settings.embedding, cache=EmbeddingCache(settings.paths.cache_dir / "embeddings"))
    second._model = _NoModel()
    np.testing.assert_array_equal(second.encode(texts), v1)
    assert second.cache.hits == 2 and second.cache.misses == 0


# -- query log -----------------------------------------------------------------------------------------

def test_query_log_records_questions_not_answers_and_ranks_them(settings):
    log = QueryLog(settings.paths.log_dir)
    for q in ["Who approves the IAP?", "who approves the IAP", "Please, who approves the IAP?",
              "What triggers Level 2?", "What triggers Level 2?", "Where is the alternate NEOC?"]:
        log.record(q)
    log.record("   ")
    lines = (settings.paths.log_dir / "queries.jsonl").read_text().splitlines()
    assert len(lines) == 6
    assert set(json.loads(lines[0])) == {"ts", "q", "key"}  # no answer field, ever
    top = log.top(2)
    assert [(t.question, t.count) for t in top] == [("Who approves the IAP?", 3), ("What triggers Level 2?", 2)]
    assert [t.count for t in log.top(10, min_count=2)] == [3, 2]
    assert len(log) == 6
    off = QueryLog(settings.paths.log_dir, enabled=False)
    off.record("Who approves the IAP?")
    assert len((settings.paths.log_dir / "queries.jsonl").read_text().splitlines()) == 6


def test_query_log_concurrent_writers_do_not_interleave(settings):
    log = QueryLog(settings.paths.log_dir)
    child_code = (
        "import sys; from pathlib import Path; from neoc_assistant.settings import Settings;"
        "from neoc_assistant.cache.query_log import QueryLog;"
        "log = QueryLog(Settings(data_dir=Path(sys.argv[1])).paths.log_dir);"
        "[log.record('child question number %d ' % i + 'x' * 300) for i in range(300)]"
    )
    child = subprocess.Popen([sys.executable, "-c", child_code, str(settings.paths.data_dir)],
                             env={**os.environ, "PYTHONPATH": str(REPO)})
    threads = [threading.Thread(target=lambda t=t: [log.record(f"thread {t} question {i} " + "y" * 300) for i in range(100)])
               for t in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert child.wait(timeout=120) == 0
    lines = (settings.paths.log_dir / "queries.jsonl").read_text().splitlines()
    assert len(lines) == 600
    assert all(json.loads(line)["q"] for line in lines)  # every line is whole, valid JSON


# -- warming -----------------------------------------------------------------------------------------

def test_warm_counts_outcomes_and_survives_failures():
    seen = []

    def answer_fn(q):
        seen.append(q)
        if "boom" in q:
            raise RuntimeError("model crashed")
        if "old" in q:
            return {"cached": True, "mode": "llm"}
        if "passages" in q:
            return {"cached": False, "mode": "extractive"}
        return {"cached": False, "mode": "llm", "complete": True}

    qs = ["new one", "old one", "boom", "passages please", "another new"]
    report = warm(answer_fn, qs, progress=False)
    assert seen == qs
    assert (report.total, report.answered, report.already_cached, report.not_cacheable, report.failed) == (5, 2, 1, 1, 1)
    assert "model crashed" in report.errors[0]


def test_warm_through_a_real_cache_then_everything_is_a_hit(tmp_path, embedder):
    from neoc_assistant.reading.lexicon import KBLexicon
    from neoc_assistant.cache.response_cache import CacheContext, CachedAnswer, ResponseCache

    cache = ResponseCache(Settings().cache, tmp_path / "d" / "cache" / "responses", embedder, lexicon=KBLexicon())
    ctx = CacheContext("kb", "m", "v1", "r", "")
    calls = []

    def ask(q):  # what the chain does around the model
        hit = cache.lookup(q, ctx)
        if hit.answer is not None:
            return {"cached": True, "mode": "llm"}
        calls.append(q)
        cache.store(q, ctx, CachedAnswer(q, "generated", "llm", [{"source": "a.md"}]), query_vector=hit.query_vector)
        return {"cached": False, "mode": "llm"}

    qs = ["Who approves the IAP?", "What triggers Level 2?"]
    assert warm(ask, qs, progress=False).answered == 2
    assert warm(ask, qs, progress=False).already_cached == 2
    assert calls == qs


def test_question_files(tmp_path):
    txt = tmp_path / "q.txt"
    txt.write_text("# shift start\nWho approves the IAP?\n\nwho approves the IAP\nWhat triggers Level 2?\n")
    assert load_questions_file(txt) == ["Who approves the IAP?", "What triggers Level 2?"]
    jl = tmp_path / "q.jsonl"
    jl.write_text('{"text": "A?"}\n{"question": "B?"}\n"C?"\n')
    assert load_questions_file(jl) == ["A?", "B?", "C?"]
    jl.write_text("{broken\n")
    with pytest.raises(InputError):
        load_questions_file(jl)
    with pytest.raises(InputError):
        load_questions_file(tmp_path / "missing.txt")


# -- CLI ---------------------------------------------------------------------------------------------------

def test_cache_cli_stats_and_clear(tmp_path, embedder):
    from neoc_assistant.reading.lexicon import KBLexicon
    from neoc_assistant.cache.response_cache import CacheContext, CachedAnswer, ResponseCache

    data = tmp_path / "data"
    cache = ResponseCache(Settings().cache, Settings(data_dir=data).paths.cache_dir / "responses", embedder,
                          lexicon=KBLexicon())
    ctx = CacheContext("kb", "m", "v1", "r", "")
    cache.store("Who approves the IAP?", ctx, CachedAnswer("Who approves the IAP?", "The IC.", "llm", [{"source": "a"}]))
    assert cache.lookup("who approves the iap", ctx).answer is not None
    cache.close()  # flushes the counters

    env = {**os.environ, "NEOC_DATA_DIR": str(data), "NEOC_KB_DIR": str(tmp_path / "kb"), "PYTHONPATH": str(REPO)}
    run = lambda *args: subprocess.run([sys.executable, "-m", "neoc_assistant", "cache", *args],  # noqa: E731
                                       capture_output=True, text=True, env=env, timeout=180)
    out = run("stats", "--json")
    assert out.returncode == 0, out.stderr
    stats = json.loads(out.stdout)
    assert stats["l2_entries"] == 1 and stats["persisted"]["hits"] == 1 and stats["persisted"]["stores"] == 1
    out = run("clear", "--yes")
    assert out.returncode == 0, out.stderr
    assert "cleared 1" in out.stdout
    assert json.loads(run("stats", "--json").stdout)["l2_entries"] == 0
