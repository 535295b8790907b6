"""The RAG chain: cache → retrieve → answerable? → generate → verify → cache, as LangChain runnables.

Each stage is a small function over one ``ChainState``; LangChain composes them
(``RunnableBranch`` short-circuits cache hits, ``RunnableGenerator`` streams
tokens), so ``chain.stream(state)`` yields ``StreamEvent``s and ends with one
``done`` event carrying the ``Answer``.

Decisions that matter for safety:
- the question is embedded once (by the cache lookup) and the vector is reused
  by retrieval;
- the model is not called when nothing passes the relevance floor, nor when
  the question names something the passages never mention (a district, a
  year, a phone number: ``verify/answerability.py``) - "not-found", with the
  part that was not found;
- the model's text reaches the user only claim by claim, after each claim was
  checked against the passages (``verify/``); unsupported claims are removed
  and listed; if nothing survives - or there is no model - the answer is the
  documents' own best sentences, labelled as quotes ("extractive");
- only complete, verified, model-written answers are stored in the cache
  (never one cut off at the length limit); follow-up questions (with
  conversation history) neither read nor write the cache, because the same
  words can mean something else in another conversation.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np
from langchain_core.runnables import RunnableBranch, RunnableGenerator, RunnableLambda

from neoc_assistant.answer import (
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
from neoc_assistant.cache.entries import CacheContext, CachedAnswer
from neoc_assistant.cache.response_cache import ResponseCache
from neoc_assistant.cache.vocabulary import KBVocabulary
from neoc_assistant.errors import UnavailableError
from neoc_assistant.generate.backend import GenerationBackend
from neoc_assistant.generate.prompt import PROMPT_VERSION, build_messages
from neoc_assistant.retrieve.hits import Hit
from neoc_assistant.retrieve.retriever import KnowledgeBaseRetriever, SearchFilters
from neoc_assistant.settings import CacheSettings, GenerationSettings, VerificationSettings
from neoc_assistant.store.embeddings import Embedder
from neoc_assistant.store.manifest import Manifest
from neoc_assistant.verify.answerability import check_answerable
from neoc_assistant.verify.citations import check_citations
from neoc_assistant.verify.extractive import ExtractiveSettings, QuestionScorer, Quote, pick_quotes, render_quotes
from neoc_assistant.verify.verifier import AnswerVerifier

EXCERPT_CHARS = 300


@dataclass
class ChainState:
    question: str
    history: list[tuple[str, str]] = field(default_factory=list)
    filters: SearchFilters | None = None
    use_cache: bool = True
    cancel: threading.Event | None = None
    started: float = field(default_factory=time.perf_counter)
    timings_ms: dict[str, float] = field(default_factory=dict)
    query_vector: np.ndarray | None = None
    cache_context: Any = None
    cached: Any = None  # CacheLookup with an answer
    hits: list[Hit] = field(default_factory=list)
    relevant: list[Hit] = field(default_factory=list)
    messages: list[dict] = field(default_factory=list)
    passages: list[Hit] = field(default_factory=list)

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000


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


class RagChain:
    """Builds and runs the runnable graph over its collaborators."""

    def __init__(
        self,
        *,
        retriever: KnowledgeBaseRetriever,
        embedder: Embedder,
        engine: GenerationBackend,
        response_cache: ResponseCache,
        vocabulary: KBVocabulary,
        verifier: AnswerVerifier,
        manifest: Manifest,
        cache: CacheSettings,
        generation: GenerationSettings,
        verification: VerificationSettings,
    ):
        """``manifest``: the knowledge-base version (part of every cache key); ``vocabulary``: the
        KB's words, which the answerability check reads questions with."""
        self.retriever = retriever
        self.embedder = embedder
        self.engine = engine
        self.response_cache = response_cache
        self.vocabulary = vocabulary
        self.verifier = verifier
        self.manifest = manifest
        self.cache = cache
        self.generation = generation
        self.verification = verification
        self.extractive_settings = ExtractiveSettings.from_settings(verification)
        self.runnable = RunnableBranch(
            (lambda s: s.cached is not None, RunnableGenerator(self._emit_cached)),
            RunnableLambda(self._retrieve) | RunnableGenerator(self._answer),
        )
        self.pipeline = RunnableLambda(self._cache_lookup) | self.runnable

    # -- public -----------------------------------------------------------------------
    def stream(self, state: ChainState) -> Iterator[StreamEvent]:
        yield from self.pipeline.stream(state)

    # -- stages -------------------------------------------------------------------------
    def cache_context(self, state: ChainState) -> CacheContext:
        engine = self.engine
        return CacheContext(
            kb_version=self.manifest.kb_version(),
            model_id=(engine.model_identity() or "none") if engine.available() else "none",
            prompt_version=f"{self.cache.prompt_version}/{PROMPT_VERSION}",
            retrieval_key=self.retriever.config_key(),  # every retrieval setting can change the passages
            filters_key=state.filters.cache_key() if state.filters else "",
        )

    def _cache_usable(self, state: ChainState) -> bool:
        return state.use_cache and self.cache.enabled and not state.history

    def _cache_lookup(self, state: ChainState) -> ChainState:
        t0 = time.perf_counter()
        if self._cache_usable(state):
            state.cache_context = self.cache_context(state)
            lookup = self.response_cache.lookup(state.question, state.cache_context)
            state.query_vector = lookup.query_vector
            if lookup.answer is not None:
                state.cached = lookup
        state.timings_ms["cache"] = (time.perf_counter() - t0) * 1000
        return state

    def _emit_cached(self, states: Iterator[ChainState]) -> Iterator[StreamEvent]:
        for state in states:
            hit = state.cached.answer
            answer = Answer(
                question=state.question,
                answer=hit.answer,
                mode=hit.mode,
                cached=True,
                cache_tier=state.cached.tier,
                sources=list(hit.sources),
                verification=hit.verification,
                timings_ms={**state.timings_ms, "retrieve": 0.0, "generate": 0.0, "total": state.elapsed_ms()},
            )
            yield StreamEvent("token", text=answer.answer)
            yield StreamEvent("done", answer=answer)

    def _retrieve(self, state: ChainState) -> ChainState:
        t0 = time.perf_counter()
        retriever = self.retriever
        query = state.question
        if state.history:
            # A follow-up ("and for children?") is retrieved together with the previous question.
            query = f"{state.history[-1][0]} {state.question}"
            state.query_vector = None
        if state.query_vector is None:
            e0 = time.perf_counter()
            state.query_vector = self.embedder.embed_query_vector(query)
            state.timings_ms["embed"] = (time.perf_counter() - e0) * 1000
        state.hits = retriever.search(query, filters=state.filters, query_vector=state.query_vector)
        state.relevant = [h for h in state.hits if retriever.is_relevant(h)]
        state.timings_ms["retrieve"] = (time.perf_counter() - t0) * 1000
        return state

    def _answer(self, states: Iterator[ChainState]) -> Iterator[StreamEvent]:
        for state in states:
            if not state.relevant:
                yield from self._finish(state, self._not_found(state, NOT_FOUND_NOTICE))
                continue
            if self.verification.answerability_check:
                guard = self.vocabulary.guard(self.manifest.kb_version())
                verdict = check_answerable(state.question, [h.text for h in state.relevant], guard)
                if not verdict.answerable:
                    yield from self._finish(state, self._not_found(state, verdict.message, state.relevant))
                    continue
            if not self.engine.available():
                notice = SERVERS_DOWN_NOTICE if self.generation.backend == "openai" else NO_MODEL_NOTICE
                yield from self._quoted(state, state.relevant, notice)
            else:
                yield from self._generate(state)

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
            sources=[source_dict(passages[p - 1], n) for p, n in sorted(order.items(), key=lambda x: x[1])],
            notice=notice,
            verification={"status": "extractive", "claims": claims},
        )

    def _quoted(self, state: ChainState, passages: list[Hit], notice: str) -> Iterator[StreamEvent]:
        """The documents' own best sentences instead of a model's answer (``notice`` says why)."""
        views = self.verifier.checker.prepare([h.text for h in passages])
        yield from self._finish(state, self._extractive(state, passages, views, notice))

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
            state.question, state.relevant, state.history, engine.count_tokens, s.n_ctx, s.max_tokens
        )
        try:
            run = _ModelRun(engine.stream(state.messages, max_tokens=s.max_tokens, cancel=state.cancel), state.cancel)
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
                sources=[source_dict(state.passages[i], n) for n, i in enumerate(claims.cited_passages(), start=1)],
                notice=" ".join(notices),
                verification=verification.to_json(),
            )
        answer.tokens = run.tokens
        answer.finish_reason = finish
        answer.generation = generation_stats(run.stats)
        answer.complete = not cancelled
        answer.timings_ms = {**state.timings_ms, "generate": (time.perf_counter() - t0) * 1000, "total": state.elapsed_ms()}
        cacheable = answer.mode == "llm" and answer.complete and finish not in ("length", "error") and answer.answer
        if cacheable and state.cache_context is not None:
            self._store(state, answer)
        yield StreamEvent("done", answer=answer)

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

    def _store(self, state: ChainState, answer: Answer) -> None:
        cached = CachedAnswer(
            question=state.question, answer=answer.answer, mode=answer.mode, sources=answer.sources,
            created_at=time.time(), verification=answer.verification,
        )
        self.response_cache.store(state.question, state.cache_context, cached, query_vector=state.query_vector)
