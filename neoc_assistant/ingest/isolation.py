"""Read untrusted files in a child process with a memory ceiling and a time limit.

Why: a parser's memory is the whole machine's. Through the UI one hostile
DOCX took the server from 2.2 GB to 5.4 GB, and it stayed at 5.1 GB
afterwards (Python keeps what it freed); on an 8 GB laptop a slightly larger
one is an out-of-memory kill of everything else. The zip checks
(``packages.py``) refuse the bombs we know; this is the net under them and
under pypdf, lxml and BeautifulSoup's own ways to blow up.

Design, chosen by measurement (parse only, no embedding; FEMA corpus: 54
files, 2,014 pages; default knowledge base: 17 files). Prototypes, one run
each on a busy machine: in-process 28.9-32.6 s on FEMA; one worker reused for
the run 31.3 s (12 ms a file on the default knowledge base, most of it the
worker's start); a fresh process per file from a fork server 34.2 s (each new
process warms pypdf up again, and imports a script's main module again) and
9-19 ms a file on the default knowledge base; a fresh interpreter per file
55 ms a file. So one worker, spawned (it shares nothing with a parent full of
threads) and reused until it has grown, then replaced. As built
(``scripts/bench_parse.py``, quiet machine): FEMA 27.9 s vs 27.3 s in-process
(+2 %), the default knowledge base 0.35 s vs 0.03-0.12 s (+0.3 s a run:
starting the worker), against whole ingests of about 170 s and 8 s.

* its address space is capped (``RLIMIT_AS``) at its size after start-up plus
  ``store.parse_memory_mb``: a file that needs more fails with that reason;
* a worker that grew past ``RECYCLE_MB`` (or half the cap) exits after the file,
  so its memory goes back to the system at once; the worker is stopped at the
  end of every ingest run, so an idle server holds no parser at all;
* a file that takes longer than ``store.parse_timeout_seconds`` has its worker
  killed; one that kills its worker (a crash, the system's OOM killer) fails
  with what happened. Either way the next file gets a new worker and the
  ingest goes on.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import re
import signal
import threading
from dataclasses import dataclass
from multiprocessing.connection import wait
from pathlib import Path
from typing import TYPE_CHECKING

from neoc_assistant.errors import InputError
from neoc_assistant.ingest.loaders import LoadedDocument, load_document
from neoc_assistant.ingest.ocr import OcrOptions, Progress
from neoc_assistant.ingest.packages import PackageLimits
from neoc_assistant.runtime import configure_parse_worker

if TYPE_CHECKING:
    from neoc_assistant.settings import OcrSettings, StoreSettings

log = logging.getLogger(__name__)

MB = 1024 * 1024
# A worker that grew this much past its start is replaced after the file (the largest FEMA PDF
# needs 61 MB), so a large file's memory is returned instead of kept for the rest of the run.
RECYCLE_MB = 256
# A file that failed after the worker came this close to its cap, or with a message about allocating,
# failed for want of memory: parsers report a failed allocation as their own error (lxml: "unknown
# error"; zlib: "Unable to allocate output buffer"), which loaders turn into "not a readable DOCX".
MEMORY_BLAME_SHARE = 0.8
_ALLOCATION = re.compile(r"alloc|out of memory|memory error", re.IGNORECASE)
_STOP_SECONDS = 5.0
EXIT_NO_MEMORY = 3  # the worker could not even send its reply


@dataclass(frozen=True)
class ParseLimits:
    max_chars: int | None
    package: PackageLimits
    memory_mb: int | None  # None: no cap (tests of other things; platforms without RLIMIT_AS)
    timeout_seconds: float
    ocr: OcrOptions | None = OcrOptions()  # None: scanned pages are not read

    @classmethod
    def from_settings(cls, store: "StoreSettings", ocr: "OcrSettings | None" = None) -> "ParseLimits":
        package = PackageLimits(store.max_unpacked_mb_per_member, store.max_unpacked_mb_per_file,
                                store.max_compression_ratio)
        options = OcrOptions() if ocr is None else OcrOptions(
            ocr.enabled, ocr.languages, ocr.dpi, ocr.min_confidence, ocr.page_timeout_seconds, ocr.max_pages_per_file)
        return cls(store.max_chars_per_file, package, store.parse_memory_mb, store.parse_timeout_seconds, options)


class IsolatedParser:
    """``load`` is ``loaders.load_document`` run in the worker; every failure is an ``InputError``."""

    def __init__(self, limits: ParseLimits):
        self.limits = limits
        self._lock = threading.Lock()
        self._process = None
        self._conn = None
        self.started = 0  # workers started, for tests and benchmarks

    def load(self, path: Path, data: bytes, progress: Progress | None = None) -> LoadedDocument:
        """``progress(pages done, pages to do)`` is called as the worker reads scanned pages by OCR."""
        with self._lock:
            task = (str(path), data, self.limits.max_chars, self.limits.package, self.limits.ocr)
            for attempt in (1, 2):  # a worker that died while idle is replaced once
                try:
                    self._start_if_needed()
                    self._conn.send(task)
                    break
                except (OSError, EOFError) as exc:
                    if self._answered():  # it refused the task before reading all of it (no memory for it)
                        break
                    self._stop(kill=True)
                    if attempt == 2:
                        raise InputError(f"could not start the process that reads files: {exc}; check the "
                                         "machine's free memory and process limits, then ingest again") from exc
            return self._reply(progress)

    def _answered(self) -> bool:
        try:
            return self._conn is not None and self._conn.poll(0)
        except (OSError, EOFError):
            return False

    @property
    def worker_pid(self) -> int | None:
        """The worker's process id while one runs (to watch it, or to test its death)."""
        process = self._process
        return process.pid if process is not None else None

    def abort(self) -> None:
        """Kill the worker without waiting for the file it reads (an ingest interrupted while its
        background thread waits on a parse, ``feed.py``): that ``load`` then fails at once."""
        process = self._process
        if process is not None and process.is_alive():
            process.kill()

    def close(self) -> None:
        """Stop the worker (the end of an ingest run): its memory goes back to the system."""
        with self._lock:
            self._stop()

    # -- the parent's side ------------------------------------------------------------------------
    def _start_if_needed(self) -> None:
        if self._process is not None and self._process.is_alive():
            return
        self._stop(kill=True)
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        process = context.Process(target=serve, args=(child, self.limits.memory_mb), daemon=True,
                                  name="neoc-parser")
        process.start()
        child.close()
        self._process, self._conn = process, parent
        self.started += 1

    def _reply(self, progress: Progress | None = None) -> LoadedDocument:
        """The worker's answer. While it reads pages by OCR it reports each page, and each report
        restarts the time limit: OCR's own limit is per page (``ocr.page_timeout_seconds``), and a
        long scan must not fail for being long."""
        while True:
            message = self._next_message()
            if message[0] != "progress":
                break
            if progress is not None:
                progress(*message[1])
        kind, payload, recycle = message
        if recycle:
            self._stop()
        if kind == "ok":
            return payload
        if kind == "memory":
            raise InputError(self._memory_message(payload))
        raise InputError(payload)

    def _next_message(self) -> tuple:
        ready = wait([self._conn, self._process.sentinel], timeout=self.limits.timeout_seconds)
        if not ready:
            self._stop(kill=True)
            seconds = self.limits.timeout_seconds
            log.warning("parser worker stopped: a file took longer than %g s", seconds)
            raise InputError(
                f"reading it took longer than {seconds:g} s (the limit store.parse_timeout_seconds, env "
                "NEOC_STORE__PARSE_TIMEOUT_SECONDS), so it was stopped: the file is damaged or built to "
                "exhaust readers; re-save it from the program that made it, or raise the limit if it is "
                "just very large")
        try:
            return self._conn.recv()
        except (EOFError, OSError):
            raise InputError(self._death()) from None

    def _memory_message(self, said: str) -> str:
        said = f" (the reader said: {said})" if said else ""
        return (f"reading it needs more than {self.limits.memory_mb or 0:,} MB of memory (the limit "
                f"store.parse_memory_mb, env NEOC_STORE__PARSE_MEMORY_MB){said}: the file is damaged or built "
                "to exhaust readers; re-save it, or raise the limit if it really is one large document")

    def _death(self) -> str:
        process = self._process
        process.join(_STOP_SECONDS)
        code = process.exitcode
        self._stop(kill=True)
        log.warning("parser worker ended while reading a file (exit code %s)", code)
        if code == EXIT_NO_MEMORY:
            return self._memory_message("")
        if code is not None and code < 0:
            name = _signal_name(-code)
            if -code == signal.SIGKILL:
                return (f"the process reading it was killed ({name}; usually the system running out of memory) "
                        "- the file needs more memory than this machine can give; nothing of it was stored")
            return (f"the process reading it crashed ({name}): the file is damaged or built to crash readers; "
                    "re-save it from the program that made it and ingest it again")
        return f"the process reading it stopped unexpectedly (exit status {code}); try again, and report it if it stays"

    def _stop(self, *, kill: bool = False) -> None:
        process, conn = self._process, self._conn
        self._process = self._conn = None
        if process is None:
            return
        if not kill and process.is_alive():
            try:
                conn.send(None)
            except (OSError, ValueError):
                pass
            process.join(_STOP_SECONDS)
        if process.is_alive():
            process.kill()
            process.join(_STOP_SECONDS)
        conn.close()


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


# -- the worker's side ------------------------------------------------------------------------------
def serve(conn, memory_mb: int | None) -> None:
    """The worker: cap the address space, then read (path, data, max_chars, package, ocr) tasks until None.
    OCR's programs (pdftoppm, tesseract) are its children and inherit the cap."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it stops the worker
    configure_parse_worker()
    _import_parsers()  # before the cap is measured, so the libraries do not count against a file
    base = _vm_kb("VmSize")
    cap = _set_cap(base, memory_mb)
    recycle_at = None if base is None else base + min(RECYCLE_MB, (memory_mb or 2 * RECYCLE_MB) // 2) * 1024
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        except MemoryError:  # the file's bytes alone do not fit under the cap
            _send(conn, ("memory", "", True))
            return
        if task is None:
            return

        def progress(done: int, total: int) -> None:
            _send(conn, ("progress", (done, total), False))

        path, data, max_chars, package, ocr = task
        del task
        kind, payload = _load(path, data, max_chars, package, ocr, progress)
        del data
        peak = _vm_kb("VmPeak")
        if kind == "error" and _short_of_memory(str(payload), peak, base, cap):
            kind = "memory"
        recycle = kind == "memory" or (peak is not None and recycle_at is not None and peak > recycle_at)
        if not _send(conn, (kind, payload, recycle)) or recycle:
            return


def _short_of_memory(message: str, peak_kb: int | None, base_kb: int | None, cap_kb: int | None) -> bool:
    """Whether a file's failure was for want of memory: the parser said so, or the worker came close to its
    cap. Without a cap, or when ``VmPeak``/``VmSize`` could not be read, only the message can tell."""
    if not cap_kb:
        return False
    if _ALLOCATION.search(message):
        return True
    if peak_kb is None or base_kb is None:
        return False
    return peak_kb >= base_kb + MEMORY_BLAME_SHARE * (cap_kb - base_kb)


def _send(conn, reply) -> bool:
    """Send ``reply``; False when the parent is gone (nothing left to do)."""
    try:
        conn.send(reply)
        return True
    except MemoryError:
        os._exit(EXIT_NO_MEMORY)
    except OSError:
        return False


def _load(path: str, data: bytes, max_chars: int | None, package: PackageLimits, ocr: OcrOptions | None,
          progress: Progress) -> tuple[str, object]:
    try:
        return "ok", load_document(Path(path), data, max_chars, package, ocr=ocr, progress=progress)
    except InputError as exc:
        return "error", str(exc)
    except MemoryError:
        return "memory", ""
    except RecursionError:
        return "error", "the file nests its structure too deeply to be read; it is damaged or built to exhaust readers"
    except Exception as exc:  # noqa: BLE001 - whatever a parser raises is this file's failure
        return "error", f"could not be read ({type(exc).__name__}: {str(exc)[:300]})"


def _import_parsers() -> None:
    import bs4  # noqa: F401
    import charset_normalizer  # noqa: F401
    import docx  # noqa: F401
    import pypdf  # noqa: F401
    # Not here: openpyxl, odfpy, python-pptx, Pillow and pytesseract (0.6 s more a worker start, measured;
    # every ingest run starts one, most never read a spreadsheet, deck or scan). They load with the first
    # such file, and their few tens of MB count against its cap.


def _set_cap(base_kb: int | None, memory_mb: int | None) -> int | None:
    """Cap the address space at ``base_kb`` + ``memory_mb``; returns the cap in kB (None: not capped)."""
    if not memory_mb or base_kb is None:
        return None
    try:
        import resource

        cap = base_kb * 1024 + memory_mb * MB
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            cap = min(cap, hard)
        resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
        return cap // 1024
    except (ImportError, ValueError, OSError, AttributeError):
        return None


def _vm_kb(field: str) -> int | None:
    """``VmSize``/``VmPeak`` of this process in kB (Linux), None elsewhere."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None
