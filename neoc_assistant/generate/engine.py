"""Local text generation on llama.cpp: one model, a pool of contexts, streaming.

The ``GenerationBackend`` of ``generation.backend = "llamacpp"`` (``backend.py``).
Design choices (and why):

* **Low-level API, not ``Llama``.** We drive llama.cpp through the C API that
  llama-cpp-python exposes (``llama_model_load_from_file``,
  ``llama_init_from_model``, ``llama_tokenize``, ``llama_decode`` on
  ``llama_batch_get_one``, a ``llama_sampler_chain``). ``Llama`` keeps numpy
  copies of the whole logits row and the token history and runs its own Python
  sampling/stop-string machinery on every token; the bare loop
  (``token_stream.py``) does per token exactly what a raw llama.cpp decode loop
  does, so streaming runs at the raw decode speed. The handles are wrapped in
  ``llama_model.py``; process-wide state (backend init, log routing) is in
  ``llama_backend.py``.
* **A pool of contexts** over one set of weights (``pool.py``), sized from
  the memory budget; the pool hands out the idle context with the longest
  shared prefix, and the prompt is built system prompt first (``prompt.py``),
  so that part is evaluated once per context.
* **Validation first.** ``model_file.inspect_gguf`` checks magic, header and
  size before llama.cpp sees the file, so bad files give one actionable line.
* **Chat template and hygiene.** The template comes from the GGUF, else
  llama.cpp's built-in one for the model's family (``chat_template.py``); the
  sampler chain adds repetition and DRY penalties (``sampling.py``).
* **Threads.** ``n_threads`` defaults to the physical core count; OpenMP
  threads spin only briefly at barriers (``runtime.py``).
* **Streams are iterator objects** (``TokenStream``). Busy/memory errors are
  raised by ``stream()`` itself, before any text, so a server can answer 503
  cleanly.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Callable

from neoc_assistant import runtime
from neoc_assistant.language.texts import answer_text
from neoc_assistant.errors import InputError, ModelError
from neoc_assistant.generate import model_file
from neoc_assistant.generate.batch_context import BatchContextSize
from neoc_assistant.generate.batching import BatchScheduler
from neoc_assistant.generate.chat_template import ALWAYS_STOP, ChatTemplate, template_for_model
from neoc_assistant.generate.idle_unload import IdleUnloader
from neoc_assistant.generate.llama_backend import drop_mapped_file_pages, init_backend
from neoc_assistant.generate.llama_model import ContextSlot, LlamaModel
from neoc_assistant.generate.memory_guard import MemoryGuard
from neoc_assistant.generate.pool import ContextPool, Lease
from neoc_assistant.generate.pool_plan import plan_pool
from neoc_assistant.generate.sampling import SamplingParams
from neoc_assistant.generate.token_stream import EmptyStream, StreamHooks, TokenStream
from neoc_assistant.settings import GenerationSettings

log = logging.getLogger(__name__)

_ZWSP = "\u200b"


class GenerationEngine:
    """Loads the GGUF once, pools contexts, streams answers. Never loads at construction."""

    def __init__(self, settings: GenerationSettings, *, on_guard_action: Callable[[str], None] | None = None,
                 shed_cache: Callable[[], int] | None = None):
        self.settings = settings
        self._load_lock = threading.Lock()
        self._model: LlamaModel | None = None
        self._pool: ContextPool[ContextSlot] | None = None
        self._scheduler: BatchScheduler | None = None
        self._llama = None
        self._identity: tuple[tuple, str] | None = None
        self.info: model_file.GGUFInfo | None = None
        self.chat_template_source: str | None = None
        self.template: ChatTemplate | None = None
        self.n_threads = settings.n_threads or runtime.physical_cores()
        self.n_ctx = settings.n_ctx
        self.pool_plan: dict = {}
        self._stats: Counter[str] = Counter()
        self._stats_lock = threading.Lock()
        self._seed = 1234
        self._closed = False
        self.guard = MemoryGuard(
            settings.guard_rss_limit_mb,
            settings.guard_system_memory_percent,
            shed_cache=shed_cache,
            shrink_pool=self._shrink_pool,
            on_action=on_guard_action,
        )
        self.last_stats: dict = {}
        self.idle = IdleUnloader(settings.idle_unload_seconds, self._unload_if_idle)

    # -- cheap queries ------------------------------------------------------
    def model_path(self) -> Path | None:
        return self.settings.resolved_model_path()

    def available(self) -> bool:
        path = self.model_path()
        return path is not None and path.is_file()

    def unavailable_notice(self, lang: str = "en") -> str:
        """Why there is no written answer: the configured path is wrong, or no model is installed
        (in ``lang``, the question's language: ``language/texts.py``)."""
        problem = model_file.configured_path_problem(self.settings.model_path)
        return answer_text("bad_model_path", lang, problem=problem) if problem else answer_text("no_model", lang)

    def model_identity(self) -> str | None:
        path = self.model_path()
        if not path or not path.is_file():
            return None
        st = path.stat()
        key = (str(path), st.st_size, st.st_mtime_ns)
        if self._identity is None or self._identity[0] != key:
            self._identity = (key, model_file.file_identity(path))
        return self._identity[1]

    @property
    def model_loaded(self) -> bool:
        return self._model is not None

    # -- loading --------------------------------------------------------------
    def load(self) -> None:
        self.idle.touch()  # before looking at the model: the idle unloader's check (idle_unload.py)
        if self._model is not None:
            return
        with self._load_lock:
            if self._model is not None:
                return
            if self._closed:
                raise ModelError("the generation engine was closed: restart the assistant")
            path = self.model_path()
            if path is None:
                raise ModelError(model_file.missing_model_message(self.settings.models_dir))
            info = model_file.inspect_gguf(path)  # ModelError with a one-line fix
            ll = init_backend()
            t0 = time.perf_counter()
            model = LlamaModel(ll, path, use_mmap=self.settings.use_mmap, use_mlock=self.settings.use_mlock)
            if self.settings.use_mmap and not self.settings.use_mlock:
                advised = drop_mapped_file_pages(path)
                log.debug("released %d MB of mapped model pages after load", advised >> 20)
            try:
                n_ctx = self.settings.n_ctx
                if model.n_ctx_train and n_ctx > model.n_ctx_train:
                    log.warning("n_ctx %d > model's training context %d; using %d", n_ctx, model.n_ctx_train,
                                model.n_ctx_train)
                    n_ctx = model.n_ctx_train
                self.n_ctx = n_ctx
                self.template = template_for_model(info, model)
                self.chat_template_source = self.template.source
                st = self.settings
                self.pool_plan = plan_pool(st, info, model, n_ctx)
                if st.batching:
                    size = BatchContextSize.plan(n_slots=self.pool_plan["size"], n_ctx=n_ctx,
                                                 slot_kv_tokens=st.slot_kv_tokens, n_batch=st.n_batch,
                                                 n_ubatch=st.n_ubatch, kv_type=st.kv_cache_type)
                    self._scheduler = BatchScheduler(
                        model, size=size, n_threads=self.n_threads, stop_texts=self.template.stop_texts + ALWAYS_STOP,
                        loop_guard=st.loop_guard, admission_wait_seconds=st.admission_wait_seconds,
                        on_end=self._on_batched_end)
                else:
                    self._pool = ContextPool(
                        factory=self._new_slot, closer=lambda s: s.free(), size=self.pool_plan["size"],
                        affinity=lambda slot, prompt: slot.common_prefix(prompt),  # type: ignore[arg-type]
                    )
            except BaseException:
                model.free()
                raise
            self.info = info
            self._llama = ll
            self._model = model  # last: other threads treat a set _model as "fully loaded"
            self.idle.start()
            log.info("model %s loaded in %.1fs: %d layers, ctx %d, %s %d, %d threads, template %s",
                     path.name, time.perf_counter() - t0, model.n_layer, n_ctx,
                     "batch slots" if self._scheduler else "pool", self.pool_plan["size"], self.n_threads,
                     self.chat_template_source)

    def _sampling(self, grammar: str | None = None) -> SamplingParams:
        with self._stats_lock:
            self._seed += 1
            seed = self._seed
        st = self.settings
        if grammar:  # a constrained choice: greedy, no penalties (they would push away from the grammar's tokens)
            return SamplingParams(temperature=0.0, repeat_penalty=1.0, dry_multiplier=0.0, seed=seed, grammar=grammar)
        return SamplingParams(temperature=st.temperature, repeat_penalty=st.repeat_penalty,
                              repeat_last_n=st.repeat_last_n, dry_multiplier=st.dry_multiplier,
                              dry_base=st.dry_base, dry_allowed_length=st.dry_allowed_length, seed=seed)

    def _new_slot(self) -> ContextSlot:
        st = self.settings
        return ContextSlot(self._model, self.n_ctx, min(st.n_batch, self.n_ctx),  # type: ignore[arg-type]
                           self.n_threads, self._sampling())

    # -- prompts ----------------------------------------------------------------
    def _sanitize(self, text: str) -> str:
        """Break control-token strings inside message text (a document can't end the turn)."""
        if "<" not in text and "[" not in text:
            return text
        for special in self._model.control_texts:  # type: ignore[union-attr]
            if special in text:
                text = text.replace(special, special[0] + _ZWSP + special[1:])
        return text

    def render_prompt(self, messages: list[dict]) -> str:
        """The prompt text exactly as the model will see it (chat template applied)."""
        self.load()
        clean = [{"role": m["role"], "content": self._sanitize(str(m.get("content", "")))} for m in messages]
        return self.template.render(clean)  # type: ignore[union-attr]

    def prompt_tokens(self, messages: list[dict]) -> list[int]:
        text = self.render_prompt(messages)
        model: LlamaModel = self._model  # type: ignore[assignment]  # render_prompt loaded it
        bos_text = model.piece(model.bos, special=True).decode("utf-8", "ignore") if model.bos >= 0 else ""
        add_special = model.add_bos and not (bos_text and text.startswith(bos_text))
        return model.tokenize(text, add_special=add_special, parse_special=True)

    def count_tokens(self, text: str) -> int:
        self.load()
        return len(self._model.tokenize(self._sanitize(text), add_special=False, parse_special=False))  # type: ignore[union-attr]

    # -- generation -------------------------------------------------------------
    def stream(self, messages: list[dict], *, max_tokens: int | None = None,
               cancel: threading.Event | None = None, stats: dict | None = None,
               grammar: str | None = None) -> TokenStream:
        """Start an answer; returns an iterator of text pieces (see ``TokenStream``).

        Raises ``ModelError`` (model unusable), ``MemoryGuardError`` (memory
        too tight), ``BusyError`` (no context freed up within
        ``pool_wait_timeout_seconds``) or ``InputError`` (prompt longer than
        the context) here, before any text. ``stats``, if given, is filled with
        per-request figures (prompt/reused/evaluated/generated tokens, ttft...).
        ``grammar`` (GBNF) constrains the output; the batched engine honours it per answer, the
        one-context-per-answer pool swaps the slot's sampler for that answer.
        """
        self.load()
        cancel = cancel or threading.Event()
        prompt = self.prompt_tokens(messages)
        limit = max_tokens if max_tokens is not None else self.settings.max_tokens
        room = self.n_ctx - len(prompt)
        if room < 1:
            raise InputError(
                f"the question and passages are {len(prompt)} tokens, more than the model context "
                f"({self.n_ctx}): ask a shorter question or raise NEOC_N_CTX"
            )
        limit = max(1, min(limit, room))
        self.guard.check("before", may_refuse=True)
        with self._stats_lock:
            self._stats["requests"] += 1
        if self._scheduler is not None:
            stats = stats if stats is not None else {}
            stream = self._scheduler.submit(prompt, limit, self._sampling(grammar), cancel, stats,
                                            self.settings.pool_wait_timeout_seconds)
            if stream is None:  # cancelled while queued
                return EmptyStream(cancel, stats)  # type: ignore[return-value]
            self._count_prompt(stats.get("reused_tokens", 0), 0)
            return stream  # type: ignore[return-value]
        lease = self._pool.acquire(self.settings.pool_wait_timeout_seconds, cancel, hint=prompt)  # type: ignore[union-attr]
        if lease is None:  # cancelled while queued
            stats = stats if stats is not None else {}
            stats.update(finish_reason="cancelled", prompt_tokens=len(prompt), generated_tokens=0)
            return EmptyStream(cancel, stats)  # type: ignore[return-value]
        try:
            slot = lease.context
            slot.use_sampling(self._sampling(grammar) if grammar else None)
            slot.ll.llama_sampler_reset(slot.sampler)
            return TokenStream(self._model, lease, prompt, limit, stats,  # type: ignore[arg-type]
                               stop_texts=self.template.stop_texts,  # type: ignore[union-attr]
                               loop_guard=self.settings.loop_guard,
                               hooks=StreamHooks(self._active_streams, self._count_prompt, self._on_stream_end))
        except BaseException:
            self._pool.release(lease)  # type: ignore[union-attr]
            raise

    def generate(self, messages: list[dict], **kwargs) -> str:
        """Whole answer as one string (convenience for CLI/tests)."""
        with self.stream(messages, **kwargs) as pieces:
            return "".join(pieces)

    def _count_prompt(self, reused: int, evaluated: int) -> None:
        with self._stats_lock:
            self._stats["prompt_tokens_reused"] += reused
            self._stats["prompt_tokens_evaluated"] += evaluated

    def _on_stream_end(self, stream: TokenStream, lease: Lease, n_gen: int, reason: str, from_gc: bool) -> None:
        pool = self._pool
        if pool is not None:
            pool.release(lease)
        with self._stats_lock:
            self._stats["generated_tokens"] += n_gen
            self._stats[f"finished_{reason}"] += 1
        self.last_stats = dict(stream.stats)
        self.idle.touch()
        if not from_gc:
            try:
                self.guard.check("after", may_refuse=False)
            except Exception:  # never let the after-check break a finished answer
                log.exception("memory guard after generation failed")

    def _on_batched_end(self, stats: dict) -> None:
        """The scheduler ended an answer (called on its thread)."""
        with self._stats_lock:
            self._stats["generated_tokens"] += stats.get("generated_tokens", 0)
            self._stats["prompt_tokens_evaluated"] += stats.get("evaluated_tokens", 0)
            self._stats[f"finished_{stats.get('finish_reason')}"] += 1
        self.last_stats = dict(stats)
        self.idle.touch()
        try:
            self.guard.check("after", may_refuse=False)
        except Exception:  # never let the after-check break a finished answer
            log.exception("memory guard after generation failed")

    def _active_streams(self) -> int:
        pool = self._pool
        return len(pool._leases) if pool is not None else 1  # unlocked read of a set size: fine for a hint

    def _shrink_pool(self) -> int:
        return self._pool.shrink() if self._pool is not None else 0

    # -- introspection / shutdown ---------------------------------------------------
    def pool_stats(self) -> dict:
        if self._scheduler is not None:
            pool = self._scheduler.stats()
        elif self._pool is not None:
            pool = self._pool.stats()
        else:
            pool = {"size": 0, "created": 0, "in_use": 0, "idle": 0, "waiting": 0, "busy_rejections": 0,
                    "reclaimed": 0}
        with self._stats_lock:
            counters = dict(self._stats)
        return {
            **pool,
            "model_loaded": self._model is not None,
            "guard_actions": self.guard.snapshot(),
            "n_ctx": self.n_ctx,
            "n_threads": self.n_threads,
            "chat_template": self.chat_template_source,
            "prompt_tokens_evaluated": counters.get("prompt_tokens_evaluated", 0),
            "prompt_tokens_reused": counters.get("prompt_tokens_reused", 0),
            "generated_tokens": counters.get("generated_tokens", 0),
            "requests": counters.get("requests", 0),
            "plan": dict(self.pool_plan),
        }

    def _unload_if_idle(self, last_touch: float) -> bool:
        """Free the model and its contexts if no answer is running or queued and nobody has called
        ``load()`` since ``last_touch`` (``idle_unload.py``); the next question loads it again."""
        with self._load_lock:
            model = self._model
            if self._closed or model is None:
                return False
            pool = self._scheduler.stats() if self._scheduler is not None else (
                self._pool.stats() if self._pool is not None else {})
            if pool.get("in_use") or pool.get("waiting"):
                return False
            self._model = None  # hide it first: a caller arriving now takes load()'s locked path
            if self.idle.last_touch != last_touch:  # someone passed load()'s fast path meanwhile
                self._model = model
                return False
            scheduler, ctx_pool = self._scheduler, self._pool
            self._scheduler = self._pool = None
            if ctx_pool is not None and not ctx_pool.close() or scheduler is not None and not scheduler.close():
                log.warning("an answer was still running at idle unload; leaving the model mapped")
                return False
            model.free()
            return True

    def close(self) -> None:
        self.idle.stop()
        with self._load_lock:
            self._closed = True
            pool, model, scheduler = self._pool, self._model, self._scheduler
            if pool is not None and not pool.close() or scheduler is not None and not scheduler.close():
                log.warning("generation still running at shutdown; leaving the model mapped")
                return
            self._pool = None
            self._scheduler = None
            self._model = None
            if model is not None:
                model.free()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

