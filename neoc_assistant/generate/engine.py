"""Local text generation on llama.cpp: one model, a pool of contexts, streaming.

Design choices (and why):

* **Low-level API, not ``Llama``.** We drive llama.cpp through the C API that
  llama-cpp-python exposes (``llama_model_load_from_file``,
  ``llama_init_from_model``, ``llama_tokenize``, ``llama_decode`` on
  ``llama_batch_get_one``, a ``llama_sampler_chain``). ``Llama`` keeps numpy
  copies of the whole logits row and the token history and runs its own Python
  sampling/stop-string machinery on every token; the bare loop here does
  per token exactly what a raw llama.cpp decode loop does (one decode, one
  sample, one piece lookup), so streaming runs at the raw decode speed.
* **One ``llama_model``, N ``llama_context``s.** The weights are loaded
  (memory-mapped) once and shared read-only; each pooled context owns only its
  KV cache and compute buffers. Several ``Llama`` objects would each load the
  model (mmap makes the pages shared, but each still parses the file, builds
  its vocab and allocates host buffers), and ``_internals.LlamaContext``
  registers its own close hook on the model wrapper; plain handles keep the
  lifetime rules explicit: contexts are freed before the model, never while a
  decode runs.
* **Prefix KV reuse.** Each context remembers the tokens in its KV cache. A new
  prompt only evaluates the suffix after the longest common prefix
  (``llama_memory_seq_rm`` drops the rest), and the pool hands out the idle
  context with the longest shared prefix. The prompt is built system prompt
  first (see ``prompt.py``), so that part is evaluated once per context.
* **Validation first.** ``model_file.inspect_gguf`` checks magic, header and
  size before llama.cpp sees the file, so bad files give one actionable line.
* **Quiet.** llama.cpp's log output goes through a callback to Python logging
  at DEBUG (the last error lines are kept to explain a failed load) instead of
  stderr.
* **Chat template and hygiene.** The template comes from the GGUF, else
  llama.cpp's built-in one for the model's family (``chat_template.py``); the
  sampler chain adds repetition and DRY penalties (``sampling.py``); the
  stream never shows chat markers and ends a looping answer
  (``stream_guard.py``, ``finish_reason`` "stop"/"loop").
* **Threads.** ``n_threads`` defaults to the physical core count (psutil).
  Concurrent answers split the cores between them (``_Slot.share_threads``)
  instead of oversubscribing, and OpenMP threads spin only briefly at
  barriers (``_tune_openmp_spin``): both keep decoding steady when the laptop
  is busy with something else, at full speed when it is not.
* **Streams are iterator objects** that hold a pooled context from the call
  until they finish, are closed, are garbage-collected, or their ``cancel``
  event is set (the pool reclaims a cancelled stream's context even while the
  consumer is not iterating). Busy/memory errors are raised by ``stream()``
  itself, before any text, so a server can answer 503 cleanly.
"""

from __future__ import annotations

import codecs
import ctypes
import logging
import os
import sys
import threading
import time
from collections import Counter, deque
from pathlib import Path
from typing import Callable, Iterator

import psutil

from neoc_assistant.errors import InputError, ModelError
from neoc_assistant.generate import model_file
from neoc_assistant.generate.chat_template import ALWAYS_STOP, ChatTemplate, choose_template
from neoc_assistant.generate.memory_guard import MemoryGuard
from neoc_assistant.generate.pool import ContextPool, Lease
from neoc_assistant.generate.sampling import SamplingParams, build_sampler
from neoc_assistant.generate.stream_guard import LoopDetector, StopScanner
from neoc_assistant.settings import Settings

log = logging.getLogger(__name__)

_KV_BYTES = 2  # f16 K and V cache entries
_ZWSP = "\u200b"

# --------------------------------------------------------------------------
# process-wide llama.cpp backend state
# --------------------------------------------------------------------------
_backend_lock = threading.Lock()
_backend_ready = False
_log_callback = None  # keep the ctypes callback alive for the process lifetime
_recent_errors: deque[str] = deque(maxlen=8)
_llama_log = logging.getLogger("neoc_assistant.llama_cpp")


def _libgomp_loaded() -> bool:
    try:
        with open("/proc/self/maps") as fh:
            return "libgomp" in fh.read()
    except OSError:
        return False


def _tune_openmp_spin() -> None:
    """Make llama.cpp's OpenMP threads spin only briefly before sleeping.

    llama.cpp's CPU backend (built with OpenMP here) synchronises its threads
    with an OpenMP barrier after every graph node, hundreds of times per token.
    libgomp's default is to spin 300,000 times at a barrier before sleeping:
    ideal on an idle machine, but when other processes (or our own embedding
    model) want the same 2 cores, a spinning thread burns the time slice its
    partner needs and decoding collapses. Measured on the shared 2-core
    machine, 0.5B shape, 2 threads, tokens/s:

        policy                      quiet machine   busy machine (load ~4)
        default (spin 300k)         46-48           0.7-15
        GOMP_SPINCOUNT=1000         44-49           20-29
        OMP_WAIT_POLICY=PASSIVE     ~32             24-30

    A short spin keeps full speed when the cores are free and degrades
    gracefully when they are not. libgomp reads these variables once, when it
    is first loaded (torch ships a libgomp with the same soname), so the lead
    process should ideally set them at start-up; an explicit user setting of
    either variable is never overridden.
    """
    if "OMP_WAIT_POLICY" in os.environ or "GOMP_SPINCOUNT" in os.environ:
        return
    if _libgomp_loaded():
        log.info("OpenMP was initialised before the model backend; set GOMP_SPINCOUNT=1000 at start-up "
                 "for steadier generation speed when the CPU is busy")
    os.environ["GOMP_SPINCOUNT"] = "1000"


def _backend():
    """Import llama_cpp, init the backend once and route its logs to Python logging."""
    global _backend_ready, _log_callback
    with _backend_lock:
        if not _backend_ready:
            _tune_openmp_spin()
        try:
            import llama_cpp
        except ImportError as exc:  # pragma: no cover - hard dependency
            raise ModelError(
                f"llama-cpp-python is not installed ({exc}): run `pip install llama-cpp-python` in the venv"
            ) from None
        if not _backend_ready:
            @llama_cpp.llama_log_callback
            def _on_log(level, text, _user_data):
                try:
                    msg = text.decode("utf-8", errors="replace").rstrip()
                except Exception:
                    return
                if not msg:
                    return
                if level == 4:  # GGML_LOG_LEVEL_ERROR (ggml.h: NONE 0, DEBUG 1, INFO 2, WARN 3, ERROR 4, CONT 5)
                    _recent_errors.append(msg)
                _llama_log.debug(msg)

            _log_callback = _on_log
            llama_cpp.llama_log_set(_log_callback, ctypes.c_void_p(0))
            llama_cpp.llama_backend_init()
            _backend_ready = True
        return llama_cpp


def _llama_error_detail() -> str:
    """The most telling recent llama.cpp error line, without the function-name prefix."""
    for line in reversed(_recent_errors):
        text = line.split(": ", 1)[1] if ": " in line[:48] else line
        if text and "failed to load model" not in text:
            return " ".join(text.split())[:200]
    return " ".join(_recent_errors[-1].split())[:200] if _recent_errors else ""


_MADV_DONTNEED = 4


def drop_mapped_file_pages(path: Path) -> int:
    """Drop this process's resident pages of the memory-mapped model file (Linux).

    Why: llama.cpp's CPU backend *repacks* most quantized weights into an
    interleaved copy in anonymous memory for faster kernels. With mmap the
    original pages of those tensors were read once while repacking and then
    stay resident in the mapping although they are never used again - for the
    1.5B shape that is ~600 MB of the 1.7 GB RSS. They are clean file pages, so
    telling the kernel we don't need them (``MADV_DONTNEED``) is safe: pages
    that *are* still used (tensors not repacked) are simply faulted back from
    the page cache on the next token. Measured: RSS 1.69 GB -> 1.10 GB, decode
    speed unchanged. Returns the bytes of mapping advised (0 if unsupported).
    """
    if not sys.platform.startswith("linux"):
        return 0
    try:
        real = os.path.realpath(path)
        libc = ctypes.CDLL(None, use_errno=True)
        madvise = libc.madvise
        madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        madvise.restype = ctypes.c_int
        advised = 0
        with open("/proc/self/maps") as fh:
            for line in fh:
                parts = line.rstrip("\n").split(maxsplit=5)
                if len(parts) == 6 and parts[5] == real:
                    start, end = (int(x, 16) for x in parts[0].split("-"))
                    if madvise(start, end - start, _MADV_DONTNEED) == 0:
                        advised += end - start
        return advised
    except (OSError, AttributeError, ValueError):
        return 0


def physical_cores() -> int:
    return psutil.cpu_count(logical=False) or os.cpu_count() or 1


# --------------------------------------------------------------------------
# the loaded model (weights + vocab), shared by every context
# --------------------------------------------------------------------------
class _Model:
    def __init__(self, llama_cpp, path: Path, settings: Settings, *, vocab_only: bool = False):
        self.ll = llama_cpp
        params = llama_cpp.llama_model_default_params()
        params.n_gpu_layers = 0
        params.use_mmap = settings.use_mmap
        params.use_mlock = settings.use_mlock
        params.vocab_only = vocab_only
        self._progress_cb = None
        if settings.use_mmap and not settings.use_mlock and not vocab_only:
            # Release repacked weights' original pages *while* loading, so the load-time
            # peak RSS stays near the steady state too (see drop_mapped_file_pages).
            next_drop = [0.1]

            @llama_cpp.llama_progress_callback
            def _on_progress(progress, _user_data):
                if progress >= next_drop[0]:
                    next_drop[0] = progress + 0.1
                    drop_mapped_file_pages(path)
                return True

            self._progress_cb = _on_progress  # keep the ctypes callback alive during the load
            params.progress_callback = _on_progress
        _recent_errors.clear()
        ptr = llama_cpp.llama_model_load_from_file(str(path).encode("utf-8"), params)
        if not ptr:
            detail = _llama_error_detail() or "llama.cpp could not load it"
            raise ModelError(
                f"cannot load model {path}: {detail} - use a GGUF chat model supported by "
                f"llama-cpp-python (e.g. Qwen2.5 or Llama 3.2 Q4_K_M), see models/README.md"
            )
        self.ptr = ptr
        self.vocab = llama_cpp.llama_model_get_vocab(ptr)
        self.n_vocab = llama_cpp.llama_vocab_n_tokens(self.vocab)
        if not vocab_only:  # hyper-parameters are not read in a vocabulary-only load (llama.cpp aborts)
            self.n_ctx_train = llama_cpp.llama_model_n_ctx_train(ptr)
            self.n_layer = llama_cpp.llama_model_n_layer(ptr)
            self.n_head = llama_cpp.llama_model_n_head(ptr)
            self.n_head_kv = llama_cpp.llama_model_n_head_kv(ptr)
            self.n_embd = llama_cpp.llama_model_n_embd(ptr)
        self.add_bos = bool(llama_cpp.llama_vocab_get_add_bos(self.vocab))
        self.bos = llama_cpp.llama_vocab_bos(self.vocab)
        self.eos = llama_cpp.llama_vocab_eos(self.vocab)
        self._piece_buf = threading.local()
        self.control_texts = self._control_token_texts()

    def _control_token_texts(self) -> list[str]:
        """Texts of control tokens (e.g. ``<|im_end|>``) so document text can't inject them."""
        ll, out = self.ll, []
        for tok in range(self.n_vocab):
            if ll.llama_vocab_get_attr(self.vocab, tok) & ll.LLAMA_TOKEN_ATTR_CONTROL:
                text = self.piece(tok, special=True).decode("utf-8", errors="ignore")
                if len(text) >= 3:
                    out.append(text)
        return sorted(set(out), key=len, reverse=True)

    def tokenize(self, text: str, *, add_special: bool, parse_special: bool) -> list[int]:
        data = text.encode("utf-8")
        cap = len(data) + 8
        buf = (self.ll.llama_token * cap)()
        n = self.ll.llama_tokenize(self.vocab, data, len(data), buf, cap, add_special, parse_special)
        if n < 0:
            cap = -n
            buf = (self.ll.llama_token * cap)()
            n = self.ll.llama_tokenize(self.vocab, data, len(data), buf, cap, add_special, parse_special)
            if n < 0:
                raise InputError("the text could not be tokenized: remove unusual control characters and retry")
        return buf[:n]

    def piece(self, token: int, special: bool = False) -> bytes:
        buf = getattr(self._piece_buf, "buf", None)
        if buf is None:
            buf = self._piece_buf.buf = ctypes.create_string_buffer(256)
        n = self.ll.llama_token_to_piece(self.vocab, token, buf, 256, 0, special)
        if n < 0:
            big = ctypes.create_string_buffer(-n)
            n = self.ll.llama_token_to_piece(self.vocab, token, big, -n, 0, special)
            return big.raw[:n]
        return buf.raw[:n]

    def is_eog(self, token: int) -> bool:
        return bool(self.ll.llama_vocab_is_eog(self.vocab, token))

    def free(self) -> None:
        if self.ptr:
            self.ll.llama_model_free(self.ptr)
            self.ptr = None


# --------------------------------------------------------------------------
# one pooled context: KV cache + sampler + the tokens currently in the cache
# --------------------------------------------------------------------------
class _Slot:
    _ids = 0

    def __init__(self, model: _Model, n_ctx: int, n_batch: int, n_threads: int, sampling: SamplingParams):
        ll = model.ll
        self.ll, self.model = ll, model
        params = ll.llama_context_default_params()
        params.n_ctx = n_ctx
        params.n_batch = n_batch
        params.n_ubatch = n_batch
        params.n_seq_max = 1
        params.n_threads = n_threads
        params.n_threads_batch = n_threads
        params.no_perf = True
        if hasattr(params, "n_outputs_max"):
            params.n_outputs_max = 1  # we only ever read the last token's logits
        ctx = ll.llama_init_from_model(model.ptr, params)
        if not ctx:
            detail = _llama_error_detail()
            raise ModelError(
                f"could not create a model context of {n_ctx} tokens ({detail or 'allocation failed'}): "
                f"lower NEOC_N_CTX or NEOC_POOL_MAX_SIZE, or free memory"
            )
        self.ctx = ctx
        self.mem = ll.llama_get_memory(ctx)
        self.n_ctx = ll.llama_n_ctx(ctx)
        self.n_batch = n_batch
        chain = build_sampler(ll, model.vocab, model.n_vocab, sampling)
        self.sampler = chain
        self.n_threads = self._threads_now = n_threads
        self.tokens: list[int] = []  # exactly what is in the KV cache, in order
        self._one = (ll.llama_token * 1)()
        _Slot._ids += 1
        self.id = _Slot._ids

    def share_threads(self, active: int) -> None:
        """Split the cores between concurrently running answers.

        With 2 cores and 2 answers, 2 x 2 threads would oversubscribe the CPU
        (llama.cpp's threads spin-wait on each other); 1 thread each keeps
        both moving. A lone answer gets every thread, like the raw loop.
        """
        want = max(1, self.n_threads // max(1, active))
        if want != self._threads_now:
            self.ll.llama_set_n_threads(self.ctx, want, want)
            self._threads_now = want

    def common_prefix(self, prompt: list[int]) -> int:
        n = min(len(self.tokens), len(prompt))
        toks = self.tokens
        i = 0
        # compare in chunks first (fast path for long shared prefixes)
        step = 64
        while i + step <= n and toks[i:i + step] == prompt[i:i + step]:
            i += step
        while i < n and toks[i] == prompt[i]:
            i += 1
        return i

    def prefill(self, prompt: list[int], cancel: threading.Event) -> tuple[int, int]:
        """Make the KV cache hold ``prompt``; evaluate only the new suffix. Returns (reused, evaluated)."""
        ll = self.ll
        keep = self.common_prefix(prompt)
        if keep >= len(prompt):
            keep = len(prompt) - 1  # must evaluate >= 1 token to get fresh logits
        if keep < len(self.tokens):
            if not ll.llama_memory_seq_rm(self.mem, 0, keep, -1):
                ll.llama_memory_clear(self.mem, True)
                keep = 0
            del self.tokens[keep:]
        todo = prompt[keep:]
        done = 0
        while done < len(todo):
            if cancel.is_set():
                break
            chunk = todo[done:done + self.n_batch]
            arr = (ll.llama_token * len(chunk))(*chunk)
            rc = ll.llama_decode(self.ctx, ll.llama_batch_get_one(arr, len(chunk)))
            if rc != 0:
                self.reset()
                raise ModelError(f"llama.cpp failed to evaluate the prompt (code {rc}): lower NEOC_N_CTX or retry")
            self.tokens.extend(chunk)
            done += len(chunk)
        return keep, done

    def decode_one(self, token: int) -> None:
        self._one[0] = token
        rc = self.ll.llama_decode(self.ctx, self.ll.llama_batch_get_one(self._one, 1))
        if rc != 0:
            self.reset()
            raise ModelError(f"llama.cpp failed while generating (code {rc}): retry, or lower NEOC_N_CTX")
        self.tokens.append(token)

    def sample(self) -> int:
        return self.ll.llama_sampler_sample(self.sampler, self.ctx, -1)

    def reset(self) -> None:
        self.ll.llama_memory_clear(self.mem, True)
        self.tokens.clear()

    def free(self) -> None:
        if self.sampler:
            self.ll.llama_sampler_free(self.sampler)
            self.sampler = None
        if self.ctx:
            self.ll.llama_free(self.ctx)
            self.ctx = None


# --------------------------------------------------------------------------
# a running answer
# --------------------------------------------------------------------------
class TokenStream(Iterator[str]):
    """Iterator of text pieces holding one pooled context until it ends.

    Ends (and releases the context at once) when the model stops, after
    ``max_tokens``, on ``close()``, when the object is garbage-collected, or as
    soon as ``cancel`` is set.
    """

    def __init__(self, engine: "GenerationEngine", lease: Lease, prompt: list[int], max_tokens: int,
                 stats: dict | None):
        self._engine = engine
        self._lease = lease
        self._slot: _Slot = lease.context
        self._prompt = prompt
        self._max_tokens = max_tokens
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._stops = StopScanner(engine.template.stop_texts + ALWAYS_STOP)
        self._loop = LoopDetector() if engine.settings.loop_guard else None
        self._ending = False  # a stop text or loop was seen: the next call ends the stream
        self._pending: int | None = None
        self._started = False
        self._done = False
        self._n_gen = 0
        self.stats = stats if stats is not None else {}
        self.stats.update(prompt_tokens=len(prompt), reused_tokens=0, evaluated_tokens=0, generated_tokens=0,
                          slot=self._slot.id, finish_reason=None)
        self._t0 = time.perf_counter()

    @property
    def cancel(self) -> threading.Event:
        return self._lease.cancel

    def __iter__(self) -> "TokenStream":
        return self

    def __next__(self) -> str:
        lease = self._lease
        with lease.lock:
            if self._done:
                raise StopIteration
            if lease.revoked or lease.stopped():
                stop = True
            else:
                stop = False
                lease.active = True
        if stop:
            self._finish("cancelled")
            raise StopIteration
        try:
            piece = self._advance()
        except BaseException:
            with lease.lock:
                lease.active = False
            self._finish("error")
            raise
        with lease.lock:
            lease.active = False
        if piece is None:
            self._finish(self.stats.get("finish_reason") or "stop")
            raise StopIteration
        return piece

    def _advance(self) -> str | None:
        slot, model, cancel = self._slot, self._engine._model, self._lease  # lease.is_set(): cancelled or closed
        if not self._started:
            self._started = True
            t = time.perf_counter()
            slot.share_threads(self._engine._active_streams())
            reused, evaluated = slot.prefill(self._prompt, cancel)
            self.stats.update(reused_tokens=reused, evaluated_tokens=evaluated,
                              prefill_seconds=time.perf_counter() - t)
            self._engine._count_prompt(reused, evaluated)
            if cancel.is_set():
                self.stats["finish_reason"] = "cancelled"
                return None
            self._t_decode = time.perf_counter()
        slot.share_threads(self._engine._active_streams())
        if self._ending:
            return None
        while True:
            if cancel.is_set():
                self.stats["finish_reason"] = "cancelled"
                return None
            if self._n_gen >= self._max_tokens:  # checked first: no wasted decode of the last token
                self.stats["finish_reason"] = "length"
                return self._flush()
            if self._pending is not None:
                if len(slot.tokens) >= slot.n_ctx:
                    self.stats["finish_reason"] = "length"
                    return self._flush()
                token, self._pending = self._pending, None
                slot.decode_one(token)
            token = slot.sample()
            if model.is_eog(token):
                self.stats["finish_reason"] = "stop"
                return self._flush()
            self._n_gen += 1
            if self._n_gen == 1:
                self.stats["ttft_seconds"] = time.perf_counter() - self._t0
            self._pending = token
            text = self._decoder.decode(model.piece(token))
            if text:
                shown = self._screen(text)
                if shown or self._ending:
                    return shown or None

    def _screen(self, text: str) -> str:
        """Hold back chat markers; end the stream at one, or when the text loops."""
        shown, stopped = self._stops.feed(text)
        if stopped:
            self.stats["finish_reason"] = "stop"
            self.stats["stopped_on"] = self._stops.stopped_on
            self._ending = True
        elif self._loop is not None and self._loop.feed(text):
            self.stats["finish_reason"] = "loop"
            self.stats["loop"] = self._loop.reason
            self._ending = True
        return shown

    def _flush(self) -> str | None:
        text = self._decoder.decode(b"", final=True)
        shown = self._stops.feed(text)[0] if text else ""
        shown += self._stops.flush()
        return shown or None

    def _finish(self, reason: str, *, from_gc: bool = False) -> None:
        with self._lease.lock:
            if self._done:
                return
            self._done = True
        if self.stats.get("finish_reason") is None:
            self.stats["finish_reason"] = reason
        self.stats["generated_tokens"] = self._n_gen
        if self._started and hasattr(self, "_t_decode"):
            self.stats["decode_seconds"] = time.perf_counter() - self._t_decode
        self._engine._on_stream_end(self, self._lease, self._n_gen, self.stats["finish_reason"], from_gc=from_gc)

    def close(self) -> None:
        """Stop now and give the context back (e.g. the client disconnected).

        A no-op once the stream has finished; never sets the caller's
        ``cancel`` event (a completed answer stays complete).
        """
        with self._lease.lock:
            if self._done:
                return
            self._lease.stop.set()
            busy = self._lease.active
        if not busy:
            self._finish("cancelled")  # if busy, the running next() stops at its next check

    def __enter__(self) -> "TokenStream":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            if not self._done:
                self._lease.stop.set()
                self._finish("cancelled", from_gc=True)
        except Exception:
            pass


class _EmptyStream(Iterator[str]):
    """What ``stream()`` returns when the request was cancelled while it queued."""

    def __init__(self, cancel: threading.Event, stats: dict):
        self.cancel, self.stats = cancel, stats

    def __next__(self) -> str:
        raise StopIteration

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass


# --------------------------------------------------------------------------
# the engine
# --------------------------------------------------------------------------
class GenerationEngine:
    """Loads the GGUF once, pools contexts, streams answers. Never loads at construction."""

    def __init__(self, settings: Settings, *, on_guard_action: Callable[[str], None] | None = None,
                 shed_cache: Callable[[], int] | None = None):
        self.settings = settings
        self._load_lock = threading.Lock()
        self._model: _Model | None = None
        self._pool: ContextPool[_Slot] | None = None
        self._llama = None
        self._identity: tuple[tuple, str] | None = None
        self.info: model_file.GGUFInfo | None = None
        self.chat_template_source: str | None = None
        self.template: ChatTemplate | None = None
        self.n_threads = settings.n_threads or physical_cores()
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

    # -- cheap queries ------------------------------------------------------
    def model_path(self) -> Path | None:
        return self.settings.resolved_model_path()

    def available(self) -> bool:
        path = self.model_path()
        return bool(path) and path.is_file()

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
            ll = _backend()
            t0 = time.perf_counter()
            model = _Model(ll, path, self.settings)
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
                self.template = self._choose_template(info, model)
                self.chat_template_source = self.template.source
                self.pool_plan = self._plan_pool(info, model)
                pool: ContextPool[_Slot] = ContextPool(
                    factory=self._new_slot, closer=lambda s: s.free(), size=self.pool_plan["size"],
                    affinity=lambda slot, prompt: slot.common_prefix(prompt),
                )
            except BaseException:
                model.free()
                raise
            self.info = info
            self._llama = ll
            self._pool = pool
            self._model = model  # last: other threads treat a set _model as "fully loaded"
            log.info("model %s loaded in %.1fs: %d layers, ctx %d, pool %d, %d threads, template %s",
                     path.name, time.perf_counter() - t0, model.n_layer, n_ctx, pool.size, self.n_threads,
                     self.chat_template_source)

    def _new_slot(self) -> _Slot:
        with self._stats_lock:
            self._seed += 1
            seed = self._seed
        st = self.settings
        params = SamplingParams(temperature=st.temperature, repeat_penalty=st.repeat_penalty,
                                repeat_last_n=st.repeat_last_n, dry_multiplier=st.dry_multiplier,
                                dry_base=st.dry_base, dry_allowed_length=st.dry_allowed_length, seed=seed)
        return _Slot(self._model, self.n_ctx, min(st.n_batch, self.n_ctx), self.n_threads, params)

    def _plan_pool(self, info: model_file.GGUFInfo, model: _Model) -> dict:
        """Pool size from the memory budget (or ``pool_size`` if set)."""
        head_dim = int(info.arch_value("attention.key_length", 0) or (model.n_embd // max(model.n_head, 1)))
        kv_bytes = 2 * model.n_layer * self.n_ctx * model.n_head_kv * head_dim * _KV_BYTES
        n_batch = min(self.settings.n_batch, self.n_ctx)
        # compute buffers: activations of one micro-batch + one logits row (n_outputs_max=1)
        compute_bytes = n_batch * (4 * model.n_embd + 3 * int(info.arch_value("feed_forward_length", 4 * model.n_embd)
                                                              or 4 * model.n_embd)) * 4 + model.n_vocab * 4 * 2
        compute_bytes += 16 << 20  # graph metadata, sampler arrays, allocator slack
        per_context = kv_bytes + compute_bytes
        available = psutil.virtual_memory().available
        budget = int(available * self.settings.memory_budget_fraction)
        model_bytes = info.file_size
        by_budget = (budget - model_bytes) // per_context if per_context else 1
        if self.settings.pool_size:
            size = self.settings.pool_size
        else:
            size = int(max(1, min(self.settings.pool_max_size, by_budget)))
        return {
            "size": size,
            "from_setting": bool(self.settings.pool_size),
            "model_bytes": model_bytes,
            "kv_bytes_per_context": kv_bytes,
            "compute_bytes_per_context": compute_bytes,
            "available_bytes": available,
            "budget_bytes": budget,
            "contexts_fitting_budget": int(by_budget),
        }

    def describe_template(self, path: Path) -> ChatTemplate:
        """The template ``path`` would get, from its vocabulary alone (no weights loaded):
        what ``models verify`` reports."""
        info = model_file.inspect_gguf(path)
        model = _Model(_backend(), path, self.settings, vocab_only=True)
        try:
            return self._choose_template(info, model)
        finally:
            model.free()

    @staticmethod
    def _choose_template(info: model_file.GGUFInfo, model: _Model) -> ChatTemplate:
        bos = model.piece(model.bos, special=True).decode("utf-8", "ignore") if model.bos >= 0 else ""
        eos = model.piece(model.eos, special=True).decode("utf-8", "ignore") if model.eos >= 0 else ""
        return choose_template(info.chat_template, set(model.control_texts), bos, eos, model.ll, info.path.name)

    # -- prompts ----------------------------------------------------------------
    def _sanitize(self, text: str) -> str:
        """Break control-token strings inside message text (a document can't end the turn)."""
        if "<" not in text and "[" not in text:
            return text
        for special in self._model.control_texts:
            if special in text:
                text = text.replace(special, special[0] + _ZWSP + special[1:])
        return text

    def render_prompt(self, messages: list[dict]) -> str:
        """The prompt text exactly as the model will see it (chat template applied)."""
        self.load()
        clean = [{"role": m["role"], "content": self._sanitize(str(m.get("content", "")))} for m in messages]
        return self.template.render(clean)

    def prompt_tokens(self, messages: list[dict]) -> list[int]:
        text = self.render_prompt(messages)
        model = self._model
        bos_text = model.piece(model.bos, special=True).decode("utf-8", "ignore") if model.bos >= 0 else ""
        add_special = model.add_bos and not (bos_text and text.startswith(bos_text))
        return model.tokenize(text, add_special=add_special, parse_special=True)

    def count_tokens(self, text: str) -> int:
        self.load()
        return len(self._model.tokenize(self._sanitize(text), add_special=False, parse_special=False))

    # -- generation -------------------------------------------------------------
    def stream(self, messages: list[dict], *, max_tokens: int | None = None,
               cancel: threading.Event | None = None, stats: dict | None = None) -> TokenStream:
        """Start an answer; returns an iterator of text pieces (see ``TokenStream``).

        Raises ``ModelError`` (model unusable), ``MemoryGuardError`` (memory
        too tight), ``BusyError`` (no context freed up within
        ``pool_wait_timeout_seconds``) or ``InputError`` (prompt longer than
        the context) here, before any text. ``stats``, if given, is filled with
        per-request figures (prompt/reused/evaluated/generated tokens, ttft...).
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
        lease = self._pool.acquire(self.settings.pool_wait_timeout_seconds, cancel, hint=prompt)
        if lease is None:  # cancelled while queued
            stats = stats if stats is not None else {}
            stats.update(finish_reason="cancelled", prompt_tokens=len(prompt), generated_tokens=0)
            return _EmptyStream(cancel, stats)  # type: ignore[return-value]
        try:
            slot = lease.context
            slot.ll.llama_sampler_reset(slot.sampler)
            return TokenStream(self, lease, prompt, limit, stats)
        except BaseException:
            self._pool.release(lease)
            raise

    def generate(self, messages: list[dict], **kwargs) -> str:
        """Whole answer as one string (convenience for CLI/tests)."""
        with self.stream(messages, **kwargs) as pieces:
            return "".join(pieces)

    def _count_prompt(self, reused: int, evaluated: int) -> None:
        with self._stats_lock:
            self._stats["prompt_tokens_reused"] += reused
            self._stats["prompt_tokens_evaluated"] += evaluated

    def _on_stream_end(self, stream: TokenStream, lease: Lease, n_gen: int, reason: str, *, from_gc: bool) -> None:
        pool = self._pool
        if pool is not None:
            pool.release(lease)
        with self._stats_lock:
            self._stats["generated_tokens"] += n_gen
            self._stats[f"finished_{reason}"] += 1
        self.last_stats = dict(stream.stats)
        if not from_gc:
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
        pool = self._pool.stats() if self._pool is not None else {
            "size": 0, "created": 0, "in_use": 0, "idle": 0, "waiting": 0, "busy_rejections": 0, "reclaimed": 0}
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

    def close(self) -> None:
        with self._load_lock:
            self._closed = True
            pool, model = self._pool, self._model
            if pool is not None:
                if not pool.close():
                    log.warning("generation still running at shutdown; leaving the model mapped")
                    return
            self._pool = None
            self._model = None
            if model is not None:
                model.free()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
