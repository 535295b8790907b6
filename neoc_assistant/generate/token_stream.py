"""A running answer: an iterator of text pieces that holds one pooled context until it ends.

Streams end - and give their context back at once - when the model stops,
after ``max_tokens``, on ``close()``, when garbage-collected, or as soon as
their ``cancel`` event is set (the pool reclaims a cancelled stream's context
even while the consumer is not iterating). The stream never shows chat markers
and ends a looping answer (``stream_guard.py``, ``finish_reason``
"stop"/"loop"). Per token it does what a raw llama.cpp decode loop does: one
decode, one sample, one piece lookup.

A stream knows its engine only through ``StreamHooks`` (three callables) and
is handed the loaded model: it never reads the engine's private state, and the
engine is the only module that imports both.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterator

from neoc_assistant.generate.backend import ClosingStream
from neoc_assistant.generate.chat_template import ALWAYS_STOP
from neoc_assistant.generate.llama_model import ContextSlot, LlamaModel
from neoc_assistant.generate.pool import Lease
from neoc_assistant.generate.stream_guard import TextScreen


@dataclass(frozen=True)
class StreamHooks:
    """What a stream asks of, and tells, the engine that started it."""

    active_streams: Callable[[], int]  # answers running now (the threads each may use)
    count_prompt: Callable[[int, int], None]  # (reused, evaluated) prompt tokens, once prefilled
    on_end: Callable[["TokenStream", Lease, int, str, bool], None]  # (stream, lease, generated, reason, from_gc)


class TokenStream(ClosingStream, Iterator[str]):
    """Iterator of text pieces holding one pooled context until it ends.

    Ends (and releases the context at once) when the model stops, after
    ``max_tokens``, on ``close()``, when the object is garbage-collected, or as
    soon as ``cancel`` is set.
    """

    def __init__(self, model: LlamaModel, lease: Lease, prompt: list[int], max_tokens: int, stats: dict | None, *,
                 stop_texts: tuple[str, ...], loop_guard: bool, hooks: StreamHooks):
        self._model = model
        self._hooks = hooks
        self._lease = lease
        self._slot: ContextSlot = lease.context
        self._prompt = prompt
        self._max_tokens = max_tokens
        self._screen = TextScreen(stop_texts + ALWAYS_STOP, loop_guard)
        self._pending: int | None = None
        self._started = False
        self._done = False
        self._n_gen = 0
        self.stats = stats if stats is not None else {}
        self.stats.update(prompt_tokens=len(prompt), reused_tokens=0, evaluated_tokens=0, generated_tokens=0,
                          slot=self._slot.id, finish_reason=None)
        self._t0 = time.perf_counter()

    @property
    def cancel(self) -> threading.Event:
        return self._lease.cancel

    def __iter__(self) -> "TokenStream":
        return self

    def __next__(self) -> str:
        lease = self._lease
        with lease.lock:
            if self._done:
                raise StopIteration
            if lease.revoked or lease.stopped():
                stop = True
            else:
                stop = False
                lease.active = True
        if stop:
            self._finish("cancelled")
            raise StopIteration
        try:
            piece = self._advance()
        except BaseException:
            with lease.lock:
                lease.active = False
            self._finish("error")
            raise
        with lease.lock:
            lease.active = False
        if piece is None:
            self._finish(self.stats.get("finish_reason") or "stop")
            raise StopIteration
        return piece

    def _advance(self) -> str | None:
        slot, model, cancel = self._slot, self._model, self._lease  # lease.is_set(): cancelled or closed
        if not self._started:
            self._started = True
            t = time.perf_counter()
            slot.share_threads(self._hooks.active_streams())
            reused, evaluated = slot.prefill(self._prompt, cancel)  # type: ignore[arg-type]  # a Lease is an Event here
            self.stats.update(reused_tokens=reused, evaluated_tokens=evaluated,
                              prefill_seconds=time.perf_counter() - t)
            self._hooks.count_prompt(reused, evaluated)
            if cancel.is_set():
                self.stats["finish_reason"] = "cancelled"
                return None
            self._t_decode = time.perf_counter()
        slot.share_threads(self._hooks.active_streams())
        if self._screen.end_reason:
            return None
        while True:
            if cancel.is_set():
                self.stats["finish_reason"] = "cancelled"
                return None
            if self._n_gen >= self._max_tokens:  # checked first: no wasted decode of the last token
                self.stats["finish_reason"] = "length"
                return self._flush()
            if self._pending is not None:
                if len(slot.tokens) >= slot.n_ctx:
                    self.stats["finish_reason"] = "length"
                    return self._flush()
                token, self._pending = self._pending, None
                slot.decode_one(token)
            token = slot.sample()
            if model.is_eog(token):
                self.stats["finish_reason"] = "stop"
                return self._flush()
            self._n_gen += 1
            if self._n_gen == 1:
                self.stats["ttft_seconds"] = time.perf_counter() - self._t0
            self._pending = token
            shown = self._screen.feed(model.piece(token))
            if self._screen.end_reason:
                self.stats["finish_reason"] = self._screen.end_reason
                self._screen.describe(self.stats)
                return shown or None
            if shown:
                return shown

    def _flush(self) -> str | None:
        return self._screen.flush() or None

    def _finish(self, reason: str, *, from_gc: bool = False) -> None:
        with self._lease.lock:
            if self._done:
                return
            self._done = True
        if self.stats.get("finish_reason") is None:
            self.stats["finish_reason"] = reason
        self.stats["generated_tokens"] = self._n_gen
        if self._started and hasattr(self, "_t_decode"):
            self.stats["decode_seconds"] = time.perf_counter() - self._t_decode
        self._hooks.on_end(self, self._lease, self._n_gen, self.stats["finish_reason"], from_gc)

    def close(self) -> None:
        """Stop now and give the context back (e.g. the client disconnected).

        A no-op once the stream has finished; never sets the caller's
        ``cancel`` event (a completed answer stays complete).
        """
        with self._lease.lock:
            if self._done:
                return
            self._lease.stop.set()
            busy = self._lease.active
        if not busy:
            self._finish("cancelled")  # if busy, the running next() stops at its next check

    def __del__(self):  # not close(): from the garbage collector the slot is released without waiting
        try:
            if not self._done:
                self._lease.stop.set()
                self._finish("cancelled", from_gc=True)
        except Exception:
            pass


class EmptyStream(Iterator[str]):
    """What ``stream()`` returns when the request was cancelled while it queued."""

    def __init__(self, cancel: threading.Event, stats: dict):
        self.cancel, self.stats = cancel, stats

    def __next__(self) -> str:
        raise StopIteration

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass


