"""The assistant as one object: what the CLI, the UI and the load test all call.

It validates input, then delegates to the components the container built; see
docs/service-interface.md for the contract.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Iterable, Iterator

from neoc_assistant.answer import Answer, StreamEvent
from neoc_assistant.chain import ChainState
from neoc_assistant.errors import InputError, NeocError
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

    def ask(
        self,
        question: str,
        *,
        history: list[tuple[str, str]] | None = None,
        filters: SearchFilters | None = None,
        use_cache: bool = True,
    ) -> Answer:
        for event in self.ask_stream(question, history=history, filters=filters, use_cache=use_cache):
            if event.kind == "done":
                return event.answer
        raise RuntimeError("the chain ended without an answer")  # pragma: no cover - a bug, not an input

    def ask_stream(
        self,
        question: str,
        *,
        history: list[tuple[str, str]] | None = None,
        filters: SearchFilters | None = None,
        use_cache: bool = True,
        cancel: threading.Event | None = None,
    ) -> Iterator[StreamEvent]:
        metrics = self.container.metrics
        try:
            question = self.validate_question(question)
        except InputError:
            metrics.record_error("input")
            raise
        self.container.query_log.record(question)
        state = ChainState(
            question=question, history=list(history or []), filters=filters, use_cache=use_cache, cancel=cancel
        )
        answer = None
        try:
            for event in self.container.chain.stream(state):
                if event.kind == "done":
                    answer = event.answer
                    # Recorded before yielding: a caller may stop iterating once it has the answer.
                    metrics.record_request(_outcome(answer), answer.timings_ms, answer.tokens)
                yield event
        except NeocError as exc:
            metrics.record_error(type(exc).__name__)
            raise
        except GeneratorExit:
            if answer is None:
                metrics.record_error("cancelled")
            raise
        except Exception:
            metrics.record_error("internal")
            raise

    def feedback(self, question: str, answer: Answer, helpful: bool, comment: str = "") -> None:
        """Log feedback locally; a thumbs-down on a cached answer evicts it so it is not served again."""
        log_dir = self.settings.log_dir
        log_dir.mkdir(parents=True, exist_ok=True)
        record = {
            "ts": time.time(),
            "question": question,
            "helpful": bool(helpful),
            "comment": comment,
            "mode": answer.mode,
            "cached": answer.cached,
            "sources": [s.get("source") for s in answer.sources],
            "kb_version": self.kb_version(),
        }
        with open(log_dir / "feedback.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        if not helpful and self.settings.cache_enabled:
            # Also when the answer was fresh: it may have been stored and would be served next time.
            ctx = self.container.chain.cache_context(ChainState(question=question))
            self.container.response_cache.remove(question, ctx)

    # -- operations ------------------------------------------------------------------
    def health(self) -> dict:
        from neoc_assistant.monitoring.health import check_health

        return check_health(self.container)

    def stats(self) -> dict:
        return self.container.metrics.snapshot()


def _outcome(answer: Answer) -> str:
    if not answer.complete:
        return "cancelled"
    return f"cached_{answer.cache_tier}" if answer.cached else answer.mode
