"""Give the model's memory back when nobody has asked for a while (``generation.idle_unload_seconds``).

Why: on a district laptop the assistant stays open all shift, but questions come in bursts; between
them the loaded model (0.2-1.3 GB with its contexts) is memory the officer's other programs need.
The next question reloads it - a second or two from the page cache, once - which is cheaper than a
laptop swapping. Kept in-house (a thread and a timestamp): no library unloads a llama.cpp model on
idle, and the rule that matters - never while an answer is being written - is the engine's own.

The race it must not lose: a question that has just passed ``load()`` must never find the model
freed under it. ``touch()`` is called *before* the engine looks at its model, and the unloader
hides the model first, then re-reads the last touch: if it moved, someone came in and the model is
put back; if it did not, every later caller sees no model and waits for the reload.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

log = logging.getLogger(__name__)


class IdleUnloader:
    def __init__(self, idle_seconds: float, unload_if_idle: Callable[[float], bool]):
        """``unload_if_idle(last_touch)`` frees the model when nothing is running and nobody touched
        it since ``last_touch``; returns whether it did."""
        self.idle_seconds = idle_seconds
        self._unload_if_idle = unload_if_idle
        self.last_touch = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.unloads = 0

    def touch(self) -> None:
        self.last_touch = time.monotonic()

    def start(self) -> None:
        """Watch from now on (called when the model is loaded); a no-op when switched off or already watching."""
        if self.idle_seconds <= 0 or (self._thread is not None and self._thread.is_alive()):
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._watch, name="neoc-idle-unload", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _watch(self) -> None:
        interval = max(0.05, min(30.0, self.idle_seconds / 4))
        while not self._stop.wait(interval):
            seen = self.last_touch
            if time.monotonic() - seen < self.idle_seconds:
                continue
            try:
                if self._unload_if_idle(seen):
                    self.unloads += 1
                    log.info("model unloaded after %.0f s without a question", self.idle_seconds)
                    return  # the next load() starts a new watch
            except Exception:  # noqa: BLE001 - an unload that fails leaves the model loaded, never breaks answers
                log.exception("idle unload failed")
