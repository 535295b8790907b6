"""Incremental, idempotent ingest of files and folders into the knowledge base.

Per file: an unchanged stat (size, mtime, path) costs no read at all; changed
bytes with a known hash cost no embedding (a touched file, or the same content
under another name); only new content is loaded (in a child process with a
memory ceiling: ``isolation.py``), chunked and embedded. The
write protocol that makes each file all-or-nothing is described in
``store/manifest.py``. A folder is the source of truth for what was ingested
from it: files under it that disappeared are purged unless ``prune=False``.
Which files a run covers and the names they get: ``sources.py``.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from neoc_assistant.errors import InputError, NeocError, StoreError
from neoc_assistant.ingest.chunking import Chunker
from neoc_assistant.ingest.isolation import IsolatedParser, ParseLimits
from neoc_assistant.ingest.names import normalize, printable, spelled
from neoc_assistant.ingest.progress import page_progress, progress_bar, short
from neoc_assistant.ingest.sources import plan_sources, source_name
from neoc_assistant.ingest.versions import link_versions
from neoc_assistant.settings import StoreSettings
from neoc_assistant.store.database import read_only_message
from neoc_assistant.store.drift import find_drift, repair, vectors_probably_drifted
from neoc_assistant.store.embeddings import Embedder
from neoc_assistant.store.identity import reembed, reembed_bar, same_chunking
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
    def __init__(self, settings: StoreSettings, data_dir: Path, kb_dir: Path, manifest: Manifest,
                 vectors: VectorStore, embedder: Embedder, parser: IsolatedParser | None = None):
        """``settings``: chunk sizes, link rule, per-file caps; ``data_dir``: where the one-ingest-at-a-time
        lock lives; ``kb_dir``: the folder source names are relative to; ``parser``: reads files (by
        default in a child process with the caps of ``settings``)."""
        self._settings = settings
        self._parser = parser or IsolatedParser(ParseLimits.from_settings(settings))
        self._data_dir = Path(data_dir)
        self._kb_dir = Path(kb_dir).expanduser().resolve()
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
            self._prepare(summary)
            planned = plan_sources(paths, self._kb_dir, follow_external_symlinks=self._settings.follow_external_symlinks,
                                   ingested=self._manifest.file_paths())
            summary.outcomes.extend(FileOutcome(source, status, reason=reason) for source, status, reason in planned.refused)
            plan = [(f.path, f.root, f.source) for f in planned.files]
            bar = progress_bar(len(plan), show_progress)
            try:
                for done, (path, root, source) in enumerate(plan):
                    if bar is not None:
                        bar.set_postfix_str(short(printable(source)), refresh=False)
                    if on_progress:
                        on_progress(done, len(plan), source)
                    summary.outcomes.append(self._ingest_file(path, root, source, page_progress(bar, source)))
                    if bar is not None:
                        bar.update(1)
            finally:
                self._parser.close()  # the parser's memory goes back to the system with each run
                if bar is not None:
                    bar.close()
            if on_progress:
                on_progress(len(plan), len(plan), "")
            if prune:
                seen = {source for _, _, source in plan}
                for root in planned.roots:
                    gone = [r.source for r in self._manifest.files_under(str(root)) if r.source not in seen]
                    summary.outcomes.extend(self._remove(gone, "no longer in " + str(root)))
            summary.notes.extend(link_versions(self._manifest))  # revisions of one document (versions.py)
        summary.seconds = time.perf_counter() - started
        summary.kb_version = self._manifest.kb_version()
        return summary

    def repair(self, show_progress: bool = False) -> IngestSummary:
        """Compare every vector id with the manifest and fix what differs (`ingest --repair`); a store
        embedded with another model is re-embedded from the manifest (`kb reembed`), with a progress bar."""
        started = time.perf_counter()
        summary = IngestSummary()
        with self._exclusive(), reembed_bar(show_progress) as bar:
            self._prepare(summary, full_drift_check=True, progress=bar)
        summary.seconds = time.perf_counter() - started
        summary.kb_version = self._manifest.kb_version()
        return summary

    def rebuild(self, paths: Iterable[Path]) -> IngestSummary:
        """Start a new manifest from ``paths`` (`ingest --rebuild`, the way out of a corrupt one). The old
        file is moved to ``<data_dir>/damaged-<time>/``, never deleted; vectors whose text is unchanged
        are reused and those of files that are gone are removed by the drift repair."""
        with self._exclusive():
            folder = self._data_dir / time.strftime("damaged-%Y%m%d-%H%M%S")
            moved = self._manifest.move_aside(folder)
        summary = self.ingest(paths)
        if moved:
            summary.notes.insert(0, f"the old manifest was moved to {folder}")
        return summary

    def delete(self, sources: Iterable[str]) -> IngestSummary:
        """Remove documents by source name (UI 'delete', `ingest --delete`)."""
        started = time.perf_counter()
        summary = IngestSummary()
        with self._exclusive():
            self._prepare(summary)
            known = [s for s in dict.fromkeys(normalize(s) for s in sources) if self._manifest.file(s)]
            summary.outcomes.extend(self._remove(known, "deleted on request"))
            summary.notes.extend(link_versions(self._manifest))
        summary.seconds = time.perf_counter() - started
        summary.kb_version = self._manifest.kb_version()
        return summary

    # -- for other writers (a bundle import, bundles/apply.py) ------------------------------------
    def exclusive(self):
        """The one-writer-at-a-time lock ingest holds: an import takes it too."""
        return self._exclusive()

    def finish_interrupted_writes(self) -> None:
        """Delete the vectors a killed ingest or import left behind."""
        self._finish_interrupted_writes()

    @property
    def source_scheme(self) -> str:
        """The folder source names are made relative to (``Manifest.rename_sources``' scheme)."""
        return str(self._kb_dir)

    # -- steps ------------------------------------------------------------------------
    def _exclusive(self):
        from filelock import FileLock, Timeout

        lock_path = self._data_dir / "ingest.lock"
        lock = FileLock(str(lock_path), timeout=0)

        class _Guard:
            def __enter__(inner):
                try:
                    lock_path.parent.mkdir(parents=True, exist_ok=True)
                    lock.acquire()
                except Timeout as exc:  # before OSError: filelock's Timeout is a TimeoutError
                    raise StoreError(
                        f"Another ingest is running on {self._data_dir} (lock {lock_path}). "
                        "Wait for it to finish, then retry."
                    ) from exc
                except OSError as exc:
                    raise StoreError(read_only_message(self._data_dir, exc.strerror or str(exc))) from exc

            def __exit__(inner, *exc):
                lock.release()

        return _Guard()

    def _prepare(self, summary: IngestSummary, *, full_drift_check: bool = False, progress=None) -> None:
        """What every write starts with: refuse a damaged manifest, see what other processes wrote,
        finish what a killed run left, bring names and vectors up to date."""
        integrity = self._manifest.integrity() if self._manifest.path.exists() else {"ok": True}
        if not integrity["ok"]:
            raise StoreError(integrity["message"])
        self._manifest.refresh(strict=True)  # a shared knowledge base: start from its current state
        self._vectors.refresh(self._manifest.kb_version())
        renamed = self._manifest.rename_sources(str(self._kb_dir), self._source_namer())
        if renamed:
            self._vectors.note_written(self._manifest.kb_version())
            summary.notes.append(f"{renamed} document name(s) changed to the form that cannot collide "
                                 "(relative to the knowledge-base folder, or the full path outside it)")
        self._normalize_names(summary)
        self._finish_interrupted_writes()
        self._check_pipeline(summary, progress)
        if full_drift_check or vectors_probably_drifted(self._manifest, self._vectors):
            drift = find_drift(self._manifest, self._vectors)
            if not drift.none:
                log.warning("manifest and vector store disagree: %s; repairing", drift.describe())
                summary.notes.append(repair(self._manifest, self._vectors, self._embedder, drift))

    def _normalize_names(self, summary: IngestSummary) -> None:
        """Names stored before they were normalised (``names.py``) take their NFC form, once per manifest."""
        renamed, merged = self._manifest.normalize_sources("NFC", normalize)
        if renamed or merged:
            self._vectors.note_written(self._manifest.kb_version())
        if renamed:
            summary.notes.append(f"{renamed} document name(s) stored in another Unicode form (NFD, e.g. from a "
                                 "macOS copy) now have their usual one (NFC); nothing was re-read or re-embedded")
        for dropped, kept in merged:
            summary.notes.append(f"{printable(kept)!r} was stored twice, under names that look the same ({spelled(kept)} "
                                 f"and {spelled(dropped)}); {spelled(dropped)} was removed, and its file is "
                                 "refused until one of the two files is renamed")

    def _source_namer(self):
        """How ``rename_sources`` names a file it knows by absolute path. A file that was inside the
        KB folder the names were last made for keeps its relative name: the folder moved (a copied
        installation, a restored backup), the documents did not."""
        previous = self._manifest.get_meta("source_names")

        def name_of(abs_path: str, current: str) -> str:
            path = Path(abs_path)
            if previous:
                try:
                    return normalize(path.relative_to(previous).as_posix())
                except ValueError:
                    pass
            name = source_name(path, self._kb_dir)
            if not previous and name == normalize(path.as_posix()) and (self._kb_dir / current).is_file():
                return normalize(current)  # a manifest from before the naming rule, whose KB folder was copied elsewhere
            return name

        return name_of

    def _finish_interrupted_writes(self) -> None:
        """Delete vectors a killed run left behind (see the protocol in manifest.py)."""
        pending = self._manifest.pending_chroma_hashes()
        stale = [h for h in pending if not self._manifest.has_document(h)]
        if stale:
            log.info("removing %d partially written or replaced document(s) from the vector store", len(stale))
            self._vectors.delete_documents(stale)
        for doc_hash in pending:
            self._manifest.clear_pending(doc_hash)

    def _check_pipeline(self, summary: IngestSummary, progress=None) -> None:
        current = self.pipeline_fingerprint
        stored = self._manifest.get_meta("pipeline")
        if stored == current:
            return
        if stored is not None and self._manifest.counts()["documents"] and same_chunking(stored, current):
            # Only the embedding model changed: the chunks stay, their vectors are remade (store/identity.py).
            summary.notes.append(reembed(self._manifest, self._vectors, self._embedder, current, progress=progress))
            self._vectors.note_written(self._manifest.kb_version())
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

    def _ingest_file(self, path: Path, root: Path, source: str, progress=None) -> FileOutcome:
        try:
            return self._ingest_file_unguarded(path, root, source, progress)
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
            log.exception("ingest of %s failed", printable(source))
            return FileOutcome(source, "failed", reason=f"{type(exc).__name__}: {exc}")

    def _ingest_file_unguarded(self, path: Path, root: Path, source: str, progress=None) -> FileOutcome:
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
            self._committed(self._manifest.commit_file(record))
            return FileOutcome(source, status, reason=f"same content as {', '.join(others)}; stored once")

        doc = self._parser.load(path, data, progress)  # caps: ingest/limits.py, packages.py, isolation.py
        chunks = self.chunker.split(doc, self._settings.max_chunks_per_file)
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
            ChunkRecord(cid, doc_hash, c.index, c.page, c.section, c.text, c.content_hash, c.ocr_confidence)
            for cid, c in zip(ids, chunks)
        ]
        self._committed(self._manifest.commit_file(record, document=document, chunks=records))
        return FileOutcome(source, status, chunks=len(chunks), pages=document["n_pages"], reason="; ".join(doc.notes))

    def _remove(self, sources: list[str], reason: str) -> list[FileOutcome]:
        if not sources:
            return []
        self._committed(self._manifest.remove_files(sources))
        return [FileOutcome(s, "purged", reason=reason) for s in sources]

    def _committed(self, doc_hashes: list[str]) -> None:
        """After a manifest commit: this process's vector client holds the new version (no reload
        needed); ``doc_hashes``, no longer referenced, leave the vector store."""
        self._vectors.note_written(self._manifest.kb_version())
        if doc_hashes:
            self._vectors.delete_documents(doc_hashes)
            for doc_hash in doc_hashes:
                self._manifest.clear_pending(doc_hash)
