"""The flat setting names used before the settings had sections, and how they still reach them.

``NEOC_N_CTX``, a top-level ``n_ctx = 4096`` in the TOML file and
``Settings(n_ctx=4096)`` all keep working: ``LEGACY_NAMES`` maps each flat name
to its (section, field), and ``settings.py`` wraps its sources in the classes
below. Kept apart from the sections themselves so that adding a setting means
reading one file, and retiring the old names means deleting this one.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

from pydantic import BaseModel
from pydantic_settings import PydanticBaseSettingsSource


def _same(section: str, *fields: str) -> dict[str, tuple[str, str]]:
    return {name: (section, name) for name in fields}


#: Every flat name of the settings before they had sections -> (section, field). Frozen: settings
#: added since have only their sectioned names (``NEOC_READER__MODE``, ``[reader] mode``).
#: Retired without a replacement (ignored if set): prompt_drop_margin, extractive_max_sentences,
#: extractive_term_weight, extractive_margin - the reader (``[reader]``) composes answers now.
LEGACY_NAMES: dict[str, tuple[str, str]] = {
    **_same("paths", "data_dir", "kb_dir"),
    "embedding_model_path": ("embedding", "model_path"),
    "embedding_batch_size": ("embedding", "batch_size"),
    "embedding_device": ("embedding", "device"),
    **_same("embedding", "torch_threads"),
    **_same("store", "chroma_url", "sync_interval_seconds"),
    "vector_backend": ("store", "vector_backend"),
    **_same("store", "chunk_size_tokens", "chunk_overlap_tokens", "collection_name", "hnsw_m",
            "hnsw_ef_construction", "hnsw_ef_search", "follow_external_symlinks", "max_chars_per_file",
            "max_chunks_per_file"),
    "retrieval_top_k": ("retrieval", "top_k"),
    "retrieval_candidates": ("retrieval", "candidates"),
    **_same("retrieval", "fusion", "rrf_k", "fusion_vector_weight", "lexical_max_terms", "lexical_max_postings",
            "query_expansion", "reranker_model_path", "rerank_top_n", "rerank_max_length", "feature_rerank_top_n",
            "rerank_cosine_weight", "rerank_bm25_weight", "rerank_coverage_weight", "mmr_lambda",
            "near_duplicate_threshold", "relevance_floor", "relevance_bias", "relevance_cosine_weight",
            "relevance_coverage_weight"),
    "cache_enabled": ("cache", "enabled"),
    "cache_l1_max_items": ("cache", "l1_max_items"),
    "cache_l1_ttl_seconds": ("cache", "l1_ttl_seconds"),
    "cache_l2_ttl_seconds": ("cache", "l2_ttl_seconds"),
    "cache_l2_size_limit_mb": ("cache", "l2_size_limit_mb"),
    "cache_similarity_threshold": ("cache", "similarity_threshold"),
    "cache_embedding_size_limit_mb": ("cache", "embedding_size_limit_mb"),
    **_same("cache", "query_log_enabled", "prompt_version", "l2_backend", "redis_url", "redis_timeout_seconds",
            "redis_retry_seconds", "redis_prefix", "agreement_top_n", "agreement_min_shared"),
    "llm_backend": ("generation", "backend"),
    "llm_urls": ("generation", "server_urls"),
    "llm_model": ("generation", "server_model"),
    "llm_api_key": ("generation", "server_api_key"),
    "llm_connect_timeout_seconds": ("generation", "server_connect_timeout_seconds"),
    "llm_read_timeout_seconds": ("generation", "server_read_timeout_seconds"),
    "llm_retry_seconds": ("generation", "server_retry_seconds"),
    "llm_max_concurrent": ("generation", "server_max_concurrent"),
    **_same("generation", "models_dir", "model_path", "n_ctx", "n_batch", "n_ubatch", "slot_kv_tokens", "kv_cache_type",
            "n_threads", "max_tokens", "temperature",
            "repeat_penalty", "repeat_last_n", "dry_multiplier", "dry_base", "dry_allowed_length", "loop_guard",
            "use_mmap", "use_mlock", "pool_size", "pool_max_size", "pool_wait_timeout_seconds", "batching",
            "admission_wait_seconds",
            "memory_budget_fraction", "guard_rss_limit_mb", "guard_system_memory_percent"),
    "verify_answers": ("verification", "enabled"),
    "verify_min_coverage": ("verification", "min_coverage"),
    "verify_min_similarity": ("verification", "min_similarity"),
    "verify_min_sum": ("verification", "min_sum"),
    "verify_strong_similarity": ("verification", "strong_similarity"),
    **_same("verification", "answerability_check", "nli_model_path", "nli_min_entailment",
            "extractive_off_topic_margin"),
    # the reader took over what these chose: the N best statements became the N best extracts
    "prompt_statements": ("generation", "prompt_extracts"),
    **_same("serve", "host", "port", "auth_username", "auth_password", "upload_max_mb", "max_question_chars",
            "max_request_body_kb", "login_free_attempts", "login_backoff_max_seconds"),
    **_same("monitoring", "metrics_window", "alert_p95_seconds", "alert_error_rate", "alert_cache_hit_rate",
            "alert_memory_percent"),
}


def nest_legacy_names(data: Mapping[str, Any]) -> dict[str, Any]:
    """``{"n_ctx": 1024}`` -> ``{"generation": {"n_ctx": 1024}}``; a sectioned value given alongside wins."""
    out: dict[str, Any] = {}
    flat: list[tuple[str, str, Any]] = []
    for key, value in data.items():
        target = LEGACY_NAMES.get(key.lower()) if isinstance(key, str) else None
        if target is None:
            out[key] = value
        else:
            flat.append((*target, value))
    for section, field, value in flat:
        current = out.get(section)
        if isinstance(current, BaseModel):
            current = current.model_dump()
        nested = dict(current) if isinstance(current, Mapping) else {}
        nested.setdefault(field, value)
        out[section] = nested
    return out


class LegacyNamesSource(PydanticBaseSettingsSource):
    """Another source's values with the flat names put in their sections (keeps that source's precedence)."""

    def __init__(self, source: PydanticBaseSettingsSource):
        super().__init__(source.settings_cls)
        self._source = source

    def get_field_value(self, field, field_name):  # pragma: no cover - __call__ does the work
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        return nest_legacy_names(self._source())


class LegacyEnvSource(PydanticBaseSettingsSource):
    """``NEOC_<FLAT_NAME>`` environment variables, e.g. ``NEOC_N_CTX``."""

    def get_field_value(self, field, field_name):  # pragma: no cover - __call__ does the work
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        env = {key.lower(): value for key, value in os.environ.items() if key.upper().startswith("NEOC_")}
        return nest_legacy_names({name: env[f"neoc_{name}"] for name in LEGACY_NAMES if f"neoc_{name}" in env})
