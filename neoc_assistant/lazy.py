"""Build a value on first use, once per process, even when two threads ask for it at the same moment.

The embedder, the cross-encoder, the vector-store collection and every
component of the container are loaded lazily (building them must load no model
and touch no disk) and from several request threads: without the lock two
first questions could load two models at once. The unlocked first read keeps
every later use free of the lock.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, TypeVar

T = TypeVar("T")

_UNSET = object()


def build_once(holder: Any, name: str, lock: threading.Lock | threading.RLock, build: Callable[[], T]) -> T:
    """``holder.name`` - or ``holder[name]`` when ``holder`` is a dict - built by ``build`` the first time.

    On an object, ``None`` means "not built yet" (so setting the attribute back to None makes the next
    use build it again); in a dict a missing key does, so None can be a built value."""
    if isinstance(holder, dict):
        value = holder.get(name, _UNSET)
        if value is _UNSET:
            with lock:
                value = holder.get(name, _UNSET)
                if value is _UNSET:
                    value = holder[name] = build()
        return value
    value = getattr(holder, name)
    if value is None:
        with lock:
            value = getattr(holder, name)
            if value is None:
                value = build()
                setattr(holder, name, value)
    return value
