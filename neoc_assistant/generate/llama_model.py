"""Thin wrappers over llama.cpp's C handles: the loaded model, and one pooled context.

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
  (``llama_memory_seq_rm`` drops the rest).
* **Threads.** Concurrent answers split the cores between them
  (``ContextSlot.share_threads``) instead of oversubscribing.
"""

from __future__ import annotations

import ctypes
import threading
from pathlib import Path

from neoc_assistant.errors import InputError, ModelError
from neoc_assistant.generate.llama_backend import clear_recent_errors, drop_mapped_file_pages, llama_error_detail
from neoc_assistant.generate.sampling import SamplingParams, build_sampler


# --------------------------------------------------------------------------
# the loaded model (weights + vocab), shared by every context
# --------------------------------------------------------------------------
class LlamaModel:
    def __init__(self, llama_cpp, path: Path, *, use_mmap: bool, use_mlock: bool, vocab_only: bool = False):
        self.ll = llama_cpp
        params = llama_cpp.llama_model_default_params()
        params.n_gpu_layers = 0
        params.use_mmap = use_mmap
        params.use_mlock = use_mlock
        params.vocab_only = vocab_only
        self._progress_cb = None
        if use_mmap and not use_mlock and not vocab_only:
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
        clear_recent_errors()
        ptr = llama_cpp.llama_model_load_from_file(str(path).encode("utf-8"), params)
        if not ptr:
            detail = llama_error_detail() or "llama.cpp could not load it"
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
class ContextSlot:
    _ids = 0

    def __init__(self, model: LlamaModel, n_ctx: int, n_batch: int, n_threads: int, sampling: SamplingParams):
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
            detail = llama_error_detail()
            raise ModelError(
                f"could not create a model context of {n_ctx} tokens ({detail or 'allocation failed'}): "
                f"lower NEOC_N_CTX or NEOC_POOL_MAX_SIZE, or free memory"
            )
        self.ctx = ctx
        self.mem = ll.llama_get_memory(ctx)
        self.n_ctx = ll.llama_n_ctx(ctx)
        self.n_batch = n_batch
        self._default_sampling = sampling
        self._sampling = sampling
        self.sampler = build_sampler(ll, model.vocab, model.n_vocab, sampling)
        self.n_threads = self._threads_now = n_threads
        self.tokens: list[int] = []  # exactly what is in the KV cache, in order
        self._one = (ll.llama_token * 1)()
        ContextSlot._ids += 1
        self.id = ContextSlot._ids

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

    def use_sampling(self, sampling: SamplingParams | None) -> None:
        """The sampler chain for the next answer: ``sampling`` (a grammar-constrained choice), or None
        for the slot's usual one. A chain is rebuilt only when it changes."""
        wanted = sampling or self._default_sampling
        if wanted is self._sampling or (sampling is None and self._sampling is self._default_sampling):
            return
        self.ll.llama_sampler_free(self.sampler)
        self.sampler = build_sampler(self.ll, self.model.vocab, self.model.n_vocab, wanted)
        self._sampling = wanted

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


