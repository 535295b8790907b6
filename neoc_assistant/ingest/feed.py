"""The ingest's first stage: files read, hashed, parsed and chunked in a background thread.

Why: files used to be parsed, chunked and embedded one after another, so the
embedder waited while a PDF was parsed and the parse worker waited while a file
was embedded. Here a thread prepares the next files while the main thread embeds
(``pipeline.py``). A thread is enough: parsing already runs in the child process
of ``isolation.py`` (the thread only waits on its pipe), and chunking is a few
per cent of the embedding's time (FEMA text: 6 s of 108 s), mostly in the Rust
tokenizer. The thread only reads the manifest; every write stays on the main
thread, which re-checks what the thread saw (``Prepared.kind``) before it acts.
"""

from __future__ import annotations

import hashlib
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

from neoc_assistant.errors import InputError
from neoc_assistant.ingest.chunking import Chunk
from neoc_assistant.ingest.loaders import LoadedDocument
from neoc_assistant.store.manifest import Manifest
from neoc_assistant.store.records import FileRecord


@dataclass
class Prepared:
    """One planned file as far as it goes without writing anything.

    ``kind``: ``unchanged`` (same stat), ``touch`` (same bytes, new stat), ``known`` (its content is
    already stored under another name), ``new`` (``doc`` and ``chunks`` are filled) or ``error``
    (``error`` holds what was raised, for the main thread to classify as it always did)."""

    path: Path
    root: Path
    source: str
    kind: str
    record: FileRecord | None = None
    status: str = "added"  # or "updated"
    doc: LoadedDocument | None = None
    chunks: list[Chunk] = field(default_factory=list)
    error: BaseException | None = None


class Preparer:
    """``prepare`` one file (the same steps on either thread); ``feed`` them from a background thread."""

    def __init__(self, manifest: Manifest, load: Callable[[Path, bytes, object], LoadedDocument],
                 split: Callable[[LoadedDocument], list[Chunk]]):
        self._manifest = manifest
        self._load = load
        self._split = split

    def prepare(self, path: Path, root: Path, source: str, progress=None) -> Prepared:
        try:
            return self._prepare(path, root, source, progress)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread, which decides
            return Prepared(path, root, source, "error", error=exc)

    def _prepare(self, path: Path, root: Path, source: str, progress) -> Prepared:
        stat = path.stat()
        previous = self._manifest.file(source)
        if (previous and previous.size == stat.st_size and previous.mtime_ns == stat.st_mtime_ns
                and previous.abs_path == str(path)):
            return Prepared(path, root, source, "unchanged")
        data = path.read_bytes()
        doc_hash = hashlib.sha256(data).hexdigest()[:32]
        record = FileRecord(source, str(root), str(path), stat.st_size, stat.st_mtime_ns, doc_hash, time.time())
        status = "updated" if previous else "added"
        if previous and previous.doc_hash == doc_hash:
            return Prepared(path, root, source, "touch", record, status)
        if self._manifest.has_document(doc_hash):
            return Prepared(path, root, source, "known", record, status)
        doc = self._load(path, data, progress)  # caps: ingest/limits.py, packages.py, isolation.py
        del data
        chunks = self._split(doc)
        if not chunks:
            raise InputError("no text could be extracted")
        return Prepared(path, root, source, "new", record, status, doc, chunks)

    def feed(self, plan: Sequence[tuple[Path, Path, str]], progress_of: Callable[[str], object],
             ahead: int) -> "Feed":
        return Feed(self, plan, progress_of, ahead)


_END = object()


class Feed:
    """Prepared files in plan order from a background thread, at most ``ahead`` waiting (their
    parsed text is held in memory). ``ahead=0``: each file is prepared when asked for, on the
    caller's thread (the sequential ingest, for comparison)."""

    def __init__(self, preparer: Preparer, plan: Sequence[tuple[Path, Path, str]],
                 progress_of: Callable[[str], object], ahead: int):
        self._preparer = preparer
        self._plan = list(plan)
        self._progress_of = progress_of
        self._ahead = ahead
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, ahead))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sync: Iterator[tuple[Path, Path, str]] = iter(self._plan)
        if ahead > 0 and self._plan:
            self._thread = threading.Thread(target=self._run, name="neoc-ingest-feed", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        for path, root, source in self._plan:
            if self._stop.is_set():
                return
            self._put(self._preparer.prepare(path, root, source, self._progress_of(source)))
        self._put(_END)

    def _put(self, item) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def get(self, block: bool) -> Prepared | None:
        """The next prepared file; None when the plan is done, or (``block=False``) none is ready yet:
        then ``done`` tells the two apart."""
        if self._thread is None:
            nxt = next(self._sync, None)
            if nxt is None:
                self.done = True
                return None
            return self._preparer.prepare(*nxt, self._progress_of(nxt[2]))
        try:
            item = self._queue.get(block=block)
        except queue.Empty:
            return None
        if item is _END:
            self.done = True
            return None
        return item

    done = False

    def close(self, abort: Callable[[], None]) -> None:
        """Stop preparing; ``abort`` ends a parse under way (the thread is waiting on it)."""
        self._stop.set()
        thread = self._thread
        if thread is None or not thread.is_alive():
            return
        while True:  # let a blocked put see the stop
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        thread.join(0.5)
        if thread.is_alive():
            abort()
            thread.join(10)
