"""The batched context's llama.cpp parameters, sized for what the answers use.

Why: the batched context (``batching.py``) holds every answer slot's KV cells
in one unified cache. Sized as ``n_ctx`` x (slots + 1) - every answer at the
full 4096-token context at once - its KV buffer alone was 810 MB for SmolLM2
(36,864 cells; llama.cpp zeroes it at creation, so it is all resident) while
a real answer uses ~570 prompt + <=320 answer tokens. What is sized here, with
llama.cpp's own buffer figures for SmolLM2 / Qwen2.5-0.5B / Qwen2.5-1.5B
(``scripts/memory_breakdown.py``, README "Memory"):

* **KV cells** = ``slot_kv_tokens`` x (slots + 1): what a typical answer
  needs, not the worst case. Every sequence may still grow to ``n_ctx`` (the
  cache is unified: cells are not partitioned per sequence); the scheduler
  admits an answer only when its prompt + ``max_tokens`` fits in the cells not
  reserved by others, so a long prompt waits instead of failing a decode.
  810 -> 203 MB (SmolLM2), 432 -> 108 MB (0.5B), 1008 -> 252 MB (1.5B).
* **Outputs**: logits are read for at most one token per slot per step, so
  ``n_outputs_max`` = slots + 1; llama.cpp otherwise reserves a vocab-wide
  row for every token of a micro-batch in the compute buffer (Qwen's 152k
  vocab: 150 -> 23-37 MB).
* **n_ubatch** (the micro-batch; the compute buffer scales with it) can be
  set below ``n_batch``; the default keeps them equal because at the sizes
  above the compute buffer is already small and a smaller micro-batch slows
  prefill (measured in ``scripts/bench_batch_memory.py``).
* **KV type**: f16, or q8_0 (half the KV bytes; needs flash attention, which
  llama.cpp turns on by itself on CPU).
"""

from __future__ import annotations

from dataclasses import dataclass

KV_TYPES = {"f16": 1, "q8_0": 8}  # ggml_type values (ggml.h: GGML_TYPE_F16 = 1, GGML_TYPE_Q8_0 = 8)
KV_BYTES_PER_VALUE = {"f16": 2.0, "q8_0": 34 / 32}  # q8_0: 32 int8 values + one f16 scale per block


@dataclass(frozen=True)
class BatchContextSize:
    n_slots: int
    slot_ctx: int  # the most tokens one sequence may hold (the prompt builder's n_ctx)
    kv_tokens: int  # KV cells for all sequences together (llama.cpp's n_ctx)
    n_batch: int
    n_ubatch: int
    kv_type: str = "f16"

    @classmethod
    def plan(cls, *, n_slots: int, n_ctx: int, slot_kv_tokens: int, n_batch: int, n_ubatch: int,
             kv_type: str = "f16") -> "BatchContextSize":
        """``slot_kv_tokens`` = 0: the worst case, every slot at ``n_ctx`` (the old sizing)."""
        per_slot = min(slot_kv_tokens or n_ctx, n_ctx)  # a slot never needs more than n_ctx
        kv_tokens = per_slot * (n_slots + 1)
        # one sequence at n_ctx plus a prefix must fit, or a long prompt could never start
        kv_tokens = max(kv_tokens, min(2 * n_ctx, n_ctx * (n_slots + 1)))
        n_batch = max(min(n_batch, n_ctx), n_slots)  # one token of every slot fits one step
        n_ubatch = min(n_ubatch or n_batch, n_batch)
        return cls(n_slots=n_slots, slot_ctx=n_ctx, kv_tokens=kv_tokens, n_batch=n_batch, n_ubatch=n_ubatch,
                   kv_type=kv_type)

    def kv_bytes(self, n_layer: int, n_head_kv: int, head_dim: int) -> int:
        return int(2 * n_layer * n_head_kv * head_dim * self.kv_tokens * KV_BYTES_PER_VALUE[self.kv_type])

    def context_params(self, ll, n_threads: int):
        """``llama_context_params`` for this size (``ll`` = the llama_cpp module)."""
        params = ll.llama_context_default_params()
        params.n_ctx = self.kv_tokens
        params.n_batch = self.n_batch
        params.n_ubatch = self.n_ubatch
        params.n_seq_max = self.n_slots + 1  # + the sequence holding the kept prefix
        params.kv_unified = True  # sequences share cells: the prefix copy costs nothing
        params.n_threads = params.n_threads_batch = n_threads
        params.no_perf = True
        params.type_k = params.type_v = KV_TYPES[self.kv_type]
        if hasattr(params, "n_outputs_max"):
            params.n_outputs_max = self.n_slots + 1  # logits of at most one token per sequence per step
        return params
