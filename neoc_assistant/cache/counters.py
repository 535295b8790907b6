"""Named event counts - hits, misses, refusals, errors - kept the same way by every cache.

Thread-safe. Counts that must also reach the totals shared by every process
on the machine (``cache stats`` shows them) are remembered as *pending* until
their owner hands them to its shared store with ``take_pending()``.
"""

from __future__ import annotations

import threading
from collections import Counter


class Counters:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._pending: Counter[str] = Counter()

    def add(self, *names: str, n: int = 1, shared: bool = True) -> None:
        """Count each of ``names`` ``n`` times (``shared=False``: this process's figures only)."""
        with self._lock:
            for name in names:
                self._counts[name] += n
                if shared:
                    self._pending[name] += n

    def __getitem__(self, name: str) -> int:
        with self._lock:
            return self._counts.get(name, 0)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def take_pending(self) -> dict[str, int]:
        """The shared counts added since the last call (and forget them)."""
        with self._lock:
            pending, self._pending = dict(self._pending), Counter()
            return pending

    def has_pending(self) -> bool:
        with self._lock:
            return bool(self._pending)

    def drop_pending(self) -> None:
        with self._lock:
            self._pending.clear()
