"""Answers from current documents; a superseded revision only when no current one answers, and then
said so.

The links are made at ingest (``ingest/versions.py``) and stored in the manifest
(``store/versions.py``). A question is first answered from the current documents only: the chunks of
superseded revisions are left out of retrieval (``DocumentScope.excluded``), so an old SOP can
neither be quoted nor crowd the new one out of the passages (their near-identical text would
otherwise be merged into one hit). Only when that answer is not-found are the superseded
revisions searched on their own (``DocumentScope.only``); an answer from them carries, in its
text, its notice and its sources, which file superseded them and when.
"""

from __future__ import annotations

import threading

from neoc_assistant.answer import Answer
from neoc_assistant.language.texts import answer_text, question_language
from neoc_assistant.retrieve.hits import Hit
from neoc_assistant.retrieve.search import DocumentScope
from neoc_assistant.store.manifest import Manifest
from neoc_assistant.store.versions import Superseded

def superseded_phrase(s: Superseded, lang: str = "en") -> str:
    """``old.md, superseded by new.md (Rev. 2, 2024-03-15)`` (in ``lang``, the question's language)."""
    phrase = answer_text("superseded_by", lang, source=s.source, current=s.current)
    return phrase + (f" ({s.current_label})" if s.current_label else "")


class VersionView:
    """The superseded documents of the current knowledge base, read once per version of its links."""

    def __init__(self, manifest: Manifest):
        self.manifest = manifest
        self._lock = threading.Lock()
        self._key: tuple[str, str] | None = None
        self._superseded: dict[str, Superseded] = {}

    def key(self) -> str:
        """Part of the response cache's key: changes whenever a link does."""
        return self.manifest.versions_fingerprint()

    def superseded(self) -> dict[str, Superseded]:
        key = (self.manifest.kb_version(), self.key())
        with self._lock:
            if key != self._key:
                self._superseded = self.manifest.superseded_documents() if key[1] else {}
                self._key = key
            return self._superseded

    def current_scope(self) -> DocumentScope | None:
        old = self.superseded()
        return DocumentScope(excluded=frozenset(old)) if old else None

    def superseded_scope(self) -> DocumentScope | None:
        old = self.superseded()
        return DocumentScope(only=frozenset(old)) if old else None

    def mark(self, answer: Answer, hits: list[Hit]) -> str:
        """Mark the answer's sources that are superseded revisions; the warning line for its text
        ("" when none is)."""
        old = self.superseded()
        doc_of = {h.chunk_id: h.doc_hash for h in hits}
        named: list[Superseded] = []
        for source in answer.sources:
            info = old.get(doc_of.get(source.get("chunk_id", ""), ""))
            if info is None:
                continue
            source["superseded_by"] = {"source": info.current, "version": info.current_label}
            if info not in named:
                named.append(info)
        if not named:
            return ""
        lang = question_language(answer.question)
        which = "; ".join(superseded_phrase(s, lang) for s in named)
        notice = answer_text("superseded", lang, which=which)
        answer.notice = f"{notice} {answer.notice}".strip()
        return answer_text("superseded_line", lang, which=which)
