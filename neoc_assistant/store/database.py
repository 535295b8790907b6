"""One SQLite file shared by threads and processes, whose every failure is a message an operator can act on.

Why a layer of its own: the manifest is read on every question, so whatever
can go wrong with the file - corrupt pages, a read-only data directory, a lock
held by an ingest, a full disk - must reach the CLI and the UI as a
``StoreError`` that says how to recover, never as ``sqlite3.DatabaseError``
from deep inside a search. Every statement runs through a connection and
cursor that translate errors, including rows fetched lazily.

**Read-only.** A database whose file or folder this process cannot write is
opened read-only (``mode=ro``; ``immutable=1`` when SQLite could not create the
WAL index beside it), so ``search``, ``ask`` and ``documents`` keep working;
a write then fails with a message naming the permission problem.

**Integrity.** ``integrity()`` runs ``PRAGMA quick_check`` (it reads every page
once) and remembers the verdict until the file changes, so the health check
can run it on every refresh.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from neoc_assistant.errors import StoreError

REBUILD_HINT = "rebuild it from your documents with `python -m neoc_assistant ingest --rebuild`"


def db_error_message(path: Path, exc: Exception) -> str:
    text = str(exc)
    if "locked" in text or "busy" in text:
        return f"The knowledge-base manifest {path} is locked by another process (an ingest?). Wait for it to finish and retry."
    if "disk" in text and ("full" in text or "I/O" in text):
        return f"No space left to write {path}. Free disk space under {path.parent} and retry; nothing was changed."
    if "not a database" in text or "malformed" in text:
        return f"The knowledge-base manifest {path} is corrupt ({text}): {REBUILD_HINT} (the damaged files are kept aside)."
    if "readonly" in text or "unable to open" in text or "permission" in text.lower():
        return read_only_message(path.parent, text)
    return f"Knowledge-base manifest error at {path}: {text}"


def read_only_message(folder: Path, detail: str = "permission denied") -> str:
    return (f"The data directory {folder} is read-only for this user ({detail}): searching and answering work, "
            f"but adding or deleting documents needs write access. Fix its permissions (e.g. `chown -R "
            f"{_user()} {folder}`) or point NEOC_DATA_DIR at a writable copy.")


def _user() -> str:
    try:
        import getpass

        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in a container
        return str(os.getuid())


def writable(path: Path) -> bool:
    """Can this process write ``path`` (if it exists) and create files in its folder?"""
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return os.access(folder, os.W_OK) and (not path.exists() or os.access(path, os.W_OK))


def ensure_column(conn: sqlite3.Connection, table: str, column: str, *, read_only: bool) -> bool:
    """Add ``column`` ("name TYPE") to a table made before it existed (an instant ALTER: no row is
    rewritten); whether the table has it now (a read-only file is left as it is)."""
    name = column.split()[0]
    if any(row[1] == name for row in conn.execute(f"PRAGMA table_info({table})")):
        return True
    if read_only:
        return False
    try:
        conn.execute(f"ALTER TABLE {table} ADD COLUMN {column}")
    except sqlite3.OperationalError as exc:  # another process added it first
        if "duplicate column" not in str(exc):
            raise
    return True


class _Cursor(sqlite3.Cursor):
    db_path: Path

    def _wrap(self, fn, *args):
        try:
            return fn(*args)
        except sqlite3.DatabaseError as exc:
            raise StoreError(db_error_message(self.db_path, exc)) from exc

    def execute(self, *args):
        return self._wrap(super().execute, *args)

    def executemany(self, *args):
        return self._wrap(super().executemany, *args)

    def executescript(self, *args):
        return self._wrap(super().executescript, *args)

    def fetchone(self):
        return self._wrap(super().fetchone)

    def fetchmany(self, *args):
        return self._wrap(super().fetchmany, *args)

    def fetchall(self):
        return self._wrap(super().fetchall)

    def __next__(self):
        return self._wrap(super().__next__)


class _Connection(sqlite3.Connection):
    db_path: Path

    def cursor(self, factory=None):
        cur = super().cursor(factory or _Cursor)
        cur.db_path = self.db_path
        return cur

    def execute(self, *args):
        return self.cursor().execute(*args)

    def executemany(self, *args):
        return self.cursor().executemany(*args)

    def executescript(self, *args):
        return self.cursor().executescript(*args)


class SqliteDatabase:
    """Thread-safe access to one SQLite file (one connection per thread), created with ``schema`` on first use."""

    def __init__(self, path: Path, schema: str):
        """An existing file is checked at once (a corrupt file is reported before any work); a missing
        one is created on first use, so building one - e.g. for a health check - initialises nothing."""
        self.path = Path(path)
        self._schema = schema
        self._local = threading.local()
        self._schema_lock = threading.Lock()
        self._schema_ready = False
        self._integrity: tuple[tuple, dict] | None = None
        self.read_only = self.path.exists() and not writable(self.path)
        if self.path.exists():
            self._ensure_schema()

    def _ensure_schema(self) -> None:
        with self._schema_lock:
            if self._schema_ready:
                return
            if self.read_only:
                self._open().execute("SELECT count(*) FROM sqlite_master").fetchone()  # is it a database?
            else:
                try:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise StoreError(read_only_message(self.path.parent, exc.strerror or str(exc))) from exc
                self._open().executescript(self._schema)  # executescript manages its own transaction
            self._schema_ready = True

    def _open(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = self._connect()
            except sqlite3.DatabaseError as exc:
                raise StoreError(db_error_message(self.path, exc)) from exc
            self._local.conn = conn
        return conn

    def _connect(self) -> sqlite3.Connection:
        kwargs: dict[str, Any] = dict(timeout=30, isolation_level=None, check_same_thread=False, factory=_Connection)
        if self.read_only:
            wal_index = all(Path(f"{self.path}{end}").exists() for end in ("-wal", "-shm"))
            uri = self.path.absolute().as_uri() + ("?mode=ro" if wal_index else "?mode=ro&immutable=1")
            conn = sqlite3.connect(uri, uri=True, **kwargs)
            conn.db_path = self.path
            return conn
        conn = sqlite3.connect(self.path, **kwargs)
        conn.db_path = self.path
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

    def _conn(self) -> sqlite3.Connection:
        if not self._schema_ready:
            self._ensure_schema()
        return self._open()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        if self.read_only:
            raise StoreError(read_only_message(self.path.parent))
        conn = self._conn()
        try:
            conn.execute("BEGIN IMMEDIATE")
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def move_aside(self, folder: Path) -> list[Path]:
        """Move the database file (and its WAL files) into ``folder`` and start afresh on next use
        (rebuilding a corrupt manifest: the damaged file is kept for inspection, never deleted)."""
        self.close()
        self._local = threading.local()  # other threads' connections are dropped with it
        self._schema_ready = False
        self._integrity = None
        folder.mkdir(parents=True, exist_ok=True)
        moved = []
        for end in ("", "-wal", "-shm"):
            source = Path(f"{self.path}{end}")
            if source.exists():
                os.replace(source, folder / source.name)
                moved.append(folder / source.name)
        self.read_only = False
        return moved

    def integrity(self) -> dict:
        """``{"ok": bool, "message"}`` from ``PRAGMA quick_check``, re-run only when the file changed."""
        stamp = tuple((st.st_size, st.st_mtime_ns) for st in (_stat(self.path), _stat(Path(f"{self.path}-wal"))))
        if self._integrity is not None and self._integrity[0] == stamp:
            return self._integrity[1]
        try:
            # one line per problem: quick_check's rows hold newlines, which broke the System tab's table
            rows = [" ".join(str(r[0]).split()) for r in self._conn().execute("PRAGMA quick_check(5)").fetchall()]
            ok = rows == ["ok"]
            result = {"ok": ok, "message": "quick_check ok" if ok else
                      f"the manifest {self.path} is damaged ({'; '.join(rows)}): {REBUILD_HINT}"}
        except StoreError as exc:
            result = {"ok": False, "message": str(exc)}
        self._integrity = (stamp, result)
        return result


def _stat(path: Path) -> os.stat_result:
    try:
        return path.stat()
    except OSError:
        return os.stat_result((0,) * 10)
