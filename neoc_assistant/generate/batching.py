"""Continuous batching: every running answer advances in one ``llama_decode`` per step.

Why: on 2 cores, N answers in N contexts take as long as N answers in a row -
each decode step of a small model is bound by reading the weights, not by
arithmetic, so doing one token for 8 sequences in one pass costs little more
than one token for one (``scripts/bench_batched.py``: 2-3x aggregate tokens/s
at 4-8 sequences). This is what llama.cpp's own server does.

How:

* **One context, N sequence slots** (``n_seq_max`` = N + 1) over a unified KV
  cache. A scheduler thread owns the context; it alone calls ``llama_decode``.
* **Each step**: admit queued requests into free slots; then build one batch:
  one token for every sequence that is generating, and prompt chunks of
  sequences still prefilling, up to ``n_batch`` tokens in all - so a long new
  prompt is evaluated in slices between the running answers' tokens instead
  of stalling them. Logits are requested only where a token will be sampled;
  each sequence samples with its own sampler chain and streams its text
  through its own queue.
* **Prefix reuse**: the last prompt evaluated is kept in an extra sequence;
  a new request shares the longest common prefix with it by
  ``llama_memory_seq_cp`` (cells are shared in a unified cache, not copied),
  so the system prompt - and a repeated question's passages - are never
  evaluated twice.
* **Admission**: ``submit`` waits for a slot (it returns once the request is
  in a slot, so busy and memory errors still come before any text), refuses
  at once when the expected wait exceeds ``admission_wait_seconds`` (the chain
  then answers with quotes), and a request whose caller went away while
  queued is dropped without costing a step.
* **Ends** - stop token, chat marker, loop, ``max_tokens``, the slot's
  context, cancel or ``close()`` - free the slot at once
  (``llama_memory_seq_rm``).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Iterator

from neoc_assistant.errors import BusyError, ModelError
from neoc_assistant.generate.backend import ClosingStream
from neoc_assistant.generate.batch_context import BatchContextSize
from neoc_assistant.generate.llama_model import LlamaModel
from neoc_assistant.generate.sampling import SamplingParams, build_sampler
from neoc_assistant.generate.stream_guard import TextScreen

log = logging.getLogger(__name__)

_END = object()
_MIN_SHARED_PREFIX = 16  # shorter common prefixes are not worth a copy
_IDLE_WAIT_SECONDS = 0.5


@dataclass
class _Request:
    prompt: list[int]
    max_tokens: int
    cancel: threading.Event
    stats: dict
    screen: TextScreen
    sampling: SamplingParams
    out: queue.SimpleQueue = field(default_factory=queue.SimpleQueue)
    admitted: threading.Event = field(default_factory=threading.Event)
    closed: threading.Event = field(default_factory=threading.Event)  # the consumer went away
    slot: int = -1
    sampler: object = None
    pos: int = 0  # next position in the sequence = tokens in its KV cells
    reserved: int = 0  # KV cells this answer may fill: prompt + max_tokens
    pending: int | None = None  # sampled, shown, not yet decoded
    n_gen: int = 0
    queued_at: float = field(default_factory=time.perf_counter)
    started_at: float = 0.0
    error: BaseException | None = None

    def gone(self) -> bool:
        return self.cancel.is_set() or self.closed.is_set()

    @property
    def prefilling(self) -> bool:
        return self.pos < len(self.prompt)


class BatchedStream(ClosingStream, Iterator[str]):
    """The text of one answer as the scheduler produces it (same contract as ``TokenStream``)."""

    def __init__(self, scheduler: "BatchScheduler", request: _Request):
        self._scheduler = scheduler
        self._request = request
        self.stats = request.stats
        self._done = False

    @property
    def cancel(self) -> threading.Event:
        return self._request.cancel

    def __iter__(self) -> "BatchedStream":
        return self

    def __next__(self) -> str:
        if self._done:
            raise StopIteration
        while True:
            try:
                item = self._request.out.get(timeout=1.0)
                break
            except queue.Empty:
                if not self._scheduler.running:
                    self._done = True
                    raise ModelError("the generation engine stopped: restart the assistant") from None
        if item is _END:
            self._done = True
            if self._request.error is not None:
                raise self._request.error
            raise StopIteration
        return item

    def close(self) -> None:
        """Stop now and free the slot (the client went away). A no-op once finished."""
        if not self._done:
            self._request.closed.set()
            self._scheduler.wake()



class BatchScheduler:
    """Owns one llama.cpp context with ``n_slots`` sequences and runs the decode loop."""

    def __init__(self, model: LlamaModel, *, size: BatchContextSize, n_threads: int,
                 stop_texts: tuple[str, ...], loop_guard: bool, admission_wait_seconds: float,
                 on_end: Callable[[dict], None] | None = None):
        ll = model.ll
        self.ll, self.model, self.size = ll, model, size
        self.n_slots, self.slot_ctx = size.n_slots, min(size.slot_ctx, size.kv_tokens)
        self.n_batch = size.n_batch
        self.stop_texts, self.loop_guard = stop_texts, loop_guard
        self.admission_wait_seconds = admission_wait_seconds
        self.on_end = on_end
        self.prefix_seq = size.n_slots  # the extra sequence holding the last prompt, for prefix reuse
        self.ctx = ll.llama_init_from_model(model.ptr, size.context_params(ll, n_threads))
        if not self.ctx:
            raise ModelError(f"could not create a model context of {size.kv_tokens} tokens for {size.n_slots} "
                             "answers: lower NEOC_GENERATION__SLOT_KV_TOKENS or NEOC_POOL_MAX_SIZE, or free memory")
        self.mem = ll.llama_get_memory(self.ctx)
        self.batch = ll.llama_batch_init(self.n_batch, 0, 1)
        self.prefix: list[int] = []
        self._slots: list[_Request | None] = [None] * size.n_slots
        self._waiting: deque[_Request] = deque()
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._service_seconds = 0.0  # moving average of an answer's time in a slot (admission estimates)
        self.counters = {"admitted": 0, "refused_busy": 0, "dropped_queued": 0, "waited_for_cells": 0, "steps": 0,
                         "batched_tokens": 0}
        self.running = True
        self._thread = threading.Thread(target=self._loop, name="neoc-batch-decode", daemon=True)
        self._thread.start()

    # -- callers' side ----------------------------------------------------------------------------------
    def submit(self, prompt: list[int], max_tokens: int, sampling: SamplingParams, cancel: threading.Event,
               stats: dict, wait_timeout: float) -> BatchedStream | None:
        """Queue an answer and wait until it has a slot; None if ``cancel`` was set meanwhile.
        ``BusyError`` at once when the expected wait is over budget, or after ``wait_timeout``."""
        request = _Request(prompt, max_tokens, cancel, stats, TextScreen(self.stop_texts, self.loop_guard), sampling)
        stats.update(prompt_tokens=len(prompt), reused_tokens=0, evaluated_tokens=0, generated_tokens=0,
                     finish_reason=None)
        with self._lock:
            expected = self._expected_wait_locked()
            if expected > self.admission_wait_seconds:
                self.counters["refused_busy"] += 1
                raise BusyError(f"all {self.n_slots} answer slots are busy (expected wait {expected:.0f}s)")
            self._waiting.append(request)
            self._wake.notify()
        deadline = time.monotonic() + wait_timeout
        while not request.admitted.wait(0.05):
            if cancel.is_set() or time.monotonic() > deadline:
                with self._lock:
                    if not request.admitted.is_set():
                        self._waiting.remove(request)
                        if cancel.is_set():
                            stats.update(finish_reason="cancelled")
                            return None
                        self.counters["refused_busy"] += 1
                        raise BusyError(f"no answer slot became free within {wait_timeout:.0f}s: retry shortly")
        stats["queue_seconds"] = request.started_at - request.queued_at
        stats["slot"] = request.slot
        return BatchedStream(self, request)

    def _expected_wait_locked(self) -> float:
        busy = sum(1 for r in self._slots if r is not None)
        ahead = len(self._waiting) + busy - self.n_slots + 1
        if ahead <= 0 or self._service_seconds <= 0:
            return 0.0
        return ahead * self._service_seconds / self.n_slots

    def wake(self) -> None:
        with self._lock:
            self._wake.notify()

    def stats(self) -> dict:
        with self._lock:
            in_use = sum(1 for r in self._slots if r is not None)
            return {"size": self.n_slots, "created": 1, "in_use": in_use, "idle": self.n_slots - in_use,
                    "waiting": len(self._waiting), "busy_rejections": self.counters["refused_busy"],
                    "reclaimed": 0, "batching": True, "prefix_tokens": len(self.prefix),
                    "kv_tokens": self.size.kv_tokens, "kv_reserved": self._reserved_locked(),
                    "expected_wait_seconds": round(self._expected_wait_locked(), 2), **self.counters}

    def close(self, wait_seconds: float = 10.0) -> bool:
        """Stop the loop; end every answer. False if the decode thread did not stop in time."""
        with self._lock:
            self.running = False
            self._wake.notify()
        self._thread.join(wait_seconds)
        if self._thread.is_alive():
            return False
        for request in list(self._waiting) + [r for r in self._slots if r is not None]:
            self._end(request, "cancelled")
        self.ll.llama_batch_free(self.batch)
        self.ll.llama_free(self.ctx)
        self.ctx = None
        return True

    # -- the decode loop (scheduler thread only) ----------------------------------------------------------
    def _loop(self) -> None:
        while True:
            with self._lock:
                if not self.running:
                    return
                self._admit_locked()
                active = [r for r in self._slots if r is not None]
                if not active:
                    self._wake.wait(_IDLE_WAIT_SECONDS)
                    continue
            try:
                self._step(active)
            except Exception as exc:  # noqa: BLE001 - fail the answers, keep the engine alive
                log.exception("batched decode step failed")
                error = exc if isinstance(exc, ModelError) else ModelError(f"generation failed: {exc}")
                for request in active:
                    request.error = error
                    self._end(request, "error")

    def _admit_locked(self) -> None:
        while self._waiting and None in self._slots:
            request = self._waiting[0]
            if request.gone():  # the caller went away while queued: costs nothing
                self._waiting.popleft()
                self.counters["dropped_queued"] += 1
                request.stats["finish_reason"] = "cancelled"
                request.out.put(_END)
                request.admitted.set()
                continue
            need = min(len(request.prompt) + request.max_tokens, self.slot_ctx)
            if self._reserved_locked() + need > self.size.kv_tokens:
                if any(r is not None for r in self._slots):
                    self.counters["waited_for_cells"] += 1
                    return  # first in line waits until an answer ends and frees its cells
                self._forget_prefix()  # alone, only the kept prefix is in the way
            self._waiting.popleft()
            request.reserved = need
            slot = self._slots.index(None)
            request.slot = slot
            request.sampler = build_sampler(self.ll, self.model.vocab, self.model.n_vocab, request.sampling)
            shared = _common_prefix(self.prefix, request.prompt)
            shared = min(shared, len(request.prompt) - 1)  # at least one token is evaluated for fresh logits
            self.ll.llama_memory_seq_rm(self.mem, slot, -1, -1)
            if shared >= _MIN_SHARED_PREFIX:
                self.ll.llama_memory_seq_cp(self.mem, self.prefix_seq, slot, 0, shared)
                request.pos = shared
            request.stats["reused_tokens"] = request.pos
            request.started_at = time.perf_counter()
            self._slots[slot] = request
            self.counters["admitted"] += 1
            request.admitted.set()

    def _reserved_locked(self) -> int:
        """KV cells the running answers may fill, plus the kept prefix's: a bound on cells in use
        (cells shared by ``seq_cp`` are counted twice), so a decode never runs out of cells."""
        return len(self.prefix) + sum(r.reserved for r in self._slots if r is not None)

    def _forget_prefix(self) -> None:
        self.ll.llama_memory_seq_rm(self.mem, self.prefix_seq, -1, -1)
        self.prefix = []

    def _step(self, active: list[_Request]) -> None:
        for request in active:
            if request.gone():
                self._end(request, "cancelled")
        active = [r for r in active if self._slots[r.slot] is r]
        if not active:
            return
        batch, n, sample_at = self.batch, 0, []
        for request in active:  # one token for each answer being written
            if not request.prefilling and request.pending is not None:
                n = self._put(batch, n, request.pending, request.pos, request.slot, True)
                request.pos += 1
                request.pending = None
                sample_at.append((request, n - 1))
        for request in active:  # prompt slices in what is left of the batch
            if request.prefilling and n < self.n_batch:
                take = min(len(request.prompt) - request.pos, self.n_batch - n)
                for i in range(take):
                    last = request.pos + 1 == len(request.prompt)
                    n = self._put(batch, n, request.prompt[request.pos], request.pos, request.slot, last)
                    request.pos += 1
                request.stats["evaluated_tokens"] += take
                if not request.prefilling:
                    sample_at.append((request, n - 1))
        if n == 0:
            return
        batch.n_tokens = n
        rc = self.ll.llama_decode(self.ctx, batch)
        if rc != 0:
            raise ModelError(f"llama.cpp failed to decode (code {rc}): retry, or lower NEOC_N_CTX")
        self.counters["steps"] += 1
        self.counters["batched_tokens"] += n
        now = time.perf_counter()
        for request, index in sample_at:
            if request.n_gen == 0 and "prefill_seconds" not in request.stats:
                request.stats["prefill_seconds"] = now - request.started_at
                self._remember_prefix(request)
            self._sample(request, index, now)

    def _put(self, batch, n: int, token: int, pos: int, seq: int, logits: bool) -> int:
        batch.token[n] = token
        batch.pos[n] = pos
        batch.n_seq_id[n] = 1
        batch.seq_id[n][0] = seq
        batch.logits[n] = 1 if logits else 0
        return n + 1

    def _sample(self, request: _Request, index: int, now: float) -> None:
        token = self.ll.llama_sampler_sample(request.sampler, self.ctx, index)
        if self.model.is_eog(token):
            return self._end(request, "stop")
        request.n_gen += 1
        if request.n_gen == 1:
            request.stats["ttft_seconds"] = now - request.queued_at
            request.stats["decode_started"] = now
        text = request.screen.feed(self.model.piece(token))
        if text:
            request.out.put(text)
        if request.screen.end_reason:
            request.screen.describe(request.stats)
            return self._end(request, request.screen.end_reason)
        if request.n_gen >= request.max_tokens or request.pos + 1 >= self.slot_ctx:
            return self._end(request, "length")
        request.pending = token

    def _remember_prefix(self, request: _Request) -> None:
        """Keep this prompt as the shared prefix for the next requests (cells are shared)."""
        with self._lock:  # the prefix counts in the cell reservations read by stats()
            self._forget_prefix()
            self.ll.llama_memory_seq_cp(self.mem, request.slot, self.prefix_seq, 0, len(request.prompt))
            self.prefix = list(request.prompt)

    def _end(self, request: _Request, reason: str) -> None:
        stats = request.stats
        if stats.get("finish_reason") is None:
            stats["finish_reason"] = reason
        stats["generated_tokens"] = request.n_gen
        if "decode_started" in stats:
            stats["decode_seconds"] = time.perf_counter() - stats.pop("decode_started")
        tail = request.screen.flush() if reason in ("stop", "length") else ""
        if tail:
            request.out.put(tail)
        if request.slot >= 0 and self._slots[request.slot] is request:
            self._slots[request.slot] = None
            self.ll.llama_memory_seq_rm(self.mem, request.slot, -1, -1)
            elapsed = time.perf_counter() - request.started_at
            self._service_seconds = elapsed if not self._service_seconds else 0.8 * self._service_seconds + 0.2 * elapsed
        if request.sampler is not None:
            self.ll.llama_sampler_free(request.sampler)
            request.sampler = None
        request.out.put(_END)
        if self.on_end is not None:
            self.on_end(stats)


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i + 64 <= n and a[i:i + 64] == b[i:i + 64]:
        i += 64
    while i < n and a[i] == b[i]:
        i += 1
    return i
