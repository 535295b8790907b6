"""The process settings of ``runtime.py`` that a server relies on: glibc's malloc heaps capped."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# Eight threads allocate at once, then glibc's malloc_stats() lists one "Arena N:" block per heap.
_THREADS = """
import ctypes, sys, threading
from neoc_assistant.runtime import cap_malloc_arenas
took = cap_malloc_arenas(int(sys.argv[1]))
keep, start = [], threading.Barrier(8)
def work():
    start.wait()
    keep.extend(bytearray(4096) for _ in range(200))
threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
sys.stderr.flush()
ctypes.CDLL("libc.so.6").malloc_stats()
print(took)
"""


def _heaps(arenas: int, **env) -> tuple[int, str]:
    run = subprocess.run([sys.executable, "-c", _THREADS, str(arenas)], capture_output=True, text=True, timeout=60,
                         cwd=REPO, env={**{k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}, **env})
    assert run.returncode == 0, run.stderr
    return len(re.findall(r"^Arena \d+:", run.stderr, re.M)), run.stdout.strip()


def test_the_server_keeps_at_most_the_configured_malloc_heaps():
    default, took = _heaps(0)
    assert took == "False" and default > 2, default  # glibc's default: a heap per allocating thread
    capped, took = _heaps(2)
    assert took == "True" and capped <= 2, capped


def test_an_explicit_malloc_arena_max_is_left_to_glibc():
    heaps, took = _heaps(2, MALLOC_ARENA_MAX="4")
    assert took == "False" and heaps <= 4
