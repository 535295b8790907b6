"""The process environment an offline assistant needs, set in this one place.

Libraries read these variables once, when they are first imported or first
load a native runtime, so ``configure_process()`` runs at start-up: the CLI
calls it first thing, ``Container`` when it is built, and the few places that
import a heavy library (torch, Chroma, llama.cpp, Gradio) call it again just
before - it is idempotent and never overrides a value the user set.

* **Offline, no telemetry** - the Hugging Face hub and transformers never try
  the network (models are local directories), Chroma, the hub and Gradio send
  no analytics.
* **Quiet** - no download progress bars, transformers logs errors only.
* **OpenMP spin** - see ``_tune_openmp_spin``.
"""

from __future__ import annotations

import logging
import os
import threading

log = logging.getLogger(__name__)

_lock = threading.Lock()
_configured = False

_DEFAULTS = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
    "ANONYMIZED_TELEMETRY": "False",  # Chroma
    "DO_NOT_TRACK": "1",
    "GRADIO_RUN_HISTORY": "False",
    "GRADIO_SSR_MODE": "False",
}


def configure_process() -> None:
    """Set the variables above (once per process; explicit user settings win, except analytics)."""
    global _configured
    with _lock:
        if _configured:
            return
        for name, value in _DEFAULTS.items():
            os.environ.setdefault(name, value)
        os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # forced: it would phone home
        _tune_openmp_spin()
        _configured = True


def configure_parse_worker() -> None:
    """The ingest's parse worker (``ingest/isolation.py``) runs Tesseract for scanned pages: one OpenMP
    thread per Tesseract. On the shared 2-core machine its default (a thread per core) read 0.26 pages/s
    against 0.53-0.56 with one (``scripts/bench_ocr.py``, 3 FEMA pages at 300 dpi), since the cores are
    already busy embedding. Only the worker and its children get it: torch and llama.cpp keep theirs."""
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")


_M_ARENA_MAX = -8  # glibc's mallopt parameter number (malloc.h)


def cap_malloc_arenas(arenas: int) -> bool:
    """Let glibc's malloc keep at most ``arenas`` heaps (``serve.malloc_arenas``); True if it took effect.

    Why: glibc gives each thread that allocates concurrently a heap of its own, up to 8 per core, and
    keeps their freed memory. A server answering 50 officers runs tens of request threads, so those
    heaps add hundreds of MB: one 50-user run of Qwen2.5-0.5B peaked at 2044 MB with glibc's default
    and 1858 MB with ``MALLOC_ARENA_MAX=2`` (README, memory at 50 users). ``mallopt`` applies to heaps
    created after the call, so ``serve`` calls it before its threads start. An explicit
    ``MALLOC_ARENA_MAX`` in the environment wins (glibc read it at start); 0, or a C library that is
    not glibc, leaves the default."""
    if arenas <= 0 or "MALLOC_ARENA_MAX" in os.environ:
        return False
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(_M_ARENA_MAX, int(arenas)))
    except (OSError, AttributeError):  # not glibc: no mallopt, or another meaning
        return False


def set_gradio_temp_dir(path) -> None:
    """Keep Gradio's upload temp files next to our data (before gradio is imported)."""
    os.environ.setdefault("GRADIO_TEMP_DIR", str(path))


def _libgomp_loaded() -> bool:
    try:
        with open("/proc/self/maps") as fh:
            return "libgomp" in fh.read()
    except OSError:
        return False


def _tune_openmp_spin() -> None:
    """Make OpenMP threads (llama.cpp's, torch's) spin only briefly before sleeping.

    llama.cpp's CPU backend (built with OpenMP here) synchronises its threads
    with an OpenMP barrier after every graph node, hundreds of times per token.
    libgomp's default is to spin 300,000 times at a barrier before sleeping:
    ideal on an idle machine, but when other processes (or our own embedding
    model) want the same 2 cores, a spinning thread burns the time slice its
    partner needs and decoding collapses. Measured on the shared 2-core
    machine, 0.5B shape, 2 threads, tokens/s:

        policy                      quiet machine   busy machine (load ~4)
        default (spin 300k)         46-48           0.7-15
        GOMP_SPINCOUNT=1000         44-49           20-29
        OMP_WAIT_POLICY=PASSIVE     ~32             24-30

    A short spin keeps full speed when the cores are free and degrades
    gracefully when they are not. libgomp reads these variables once, when it
    is first loaded (torch ships a libgomp with the same soname), so this must
    run before torch or llama.cpp is imported; an explicit user setting of
    either variable is never overridden.
    """
    if "OMP_WAIT_POLICY" in os.environ or "GOMP_SPINCOUNT" in os.environ:
        return
    if _libgomp_loaded():
        log.info("OpenMP was initialised before the assistant configured it; set GOMP_SPINCOUNT=1000 at start-up "
                 "for steadier generation speed when the CPU is busy")
    os.environ["GOMP_SPINCOUNT"] = "1000"


def physical_cores() -> int:
    """Threads worth running for CPU-bound work (hyper-threads share a core's units)."""
    import psutil

    return psutil.cpu_count(logical=False) or os.cpu_count() or 1
