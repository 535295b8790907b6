"""A question in two steps - looked up, then answered - each answer counted and put in the audit trail.

Why two steps: a server should answer a cache hit at once (milliseconds) and queue only the questions
that need retrieval and an answer slot. In one step, the 50-user load run with the default
``serve.api_max_running`` (4) got 503 for 96 % of its requests, most of them repeats the cache held,
because every question - hit or not - waited in line behind four model answers. ``Assistant`` (the
front door) validates the question and hands it here; callers only see ``LookedUp``.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace
from typing import Callable, Iterator

from neoc_assistant.answer import Answer, StreamEvent
from neoc_assistant.audit import Asker, AuditTrail
from neoc_assistant.cache.query_log import QueryLog
from neoc_assistant.chain import Looked, RagChain
from neoc_assistant.errors import NeocError
from neoc_assistant.monitoring.metrics import Metrics
from neoc_assistant.monitoring.window import outcome_of
from neoc_assistant.question import Question

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LookedUp:
    """A question read and looked up in the response cache. ``answer``: the cached answer (already
    counted and recorded), or None - the question still has to be answered (``Assistant.answer_stream``)."""

    answer: Answer | None
    looked: Looked
    asker: Asker | None


class QuestionDesk:
    def __init__(self, *, chain: RagChain, metrics: Metrics, query_log: QueryLog, audit: AuditTrail | None,
                 kb_version: Callable[[], str]):
        self._chain = chain
        self._metrics = metrics
        self._query_log = query_log
        self._audit = audit
        self._kb_version = kb_version

    def look_up(self, question: Question, asker: Asker | None) -> LookedUp:
        self._query_log.record(question.text)
        try:
            looked = self._chain.look(question)
        except NeocError as exc:
            self._metrics.record_error(type(exc).__name__)
            raise
        except Exception:
            self._metrics.record_error("internal")
            raise
        answer = self._chain.cached_answer(looked)
        if answer is not None:
            self._finished(answer, asker, len(question.history))
        return LookedUp(answer, looked, asker)

    def answer_stream(self, looked_up: LookedUp, cancel: threading.Event | None = None) -> Iterator[StreamEvent]:
        if looked_up.answer is not None:
            yield StreamEvent("token", text=looked_up.answer.answer)
            yield StreamEvent("done", answer=looked_up.answer)
            return
        looked = looked_up.looked
        if cancel is not None:
            looked = replace(looked, question=replace(looked.question, cancel=cancel))
        answer = None
        try:
            for event in self._chain.stream_looked(looked):
                if event.kind == "done" and event.answer is not None:
                    answer = event.answer
                    # Recorded before yielding: a caller may stop iterating once it has the answer.
                    self._finished(answer, looked_up.asker, len(looked.question.history))
                yield event
        except NeocError as exc:
            self._metrics.record_error(type(exc).__name__)
            raise
        except GeneratorExit:
            if answer is None:
                self._metrics.record_error("cancelled")
            raise
        except Exception:
            self._metrics.record_error("internal")
            raise

    def _finished(self, answer: Answer, asker: Asker | None, turns: int) -> None:
        """Counted, stamped with the knowledge-base version and recorded. A trail that cannot be written
        (a full disk) is logged, not turned into a failed answer: in an emergency the answer comes first."""
        outcome = outcome_of(answer) if answer.complete else "cancelled"
        self._metrics.record_request(outcome, answer.timings_ms, answer.tokens)
        answer.kb_version = self._kb_version()
        if self._audit is None:
            return
        try:
            answer.audit_id = self._audit.record_answer(asker or Asker(), answer, turns)
        except Exception:  # noqa: BLE001
            log.exception("the audit trail could not record an answer")
