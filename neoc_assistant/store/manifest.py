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
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from neoc_assistant.errors import StoreError

FTS_TOKENIZER = "porter unicode61 remove_diacritics 2"

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
    source TEXT PRIMARY KEY,          -- path relative to the ingested root
    root TEXT NOT NULL,               -- absolute root it was ingested from
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
    content_hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_hash);
-- rowid = chunks.rowid; indexes section heading + text (the heading often names the topic)
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(
    text, tokenize='{tokenizer}'
);
CREATE TABLE IF NOT EXISTS chroma_pending (doc_hash TEXT PRIMARY KEY, reason TEXT NOT NULL);
""".replace("{tokenizer}", FTS_TOKENIZER)


@dataclass(frozen=True)
class FileRecord:
    source: str
    root: str
    abs_path: str
    size: int
    mtime_ns: int
    doc_hash: str
    ingested_at: float


@dataclass(frozen=True)
class ChunkRecord:
    chunk_id: str
    doc_hash: str
    chunk_index: int
    page: int | None
    section: str
    text: str
    content_hash: str


@dataclass(frozen=True)
class DocumentInfo:
    doc_hash: str
    title: str
    doc_type: str
    n_pages: int
    n_chunks: int
    ingested_at: float
    sources: tuple[str, ...]


class Manifest:
    """Thread-safe access to the manifest database (one connection per thread)."""

    def __init__(self, path: Path):
        self.path = path
        self._local = threading.local()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._conn().executescript(SCHEMA)  # executescript manages its own transaction
        except sqlite3.DatabaseError as exc:
            raise StoreError(_db_error_message(path, exc)) from exc

    # -- connections -----------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            self._local.conn = conn
        return conn

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
            yield conn
            conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise StoreError(_db_error_message(self.path, exc)) from exc
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # -- meta / version ----------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self._conn().execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self._tx() as conn:
            conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

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

    def files_under(self, root: str) -> list[FileRecord]:
        rows = self._conn().execute(
            "SELECT source, root, abs_path, size, mtime_ns, doc_hash, ingested_at FROM files WHERE root=?",
            (root,),
        ).fetchall()
        return [FileRecord(*r) for r in rows]

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
            for row in self._conn().execute(
                "SELECT chunk_id, doc_hash, chunk_index, page, section, text, content_hash "
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
        return [DocumentInfo(*d, sources=tuple(sources.get(d[0], ()))) for d in docs]

    def counts(self) -> dict[str, int]:
        conn = self._conn()
        return {
            "files": conn.execute("SELECT COUNT(*) FROM files").fetchone()[0],
            "documents": conn.execute("SELECT COUNT(*) FROM documents").fetchone()[0],
            "chunks": conn.execute("SELECT COUNT(*) FROM chunks").fetchone()[0],
        }

    def lexical_search(self, match_query: str, limit: int, doc_hashes: list[str] | None = None) -> list[tuple[str, float]]:
        """FTS5 BM25 search; returns (chunk_id, score) best first, score higher = better.

        BM25 is evaluated for every matching row, so the cost grows with the
        rows the query matches; callers keep very common terms out of
        ``match_query`` (see ``retrieve/lexical.py``).
        """
        if doc_hashes is not None:
            if not doc_hashes:
                return []
            # Filter while joining (an FTS5 "rowid IN (subquery)" restriction is far slower).
            sql = (
                "SELECT c.chunk_id, -bm25(chunks_fts) FROM chunks_fts JOIN chunks c ON c.rowid = chunks_fts.rowid "
                f"WHERE chunks_fts MATCH ? AND c.doc_hash IN ({','.join('?' * len(doc_hashes))}) "
                "ORDER BY bm25(chunks_fts) LIMIT ?"
            )
            params = [match_query, *doc_hashes, limit]
        else:
            # Rank inside FTS5 first, then join only the top rows to their chunk ids.
            sql = (
                "SELECT c.chunk_id, r.score FROM (SELECT rowid, -bm25(chunks_fts) AS score FROM chunks_fts "
                "WHERE chunks_fts MATCH ? ORDER BY bm25(chunks_fts) LIMIT ?) r "
                "JOIN chunks c ON c.rowid = r.rowid ORDER BY r.score DESC"
            )
            params = [match_query, limit]
        return [(r[0], float(r[1])) for r in self._conn().execute(sql, params)]

    def lexical_scores(self, match_query: str, chunk_ids: list[str]) -> dict[str, float]:
        """BM25 (higher = better, collection-wide statistics) of these chunks; non-matching ones are absent."""
        conn = self._conn()
        out: dict[str, float] = {}
        for i in range(0, len(chunk_ids), 500):
            part = chunk_ids[i : i + 500]
            rowids = dict(
                conn.execute(f"SELECT rowid, chunk_id FROM chunks WHERE chunk_id IN ({','.join('?' * len(part))})", part)
            )
            if not rowids:
                continue
            sql = (
                "SELECT rowid, -bm25(chunks_fts) FROM chunks_fts WHERE chunks_fts MATCH ? "
                f"AND rowid IN ({','.join('?' * len(rowids))})"
            )
            out.update((rowids[r[0]], float(r[1])) for r in conn.execute(sql, [match_query, *rowids]))
        return out

    # -- term statistics (query planning, relevance scoring) ------------------------------
    def _term_tables(self, conn: sqlite3.Connection) -> None:
        """Per-connection TEMP tables: a scratch FTS5 table with the index's tokenizer, and a vocab view."""
        if getattr(self._local, "term_tables", None) is conn:
            return
        conn.execute(f"CREATE VIRTUAL TABLE IF NOT EXISTS temp.neoc_scratch USING fts5(text, tokenize='{FTS_TOKENIZER}')")
        conn.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.neoc_scratch_terms USING fts5vocab(temp, neoc_scratch, instance)")
        conn.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.chunks_fts_terms USING fts5vocab(main, chunks_fts, row)")
        self._local.term_tables = conn

    def index_terms(self, texts: list[str]) -> list[set[str]]:
        """The terms FTS5 indexes for each text (lower-cased, diacritics removed, Porter-stemmed).

        Uses the index's own tokenizer, so the terms compare exactly with ``term_doc_freqs``.
        """
        if not texts:
            return []
        conn = self._conn()
        self._term_tables(conn)
        out: list[set[str]] = [set() for _ in texts]
        conn.execute("DELETE FROM temp.neoc_scratch")
        try:
            conn.executemany("INSERT INTO temp.neoc_scratch(rowid, text) VALUES (?, ?)", enumerate(texts))
            for term, row in conn.execute("SELECT term, doc FROM temp.neoc_scratch_terms"):
                out[row].add(term)
        finally:
            conn.execute("DELETE FROM temp.neoc_scratch")
        return out

    def term_doc_freqs(self, terms: Iterable[str] | None = None) -> dict[str, int]:
        """Chunks containing each index term (all terms when ``terms`` is None).

        FTS5 stores no document frequencies: each is counted from the term's
        posting list, so this costs time proportional to the postings read
        (a full vocabulary is ~1 s per 50k chunks). Callers cache it.
        """
        conn = self._conn()
        self._term_tables(conn)
        if terms is None:
            return {t: int(d) for t, d in conn.execute("SELECT term, doc FROM temp.chunks_fts_terms")}
        freqs = {}
        for term in set(terms):
            row = conn.execute("SELECT doc FROM temp.chunks_fts_terms WHERE term = ?", (term,)).fetchone()
            freqs[term] = int(row[0]) if row else 0
        return freqs

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

    def chunk_total(self) -> int:
        return int(self._conn().execute("SELECT COUNT(*) FROM chunks").fetchone()[0])

    def doc_hashes_matching(self, source_prefixes: list[str] | None, doc_types: list[str] | None) -> list[str]:
        """Documents with a source under any of the prefixes and of any of the types."""
        sql = "SELECT DISTINCT f.doc_hash FROM files f JOIN documents d ON d.doc_hash = f.doc_hash WHERE 1=1"
        params: list = []
        if source_prefixes:
            clauses = []
            for prefix in source_prefixes:
                prefix = prefix.strip("/")
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
        chunks: list[ChunkRecord] = (),
    ) -> list[str]:
        """Point ``record.source`` at ``record.doc_hash`` (inserting the document if new).

        Returns the doc hashes that no file references any more; their vectors
        must be deleted from Chroma (they are already queued in ``chroma_pending``).
        """
        with self._tx() as conn:
            if document is not None:
                conn.execute(
                    "INSERT OR IGNORE INTO documents(doc_hash, title, doc_type, n_pages, n_chunks, ingested_at) "
                    "VALUES (:doc_hash, :title, :doc_type, :n_pages, :n_chunks, :ingested_at)",
                    document,
                )
                for c in chunks:
                    cur = conn.execute(
                        "INSERT OR IGNORE INTO chunks(chunk_id, doc_hash, chunk_index, page, section, text, content_hash) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (c.chunk_id, c.doc_hash, c.chunk_index, c.page, c.section, c.text, c.content_hash),
                    )
                    if cur.rowcount:
                        conn.execute(
                            "INSERT INTO chunks_fts(rowid, text) VALUES (?, ?)", (cur.lastrowid, c.section + "\n" + c.text)
                        )
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


def _db_error_message(path: Path, exc: Exception) -> str:
    text = str(exc)
    if "locked" in text or "busy" in text:
        return f"The knowledge-base manifest {path} is locked by another process (an ingest?). Wait for it to finish and retry."
    if "disk" in text and ("full" in text or "I/O" in text):
        return f"No space left to write {path}. Free disk space under {path.parent} and retry; nothing was changed."
    if "not a database" in text or "malformed" in text:
        return (
            f"The knowledge-base manifest {path} is corrupt ({text}). Move the data directory "
            f"{path.parent} aside and re-run `python -m neoc_assistant ingest` to rebuild it."
        )
    return f"Knowledge-base manifest error at {path}: {text}"
