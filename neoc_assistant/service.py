"""The assistant as one object: what the CLI, the UI and the load test all call.

It validates input, then delegates to the components the container built.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

from neoc_assistant.errors import InputError
from neoc_assistant.ingest.pipeline import IngestSummary
from neoc_assistant.retrieve.hits import Hit
from neoc_assistant.retrieve.retriever import SearchFilters


class Assistant:
    def __init__(self, container):
        self.container = container
        self.settings = container.settings

    # -- knowledge base ------------------------------------------------------------
    def ingest(self, paths: Iterable[Path] | None = None, *, prune: bool = True, show_progress: bool = False, on_progress=None) -> IngestSummary:
        paths = list(paths) if paths else [self.settings.kb_dir]
        return self.container.ingestor.ingest(paths, prune=prune, show_progress=show_progress, on_progress=on_progress)

    def delete_documents(self, sources: Iterable[str]) -> IngestSummary:
        return self.container.ingestor.delete(sources)

    def documents(self):
        return self.container.manifest.documents()

    def kb_version(self) -> str:
        return self.container.manifest.kb_version()

    # -- questions -------------------------------------------------------------------
    def validate_question(self, question: str) -> str:
        text = (question or "").strip()
        if not text:
            raise InputError("The question is empty: type what you want to know, e.g. 'What are the EOC activation levels?'")
        limit = self.settings.max_question_chars
        if len(text) > limit:
            raise InputError(
                f"The question is {len(text)} characters long; the limit is {limit}. "
                "Ask the key question in a sentence or two (or raise NEOC_MAX_QUESTION_CHARS)."
            )
        return text

    def search(self, query: str, k: int | None = None, filters: SearchFilters | None = None) -> list[Hit]:
        query = self.validate_question(query)
        return self.container.retriever.search(query, k=k, filters=filters)
