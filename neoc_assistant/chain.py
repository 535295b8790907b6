"""The RAG chain: cache → retrieve → prompt → generate → cite → cache, as LangChain runnables.

Each stage is a small function over one ``ChainState``; LangChain composes them
(``RunnableBranch`` short-circuits cache hits, ``RunnableGenerator`` streams
tokens), so ``chain.stream(state)`` yields ``StreamEvent``s and ends with one
``done`` event carrying the ``Answer``.

Decisions that matter for safety:
- the question is embedded once (by the cache lookup) and the vector is reused
  by retrieval;
- when nothing passes the relevance floor the model is not called at all
  ("not-found"), and without a model the answer is the passages themselves,
  clearly labelled ("retrieval-only");
- only complete, model-written answers are stored in the cache; follow-up
  questions (with conversation history) neither read nor write the cache,
  because the same words can mean something else in another conversation.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np
from langchain_core.runnables import RunnableBranch, RunnableGenerator, RunnableLambda

from neoc_assistant.answer import NO_MODEL_NOTICE, NOT_FOUND_NOTICE, Answer, StreamEvent
from neoc_assistant.retrieve.hits import Hit
from neoc_assistant.retrieve.retriever import SearchFilters

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


def source_dict(hit: Hit) -> dict:
    excerpt = " ".join(hit.text.split())
    if len(excerpt) > EXCERPT_CHARS:
        excerpt = excerpt[: EXCERPT_CHARS - 1].rsplit(" ", 1)[0] + "…"
    return {
        "source": hit.source,
        "page": hit.page,
        "chunk_id": hit.chunk_id,
        "score": round(float(hit.score), 4),
        "excerpt": excerpt,
        "section": hit.section,
    }


class RagChain:
    """Builds and runs the runnable graph over the container's components."""

    def __init__(self, container):
        self.container = container
        self.settings = container.settings
        self.runnable = RunnableBranch(
            (lambda s: s.cached is not None, RunnableGenerator(self._emit_cached)),
            RunnableLambda(self._retrieve) | RunnableGenerator(self._answer),
        )
        self.pipeline = RunnableLambda(self._cache_lookup) | self.runnable

    # -- public -----------------------------------------------------------------------
    def stream(self, state: ChainState) -> Iterator[StreamEvent]:
        yield from self.pipeline.stream(state)

    # -- stages -------------------------------------------------------------------------
    def cache_context(self, state: ChainState):
        from neoc_assistant.cache.response_cache import CacheContext

        engine = self.container.engine
        s = self.settings
        return CacheContext(
            kb_version=self.container.manifest.kb_version(),
            model_id=(engine.model_identity() or "none") if engine.available() else "none",
            prompt_version=f"{s.prompt_version}/{self._prompt_version()}",
            retrieval_key=self.retrieval_key(),
            filters_key=state.filters.cache_key() if state.filters else "",
        )

    def retrieval_key(self) -> str:
        """Every retrieval setting that can change the passages (and so the answer)."""
        return self.container.retriever.config_key()

    @staticmethod
    def _prompt_version() -> str:
        from neoc_assistant.generate.prompt import PROMPT_VERSION

        return PROMPT_VERSION

    def _cache_usable(self, state: ChainState) -> bool:
        return state.use_cache and self.settings.cache_enabled and not state.history

    def _cache_lookup(self, state: ChainState) -> ChainState:
        t0 = time.perf_counter()
        if self._cache_usable(state):
            state.cache_context = self.cache_context(state)
            lookup = self.container.response_cache.lookup(state.question, state.cache_context)
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
                timings_ms={**state.timings_ms, "retrieve": 0.0, "generate": 0.0, "total": state.elapsed_ms()},
            )
            yield StreamEvent("token", text=answer.answer)
            yield StreamEvent("done", answer=answer)

    def _retrieve(self, state: ChainState) -> ChainState:
        t0 = time.perf_counter()
        retriever = self.container.retriever
        query = state.question
        if state.history:
            # A follow-up ("and for children?") is retrieved together with the previous question.
            query = f"{state.history[-1][0]} {state.question}"
            state.query_vector = None
        if state.query_vector is None:
            e0 = time.perf_counter()
            state.query_vector = self.container.embedder.embed_query_vector(query)
            state.timings_ms["embed"] = (time.perf_counter() - e0) * 1000
        state.hits = retriever.search(query, k=self.settings.retrieval_top_k, filters=state.filters, query_vector=state.query_vector)
        state.relevant = [h for h in state.hits if retriever.is_relevant(h)]
        state.timings_ms["retrieve"] = (time.perf_counter() - t0) * 1000
        return state

    def _answer(self, states: Iterator[ChainState]) -> Iterator[StreamEvent]:
        for state in states:
            if not state.relevant:
                yield from self._finish(state, self._not_found(state))
            elif not self.container.engine.available():
                yield from self._finish(state, self._retrieval_only(state))
            else:
                yield from self._generate(state)

    def _not_found(self, state: ChainState) -> Answer:
        nearest = state.hits[:3]
        lines = [NOT_FOUND_NOTICE]
        if nearest:
            lines.append("The nearest documents are:")
            lines += [f"- {h.source}" + (f" (page {h.page})" if h.page else "") for h in nearest]
        return Answer(
            question=state.question,
            answer="\n".join(lines),
            mode="not-found",
            sources=[source_dict(h) for h in nearest],
            notice=NOT_FOUND_NOTICE,
        )

    def _retrieval_only(self, state: ChainState) -> Answer:
        parts = ["Most relevant passages from the knowledge base:"]
        for i, hit in enumerate(state.relevant, start=1):
            where = hit.source + (f", page {hit.page}" if hit.page else "")
            parts.append(f"\n[{i}] {where}\n{hit.text.strip()}")
        return Answer(
            question=state.question,
            answer="\n".join(parts),
            mode="retrieval-only",
            sources=[source_dict(h) for h in state.relevant],
            notice=NO_MODEL_NOTICE,
        )

    def _finish(self, state: ChainState, answer: Answer) -> Iterator[StreamEvent]:
        answer.timings_ms = {**state.timings_ms, "generate": 0.0, "total": state.elapsed_ms()}
        yield StreamEvent("token", text=answer.answer)
        yield StreamEvent("done", answer=answer)

    def _generate(self, state: ChainState) -> Iterator[StreamEvent]:
        from neoc_assistant.generate.citations import check_citations
        from neoc_assistant.generate.prompt import build_messages

        engine = self.container.engine
        s = self.settings
        t0 = time.perf_counter()
        engine.load()
        state.messages, state.passages = build_messages(
            state.question, state.relevant, state.history, engine.count_tokens, s.n_ctx, s.max_tokens
        )
        pieces: list[str] = []
        cancelled = False
        stream = engine.stream(state.messages, max_tokens=s.max_tokens, cancel=state.cancel)
        try:
            for piece in stream:
                pieces.append(piece)
                yield StreamEvent("token", text=piece)
                if state.cancel is not None and state.cancel.is_set():
                    break
            # Decided before close(): closing the stream sets the cancel event itself.
            cancelled = state.cancel is not None and state.cancel.is_set()
        finally:
            stream.close()  # frees the model context at once, also when our consumer went away
        raw = "".join(pieces).strip()
        text, cited = check_citations(raw, len(state.passages))
        cited_hits = [state.passages[i - 1] for i in cited] or state.passages
        answer = Answer(
            question=state.question,
            answer=text,
            mode="llm",
            sources=[source_dict(h) for h in cited_hits],
            # The stream counted exactly (chat template included); no second tokenisation.
            tokens={"prompt": stream.stats.get("prompt_tokens", 0), "completion": stream.stats.get("generated_tokens", len(pieces))},
            complete=not cancelled,
        )
        answer.timings_ms = {**state.timings_ms, "generate": (time.perf_counter() - t0) * 1000, "total": state.elapsed_ms()}
        if answer.complete and text and state.cache_context is not None:
            self._store(state, answer)
        yield StreamEvent("done", answer=answer)

    def _store(self, state: ChainState, answer: Answer) -> None:
        from neoc_assistant.cache.response_cache import CachedAnswer

        cached = CachedAnswer(
            question=state.question, answer=answer.answer, mode=answer.mode, sources=answer.sources, created_at=time.time()
        )
        self.container.response_cache.store(state.question, state.cache_context, cached, query_vector=state.query_vector)
