"""Writing the answer once the passages are known: not-found, quotes, or the model's verified text.

The last stage of the chain (``chain.py``), in its own module because it is
the one most likely to change (a new backend, a new fallback):

* the question names something no passage mentions -> **not-found** with the
  part that was not found (``verify/answerability.py``);
* no model -> **extractive**: the passages' best sentences, quoted;
* otherwise the model writes; its text reaches the stream claim by claim
  after verification (``verify/verifier.py``); if nothing survives, if what
  survives does not answer the question, or if every model slot is busy,
  the answer is the quotes instead, said so in its notice.

The model is given only the statements of each passage that answer the
question (``generation.prompt_statements``) - fewer tokens before the first
one - and its claims are checked against exactly that text; the sources
shown keep the whole passages.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import Iterator

from neoc_assistant.answer import (
    BAD_MODEL_PATH_NOTICE,
    BUSY_NOTICE,
    NO_MODEL_NOTICE,
    NOT_FOUND_NOTICE,
    OFF_TOPIC_NOTICE,
    PARTIAL_NOTICE,
    SERVER_CUT_NOTICE,
    SERVERS_DOWN_NOTICE,
    TRUNCATED_NOTICE,
    UNVERIFIED_NOTICE,
    Answer,
    StreamEvent,
    shorten,
)
from neoc_assistant.reading.vocabulary import KBVocabulary
from neoc_assistant.errors import BusyError, UnavailableError
from neoc_assistant.generate.backend import GenerationBackend
from neoc_assistant.generate.model_file import configured_path_problem
from neoc_assistant.generate.prompt import build_messages
from neoc_assistant.question import ChainState
from neoc_assistant.retrieve.hits import Hit
from neoc_assistant.settings import GenerationSettings, VerificationSettings
from neoc_assistant.store.embeddings import Embedder
from neoc_assistant.store.manifest import Manifest
from neoc_assistant.verify.answerability import check_answerable
from neoc_assistant.verify.citations import check_citations
from neoc_assistant.verify.extractive import (
    ExtractiveSettings,
    QuestionScorer,
    Quote,
    pick_quotes,
    render_quotes,
    render_statements,
    select_statements,
)
from neoc_assistant.verify.verifier import AnswerVerifier

EXCERPT_CHARS = 300


def source_dict(hit: Hit, n: int) -> dict:
    """A source as answers carry it: ``n`` is the number its citations use in the text."""
    return {
        "n": n,
        "text": hit.text,
        "source": hit.source,
        "page": hit.page,
        "chunk_id": hit.chunk_id,
        "score": round(float(hit.score), 4),
        "excerpt": shorten(hit.text, EXCERPT_CHARS),
        "section": hit.section,
    }


def generation_stats(stats: dict) -> dict:
    keys = ("ttft_seconds", "prefill_seconds", "decode_seconds", "evaluated_tokens", "reused_tokens", "stopped_on", "loop")
    return {k: (round(v, 4) if isinstance(v, float) else v) for k in keys if (v := stats.get(k)) is not None}


class _ModelRun:
    """The model's text pieces for one answer. The context is freed however the loop ends (done,
    Stop, or the consumer going away); ``cancelled`` is read before closing, because closing the
    stream sets the cancel event itself."""

    def __init__(self, stream, cancel: threading.Event | None):
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


class AnswerWriter:
    """Turns a question with its retrieved passages into an ``Answer`` (see the module docstring)."""

    def __init__(self, *, engine: GenerationBackend, verifier: AnswerVerifier, embedder: Embedder,
                 vocabulary: KBVocabulary, manifest: Manifest, generation: GenerationSettings,
                 verification: VerificationSettings):
        """``vocabulary`` + ``manifest``: the KB's words for the current kb version, which the
        answerability check reads questions with."""
        self.engine = engine
        self.verifier = verifier
        self.embedder = embedder
        self.vocabulary = vocabulary
        self.manifest = manifest
        self.generation = generation
        self.verification = verification
        self.extractive_settings = ExtractiveSettings.from_settings(verification)

    def write(self, state: ChainState) -> Iterator[StreamEvent]:
        if not state.relevant:
            yield from self._finish(state, self._not_found(state, NOT_FOUND_NOTICE))
            return
        if self.verification.answerability_check:
            guard = self.vocabulary.guard(self.manifest.kb_version())
            verdict = check_answerable(state.question, [h.text for h in state.relevant], guard)
            if not verdict.answerable:
                yield from self._finish(state, self._not_found(state, verdict.message, state.relevant))
                return
        if not self.engine.available():
            yield from self._quoted(state, state.relevant, self._no_model_notice())
        else:
            yield from self._generate(state)

    def _no_model_notice(self) -> str:
        """Why there is no written answer: the servers are down, the configured path is wrong, or no model."""
        if self.generation.backend == "openai":
            return SERVERS_DOWN_NOTICE
        problem = configured_path_problem(self.generation.model_path)
        return BAD_MODEL_PATH_NOTICE.format(problem=problem) if problem else NO_MODEL_NOTICE

    def _not_found(self, state: ChainState, notice: str, nearest: list[Hit] | None = None) -> Answer:
        nearest = (nearest or state.hits)[:3]
        lines = [notice]
        if nearest:
            lines.append("The nearest documents are:")
            lines += [f"- {h.source}" + (f" (page {h.page})" if h.page else "") for h in nearest]
        return Answer(
            question=state.question,
            answer="\n".join(lines),
            mode="not-found",
            sources=[source_dict(h, n) for n, h in enumerate(nearest, start=1)],
            notice=notice,
            verification={"status": "not-found", "claims": []},
        )

    def _extractive(self, state: ChainState, passages: list[Hit], views, notice: str,
                    verification: dict | None = None) -> Answer:
        quotes = pick_quotes(self._scorer(state, views), views)
        order: dict[int, int] = {}
        for q in quotes:  # renumber: [n] is the n-th source listed
            order.setdefault(q.passage, len(order) + 1)
        quotes = [Quote(order[q.passage], q.text, q.score) for q in quotes]
        claims = [{"text": q.text, "supported": True, "sources": [q.passage], "quoted": True} for q in quotes]
        if verification:  # what the model wrote, kept for the record (none of it shown)
            model_claims = [dict(c) for c in verification.get("claims", [])]
            for c in model_claims:
                if c.get("supported"):
                    c["reason"] = "true, but did not answer the question"
            claims = model_claims + claims
        return Answer(
            question=state.question,
            answer=render_quotes(quotes),
            mode="extractive",
            sources=[source_dict(state.originals.get(passages[p - 1].chunk_id, passages[p - 1]), n)
                     for p, n in sorted(order.items(), key=lambda x: x[1])],
            notice=notice,
            verification={"status": "extractive", "claims": claims},
        )

    def _quoted(self, state: ChainState, passages: list[Hit], notice: str, **generation) -> Iterator[StreamEvent]:
        """The documents' own best sentences instead of a model's answer (``notice`` says why)."""
        answer = self._extractive(state, passages, self.verifier.checker.prepare([h.text for h in passages]), notice)
        answer.generation = generation
        yield from self._finish(state, answer)

    def _scorer(self, state: ChainState, views) -> QuestionScorer:
        if state.query_vector is None:
            state.query_vector = self.embedder.embed_query_vector(state.question)
        return QuestionScorer(state.query_vector, state.question, views, self.extractive_settings)

    def _off_topic(self, state: ChainState, claims) -> str:
        """OFF_TOPIC_NOTICE when the verified claims answer the question clearly worse than the best
        sentence of the passages does (true, but about something else), else ""."""
        scorer = self._scorer(state, claims.views)
        quotes = pick_quotes(scorer, claims.views)
        if not quotes or not claims.shown_claims:
            return ""
        best_claim = max(scorer.score(text, vector) for text, vector in claims.shown_claims)
        return OFF_TOPIC_NOTICE if best_claim < quotes[0].score - scorer.settings.off_topic_margin else ""

    def _finish(self, state: ChainState, answer: Answer) -> Iterator[StreamEvent]:
        answer.timings_ms = {**state.timings_ms, "generate": 0.0, "total": state.elapsed_ms()}
        yield StreamEvent("token", text=answer.answer)
        yield StreamEvent("done", answer=answer)

    def _generate(self, state: ChainState) -> Iterator[StreamEvent]:
        engine = self.engine
        s = self.generation
        t0 = time.perf_counter()
        engine.load()
        state.messages, state.passages = build_messages(
            state.question, self._prompt_passages(state), state.history, engine.count_tokens, s.n_ctx, s.max_tokens
        )
        try:
            run = _ModelRun(engine.stream(state.messages, max_tokens=s.max_tokens, cancel=state.cancel), state.cancel)
        except BusyError:
            # Every answer slot is taken for longer than the admission budget: quote the documents
            # now rather than keep the officer waiting (never cached; the model answers next time).
            yield from self._quoted(state, state.passages, BUSY_NOTICE, admission="busy")
            return
        except UnavailableError:  # the model's servers are down: quote the documents (never an error)
            yield from self._quoted(state, state.passages, SERVERS_DOWN_NOTICE)
            return
        if not self.verification.enabled:
            yield from self._generate_unchecked(state, t0, run)
            return
        v0 = time.perf_counter()
        claims = self.verifier.stream(state.question, [h.text for h in state.passages])
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
        state.timings_ms["verify"] = verify_ms
        if verification.status == "extractive":
            notice = SERVERS_DOWN_NOTICE if finish == "error" else UNVERIFIED_NOTICE
        else:
            notice = self._off_topic(state, claims)
        if notice and not cancelled:
            # Nothing the model wrote survived, or what survived does not answer the question:
            # quote the documents instead (said so in the notice; the stream replaces its text).
            answer = self._extractive(state, state.passages, claims.views, notice, verification.to_json())
            yield StreamEvent("replace" if shown else "token", text=answer.answer)
        else:
            notices = [PARTIAL_NOTICE] if verification.status == "partial" else []
            if finish in ("length", "error"):  # "error": the model's server failed mid-answer
                notices.append(TRUNCATED_NOTICE if finish == "length" else SERVER_CUT_NOTICE)
            answer = Answer(
                question=state.question,
                answer="".join(shown).strip(),
                mode="llm",
                sources=[source_dict(state.originals.get(state.passages[i].chunk_id, state.passages[i]), n)
                         for n, i in enumerate(claims.cited_passages(), start=1)],
                notice=" ".join(notices),
                verification=verification.to_json(),
            )
        answer.tokens = run.tokens
        answer.finish_reason = finish
        answer.generation = generation_stats(run.stats)
        answer.complete = not cancelled
        answer.timings_ms = {**state.timings_ms, "generate": (time.perf_counter() - t0) * 1000, "total": state.elapsed_ms()}
        yield StreamEvent("done", answer=answer)

    def _prompt_passages(self, state: ChainState) -> list[Hit]:
        """What the model is given: the relevant passages, or - with ``prompt_statements`` - only
        their statements that answer the question (same passages, same order, same numbers). The
        claims are then checked against exactly this text; sources still show the whole passage."""
        s = self.generation
        state.originals = {h.chunk_id: h for h in state.relevant}
        if not s.prompt_statements:
            return state.relevant
        views = self.verifier.checker.prepare([h.text for h in state.relevant])
        picked = select_statements(self._scorer(state, views), views, s.prompt_statements, s.prompt_drop_margin)
        return [replace(state.relevant[p], text=render_statements(views[p], idx)) for p, idx in picked]

    def _generate_unchecked(self, state: ChainState, t0: float, run: _ModelRun) -> Iterator[StreamEvent]:
        """The model's text as it comes (evaluation of the raw model only; never cached)."""
        pieces: list[str] = []
        for piece in run:
            pieces.append(piece)
            yield StreamEvent("token", text=piece)
        text, _ = check_citations("".join(pieces).strip(), len(state.passages))
        answer = Answer(
            question=state.question, answer=text, mode="llm",
            sources=[source_dict(h, n) for n, h in enumerate(state.passages, start=1)],
            notice="Unchecked: claim verification is off (NEOC_VERIFY_ANSWERS=false).",
            verification={"status": "unchecked", "claims": []},
            tokens=run.tokens, finish_reason=run.finish, generation=generation_stats(run.stats),
            complete=not run.cancelled,
        )
        answer.timings_ms = {**state.timings_ms, "generate": (time.perf_counter() - t0) * 1000, "total": state.elapsed_ms()}
        yield StreamEvent("done", answer=answer)

