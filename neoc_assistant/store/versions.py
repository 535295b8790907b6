"""Which files are revisions of one another, as the manifest stores it (the ``versions`` table).

A row per file that takes part in a version series: the facts read from it (``document_id``,
revision, date, what its sidecar says it supersedes, where the facts came from) and the result of
linking them (``ingest/versions.py``): ``superseded_by`` names the *current* version of its series
(the end of the chain), NULL when the file is current. The whole table is rewritten in one
transaction after every ingest or delete, so deleting the newest revision makes the one before it
current again. ``versions_fingerprint`` changes whenever a link does: it is part of the response
cache's key (``chain.py``), so a sidecar edited alone - no document changed, the knowledge-base
version the same - still retires the answers given under the old links.

``carried_versions`` holds what a signed bundle said about each file's version (``bundles/``): the
sidecar stays at the national EOC, so a laptop links the imported files by the facts the bundle
carried, not by what it can read again (the text alone). ``apply_state`` rewrites it with the files.

Kept apart from ``manifest.py`` because linking is a view over the files, recomputed as a whole,
not part of the per-file write protocol.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Sequence

VERSIONS_SCHEMA = """
CREATE TABLE IF NOT EXISTS versions (
    source TEXT PRIMARY KEY,          -- a files.source
    series TEXT NOT NULL,             -- what makes files revisions of one another (document id or title)
    document_id TEXT,                 -- declared in a sidecar
    revision TEXT,                    -- "3", "2.1"
    revised TEXT,                     -- ISO date (YYYY-MM-DD or YYYY-MM)
    supersedes TEXT NOT NULL,         -- JSON list of what the sidecar names
    origin TEXT NOT NULL,             -- sidecar | text | name
    superseded_by TEXT                -- the current version's source; NULL when this file is current
);
CREATE TABLE IF NOT EXISTS carried_versions (
    source TEXT PRIMARY KEY,          -- a files.source imported from a bundle
    facts TEXT NOT NULL               -- JSON: the version facts the exporting store read (its sidecar and text)
);
"""


@dataclass(frozen=True)
class VersionRecord:
    source: str
    series: str
    document_id: str | None = None
    revision: str | None = None
    revised: str | None = None
    supersedes: tuple[str, ...] = ()
    origin: str = "text"
    superseded_by: str | None = None

    @property
    def current(self) -> bool:
        return self.superseded_by is None

    @property
    def label(self) -> str:
        """``Rev. 3, 2024-03-15``: how the version is named on screen ("" when neither is known)."""
        parts = ([f"Rev. {self.revision}"] if self.revision else []) + ([self.revised] if self.revised else [])
        return ", ".join(parts)


@dataclass(frozen=True)
class Superseded:
    """A superseded document as an answer names it: its file, and the current version's file and date."""

    source: str
    current: str
    current_label: str


class DocumentVersions:
    """Mixed into ``Manifest``; uses its ``_conn``, ``_tx``, ``get_meta`` and ``sources_of``."""

    if TYPE_CHECKING:  # provided by Manifest
        def _conn(self) -> sqlite3.Connection: ...
        def _tx(self) -> AbstractContextManager[sqlite3.Connection]: ...
        def get_meta(self, key: str) -> str | None: ...
        def sources_of(self, doc_hashes: Iterable[str]) -> dict[str, list[str]]: ...

    def _has_versions_table(self) -> bool:
        """A read-only manifest written before versions existed has no table: no links, no error."""
        row = self._conn().execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='versions'").fetchone()
        return row is not None

    def version_records(self) -> list[VersionRecord]:
        if not self._has_versions_table():
            return []
        rows = self._conn().execute(
            "SELECT source, series, document_id, revision, revised, supersedes, origin, superseded_by "
            "FROM versions ORDER BY series, source").fetchall()
        return [VersionRecord(r[0], r[1], r[2], r[3], r[4], tuple(json.loads(r[5] or "[]")), r[6], r[7]) for r in rows]

    def version_status(self) -> dict[str, str]:
        """source -> how the document lists show its version: ``current (Rev. 2, 2024-03-15)``, or
        ``superseded by new.md (Rev. 2, 2024-03-15)``; only files of a series with two or more files."""
        records = self.version_records()
        by_source = {r.source: r for r in records}
        linked = {r.superseded_by for r in records if r.superseded_by}
        out: dict[str, str] = {}
        for r in records:
            if r.superseded_by:
                current = by_source.get(r.superseded_by)
                label = current.label if current else ""
                out[r.source] = f"superseded by {r.superseded_by}" + (f" ({label})" if label else "")
            elif r.source in linked:
                out[r.source] = "current" + (f" ({r.label})" if r.label else "")
        return out

    def carried_versions(self) -> dict[str, dict]:
        """source -> the version facts a bundle carried for it (empty: none, or a bundle from before)."""
        exists = self._conn().execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='carried_versions'").fetchone()
        if exists is None:
            return {}
        return {source: json.loads(facts) for source, facts in
                self._conn().execute("SELECT source, facts FROM carried_versions")}

    def replace_carried_versions(self, facts: dict[str, dict]) -> None:
        """The carried facts alone (a bundle of the version this laptop is at, whose sidecars changed)."""
        with self._tx() as conn:
            self._replace_carried(conn, facts)

    @staticmethod
    def _replace_carried(conn: sqlite3.Connection, facts: dict[str, dict]) -> None:
        """Inside the caller's transaction: the carried facts become exactly ``facts``."""
        conn.execute("DELETE FROM carried_versions")
        conn.executemany("INSERT INTO carried_versions(source, facts) VALUES (?, ?)",
                         [(source, json.dumps(value, sort_keys=True)) for source, value in facts.items()])

    def versions_fingerprint(self) -> str:
        """Changes whenever a link changes ("" when no file is superseded)."""
        return self.get_meta("versions_fingerprint") or ""

    def replace_versions(self, records: Sequence[VersionRecord]) -> bool:
        """Make the table exactly ``records`` (one transaction); whether any link changed."""
        fingerprint = _fingerprint(records)
        with self._tx() as conn:
            conn.execute("DELETE FROM versions")
            conn.executemany(
                "INSERT INTO versions(source, series, document_id, revision, revised, supersedes, origin, superseded_by) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(r.source, r.series, r.document_id, r.revision, r.revised, json.dumps(list(r.supersedes)), r.origin,
                  r.superseded_by) for r in records])
            old = conn.execute("SELECT value FROM meta WHERE key='versions_fingerprint'").fetchone()
            conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('versions_fingerprint', ?)", (fingerprint,))
        return (old[0] if old else "") != fingerprint

    def first_texts(self) -> dict[str, tuple[str, str]]:
        """Per document: its title and the text of its first chunk (heading included), where a
        revision number or date is looked for."""
        rows = self._conn().execute(
            "SELECT d.doc_hash, d.title, c.section, c.text FROM documents d "
            "LEFT JOIN chunks c ON c.doc_hash = d.doc_hash AND c.chunk_index = 0").fetchall()
        return {h: (title or "", ((section or "") + "\n" + (text or "")).strip()) for h, title, section, text in rows}

    def superseded_documents(self) -> dict[str, Superseded]:
        """doc hash -> how it is superseded, for documents every file of which is superseded (the same
        bytes stored under a current name too are current)."""
        records = {r.source: r for r in self.version_records()}
        old = {s: r for s, r in records.items() if r.superseded_by}
        if not old:
            return {}
        rows = self._conn().execute(
            f"SELECT source, doc_hash FROM files WHERE source IN ({','.join('?' * len(old))})", list(old)).fetchall()
        hashes = {h for _, h in rows}
        names = self.sources_of(hashes)
        out: dict[str, Superseded] = {}
        for doc_hash in hashes:
            if all(s in old for s in names.get(doc_hash, ())):
                first = old[names[doc_hash][0]]
                current = records.get(first.superseded_by or "")
                out[doc_hash] = Superseded(first.source, first.superseded_by or "", current.label if current else "")
        return out


def _fingerprint(records: Sequence[VersionRecord]) -> str:
    links = sorted((r.source, r.superseded_by) for r in records if r.superseded_by)
    if not links:
        return ""
    digest = hashlib.sha256()
    for source, current in links:
        digest.update(f"{source}\0{current}\n".encode())
    return digest.hexdigest()[:12]
