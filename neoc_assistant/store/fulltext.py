"""The BM25 half of the manifest database: searching the FTS5 index of the chunks, and its term statistics.

The index (``chunks_fts``, rowid = ``chunks.rowid``, section heading + text)
is *written* by ``Manifest`` in the same transaction as the chunks it indexes
(see the write protocol in ``manifest.py``), so it can never disagree with
them. This class holds the read side, which retrieval uses: ranked search,
exact scores of given chunks, the terms the index's own tokenizer makes of a
text, and how many chunks contain each term. ``Manifest`` inherits it so both
halves share one connection per thread.

Devanagari (Nepali): ``unicode61`` on its own splits a word at every vowel
sign and virama (``पानी`` -> ``प`` + ``न``, so "पानी" also matched "पुन", and
an OR of the pieces matched nearly every Nepali chunk), so the tokenizer is
told the script's combining marks are word characters (``tokenchars``: only
Devanagari tokens change, English ones are the same bytes). The index holds
``index_text`` of each chunk: Devanagari folded to one spelling and stripped of
joined postpositions (``language/devanagari.py``), so a question's ``पानी``
finds ``पानीको``; text without Devanagari is indexed as it is. The same
``index_form`` is applied to query words (``retrieve/lexical.py``).
A manifest made with the older tokenizer is rebuilt on the first writable open
(``migrate_tokenizer``, logged with progress); a read-only one is searched
with the tokenizer it was made with.
"""

from __future__ import annotations

import hashlib
import logging
import re
import sqlite3
import threading
from typing import Iterable

from neoc_assistant.language.devanagari import COMBINING_MARKS, index_form

log = logging.getLogger(__name__)

# the marks unquoted: FTS5 takes any non-ASCII character as part of a bare word (quotes would
# have to be SQL-escaped inside the CREATE statement)
FTS_TOKENIZER = f"porter unicode61 remove_diacritics 2 tokenchars {COMBINING_MARKS}"
_TOKENIZER_IN_SQL = re.compile(r"tokenize\s*=\s*'((?:[^']|'')*)'", re.IGNORECASE)
_REBUILD_BATCH = 2000


def index_text(section: str, text: str) -> str:
    """What the index holds for a chunk: its heading and text, Devanagari in index form."""
    return index_form(section + "\n" + text)


def table_tokenizer(conn: sqlite3.Connection) -> str | None:
    """The tokenizer ``chunks_fts`` was created with (None: no such table yet)."""
    row = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'chunks_fts'").fetchone()
    if row is None:
        return None
    m = _TOKENIZER_IN_SQL.search(row[0] or "")
    return m.group(1).replace("''", "'") if m else "unicode61"


def migrate_tokenizer(conn: sqlite3.Connection, *, read_only: bool) -> str:
    """Rebuild ``chunks_fts`` made with an older tokenizer; returns the tokenizer the table now has.

    One transaction (a crash leaves the old index whole); progress is logged, since a large
    library takes a while (the chunks' text is re-read and re-indexed). The knowledge-base
    version changes with it, so answers cached under the old index are not reused.
    """
    current = table_tokenizer(conn)
    if current is None or current == FTS_TOKENIZER:
        return current or FTS_TOKENIZER
    if read_only:
        log.warning("the search index was made by an older version (Devanagari words split at vowel signs); "
                    "it is read as it is until the knowledge base is opened writable")
        return current
    total = conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
    log.info("rebuilding the search index for whole Devanagari words: %d chunks", total)
    conn.execute("BEGIN IMMEDIATE")
    try:
        if table_tokenizer(conn) == FTS_TOKENIZER:  # another process did it while we waited
            conn.execute("ROLLBACK")
            return FTS_TOKENIZER
        conn.execute("DROP TABLE chunks_fts")
        conn.execute(f"CREATE VIRTUAL TABLE chunks_fts USING fts5(text, tokenize='{FTS_TOKENIZER}')")
        done, last = 0, -1
        while True:
            rows = conn.execute("SELECT rowid, section, text FROM chunks WHERE rowid > ? ORDER BY rowid LIMIT ?",
                                (last, _REBUILD_BATCH)).fetchall()
            if not rows:
                break
            conn.executemany("INSERT INTO chunks_fts(rowid, text) VALUES (?, ?)",
                             [(r[0], index_text(r[1], r[2])) for r in rows])
            done, last = done + len(rows), rows[-1][0]
            log.info("search index: %d/%d chunks", done, total)
        row = conn.execute("SELECT value FROM meta WHERE key='kb_version'").fetchone()
        if row:
            version = hashlib.sha256(f"{row[0]}\0{FTS_TOKENIZER}".encode()).hexdigest()[:16]
            conn.execute("UPDATE meta SET value=? WHERE key='kb_version'", (version,))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return FTS_TOKENIZER


class FullTextIndex:
    """Mixed into ``Manifest``: needs its ``_conn()`` (this thread's connection) and ``_local``."""

    _local: threading.local
    _fts_tokenizer: str = FTS_TOKENIZER  # the table's own (an old read-only manifest keeps its own)

    def _conn(self) -> sqlite3.Connection:  # pragma: no cover - provided by Manifest
        raise NotImplementedError

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
        conn.execute(f"CREATE VIRTUAL TABLE IF NOT EXISTS temp.neoc_scratch USING fts5(text, tokenize='{self._fts_tokenizer}')")
        conn.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.neoc_scratch_terms USING fts5vocab(temp, neoc_scratch, instance)")
        conn.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.chunks_fts_terms USING fts5vocab(main, chunks_fts, row)")
        self._local.term_tables = conn

    def index_terms(self, texts: list[str]) -> list[set[str]]:
        """The terms FTS5 indexes for each text (lower-cased, diacritics removed, Porter-stemmed).

        Uses the index's own tokenizer, so the terms compare exactly with ``term_doc_freqs``;
        the texts are taken as given (callers pass ``index_form`` text, as the index holds).
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
