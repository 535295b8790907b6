"""The assistant as one object: the front door that the CLI, the UI, the HTTP API and the load test call.

Nothing outside this class reaches for a component: what a caller needs -
ingest, search, questions, the cache, metrics, health, the model's status -
is a method here, which validates input and delegates to the components it
was given (``container.py`` builds them). The contract is in
``docs/service-interface.md``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, Sequence

from neoc_assistant.answer import Answer, StreamEvent
from neoc_assistant.asking import LookedUp, QuestionDesk
from neoc_assistant.audit import Asker, AuditTrail
from neoc_assistant.cache.embedding_cache import EmbeddingCache
from neoc_assistant.cache.query_log import QueryLog
from neoc_assistant.cache.response_cache import ResponseCache
from neoc_assistant.cache.warming import WarmReport, warm
from neoc_assistant.chain import RagChain
from neoc_assistant.question import Question
from neoc_assistant.errors import InputError, NeocError
from neoc_assistant.generate.backend import GenerationBackend
from neoc_assistant.ingest.pipeline import IngestSummary, Ingestor, ProgressCallback
from neoc_assistant.ingest.versions import link_versions
from neoc_assistant.monitoring.alerts import AlertMonitor
from neoc_assistant.monitoring.health import DEFAULT_MIN_FREE_DISK_BYTES, HealthCheck
from neoc_assistant.monitoring.history import history_snapshot
from neoc_assistant.monitoring.metrics import Metrics
from neoc_assistant.retrieve.hits import Hit
from neoc_assistant.retrieve.retriever import KnowledgeBaseRetriever, SearchFilters
from neoc_assistant.settings import CacheSettings, GenerationSettings, MonitoringSettings, PathSettings, ServeSettings
from neoc_assistant.store.embeddings import Embedder
from neoc_assistant.store.manifest import Manifest
from neoc_assistant.store.records import DocumentInfo

if TYPE_CHECKING:
    from neoc_assistant.bundles.apply import ImportSummary
    from neoc_assistant.bundles.export import ExportSummary
    from neoc_assistant.bundles.tools import BundleTools

log = logging.getLogger(__name__)

EXTRACTIVE_SLOTS = 2  # retrieval-only answers at once: cheap, but the machine has two cores


class Assistant:
    def __init__(
        self,
        *,
        paths: PathSettings,
        serve: ServeSettings,
        cache: CacheSettings,
        monitoring: MonitoringSettings,
        generation: GenerationSettings,
        manifest: Manifest,
        ingestor: Ingestor,
        retriever: KnowledgeBaseRetriever,
        embedder: Embedder,
        chain: RagChain,
        engine: GenerationBackend,
        response_cache: ResponseCache,
        embedding_cache: EmbeddingCache | None,
        query_log: QueryLog,
        metrics: Metrics,
        health: HealthCheck,
        audit: AuditTrail | None = None,
        bundles: Callable[[], BundleTools] | None = None,
    ):
        """Every component is cheap to build (models and stores open on first use), so building
        the front door - e.g. for ``health`` on a fresh machine - loads and creates nothing."""
        self.paths = paths
        self.serve = serve
        self._cache_settings = cache
        self._monitoring = monitoring
        self._generation = generation
        self._manifest = manifest
        self._ingestor = ingestor
        self._retriever = retriever
        self._embedder = embedder
        self._chain = chain
        self._engine = engine
        self._response_cache = response_cache
        self._embedding_cache = embedding_cache
        self._query_log = query_log
        self._metrics = metrics
        self._health = health
        self._audit = audit
        self._bundle_tools = bundles
        self._desk = QuestionDesk(chain=chain, metrics=metrics, query_log=query_log, audit=audit,
                                  kb_version=manifest.kb_version)

    # -- knowledge base ------------------------------------------------------------
    def ingest(self, paths: Iterable[Path] | None = None, *, prune: bool = True, show_progress: bool = False,
               on_progress: ProgressCallback | None = None) -> IngestSummary:
        paths = list(paths) if paths else [self.paths.kb_dir]
        before = self._manifest.kb_version()
        summary = self._ingestor.ingest(paths, prune=prune, show_progress=show_progress, on_progress=on_progress)
        return self._changed(before, summary)

    def repair_store(self, show_progress: bool = False) -> IngestSummary:
        """Make the vector store match the manifest, id by id (`ingest --repair`); re-embed it from the
        manifest when it was embedded with another model than the settings choose (`kb reembed`)."""
        return self._ingestor.repair(show_progress=show_progress)

    def rebuild(self, paths: Iterable[Path] | None = None) -> IngestSummary:
        """A new manifest from the documents (`ingest --rebuild`: the way out of a corrupt one)."""
        return self._ingestor.rebuild(list(paths) if paths else [self.paths.kb_dir])

    def delete_documents(self, sources: Iterable[str]) -> IngestSummary:
        before = self._manifest.kb_version()
        return self._changed(before, self._ingestor.delete(sources))

    def _changed(self, before: str, summary: IngestSummary) -> IngestSummary:
        """A new knowledge-base version is made current for every process and instance at once, so no
        answer cached before the change is served anywhere (``ResponseCache.knowledge_changed``)."""
        if summary.kb_version and summary.kb_version != before:
            self._response_cache.knowledge_changed(summary.kb_version)
        return summary

    def documents(self) -> list[DocumentInfo]:
        return self._manifest.documents()

    def kb_version(self) -> str:
        return self._manifest.kb_version()

    # -- knowledge-base bundles (bundles/) ----------------------------------------------------------
    def _bundles(self) -> BundleTools:
        if self._bundle_tools is None:
            raise InputError("bundles are not available in this assistant")
        return self._bundle_tools()

    @staticmethod
    def bundle_keygen(private_path: Path) -> tuple[Path, str]:
        """A new signing key pair (`kb keygen`): (the public key's path, its id)."""
        from neoc_assistant.bundles.signing import generate_keypair

        return generate_keypair(private_path)

    def trust_key(self, public_path: Path) -> tuple[Path, str]:
        """Install a public key whose bundles this laptop accepts (`kb trust`)."""
        from neoc_assistant.bundles.signing import install_public_key

        return install_public_key(public_path, self._bundles().trusted_dir)

    def export_bundle(self, out: Path, *, key: Path | None = None, since: str | None = None) -> ExportSummary:
        """This knowledge base, or what changed since version ``since``, as one signed file (`kb export`)."""
        tools = self._bundles()
        key = key or tools.signing_key
        if key is None:
            raise InputError("give the signing key (--key PRIVATE_KEY, made by `kb keygen`) or set bundles.signing_key")
        with self._ingestor.exclusive():  # a consistent state: no ingest writes while it is read
            return tools.exporter.export(out, key, since)

    def import_bundle(self, path: Path, *, show_progress: bool = False) -> ImportSummary:
        """Verify and apply a bundle (`kb import`); the response cache then forgets every answer."""
        tools = self._bundles()
        if tools.shared_store:
            raise InputError("`kb import` writes a laptop's own store; this instance uses a shared Chroma server: "
                             "import on the machine that ingests for it")
        summary = tools.importer.apply(path, show_progress=show_progress)
        with self._ingestor.exclusive():  # revisions among the imported files, by the facts the bundle carried
            summary.notes.extend(link_versions(self._manifest))
        if summary.kb_version != summary.previous_version:
            self._response_cache.knowledge_changed(summary.kb_version)
        return summary

    # -- search --------------------------------------------------------------------------
    def validate_question(self, question: str, history: Sequence[tuple[str, str]] = ()) -> str:
        """The question, stripped; ``InputError`` for one that is empty, too long, or not valid Unicode
        (a lone surrogate from a JSON ``\\ud800`` escape would fail at the first encode, as a 500)."""
        text = (question or "").strip()
        if not text:
            raise InputError("The question is empty: type what you want to know, e.g. 'What are the EOC activation levels?'")
        if any(_has_surrogate(part) for part in (text, *(p for turn in history for p in turn))):
            raise InputError("The question or its history is not valid Unicode text (it holds a lone surrogate, "
                             "e.g. a \\ud800 escape or a broken copy-paste): retype it.")
        limit = self.serve.max_question_chars
        if len(text) > limit:
            raise InputError(
                f"The question is {len(text)} characters long; the limit is {limit}. "
                "Ask the key question in a sentence or two (or raise NEOC_MAX_QUESTION_CHARS)."
            )
        return text

    def search(self, query: str, k: int | None = None, filters: SearchFilters | None = None, *,
               relevant_only: bool = False) -> list[Hit]:
        """The best passages; ``relevant_only``: only those above the calibrated relevance floor."""
        query = self.validate_question(query)
        return self._retriever.search(query, k=k, filters=filters, relevant_only=relevant_only)

    def search_many(self, queries: Sequence[str], k: int | None = None,
                    filters: SearchFilters | None = None) -> list[list[Hit]]:
        """Many queries, embedded in one batch (evaluation, drills)."""
        return self._retriever.search_many([self.validate_question(q) for q in queries], k=k, filters=filters)

    def is_relevant(self, hit: Hit) -> bool:
        return self._retriever.is_relevant(hit)

    # -- questions (asking.py: looked up first, then answered) -------------------------------
    def ask(
        self,
        question: str,
        *,
        history: list[tuple[str, str]] | None = None,
        filters: SearchFilters | None = None,
        use_cache: bool = True,
        asker: Asker | None = None,
    ) -> Answer:
        return self.answer(self.look_up(question, history=history, filters=filters, use_cache=use_cache, asker=asker))

    def ask_stream(
        self,
        question: str,
        *,
        history: list[tuple[str, str]] | None = None,
        filters: SearchFilters | None = None,
        use_cache: bool = True,
        cancel: threading.Event | None = None,
        asker: Asker | None = None,
    ) -> Iterator[StreamEvent]:
        """``asker``: who asks through what, for the audit trail (default: someone at this machine's CLI)."""
        looked_up = self.look_up(question, history=history, filters=filters, use_cache=use_cache, asker=asker)
        yield from self.answer_stream(looked_up, cancel=cancel)

    def look_up(
        self,
        question: str,
        *,
        history: list[tuple[str, str]] | None = None,
        filters: SearchFilters | None = None,
        use_cache: bool = True,
        asker: Asker | None = None,
    ) -> LookedUp:
        """The question read and looked up in the response cache: ``.answer`` is set on a hit. A server
        calls this before it queues the question for an answer slot, so hits never wait in line."""
        try:
            text = self.validate_question(question, history or ())
        except InputError:
            self._metrics.record_error("input")
            raise
        asked = Question(text=text, history=tuple(history or ()), filters=filters, use_cache=use_cache)
        return self._desk.look_up(asked, asker)

    def answer_stream(self, looked_up: LookedUp, *, cancel: threading.Event | None = None) -> Iterator[StreamEvent]:
        """The answer's events, ending with one ``done`` event carrying the ``Answer``."""
        return self._desk.answer_stream(looked_up, cancel)

    def answer(self, looked_up: LookedUp) -> Answer:
        if looked_up.answer is not None:
            return looked_up.answer
        for event in self.answer_stream(looked_up):
            if event.kind == "done":
                return event.answer  # type: ignore[return-value]  # "done" carries the answer
        raise RuntimeError("the chain ended without an answer")  # pragma: no cover - a bug, not an input

    def feedback(self, question: str, answer: Answer, helpful: bool, comment: str = "", *,
                 who: str = "local") -> None:
        """Log feedback locally (and in the audit trail, pointing at the answer's record); a thumbs-down
        on a cached answer evicts it so it is not served again."""
        log_dir = self.paths.log_dir
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
        if self._audit is not None and answer.audit_id:
            self._audit.record_feedback(answer.audit_id, helpful, comment, who=who)
        if not helpful and self._cache_settings.enabled:
            # Also when the answer was fresh: it may have been stored and would be served next time.
            ctx = self._chain.cache_context(Question(text=question))
            self._response_cache.remove(question, ctx)

    # -- the audit trail ---------------------------------------------------------------------------
    def audit_answers(self, *, conversation: str | None = None, since: float | None = None,
                      until: float | None = None, who: str | None = None) -> list[dict]:
        """Recorded answers (with their feedback) of one conversation and/or a time range."""
        return self._audit.answers(conversation=conversation, since=since, until=until, who=who) if self._audit else []

    def audit_verify(self) -> dict:
        """The trail's hash chain recomputed: ``{"ok", "records", "files", "head", "problems"}``."""
        if self._audit is None:
            return {"ok": True, "records": 0, "files": [], "head": {}, "problems": [], "disabled": True}
        return self._audit.verify()

    # -- the response cache --------------------------------------------------------------------
    def cache_stats(self) -> dict:
        """Tier sizes and the hit/miss/refusal totals of every process on this machine."""
        data = self._response_cache.stats()
        data["embedding_cache"] = self._embedding_cache.stats() if self._embedding_cache is not None else {}
        data["query_log_entries"] = len(self._query_log)
        return data

    def clear_cache(self, *, embeddings: bool = False) -> int | None:
        """Remove every cached answer (and vector); returns how many answers were cached, if known."""
        before = self._response_cache.stats().get("l2_entries")
        self._response_cache.clear()
        if embeddings and self._embedding_cache is not None:
            self._embedding_cache.clear()
        return before

    def frequent_questions(self, n: int = 50, *, min_count: int = 1) -> list[str]:
        """The most asked questions (the local query log), in their most common wording."""
        return [f.question for f in self._query_log.top(n, min_count=min_count)]

    def warm_cache(self, questions: Sequence[str], *, progress: bool = True) -> WarmReport:
        """Answer these now, through the cache, so officers get hits later."""
        return warm(lambda q: self.ask(q, use_cache=True), questions, progress=progress)

    # -- the model ----------------------------------------------------------------------------------
    def generation_slots(self) -> tuple[int, str]:
        """(answers that can be generated at once, ``"llm"`` | ``"extractive"``).

        With a model: the size of its context pool (loading the model now, so the first
        question does not pay for it). Without one, or if it cannot load: extractive answers.
        """
        engine = self._engine
        if not engine.available():
            return EXTRACTIVE_SLOTS, "extractive"
        try:
            engine.load()
        except NeocError as exc:
            log.warning("model not usable, serving extractive answers: %s", exc)
            return EXTRACTIVE_SLOTS, "extractive"
        size = int((getattr(engine, "pool_plan", None) or {}).get("size") or 1)
        return max(1, size), "llm"

    def model_problem(self) -> str | None:
        """What is wrong with the configured model path (a folder, a typo), or None."""
        from neoc_assistant.generate.model_file import configured_path_problem

        return configured_path_problem(self._generation.model_path)

    def describe_template(self, model: Path):
        """The chat template ``model`` would get (from its vocabulary alone: ``models verify``). Model-file
        tooling, not the backend's: a local file is checked the same way whichever backend answers."""
        from neoc_assistant.generate.chat_template import describe_template

        return describe_template(model, use_mmap=self._generation.use_mmap, use_mlock=self._generation.use_mlock)

    def warm_up(self) -> None:
        """Load the embedding model now, and catch up with a shared knowledge base (a server does this
        once it listens)."""
        _ = self._embedder.model
        self._manifest.refresh()

    # -- operations ------------------------------------------------------------------------------
    def health(self, *, min_free_disk_bytes: int = DEFAULT_MIN_FREE_DISK_BYTES) -> dict:
        return self._health.check(min_free_disk_bytes=min_free_disk_bytes)

    def stats(self) -> dict:
        """This process's window: latency percentiles, hit rate, error rate, memory, pool, alerts."""
        return self._metrics.snapshot()

    def recorded_stats(self, window: int | None = None) -> dict:
        """The last ``window`` requests of every process, from the history file (``stats`` command)."""
        snap = history_snapshot(self.paths.log_dir, window or self._monitoring.metrics_window)
        sample = snap["server_sample"]
        if sample and sample.get("system_percent") is not None:
            snap["memory"] = {"system_percent": sample["system_percent"]}
        snap["alerts"] = AlertMonitor(self._monitoring).check(snap)
        snap.pop("memory", None)
        return snap

    def metrics_text(self) -> bytes:
        """This process's metrics in the Prometheus text format (``/metrics``)."""
        return self._metrics.prometheus_text()

    def start_monitoring(self) -> None:
        """Sample gauges, evaluate alerts and persist samples in the background (servers)."""
        self._metrics.start_sampler()

    def close(self) -> None:
        """Free the model, flush the cache's counts, stop sampling (a server shutting down)."""
        self._engine.close()
        self._response_cache.close()
        self._metrics.close()


def _has_surrogate(text) -> bool:
    if not isinstance(text, str):
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False
