"""build_once: the first use builds, every other use - concurrent or later - gets the same object."""

from __future__ import annotations

import threading
import time

from neoc_assistant.lazy import build_once


class Holder:
    def __init__(self):
        self._model = None
        self._lock = threading.Lock()
        self.builds = 0

    def _load(self):
        self.builds += 1
        time.sleep(0.05)  # long enough for every thread to arrive while the first one builds
        return object()

    @property
    def model(self):
        return build_once(self, "_model", self._lock, self._load)


def test_many_threads_at_once_build_one_value():
    holder = Holder()
    start = threading.Barrier(8)
    seen = []

    def use():
        start.wait()
        seen.append(holder.model)

    threads = [threading.Thread(target=use) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert holder.builds == 1 and len({id(v) for v in seen}) == 1


def test_an_attribute_set_back_to_none_is_built_again():
    holder = Holder()
    first = holder.model
    holder._model = None  # as the vector store does when it reopens
    assert holder.model is not first and holder.builds == 2


def test_in_a_dict_none_is_a_built_value_and_an_injected_one_is_kept():
    table = {"injected": "stand-in"}
    lock = threading.RLock()
    calls = []
    assert build_once(table, "cache", lock, lambda: calls.append(1)) is None  # built: None (caching off)
    assert build_once(table, "cache", lock, lambda: calls.append(1)) is None
    assert calls == [1]
    assert build_once(table, "injected", lock, lambda: "built") == "stand-in"


def test_a_failed_build_is_tried_again_next_time():
    holder = Holder()
    attempts = []

    def flaky():
        attempts.append(1)
        if len(attempts) == 1:
            raise OSError("disk busy")
        return "ok"

    try:
        build_once(holder, "_model", holder._lock, flaky)
    except OSError:
        pass
    assert build_once(holder, "_model", holder._lock, flaky) == "ok" and len(attempts) == 2
