"""The batched context is sized from the settings, and answers wait for KV cells instead of failing.

With the real SmolLM2 model: llama.cpp's own figures for the context it created
(``llama_n_ctx``, ``llama_n_batch``, ``llama_n_ubatch``), and a KV cache too
small for every slot's prompt at once - which would make llama_decode fail
("no KV slot") for every running answer if admission did not count cells.
"""

from __future__ import annotations

import threading
from pathlib import Path

from generate_fixtures import make_engine, smollm2  # noqa: F401

from neoc_assistant.generate.batch_context import BatchContextSize

KB = Path(__file__).resolve().parent.parent.parent / "knowledge_base"


def test_the_context_has_the_planned_cells_batch_and_micro_batch(make_engine, smollm2):  # noqa: F811
    engine = make_engine(smollm2, batching=True, pool_size=4, n_ctx=1024, n_batch=64, n_ubatch=32,
                         slot_kv_tokens=768, kv_cache_type="q8_0", n_threads=2)
    engine.load()
    scheduler = engine._scheduler
    ll, ctx = scheduler.ll, scheduler.ctx
    assert ll.llama_n_ctx(ctx) == 768 * 5  # 4 slots + the kept prefix, not 1024 x 5
    assert (ll.llama_n_batch(ctx), ll.llama_n_ubatch(ctx)) == (64, 32)
    assert engine.pool_stats()["kv_tokens"] == 768 * 5
    assert engine.generate([{"role": "user", "content": "What is a flood?"}], max_tokens=8)


def test_planning_keeps_room_for_one_full_answer_and_the_old_sizing_on_zero():
    small = BatchContextSize.plan(n_slots=2, n_ctx=4096, slot_kv_tokens=1024, n_batch=256, n_ubatch=0)
    assert small.kv_tokens == 2 * 4096 and small.n_ubatch == 256  # one n_ctx answer + a prefix fit
    old = BatchContextSize.plan(n_slots=8, n_ctx=4096, slot_kv_tokens=0, n_batch=256, n_ubatch=512)
    assert old.kv_tokens == 9 * 4096 and old.n_ubatch == 256  # a micro-batch is never above the batch


def _long_distinct_prompt(i: int) -> list[dict]:
    """~300 tokens, different from the first token on (nothing shared with the kept prefix)."""
    text = sorted(KB.glob("*.md"))[i].read_text(encoding="utf-8")[:1100]
    return [{"role": "user", "content": f"Question {i}: summarise this in one line.\n\n{text}"}]


def test_answers_wait_for_kv_cells_when_the_cache_cannot_hold_every_prompt(make_engine, smollm2):  # noqa: F811
    # 4 slots, n_ctx 512 -> 1024 cells (the floor: 2 x n_ctx); four ~300-token prompts + 40 answer
    # tokens each need ~1360 cells at once: only two fit next to the kept prefix.
    engine = make_engine(smollm2, batching=True, pool_size=4, n_ctx=512, n_batch=64, slot_kv_tokens=128,
                         n_threads=2, max_tokens=40, pool_wait_timeout_seconds=120, admission_wait_seconds=600)
    engine.load()
    assert engine.pool_stats()["kv_tokens"] == 1024
    results: dict[int, tuple[str, dict]] = {}
    errors: list[BaseException] = []

    def ask(i: int) -> None:
        stats: dict = {}
        try:
            results[i] = ("".join(engine.stream(_long_distinct_prompt(i), stats=stats)), stats)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    assert not errors, errors
    assert all(stats["prompt_tokens"] > 250 for _, stats in results.values())
    assert sorted(results) == [0, 1, 2, 3]
    assert all(stats["finish_reason"] in ("stop", "length") for _, stats in results.values())
    st = engine.pool_stats()
    assert st["waited_for_cells"] > 0 and st["in_use"] == 0
    assert st["kv_reserved"] == st["prefix_tokens"]  # only the kept prefix still holds cells
