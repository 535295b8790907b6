"""How many answers can run at once: the pool / batch-slot count from the memory budget.

Why its own module: the estimate follows how each context is sized - one KV
cache and compute buffer per context for the one-context-per-answer pool, one
compute buffer and ``slot_kv_tokens`` of KV cells per slot for the batched
context (``batch_context.py``) - and is read by the engine, ``/health`` and
``stats`` (``pool_plan``).
"""

from __future__ import annotations

import psutil

from neoc_assistant.generate import model_file
from neoc_assistant.generate.batch_context import KV_BYTES_PER_VALUE
from neoc_assistant.generate.llama_model import LlamaModel
from neoc_assistant.settings import GenerationSettings


def plan_pool(settings: GenerationSettings, info: model_file.GGUFInfo, model: LlamaModel, n_ctx: int) -> dict:
    """Pool size from the memory budget (or ``pool_size`` if set), with the figures it came from."""
    batching = settings.batching
    head_dim = int(info.arch_value("attention.key_length", 0) or (model.n_embd // max(model.n_head, 1)))
    kv_type = settings.kv_cache_type if batching else "f16"
    kv_per_token = 2 * model.n_layer * model.n_head_kv * head_dim * KV_BYTES_PER_VALUE[kv_type]
    slot_tokens = min(settings.slot_kv_tokens or n_ctx, n_ctx) if batching else n_ctx
    kv_bytes = int(kv_per_token * slot_tokens)
    n_batch = min(settings.n_batch, n_ctx)
    if batching and settings.n_ubatch:
        n_batch = min(settings.n_ubatch, n_batch)
    # compute buffers: activations of one micro-batch + one logits row per sequence
    ffn = int(info.arch_value("feed_forward_length", 4 * model.n_embd) or 4 * model.n_embd)
    compute_bytes = n_batch * (4 * model.n_embd + 3 * ffn) * 4 + model.n_vocab * 4 * 2
    compute_bytes += 16 << 20  # graph metadata, sampler arrays, allocator slack
    # Batched: the slots share one context, so one set of compute buffers and one KV share
    # each; plus one KV share for the kept prefix.
    per_context = kv_bytes + (0 if batching else compute_bytes)
    available = psutil.virtual_memory().available
    budget = int(available * settings.memory_budget_fraction)
    model_bytes = info.file_size + (compute_bytes + kv_bytes if batching else 0)
    by_budget = (budget - model_bytes) // per_context if per_context else 1
    if settings.pool_size:
        size = settings.pool_size
    else:
        size = int(max(1, min(settings.pool_max_size, by_budget)))
    return {
        "size": size,
        "batching": batching,
        "from_setting": bool(settings.pool_size),
        "model_bytes": model_bytes,
        "kv_bytes_per_context": kv_bytes,
        "compute_bytes_per_context": compute_bytes,
        "available_bytes": available,
        "budget_bytes": budget,
        "contexts_fitting_budget": int(by_budget),
    }
