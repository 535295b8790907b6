"""Incremental, idempotent ingest of files and folders into the knowledge base.

Per file: an unchanged stat (size, mtime, path) costs no read at all; changed
bytes with a known hash cost no embedding (a touched file, or the same content
under another name); only new content is loaded (in a child process with a
memory ceiling: ``isolation.py``), chunked and embedded. The
write protocol that makes each file all-or-nothing is described in
``store/manifest.py``. A folder is the source of truth for what was ingested
from it: files under it that disappeared are purged unless ``prune=False``.
Which files a run covers and the names they get: ``sources.py``. A run is a pipeline: the next
files are parsed and chunked in a thread (``feed.py``) while chunks of several files embed together
(``embedding_stage.py``); each file is still committed whole, on this thread.
"""

from __future__ import annotations

import copy

import errno
import logging
import time
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from neoc_assistant.errors import InputError, NeocError, StoreError
from neoc_assistant.ingest.chunking import Chunker
from neoc_assistant.ingest.embedding_stage import CrossFileBatches, Job
from neoc_assistant.ingest.feed import Prepared, Preparer
from neoc_assistant.ingest.isolation import IsolatedParser, ParseLimits
from neoc_assistant.ingest.outcomes import FileOutcome, IngestSummary, ProgressCallback
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
from neoc_assistant.store.records import ChunkRecord
from neoc_assistant.store.vector_store import VectorStore

log = logging.getLogger(__name__)

PIPELINE_VERSION = "chunker-v1"


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
        """With a tokenizer of its own: the chunker runs in the feed thread while the embedder encodes, and
        a fast tokenizer shared by two threads has its padding state changed under the encoder's feet
        ("Unable to create tensor ... activate padding"): batches failed and were retried file by file."""
        if self._chunker is None:
            e = self._embedder
            self._chunker = Chunker(copy.deepcopy(e.tokenizer), self._settings.chunk_size_tokens,
                                    self._settings.chunk_overlap_tokens, e.max_tokens)
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
                self._run(plan, summary, bar, on_progress)
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

    def _run(self, plan: list[tuple[Path, Path, str]], summary: IngestSummary, bar,
             on_progress: ProgressCallback | None) -> None:
        """Files prepared ahead in a thread (``feed.py``), embedded in cross-file batches
        (``embedding_stage.py``), each committed whole, in plan order, on this thread."""
        feed = self._preparer.feed(plan, lambda source: page_progress(bar, source), self._settings.ingest_prefetch_files)
        batches = CrossFileBatches(self._embedder.encode, self._settings.ingest_batch_chunks)
        in_flight: dict[str, str] = {}  # doc hash -> the source queued to store it in this run
        done = 0
        try:
            while True:
                for job in batches.pop_done():
                    in_flight.pop(job.item.record.doc_hash if job.item.record else "", None)
                    summary.outcomes.append(self._guarded(job.item.source, lambda: self._finish(job)))
                    done += 1
                    if bar is not None:
                        bar.update(1)
                if feed.done and not len(batches):
                    return
                if not feed.done and batches.waiting < batches.batch_chunks:
                    item = feed.get(block=batches.waiting == 0)
                    if item is not None:
                        if bar is not None:
                            bar.set_postfix_str(short(printable(item.source)), refresh=False)
                        if on_progress:
                            on_progress(done, len(plan), item.source)
                        batches.add(self._queued(item, in_flight))
                        continue
                if batches.waiting:
                    batches.embed_next()
        finally:
            feed.close(self._parser.abort)

    @property
    def _preparer(self) -> Preparer:
        limit = self._settings.max_chunks_per_file
        return Preparer(self._manifest, self._parser.load, lambda doc: self.chunker.split(doc, limit))

    def _queued(self, item: Prepared, in_flight: dict[str, str]) -> Prepared:
        """A new file whose content another file of this run (queued before it) or another process
        stores is not embedded again: it waits for that one and is committed as the same content."""
        if item.kind == "new" and item.record is not None:
            doc_hash = item.record.doc_hash
            if doc_hash in in_flight or self._manifest.has_document(doc_hash):
                item.kind, item.doc, item.chunks = "known", None, []
            else:
                in_flight[doc_hash] = item.source
        return item

    def _guarded(self, source: str, work: Callable[[], FileOutcome]) -> FileOutcome:
        try:
            return work()
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

    def _finish(self, job: Job) -> FileOutcome:
        if job.error is not None:
            raise job.error
        return self._finish_item(job.item, job.vectors if job.item.kind == "new" else None)

    def _finish_item(self, item: Prepared, vectors: np.ndarray | None) -> FileOutcome:
        """The main thread's half of one file: every write to the manifest and the vector store."""
        source, record = item.source, item.record
        if item.kind == "error":
            raise item.error  # type: ignore[misc]  # set with kind "error"
        if item.kind == "unchanged" or record is None:
            return FileOutcome(source, "unchanged")
        if item.kind == "touch":
            self._manifest.touch_file(record)
            return FileOutcome(source, "unchanged")
        if item.kind == "known":
            if not self._manifest.has_document(record.doc_hash):  # the file that stored it failed, or it was replaced
                fresh = self._preparer.prepare(item.path, item.root, source)
                if fresh.kind == "known":
                    raise InputError("its content was removed from the knowledge base while it was ingested; ingest again")
                return self._finish_item(fresh, self._embedder.encode([c.text for c in fresh.chunks]) if fresh.kind == "new" else None)
            others = self._manifest.sources_of([record.doc_hash])[record.doc_hash]
            self._committed(self._manifest.commit_file(record))
            return FileOutcome(source, item.status, reason=f"same content as {', '.join(others)}; stored once")
        return self._store(item, vectors)

    def _store(self, item: Prepared, vectors: np.ndarray) -> FileOutcome:
        """Write one file whose chunks are all embedded (the protocol in ``store/manifest.py``)."""
        record, doc, chunks = item.record, item.doc, item.chunks
        assert record is not None and doc is not None
        doc_hash = record.doc_hash
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
        return FileOutcome(item.source, item.status, chunks=len(chunks), pages=document["n_pages"],
                           reason="; ".join(doc.notes))

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
