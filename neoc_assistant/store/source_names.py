"""Renaming the sources a manifest stores, in place: when the naming scheme or the Unicode form of
names changes (``ingest/names.py``), every stored name is rewritten once, and two rows that become
one name are merged. Kept apart from ``manifest.py`` because it is maintenance that runs once per
scheme, not part of ingesting or reading; it needs the manifest's transaction and version bump."""

from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Callable


class SourceNames:
    """Mixed into ``Manifest``; uses its ``get_meta``, ``_tx``, ``_drop_unreferenced`` and ``_bump_version``."""

    if TYPE_CHECKING:  # provided by Manifest
        def get_meta(self, key: str) -> str | None: ...
        def _tx(self) -> AbstractContextManager[sqlite3.Connection]: ...
        @staticmethod
        def _drop_unreferenced(conn: sqlite3.Connection, doc_hashes: list[str]) -> list[str]: ...
        @staticmethod
        def _bump_version(conn: sqlite3.Connection) -> None: ...

    def rename_sources(self, scheme: str, name_of: Callable[[str, str], str]) -> int:
        """Give every file the name ``name_of(abs_path, source)`` unless this was done for ``scheme`` already
        (a manifest from before source names could not collide; or the KB folder moved).

        Returns how many files were renamed. Two rows for the same file (ingested once through a
        sub-folder and once through the KB folder) become one: the most recently ingested wins.
        """
        if self.get_meta("source_names") == scheme:
            return 0
        with self._tx() as conn:
            rows = conn.execute("SELECT source, abs_path, doc_hash FROM files ORDER BY ingested_at DESC").fetchall()
            renamed, taken, dropped = [], set(), []
            for source, abs_path, doc_hash in rows:
                new = name_of(abs_path, source)
                if new in taken:
                    dropped.append((source, doc_hash))
                elif new != source:
                    renamed.append((source, new))
                taken.add(new)
            self._apply_renames(conn, renamed, dropped)
            conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('source_names', ?)", (scheme,))
        return len(renamed) + len(dropped)

    def normalize_sources(self, form: str, normal: Callable[[str], str]) -> tuple[int, list[tuple[str, str]]]:
        """Give every file the name ``normal(source)`` unless this was done for ``form`` already (names
        stored before they were normalised, e.g. NFD names from a macOS copy).

        Returns (how many were renamed, [(dropped source, the source kept)]): when the normal name is
        another row's already, the two were look-alikes stored side by side; the row already in normal
        form is kept and the other forgotten (its file is refused as a look-alike by the next ingest).
        """
        if self.get_meta("source_form") == form:
            return 0, []
        with self._tx() as conn:
            rows = conn.execute("SELECT source, doc_hash FROM files ORDER BY ingested_at DESC").fetchall()
            taken = {source for source, _ in rows if normal(source) == source}
            renamed, dropped, merged = [], [], []
            for source, doc_hash in rows:
                new = normal(source)
                if new == source:
                    continue
                if new in taken:
                    dropped.append((source, doc_hash))
                    merged.append((source, new))
                else:
                    renamed.append((source, new))
                    taken.add(new)
            self._apply_renames(conn, renamed, dropped)
            conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('source_form', ?)", (form,))
        return len(renamed), merged

    def _apply_renames(self, conn: sqlite3.Connection, renamed: list[tuple[str, str]],
                       dropped: list[tuple[str, str]]) -> None:
        """Rename (old, new) rows and delete (source, doc_hash) rows, inside the caller's transaction."""
        for source, _ in dropped:
            conn.execute("DELETE FROM files WHERE source=?", (source,))
        for source, new in renamed:  # through a temporary name: a new name may be another row's old one
            conn.execute("UPDATE files SET source=? WHERE source=?", ("\x01" + new, source))
        conn.execute("UPDATE files SET source=substr(source, 2) WHERE substr(source, 1, 1) = char(1)")
        self._drop_unreferenced(conn, [h for _, h in dropped])
        if renamed or dropped:
            self._bump_version(conn)
