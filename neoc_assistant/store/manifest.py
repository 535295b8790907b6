"""The SQLite manifest: the source of truth for what is in the knowledge base.

Chroma holds the vectors; this database holds which files map to which content,
each chunk's text and metadata, the FTS5 (BM25) lexical index, and the
knowledge-base version. Because the manifest, the lexical index and the version
change together in one SQLite transaction, a file becomes visible all at once:

1. the new document's hash is recorded in ``chroma_pending`` (committed);
2. its vectors are upserted into Chroma (may be killed half-way);
3. one transaction inserts the document, its chunks and FTS rows, points the
   file at it, bumps the version and removes the pending mark; a replaced
   document that no file references any more is queued in ``chroma_pending``;
4. queued hashes are deleted from Chroma.

Readers only trust chunk ids that exist here, so vectors left in Chroma by a
killed run are never returned, and ``pending_chroma_hashes`` lets the next run
delete them. Content is keyed by hash, so the same bytes under two names are
stored once and both names are sources of it.
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path
from typing import Iterable, Sequence

from neoc_assistant.store.database import SqliteDatabase, ensure_column
from neoc_assistant.store.fulltext import FTS_TOKENIZER, FullTextIndex, index_text, migrate_tokenizer
from neoc_assistant.store.records import ChunkRecord, DocumentInfo, FileRecord
from neoc_assistant.store.manifest_state import ManifestState
from neoc_assistant.store.source_names import SourceNames
from neoc_assistant.store.versions import VERSIONS_SCHEMA, DocumentVersions

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    doc_hash TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    doc_type TEXT NOT NULL,
    n_pages INTEGER NOT NULL,
    n_chunks INTEGER NOT NULL,
    ingested_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS files (
    source TEXT PRIMARY KEY,          -- relative to the KB folder, or absolute outside it (ingest/sources.py)
    root TEXT NOT NULL,               -- absolute folder it was ingested from
    abs_path TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    doc_hash TEXT NOT NULL REFERENCES documents(doc_hash),
    ingested_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS files_doc ON files(doc_hash);
CREATE INDEX IF NOT EXISTS files_root ON files(root);
CREATE TABLE IF NOT EXISTS chunks (
    rowid INTEGER PRIMARY KEY,
    chunk_id TEXT UNIQUE NOT NULL,
    doc_hash TEXT NOT NULL REFERENCES documents(doc_hash),
    chunk_index INTEGER NOT NULL,
    page INTEGER,
    section TEXT NOT NULL,
    text TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    ocr_confidence REAL               -- 0-100 when the chunk's page was read by OCR, else NULL
);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_hash);
-- rowid = chunks.rowid; indexes section heading + text (the heading often names the topic)
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(
    text, tokenize='{tokenizer}'
);
CREATE TABLE IF NOT EXISTS chroma_pending (doc_hash TEXT PRIMARY KEY, reason TEXT NOT NULL);
""".replace("{tokenizer}", FTS_TOKENIZER) + VERSIONS_SCHEMA


class Manifest(SqliteDatabase, FullTextIndex, SourceNames, ManifestState, DocumentVersions):
    """Thread-safe access to the manifest database (one connection per thread).

    The file registry lives here; searching the full-text index is inherited
    from ``FullTextIndex`` (``fulltext.py``); connections, read-only opening,
    error messages and the integrity check from ``SqliteDatabase`` (``database.py``); a whole state
    read out and applied (bundles) from ``ManifestState``; version links from ``DocumentVersions``.
    """

    def __init__(self, path: Path):
        self._ocr_column: bool | None = None
        super().__init__(path, SCHEMA)

    def _ensure_schema(self) -> None:
        """An older manifest gains ``ocr_confidence`` and a Devanagari-aware index (``fulltext.migrate_tokenizer``)."""
        super()._ensure_schema()
        self._fts_tokenizer = migrate_tokenizer(self._open(), read_only=self.read_only)
        if not self._ocr_column:
            self._ocr_column = ensure_column(self._open(), "chunks", "ocr_confidence REAL", read_only=self.read_only)

    def refresh(self, *, strict: bool = False) -> None:
        """Catch up with the knowledge base's source of truth. This file is its own; a replica of a
        shared knowledge base (``replica.py``) syncs here. ``strict``: raise if that is impossible."""

    # -- meta / version ----------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self._conn().execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self._tx() as conn:
            conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    def record_pipeline(self, pipeline: str) -> None:
        """The chunks are kept but their vectors were remade (another embedding model): a new version."""
        with self._tx() as conn:
            conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('pipeline', ?)", (pipeline,))
            self._bump_version(conn)

    def kb_version(self) -> str:
        """Fingerprint of the whole knowledge base; changes whenever content changes."""
        return self.get_meta("kb_version") or "empty"

    @staticmethod
    def _bump_version(conn: sqlite3.Connection) -> None:
        digest = hashlib.sha256()
        for source, doc_hash in conn.execute("SELECT source, doc_hash FROM files ORDER BY source"):
            digest.update(f"{source}\0{doc_hash}\n".encode())
        pipeline = conn.execute("SELECT value FROM meta WHERE key='pipeline'").fetchone()
        digest.update((pipeline[0] if pipeline else "").encode())
        conn.execute(
            "INSERT OR REPLACE INTO meta(key, value) VALUES ('kb_version', ?)", (digest.hexdigest()[:16],)
        )

    # -- reads -------------------------------------------------------------------
    def file(self, source: str) -> FileRecord | None:
        row = self._conn().execute(
            "SELECT source, root, abs_path, size, mtime_ns, doc_hash, ingested_at FROM files WHERE source=?",
            (source,),
        ).fetchone()
        return FileRecord(*row) if row else None

    def files_under(self, folder: str) -> list[FileRecord]:
        """Files whose path lies under ``folder``, whichever folder they were ingested from."""
        prefix = folder.rstrip("/") + "/"
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = self._conn().execute(
            "SELECT source, root, abs_path, size, mtime_ns, doc_hash, ingested_at FROM files "
            "WHERE abs_path LIKE ? ESCAPE '\\'",
            (escaped + "%",),
        ).fetchall()
        return [FileRecord(*r) for r in rows if r[2].startswith(prefix)]

    def file_paths(self) -> dict[str, str]:
        """Every source with the path of its file."""
        return dict(self._conn().execute("SELECT source, abs_path FROM files").fetchall())

    def has_document(self, doc_hash: str) -> bool:
        return self._conn().execute("SELECT 1 FROM documents WHERE doc_hash=?", (doc_hash,)).fetchone() is not None

    def sources_of(self, doc_hashes: Iterable[str]) -> dict[str, list[str]]:
        hashes = list(set(doc_hashes))
        out: dict[str, list[str]] = {h: [] for h in hashes}
        for i in range(0, len(hashes), 500):
            part = hashes[i : i + 500]
            marks = ",".join("?" * len(part))
            for source, doc_hash in self._conn().execute(
                f"SELECT source, doc_hash FROM files WHERE doc_hash IN ({marks}) ORDER BY source", part
            ):
                out[doc_hash].append(source)
        return out

    def chunks_by_id(self, chunk_ids: Iterable[str]) -> dict[str, ChunkRecord]:
        ids = list(chunk_ids)
        out: dict[str, ChunkRecord] = {}
        for i in range(0, len(ids), 500):
            part = ids[i : i + 500]
            marks = ",".join("?" * len(part))
            conn = self._conn()
            ocr = "ocr_confidence" if self._ocr_column else "NULL"
            for row in conn.execute(
                f"SELECT chunk_id, doc_hash, chunk_index, page, section, text, content_hash, {ocr} "
                f"FROM chunks WHERE chunk_id IN ({marks})",
                part,
            ):
                out[row[0]] = ChunkRecord(*row)
        return out

    def documents(self) -> list[DocumentInfo]:
        docs = self._conn().execute(
            "SELECT doc_hash, title, doc_type, n_pages, n_chunks, ingested_at FROM documents ORDER BY title"
        ).fetchall()
        sources = self.sources_of(d[0] for d in docs)
        status = self.version_status()
        return [DocumentInfo(*d, sources=tuple(sources.get(d[0], ())),  # type: ignore[misc]  # six columns
                             version=next((status[s] for s in sources.get(d[0], ()) if s in status), ""))
                for d in docs]

    def document_texts(self) -> list[str]:
        """Each document's title, section headings and text as one string, chunks in order:
        the knowledge base's own words (the response-cache guard's vocabulary is built from them)."""
        per_doc: dict[str, list[str]] = {}
        titles: dict[str, str] = {}
        for doc_hash, title, section, text in self._conn().execute(
            "SELECT d.doc_hash, d.title, c.section, c.text FROM chunks c "
            "JOIN documents d ON d.doc_hash = c.doc_hash ORDER BY d.doc_hash, c.chunk_index"
        ):
            titles[doc_hash] = title or ""
            per_doc.setdefault(doc_hash, []).append((section or "") + "\n" + (text or ""))
        return [titles[h] + "\n" + "\n".join(parts) for h, parts in per_doc.items()]

    def counts(self) -> dict[str, int]:
        conn = self._conn()
        return {
            "files": conn.execute("SELECT COUNT(*) FROM files").fetchone()[0],
            "documents": conn.execute("SELECT COUNT(*) FROM documents").fetchone()[0],
            "chunks": conn.execute("SELECT COUNT(*) FROM chunks").fetchone()[0],
        }

    def chunk_ids_of(self, doc_hashes: list[str]) -> list[str]:
        """Ids of every chunk of these documents."""
        out: list[str] = []
        for i in range(0, len(doc_hashes), 500):
            part = doc_hashes[i : i + 500]
            out.extend(
                r[0]
                for r in self._conn().execute(
                    f"SELECT chunk_id FROM chunks WHERE doc_hash IN ({','.join('?' * len(part))})", part
                )
            )
        return out

    def all_chunk_ids(self) -> set[str]:
        return {r[0] for r in self._conn().execute("SELECT chunk_id FROM chunks")}

    def chunk_total(self) -> int:
        return int(self._conn().execute("SELECT COUNT(*) FROM chunks").fetchone()[0])

    def doc_hashes_matching(self, source_prefixes: list[str] | None, doc_types: list[str] | None) -> list[str]:
        """Documents with a source under any of the prefixes and of any of the types."""
        sql = "SELECT DISTINCT f.doc_hash FROM files f JOIN documents d ON d.doc_hash = f.doc_hash WHERE 1=1"
        params: list = []
        if source_prefixes:
            clauses = []
            for prefix in source_prefixes:
                prefix = prefix.rstrip("/")
                clauses.append("(f.source = ? OR f.source LIKE ? ESCAPE '\\')")
                escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                params.extend([prefix, escaped + "/%"])
            sql += " AND (" + " OR ".join(clauses) + ")"
        if doc_types:
            sql += f" AND d.doc_type IN ({','.join('?' * len(doc_types))})"
            params.extend(t.lower().lstrip(".") for t in doc_types)
        return [r[0] for r in self._conn().execute(sql, params)]

    def pending_chroma_hashes(self) -> list[str]:
        return [r[0] for r in self._conn().execute("SELECT doc_hash FROM chroma_pending")]

    # -- writes --------------------------------------------------------------------
    def mark_pending(self, doc_hash: str, reason: str) -> None:
        with self._tx() as conn:
            conn.execute("INSERT OR REPLACE INTO chroma_pending(doc_hash, reason) VALUES (?, ?)", (doc_hash, reason))

    def clear_pending(self, doc_hash: str) -> None:
        with self._tx() as conn:
            conn.execute("DELETE FROM chroma_pending WHERE doc_hash=?", (doc_hash,))

    def touch_file(self, record: FileRecord) -> None:
        """Same content, new stat (e.g. the file was touched): remember the stat only."""
        with self._tx() as conn:
            conn.execute(
                "UPDATE files SET size=?, mtime_ns=?, abs_path=?, root=? WHERE source=?",
                (record.size, record.mtime_ns, record.abs_path, record.root, record.source),
            )

    def commit_file(
        self,
        record: FileRecord,
        *,
        document: dict | None = None,
        chunks: Sequence[ChunkRecord] = (),
    ) -> list[str]:
        """Point ``record.source`` at ``record.doc_hash`` (inserting the document if new).

        Returns the doc hashes that no file references any more; their vectors
        must be deleted from Chroma (they are already queued in ``chroma_pending``).
        """
        with self._tx() as conn:
            if document is not None:
                self._insert_document(conn, document, chunks)
                conn.execute("DELETE FROM chroma_pending WHERE doc_hash=?", (record.doc_hash,))
            old = conn.execute("SELECT doc_hash FROM files WHERE source=?", (record.source,)).fetchone()
            conn.execute(
                "INSERT OR REPLACE INTO files(source, root, abs_path, size, mtime_ns, doc_hash, ingested_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (record.source, record.root, record.abs_path, record.size, record.mtime_ns, record.doc_hash, record.ingested_at),
            )
            orphaned = self._drop_unreferenced(conn, [old[0]] if old and old[0] != record.doc_hash else [])
            self._bump_version(conn)
        return orphaned

    @staticmethod
    def _insert_document(conn: sqlite3.Connection, document: dict, chunks: Iterable[ChunkRecord]) -> None:
        """The document row, its chunks and their FTS rows (inside the caller's transaction)."""
        conn.execute(
            "INSERT OR IGNORE INTO documents(doc_hash, title, doc_type, n_pages, n_chunks, ingested_at) "
            "VALUES (:doc_hash, :title, :doc_type, :n_pages, :n_chunks, :ingested_at)",
            document,
        )
        for c in chunks:
            cur = conn.execute(
                "INSERT OR IGNORE INTO chunks(chunk_id, doc_hash, chunk_index, page, section, text, content_hash, "
                "ocr_confidence) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (c.chunk_id, c.doc_hash, c.chunk_index, c.page, c.section, c.text, c.content_hash, c.ocr_confidence),
            )
            if cur.rowcount:
                conn.execute("INSERT INTO chunks_fts(rowid, text) VALUES (?, ?)", (cur.lastrowid, index_text(c.section, c.text)))

    def remove_files(self, sources: Iterable[str]) -> list[str]:
        """Forget these sources; returns doc hashes whose vectors must leave Chroma."""
        sources = list(sources)
        if not sources:
            return []
        with self._tx() as conn:
            hashes = []
            for source in sources:
                row = conn.execute("SELECT doc_hash FROM files WHERE source=?", (source,)).fetchone()
                if row:
                    hashes.append(row[0])
                    conn.execute("DELETE FROM files WHERE source=?", (source,))
            orphaned = self._drop_unreferenced(conn, hashes)
            self._bump_version(conn)
        return orphaned

    def reset(self, pipeline: str) -> list[str]:
        """Forget everything (the chunking/embedding pipeline changed); returns all doc hashes."""
        with self._tx() as conn:
            hashes = [r[0] for r in conn.execute("SELECT doc_hash FROM documents")]
            conn.execute("DELETE FROM chunks_fts")
            conn.execute("DELETE FROM chunks")
            conn.execute("DELETE FROM files")
            conn.execute("DELETE FROM documents")
            conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('pipeline', ?)", (pipeline,))
            self._bump_version(conn)
        return hashes

    @staticmethod
    def _drop_unreferenced(conn: sqlite3.Connection, doc_hashes: list[str]) -> list[str]:
        dropped = []
        for doc_hash in set(doc_hashes):
            if conn.execute("SELECT 1 FROM files WHERE doc_hash=?", (doc_hash,)).fetchone():
                continue
            conn.execute(
                "DELETE FROM chunks_fts WHERE rowid IN (SELECT rowid FROM chunks WHERE doc_hash=?)", (doc_hash,)
            )
            conn.execute("DELETE FROM chunks WHERE doc_hash=?", (doc_hash,))
            conn.execute("DELETE FROM documents WHERE doc_hash=?", (doc_hash,))
            conn.execute(
                "INSERT OR REPLACE INTO chroma_pending(doc_hash, reason) VALUES (?, 'unreferenced')", (doc_hash,)
            )
            dropped.append(doc_hash)
        return dropped
