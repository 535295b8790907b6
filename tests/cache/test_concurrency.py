"""Concurrent readers and writers (threads and processes) and persistence across restarts.

The other processes cannot afford to load the real model, so every cache here
uses a deterministic bag-of-words embedder: the tiers, the journal and the
index are what is under test, not the embedding quality.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np

from neoc_assistant.reading.lexicon import KBLexicon
from neoc_assistant.cache.response_cache import CacheContext, CachedAnswer, ResponseCache
from neoc_assistant.settings import Settings

REPO = Path(__file__).resolve().parents[2]
CTX = CacheContext("kb-1", "bow", "v1", "k=5", "")

FAKE_EMBEDDER = '''
import hashlib, re
import numpy as np

class BagOfWordsEmbedder:
    """Deterministic stand-in for the model: hashed bag of words, L2-normalised."""
    dimension = 64
    def encode(self, texts, show_progress=False):
        out = np.zeros((len(texts), 64), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in re.findall(r"[a-z0-9.]+", t.lower()):
                out[i, int(hashlib.md5(w.encode()).hexdigest(), 16) % 64] += 1.0
            n = np.linalg.norm(out[i])
            if n:
                out[i] /= n
        return out
'''
exec(FAKE_EMBEDDER)  # defines BagOfWordsEmbedder here too

CHILD = FAKE_EMBEDDER + textwrap.dedent(
    '''
    import sys, time, json, random
    from pathlib import Path
    from neoc_assistant.reading.lexicon import KBLexicon
    from neoc_assistant.cache.response_cache import CacheContext, CachedAnswer, ResponseCache
    from neoc_assistant.settings import Settings

    data_dir, mode, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    s = Settings(data_dir=Path(data_dir), kb_dir=Path(data_dir) / "kb", cache_similarity_threshold=0.8)
    cache = ResponseCache(s.cache, s.paths.cache_dir / "responses", BagOfWordsEmbedder(), lexicon=KBLexicon())
    ctx = CacheContext("kb-1", "bow", "v1", "k=5", "")
    ans = lambda q: CachedAnswer(q, "answer:" + q, "llm", [{"source": "a.md"}], time.time())
    errors = 0
    if mode == "store":
        for i in range(n):
            q = f"What is the relief stock in warehouse {i}?"
            cache.store(q, ctx, ans(q))
    elif mode == "mixed":
        rnd = random.Random(1)
        for i in range(n):
            q = f"How many family kits are in child hub {i}?"
            cache.store(q, ctx, ans(q))
            j = rnd.randrange(i + 1)
            r = cache.lookup(f"How many family kits are in child hub {j}?", ctx)
            if r.answer is None or r.answer.answer != f"answer:How many family kits are in child hub {j}?":
                errors += 1
    print(json.dumps({"errors": errors, "l2_errors": cache.stats()["l2_errors"]}))
    '''
)


def make_cache(data_dir: Path, **overrides) -> ResponseCache:
    s = Settings(data_dir=data_dir, kb_dir=data_dir / "kb", cache_similarity_threshold=0.8, **overrides)
    return ResponseCache(s.cache, s.paths.cache_dir / "responses", BagOfWordsEmbedder(), lexicon=KBLexicon())


def answer(q: str) -> CachedAnswer:
    return CachedAnswer(q, "answer:" + q, "llm", [{"source": "a.md"}], time.time())


def run_child(data_dir: Path, mode: str, n: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-c", CHILD, str(data_dir), mode, str(n)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def test_entries_survive_a_process_restart_and_other_processes_see_new_entries(tmp_path):
    data = tmp_path / "data"
    parent = make_cache(data)
    assert parent.lookup("What is the relief stock in warehouse 3?", CTX).answer is None  # index built, empty

    child = run_child(data, "store", 20)
    out, err = child.communicate(timeout=120)
    assert child.returncode == 0, err
    assert json.loads(out.strip().splitlines()[-1])["l2_errors"] == 0

    # the child has exited: its entries persist on disk
    exact = parent.lookup("what is the relief stock in warehouse 3", CTX)
    assert exact.answer is not None and exact.tier == "l2" and exact.answer.answer.endswith("warehouse 3?")
    # the semantic index of *this* process learned about the other process's entries via the journal
    semantic = parent.lookup("Tell me the relief stock in warehouse 7", CTX)
    assert semantic.answer is not None and semantic.match == "semantic"
    assert semantic.answer.answer == "answer:What is the relief stock in warehouse 7?"
    # and the guard still refuses the near-miss
    near = parent.lookup("What is the relief stock in warehouse 77?", CTX)
    assert near.answer is None
    # a brand-new process (fresh cache object) sees everything
    assert make_cache(data).stats()["l2_entries"] == 20


def test_removal_in_one_process_reaches_the_memory_tier_of_another(tmp_path):
    data = tmp_path / "data"
    a, b = make_cache(data), make_cache(data)
    q = "What is the relief stock in warehouse 1?"
    a.store(q, CTX, answer(q))
    assert b.lookup(q, CTX).tier == "l2" and b.lookup(q, CTX).tier == "l1"
    assert a.remove(q, CTX)
    assert b.lookup(q, CTX).answer is None  # journal 'del' evicted b's L1 copy


def test_concurrent_threads_read_and_write_without_corruption(tmp_path):
    cache = make_cache(tmp_path / "data")
    errors: list[str] = []
    stored: dict[int, str] = {}
    lock = threading.Lock()

    def worker(w: int) -> None:
        rnd = random.Random(w)
        try:
            for i in range(25):
                n = w * 100 + i
                q = f"How many tarpaulins are in store {n}?"
                assert cache.store(q, CTX, answer(q))
                with lock:
                    stored[n] = q
                    pick = rnd.choice(list(stored))
                res = cache.lookup(f"how many tarpaulins are in store {pick}", CTX)
                if res.answer is None or res.answer.answer != "answer:" + stored[pick]:
                    errors.append(f"{w}: {pick} -> {res.answer and res.answer.answer}")
        except Exception as exc:  # noqa: BLE001
            errors.append(repr(exc))

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    s = cache.stats()
    assert s["l2_entries"] == 150 and s["stores"] == 150 and s["l2_errors"] == 0
    assert s["hits"] == 150


def test_two_processes_writing_and_reading_at_once(tmp_path):
    data = tmp_path / "data"
    make_cache(data).stats()  # create the store before the race
    child = run_child(data, "mixed", 150)
    parent = make_cache(data)
    deadline = time.time() + 60
    while parent.l2.generation(CTX.key()) == 0 and time.time() < deadline:  # wait until the child is writing
        time.sleep(0.02)
    assert parent.l2.generation(CTX.key()) > 0, "the child never started writing"
    parent_errors = 0
    for i in range(150):
        q = f"How many family kits are in parent hub {i}?"
        parent.store(q, CTX, answer(q))
        r = parent.lookup(f"how many family kits are in parent hub {i // 2}", CTX)
        if r.answer is None or r.answer.answer != f"answer:How many family kits are in parent hub {i // 2}?":
            parent_errors += 1
    out, err = child.communicate(timeout=180)
    assert child.returncode == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert result == {"errors": 0, "l2_errors": 0}
    assert parent_errors == 0 and parent.stats()["l2_errors"] == 0
    # both processes' entries are all there and readable, and the store is consistent
    fresh = make_cache(data)
    assert fresh.stats()["l2_entries"] == 300
    assert fresh.lookup("How many family kits are in child hub 149?", CTX).answer is not None
    assert fresh.lookup("How many family kits are in parent hub 0?", CTX).answer is not None
    assert fresh.l2.cache.check() == []


def test_bag_of_words_embedder_is_deterministic():
    e = BagOfWordsEmbedder()
    v = e.encode(["a b c", "a b c"])
    assert np.allclose(v[0], v[1]) and abs(float(np.linalg.norm(v[0])) - 1.0) < 1e-6
    assert not np.allclose(e.encode(["ward 5"])[0], e.encode(["ward 6"])[0])
