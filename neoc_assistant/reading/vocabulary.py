"""The knowledge base's own vocabulary, per kb version: one ``Guard`` shared by its users.

Two stages read questions with it: the response cache's guard (may the answer
to A be served for B?) and the answerability check (does the question name
something the passages never mention?). Building it reads every chunk (0.5-4 s
on a large KB), so it is built once per kb version, kept in memory for the
last few versions, and pickled under ``cache_dir/vocabulary`` so other
processes (the server while the CLI ingests, a second worker) load it instead
of rebuilding.
"""

from __future__ import annotations

import logging
import os
import pickle
import tempfile
import threading
import time
from pathlib import Path

from neoc_assistant.reading.guard import Guard
from neoc_assistant.reading.lexicon import KBLexicon, wordpiece_common_words
from neoc_assistant.store.manifest import Manifest

log = logging.getLogger(__name__)

_KEEP_VERSIONS = 4


class KBVocabulary:
    def __init__(self, manifest: Manifest | None, kb_dir: Path, folder: Path | None, embedder,
                 *, fixed: KBLexicon | None = None):
        """Built from the manifest's chunks, else (nothing ingested yet) from the files in ``kb_dir``;
        kept under ``folder``. ``fixed`` pins one lexicon for every version (tests, evaluation)."""
        self.manifest = manifest
        self.kb_dir = Path(kb_dir)
        self.folder = Path(folder) if folder else None
        self.embedder = embedder
        self._fixed = fixed
        self._guards: dict[str, Guard] = {}
        self._common: frozenset[str] | None = None
        self._lock = threading.RLock()

    @classmethod
    def fixed(cls, lexicon: KBLexicon) -> "KBVocabulary":
        return cls(None, Path("/nonexistent"), None, None, fixed=lexicon)

    def guard(self, kb_version: str) -> Guard:
        guard = self._guards.get(kb_version)
        if guard is not None:
            return guard
        with self._lock:
            guard = self._guards.get(kb_version)
            if guard is None:
                guard = Guard(self._load(kb_version))
                if len(self._guards) >= _KEEP_VERSIONS:
                    self._guards.pop(next(iter(self._guards)))
                self._guards[kb_version] = guard
        return guard

    def lexicon(self, kb_version: str) -> KBLexicon:
        return self.guard(kb_version).lex

    # -- building and sharing --------------------------------------------------------------------------
    def _file(self, kb_version: str) -> Path | None:
        return self.folder / f"{kb_version}.pickle" if self.folder else None

    def _load(self, kb_version: str) -> KBLexicon:
        if self._fixed is not None:
            return self._fixed
        path = self._file(kb_version)
        if path is not None and path.is_file():
            try:
                with open(path, "rb") as fh:
                    stored = pickle.load(fh)  # our own file in our own data dir
                if isinstance(stored, KBLexicon):
                    return stored
            except Exception as exc:  # noqa: BLE001 - rebuild instead
                log.warning("vocabulary: could not read %s (%s); rebuilding", path, exc)
        if self._common is None:
            self._common = wordpiece_common_words(self.embedder)
        t0 = time.perf_counter()
        lexicon = None
        try:
            texts = self._manifest_texts()
            lexicon = KBLexicon.from_documents(texts, self._common) if texts else None
            if lexicon is None and self.kb_dir.is_dir():
                lexicon = KBLexicon.from_paths([self.kb_dir], self._common)
        except Exception as exc:  # noqa: BLE001 - the guard then relies on the generic rules only
            log.warning("vocabulary: could not be built: %s", exc)
        if lexicon is None:
            return KBLexicon(common=self._common)  # not stored: the KB may be ingested any moment
        log.info("vocabulary for kb %s built in %.1fs (%s)", kb_version, time.perf_counter() - t0, lexicon.summary())
        if path is not None:
            self._store(path, lexicon)
        return lexicon

    def _manifest_texts(self) -> list[str]:
        if self.manifest is None:
            return []
        try:
            return self.manifest.document_texts()
        except Exception as exc:  # noqa: BLE001 - sqlite or StoreError: fall back to the files
            log.warning("response cache: could not read the manifest for the guard vocabulary: %s", exc)
            return []

    def _store(self, path: Path, lexicon: KBLexicon) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            for old in sorted(path.parent.glob("*.pickle"), key=lambda p: p.stat().st_mtime)[:-_KEEP_VERSIONS]:
                old.unlink(missing_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
            with os.fdopen(fd, "wb") as fh:
                pickle.dump(lexicon, fh, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, path)
        except OSError as exc:
            log.debug("vocabulary: not shared (%s)", exc)

