"""The model writes the answer; only what verification supports reaches the officer.

The model is given the reader's best extracts (``generation.prompt_extracts``: fewer prompt tokens
is the one thing that shortens a CPU model's time to first token), grouped under their passages and
numbered as passages; its claims are checked against exactly that text as they complete
(``verify/verifier.py``); sources keep the whole passages. If nothing survives, or what survives
answers the question clearly worse than the reader's composition (true sentences about something
else), the composition is shown instead and the notice says why.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import Iterator

from neoc_assistant.answer import Answer, StreamEvent
from neoc_assistant.answering.quoted import Composed, quoted_answer
from neoc_assistant.answering.sources import generation_stats, source_dict
from neoc_assistant.compose.model_choice import offered_extracts
from neoc_assistant.language.texts import answer_text, question_language
from neoc_assistant.compose.quotes import extract_text
from neoc_assistant.generate.backend import GenerationBackend, TextStream
from neoc_assistant.generate.prompt import build_messages
from neoc_assistant.question import Question
from neoc_assistant.retrieve.hits import Hit
from neoc_assistant.settings import GenerationSettings
from neoc_assistant.language.citations import check_citations
from neoc_assistant.verify.verifier import AnswerVerifier


class ModelRun:
    """The model's text pieces for one answer. The context is freed however the loop ends (done,
    Stop, or the consumer going away); ``cancelled`` is read before closing, because closing the
    stream sets the cancel event itself."""

    def __init__(self, stream: TextStream, cancel: threading.Event | None):
        self.stream, self.cancel = stream, cancel
        self.cancelled = False

    def __iter__(self) -> Iterator[str]:
        try:
            for piece in self.stream:
                yield piece
                if self.cancel is not None and self.cancel.is_set():
                    break
            self.cancelled = self.cancel is not None and self.cancel.is_set()
        finally:
            self.stream.close()

    @property
    def stats(self) -> dict:
        return self.stream.stats

    @property
    def finish(self) -> str:
        return "cancelled" if self.cancelled else (self.stats.get("finish_reason") or "stop")

    @property
    def tokens(self) -> dict:
        return {"prompt": self.stats.get("prompt_tokens", 0), "completion": self.stats.get("generated_tokens", 0)}


def prompt_passages(composed: Composed, extracts: int) -> list[Hit]:
    """What the model reads: the best ``extracts`` distinct extracts, grouped under their passage
    (best passage first, document order within), one statement per line; 0 = whole passages."""
    if extracts <= 0:
        return list(composed.passages)
    offered = offered_extracts(composed.scorer, composed.composition.candidates, extracts)
    by_passage: dict[int, list] = {}
    for e in offered:
        by_passage.setdefault(e.passage, []).append(e)
    out = []
    for p, group in by_passage.items():
        group.sort(key=lambda e: e.statements[0])
        view, lines, heading = composed.views[p], [], None
        for e in group:  # a heading is written once for the extracts under it
            first = view.statements[e.statements[0]].heading
            lines.append(extract_text(e, view, heading=first != heading))
            heading = first
        out.append(replace(composed.passages[p], text="\n".join(lines)))
    return out


class WrittenWriter:
    def __init__(self, engine: GenerationBackend, verifier: AnswerVerifier, generation: GenerationSettings,
                 off_topic_margin: float):
        self.engine = engine
        self.verifier = verifier
        self.generation = generation
        self.off_topic_margin = off_topic_margin

    def start(self, question: Question, composed: Composed) -> tuple[ModelRun, list[dict], list[Hit]]:
        """Start the model (``BusyError``/``UnavailableError`` before any text)."""
        s = self.generation
        self.engine.load()
        messages, passages = build_messages(question.text, prompt_passages(composed, s.prompt_extracts),
                                            list(question.history), self.engine.count_tokens, s.n_ctx, s.max_tokens)
        stream = self.engine.stream(messages, max_tokens=s.max_tokens, cancel=question.cancel)
        return ModelRun(stream, question.cancel), messages, passages

    def write(self, question: Question, composed: Composed, run: ModelRun, passages: list[Hit],
              t0: float) -> Iterator[StreamEvent]:
        originals = {h.chunk_id: h for h in composed.passages}
        v0 = time.perf_counter()
        claims = self.verifier.stream(question.text, [h.text for h in passages])
        verify_ms = (time.perf_counter() - v0) * 1000
        shown: list[str] = []
        for piece in run:
            v0 = time.perf_counter()
            ready = claims.feed(piece)
            verify_ms += (time.perf_counter() - v0) * 1000
            if ready:
                shown.append(ready)
                yield StreamEvent("token", text=ready)
        cancelled, finish = run.cancelled, run.finish
        if not cancelled:
            v0 = time.perf_counter()
            ready = claims.finish(cut_off=finish in ("length", "error"))
            verify_ms += (time.perf_counter() - v0) * 1000
            if ready:
                shown.append(ready)
                yield StreamEvent("token", text=ready)
        verification = claims.verification()
        question.timings_ms["verify"] = verify_ms
        lang = question_language(question.text)  # the notices are in the question's language
        if verification.status == "extractive":
            notice = answer_text("servers_down" if finish == "error" else "unverified", lang)
        else:
            notice = answer_text("off_topic", lang) if self._off_topic(composed, claims.shown_claims) else ""
        if notice and not cancelled and composed.composition.extracts:
            # Nothing the model wrote survived, or what survived does not answer the question: the
            # reader's composition instead (said so in the notice; the stream replaces its text).
            answer = quoted_answer(question.text, composed, notice, verification.to_json())
            yield StreamEvent("replace" if shown else "token", text=answer.answer)
        else:
            notices = [answer_text("partial", lang)] if verification.status == "partial" else []
            if finish in ("length", "error"):  # "error": the model's server failed mid-answer
                notices.append(answer_text("truncated" if finish == "length" else "server_cut", lang))
            answer = Answer(
                question=question.text,
                answer="".join(shown).strip(),
                mode="llm",
                sources=[source_dict(originals.get(passages[i].chunk_id, passages[i]), n)
                         for n, i in enumerate(claims.cited_passages(), start=1)],
                notice=" ".join(notices),
                verification=verification.to_json(),
            )
        _finish_run(answer, run, question, t0)
        yield StreamEvent("done", answer=answer)

    def _off_topic(self, composed: Composed, shown_claims) -> bool:
        """True (the off-topic notice) when the verified claims are clearly further in meaning from the question
        than the passages' best statement (true, but about something else: "the IRA covers these
        sectors" for a toilet question). Meaning only: a statement is read with its heading
        and a claim is not, so word coverage would count the heading against the claim."""
        candidates = composed.composition.candidates
        if not composed.composition.extracts or not candidates or not shown_claims:
            return False
        best = max(c.similarity for c in candidates)
        best_claim = max(float(vector @ composed.scorer.vector) for _, vector in shown_claims)
        return best_claim < best - self.off_topic_margin

    def write_unchecked(self, question: Question, run: ModelRun, passages: list[Hit],
                        t0: float) -> Iterator[StreamEvent]:
        """The model's text as it comes (evaluation of the raw model only; never cached)."""
        pieces: list[str] = []
        for piece in run:
            pieces.append(piece)
            yield StreamEvent("token", text=piece)
        text, _ = check_citations("".join(pieces).strip(), len(passages))
        answer = Answer(
            question=question.text, answer=text, mode="llm",
            sources=[source_dict(h, n) for n, h in enumerate(passages, start=1)],
            notice=answer_text("unchecked", question_language(question.text)),
            verification={"status": "unchecked", "claims": []},
        )
        _finish_run(answer, run, question, t0)
        yield StreamEvent("done", answer=answer)


def _finish_run(answer: Answer, run: ModelRun, question: Question, t0: float) -> None:
    answer.tokens = run.tokens
    answer.finish_reason = run.finish
    answer.generation = generation_stats(run.stats)
    answer.complete = not run.cancelled
    answer.timings_ms = {**question.timings_ms, "generate": (time.perf_counter() - t0) * 1000,
                         "total": question.elapsed_ms()}
