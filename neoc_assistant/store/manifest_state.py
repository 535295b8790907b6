"""A whole knowledge-base state read out and applied in one transaction: what signed bundles
(``bundles/``) export and import. Kept apart from ``manifest.py`` because it serves one feature and
reads every row at once; it needs the manifest's document insert, orphan drop and version bump."""

from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Iterable, Sequence

from neoc_assistant.errors import StoreError
from neoc_assistant.store.records import ChunkRecord, FileRecord


class ManifestState:
    """Mixed into ``Manifest``; uses its ``_conn``, ``_tx``, ``_insert_document``, ``_drop_unreferenced``,
    ``_bump_version`` and ``_replace_carried``."""

    if TYPE_CHECKING:  # provided by Manifest
        _ocr_column: bool | None

        def _conn(self) -> sqlite3.Connection: ...
        def _tx(self) -> AbstractContextManager[sqlite3.Connection]: ...
        @staticmethod
        def _insert_document(conn: sqlite3.Connection, document: dict, chunks: Iterable[ChunkRecord]) -> None: ...
        @staticmethod
        def _drop_unreferenced(conn: sqlite3.Connection, doc_hashes: list[str]) -> list[str]: ...
        @staticmethod
        def _bump_version(conn: sqlite3.Connection) -> None: ...
        @staticmethod
        def _replace_carried(conn: sqlite3.Connection, facts: dict[str, dict]) -> None: ...

    def file_records(self) -> list[FileRecord]:
        rows = self._conn().execute(
            "SELECT source, root, abs_path, size, mtime_ns, doc_hash, ingested_at FROM files ORDER BY source").fetchall()
        return [FileRecord(*r) for r in rows]

    def document_with_chunks(self, doc_hash: str) -> tuple[dict, list[ChunkRecord]] | None:
        """A document's row (as ``commit_file`` takes it) and its chunks in order."""
        conn = self._conn()
        row = conn.execute("SELECT doc_hash, title, doc_type, n_pages, n_chunks, ingested_at FROM documents "
                           "WHERE doc_hash=?", (doc_hash,)).fetchone()
        if row is None:
            return None
        ocr = "ocr_confidence" if self._ocr_column else "NULL"
        chunks = [ChunkRecord(*r) for r in conn.execute(
            f"SELECT chunk_id, doc_hash, chunk_index, page, section, text, content_hash, {ocr} FROM chunks "
            "WHERE doc_hash=? ORDER BY chunk_index", (doc_hash,))]
        return dict(zip(("doc_hash", "title", "doc_type", "n_pages", "n_chunks", "ingested_at"), row)), chunks

    def apply_state(self, files: Sequence[FileRecord], documents: Iterable[tuple[dict, Sequence[ChunkRecord]]],
                    *, pipeline: str, expected_version: str, meta_defaults: dict[str, str] | None = None,
                    version_facts: dict[str, dict] | None = None) -> list[str]:
        """Make the file registry exactly ``files`` (inserting ``documents``), in ONE transaction: the
        knowledge base moves from its old state to the new one all at once or not at all. The version
        it then computes must be ``expected_version`` (the bundle's), else nothing is kept.
        ``meta_defaults``: meta values set only where none is (e.g. the scheme source names follow).
        ``version_facts``: source -> what the bundle says about its version (``store/versions.py``'s
        ``carried_versions`` becomes exactly that; none for a bundle from before they were carried).

        Returns the doc hashes no file references any more (queued in ``chroma_pending``)."""
        with self._tx() as conn:
            for document, chunks in documents:
                self._insert_document(conn, document, chunks)
                conn.execute("DELETE FROM chroma_pending WHERE doc_hash=?", (document["doc_hash"],))
            wanted = {f.source for f in files}
            old = dict(conn.execute("SELECT source, doc_hash FROM files").fetchall())
            for source in set(old) - wanted:
                conn.execute("DELETE FROM files WHERE source=?", (source,))
            conn.executemany(
                "INSERT OR REPLACE INTO files(source, root, abs_path, size, mtime_ns, doc_hash, ingested_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(f.source, f.root, f.abs_path, f.size, f.mtime_ns, f.doc_hash, f.ingested_at) for f in files])
            missing = conn.execute("SELECT COUNT(*) FROM files f LEFT JOIN documents d ON d.doc_hash = f.doc_hash "
                                   "WHERE d.doc_hash IS NULL").fetchone()[0]
            if missing:
                raise StoreError(f"the bundle points {missing} file(s) at documents it does not hold and this "
                                 "knowledge base lacks: nothing was changed")
            orphaned = self._drop_unreferenced(conn, list(set(old.values())))
            conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('pipeline', ?)", (pipeline,))
            conn.executemany("INSERT OR IGNORE INTO meta(key, value) VALUES (?, ?)", list((meta_defaults or {}).items()))
            self._replace_carried(conn, {s: f for s, f in (version_facts or {}).items() if s in wanted})
            self._bump_version(conn)
            got = conn.execute("SELECT value FROM meta WHERE key='kb_version'").fetchone()[0]
            if got != expected_version:
                raise StoreError(f"applying the bundle gave knowledge-base version {got}, not the {expected_version} "
                                 "it promises: nothing was changed")
        return orphaned
