"""Incremental, idempotent ingest of files and folders into the knowledge base.

Per file: an unchanged stat (size, mtime, path) costs no read at all; changed
bytes with a known hash cost no embedding (a touched file, or the same content
under another name); only new content is loaded, chunked and embedded. The
write protocol that makes each file all-or-nothing is described in
``store/manifest.py``. A folder is the source of truth for what was ingested
from it: files that disappeared from it are purged unless ``prune=False``.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from neoc_assistant.errors import InputError, NeocError, StoreError
from neoc_assistant.ingest.chunking import Chunker
from neoc_assistant.ingest.loaders import SUPPORTED_SUFFIXES, load_document
from neoc_assistant.settings import StoreSettings
from neoc_assistant.store.embeddings import Embedder
from neoc_assistant.store.manifest import Manifest
from neoc_assistant.store.records import ChunkRecord, FileRecord
from neoc_assistant.store.vector_store import VectorStore

log = logging.getLogger(__name__)

PIPELINE_VERSION = "chunker-v1"


@dataclass
class FileOutcome:
    source: str
    status: str  # added | updated | unchanged | purged | failed | skipped
    chunks: int = 0
    pages: int = 0
    reason: str = ""


@dataclass
class IngestSummary:
    outcomes: list[FileOutcome] = field(default_factory=list)
    seconds: float = 0.0
    kb_version: str = ""
    notes: list[str] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def failed(self) -> list[FileOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def chunks_added(self) -> int:
        return sum(o.chunks for o in self.outcomes if o.status in ("added", "updated"))

    def to_dict(self) -> dict:
        return {
            "added": self.count("added"),
            "updated": self.count("updated"),
            "unchanged": self.count("unchanged"),
            "purged": self.count("purged"),
            "failed": self.count("failed"),
            "skipped": self.count("skipped"),
            "chunks": self.chunks_added,
            "pages": sum(o.pages for o in self.outcomes if o.status in ("added", "updated")),
            "seconds": round(self.seconds, 3),
            "kb_version": self.kb_version,
            "failures": [{"source": o.source, "reason": o.reason} for o in self.failed],
            "skipped_files": [{"source": o.source, "reason": o.reason} for o in self.outcomes if o.status == "skipped"],
            "notes": self.notes,
            "files": [asdict(o) for o in self.outcomes],
        }


ProgressCallback = Callable[[int, int, str], None]  # (done, total, current source)


class Ingestor:
    def __init__(self, settings: StoreSettings, data_dir: Path, manifest: Manifest, vectors: VectorStore,
                 embedder: Embedder):
        """``settings``: the chunk sizes; ``data_dir``: where the one-ingest-at-a-time lock lives."""
        self._settings = settings
        self._data_dir = Path(data_dir)
        self._manifest = manifest
        self._vectors = vectors
        self._embedder = embedder
        self._chunker: Chunker | None = None

    @property
    def pipeline_fingerprint(self) -> str:
        s = self._settings
        return f"{PIPELINE_VERSION};model={self._embedder.model_id};size={s.chunk_size_tokens};overlap={s.chunk_overlap_tokens}"

    @property
    def chunker(self) -> Chunker:
        if self._chunker is None:
            e = self._embedder
            self._chunker = Chunker(
                e.tokenizer, self._settings.chunk_size_tokens, self._settings.chunk_overlap_tokens, e.max_tokens
            )
        return self._chunker

    # -- public API ---------------------------------------------------------------
    def ingest(
        self,
        paths: Iterable[Path],
        *,
        prune: bool = True,
        show_progress: bool = False,
        on_progress: ProgressCallback | None = None,
    ) -> IngestSummary:
        started = time.perf_counter()
        summary = IngestSummary()
        with self._exclusive():
            self._manifest.refresh(strict=True)  # a shared knowledge base: start from its current state
            self._finish_interrupted_writes()
            self._check_pipeline(summary)
            plan, roots = self._plan(paths, summary)
            bar = _progress_bar(len(plan), show_progress)
            try:
                for done, (path, root, source) in enumerate(plan):
                    if bar is not None:
                        bar.set_postfix_str(_short(source), refresh=False)
                    if on_progress:
                        on_progress(done, len(plan), source)
                    summary.outcomes.append(self._ingest_file(path, root, source))
                    if bar is not None:
                        bar.update(1)
            finally:
                if bar is not None:
                    bar.close()
            if on_progress:
                on_progress(len(plan), len(plan), "")
            if prune:
                seen = {source for _, _, source in plan}
                for root in roots:
                    gone = [r.source for r in self._manifest.files_under(str(root)) if r.source not in seen]
                    summary.outcomes.extend(self._remove(gone, "no longer in " + str(root)))
        summary.seconds = time.perf_counter() - started
        summary.kb_version = self._manifest.kb_version()
        return summary

    def delete(self, sources: Iterable[str]) -> IngestSummary:
        """Remove documents by source name (UI 'delete', `ingest --delete`)."""
        started = time.perf_counter()
        summary = IngestSummary()
        with self._exclusive():
            self._manifest.refresh(strict=True)
            known = [s for s in sources if self._manifest.file(s)]
            summary.outcomes.extend(self._remove(known, "deleted on request"))
        summary.seconds = time.perf_counter() - started
        summary.kb_version = self._manifest.kb_version()
        return summary

    # -- steps ------------------------------------------------------------------------
    def _exclusive(self):
        from filelock import FileLock, Timeout

        lock_path = self._data_dir / "ingest.lock"
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(lock_path), timeout=0)

        class _Guard:
            def __enter__(inner):
                try:
                    lock.acquire()
                except Timeout as exc:
                    raise StoreError(
                        f"Another ingest is running on {self._data_dir} (lock {lock_path}). "
                        "Wait for it to finish, then retry."
                    ) from exc

            def __exit__(inner, *exc):
                lock.release()

        return _Guard()

    def _finish_interrupted_writes(self) -> None:
        """Delete vectors a killed run left behind (see the protocol in manifest.py)."""
        pending = self._manifest.pending_chroma_hashes()
        stale = [h for h in pending if not self._manifest.has_document(h)]
        if stale:
            log.info("removing %d partially written or replaced document(s) from the vector store", len(stale))
            self._vectors.delete_documents(stale)
        for doc_hash in pending:
            self._manifest.clear_pending(doc_hash)

    def _check_pipeline(self, summary: IngestSummary) -> None:
        current = self.pipeline_fingerprint
        stored = self._manifest.get_meta("pipeline")
        if stored == current:
            return
        if stored is not None and self._manifest.counts()["documents"]:
            summary.notes.append(
                "chunking settings or embedding model changed: the knowledge base was cleared and "
                "everything given is re-embedded; re-ingest any other folders you had ingested"
            )
            old = self._manifest.reset(current)
            self._vectors.delete_documents(old)
        else:
            self._manifest.set_meta("pipeline", current)

    def _plan(self, paths: Iterable[Path], summary: IngestSummary) -> tuple[list[tuple[Path, Path, str]], list[Path]]:
        plan: list[tuple[Path, Path, str]] = []
        roots: list[Path] = []
        for given in paths:
            path = Path(given).expanduser()
            if not path.exists():
                summary.outcomes.append(FileOutcome(str(given), "failed", reason="path does not exist"))
                continue
            path = path.resolve()
            if path.is_dir():
                roots.append(path)
                files = sorted(p for p in path.rglob("*") if p.is_file() and not _hidden(p.relative_to(path)))
                for file in files:
                    source = file.relative_to(path).as_posix()
                    if file.suffix.lower() not in SUPPORTED_SUFFIXES:
                        summary.outcomes.append(
                            FileOutcome(source, "skipped", reason=f"unsupported file type '{file.suffix or '(none)'}'")
                        )
                        continue
                    plan.append((file, path, source))
            elif path.suffix.lower() not in SUPPORTED_SUFFIXES:
                summary.outcomes.append(
                    FileOutcome(path.name, "skipped", reason=f"unsupported file type '{path.suffix or '(none)'}'")
                )
            else:
                plan.append((path, path.parent, path.name))
        return plan, roots

    def _ingest_file(self, path: Path, root: Path, source: str) -> FileOutcome:
        try:
            return self._ingest_file_unguarded(path, root, source)
        except InputError as exc:
            return FileOutcome(source, "failed", reason=str(exc))
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise StoreError(
                    f"No space left on the device holding {self._data_dir} while ingesting {source}. "
                    "Free disk space and re-run; files already ingested are kept and this one was not stored."
                ) from exc
            return FileOutcome(source, "failed", reason=f"cannot read file: {exc.strerror or exc}")
        except NeocError:
            raise
        except Exception as exc:  # noqa: BLE001 - one bad file never aborts the run
            log.exception("ingest of %s failed", source)
            return FileOutcome(source, "failed", reason=f"{type(exc).__name__}: {exc}")

    def _ingest_file_unguarded(self, path: Path, root: Path, source: str) -> FileOutcome:
        stat = path.stat()
        previous = self._manifest.file(source)
        if (
            previous
            and previous.size == stat.st_size
            and previous.mtime_ns == stat.st_mtime_ns
            and previous.abs_path == str(path)
        ):
            return FileOutcome(source, "unchanged")
        data = path.read_bytes()
        doc_hash = hashlib.sha256(data).hexdigest()[:32]
        record = FileRecord(source, str(root), str(path), stat.st_size, stat.st_mtime_ns, doc_hash, time.time())
        status = "updated" if previous else "added"
        if previous and previous.doc_hash == doc_hash:
            self._manifest.touch_file(record)
            return FileOutcome(source, "unchanged")
        if self._manifest.has_document(doc_hash):
            others = self._manifest.sources_of([doc_hash])[doc_hash]
            self._drop_vectors(self._manifest.commit_file(record))
            return FileOutcome(source, status, reason=f"same content as {', '.join(others)}; stored once")

        doc = load_document(path, data)
        chunks = self.chunker.split(doc)
        if not chunks:
            raise InputError("no text could be extracted")
        vectors = self._embedder.encode([c.text for c in chunks])
        ids = [f"{doc_hash[:16]}-{c.index:05d}" for c in chunks]
        self._manifest.mark_pending(doc_hash, "writing")
        self._vectors.upsert(ids, vectors, doc_hash, [c.page for c in chunks])
        document = {
            "doc_hash": doc_hash,
            "title": doc.title,
            "doc_type": doc.doc_type,
            "n_pages": sum(1 for p in doc.pages if p.number is not None) or 1,
            "n_chunks": len(chunks),
            "ingested_at": record.ingested_at,
        }
        records = [
            ChunkRecord(cid, doc_hash, c.index, c.page, c.section, c.text, c.content_hash) for cid, c in zip(ids, chunks)
        ]
        self._drop_vectors(self._manifest.commit_file(record, document=document, chunks=records))
        return FileOutcome(source, status, chunks=len(chunks), pages=document["n_pages"], reason="; ".join(doc.notes))

    def _remove(self, sources: list[str], reason: str) -> list[FileOutcome]:
        if not sources:
            return []
        self._drop_vectors(self._manifest.remove_files(sources))
        return [FileOutcome(s, "purged", reason=reason) for s in sources]

    def _drop_vectors(self, doc_hashes: list[str]) -> None:
        if doc_hashes:
            self._vectors.delete_documents(doc_hashes)
            for doc_hash in doc_hashes:
                self._manifest.clear_pending(doc_hash)


def _hidden(relative: Path) -> bool:
    return any(part.startswith((".", "~$")) for part in relative.parts)


def _short(source: str, width: int = 40) -> str:
    return source if len(source) <= width else "…" + source[-(width - 1) :]


def _progress_bar(total: int, enabled: bool):
    if not enabled or total == 0:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="file", desc="ingest", file=sys.stderr, dynamic_ncols=True)
