"""The settings sections of the answer path: the model (``generation``), claim checks
(``verification``) and the reader that composes the shown answer (``reader``).

Part of the one ``Settings`` object (``settings.py``); in their own module only to keep each file short.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from neoc_assistant.settings_base import PROJECT_ROOT, _Section, _select_by_url


class GenerationSettings(_Section):
    backend: Literal["llamacpp", "openai"] = Field(
        default="llamacpp", description="Who writes answers: llamacpp = a local GGUF model in this process; "
        "openai = OpenAI-compatible servers at server_urls (llama-server, vLLM, Ollama, llama_cpp.server).")
    server_urls: str = Field(default="", description="openai: base URLs, comma separated (http://host:8080/v1).")
    server_model: str = Field(default="", description="openai: model name sent; empty = the first one "
                              "the server lists at /v1/models.")
    server_api_key: str | None = Field(default=None, description="openai: bearer token, if the servers need one.")
    server_connect_timeout_seconds: float = Field(default=2.0, gt=0)
    server_read_timeout_seconds: float = Field(default=60.0, gt=0, description="openai: longest silence "
                                               "(first token included) before a server is marked down.")
    server_retry_seconds: float = Field(default=10.0, gt=0, description="openai: a server marked down is "
                                        "tried again after this (doubling on each failure, up to 10x).")
    server_max_concurrent: int = Field(default=8, ge=1, description="openai: answers this instance streams at once.")
    models_dir: Path = Field(default=PROJECT_ROOT / "models")
    model_path: Path | None = Field(
        default=None,
        description="GGUF chat model. Unset: the first *.gguf in models_dir, else extractive (quotes-only) mode.",
    )
    n_ctx: int = Field(default=4096, ge=256)
    n_batch: int = Field(default=256, ge=8)
    n_ubatch: int = Field(default=0, ge=0, description="Batched: llama.cpp micro-batch (compute buffers scale "
                          "with it); 0 = n_batch.")
    slot_kv_tokens: int = Field(
        default=1024, ge=0, description="Batched: KV cache cells per answer slot - a typical prompt (~570) plus "
        "an answer; one answer may still use up to n_ctx, others then wait for cells. 0 = n_ctx per slot.")
    kv_cache_type: Literal["f16", "q8_0"] = Field(
        default="f16", description="Batched: KV cache precision (q8_0 = about half the KV memory).")
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
    prompt_extracts: int = Field(
        default=4, ge=0, description="Send the model the reader's N best extracts instead of whole passages "
        "(0 = whole passages): fewer tokens to evaluate before the first one.")
    batching: bool = Field(
        default=True, description="Answers share one context and advance in one decode step (continuous "
        "batching); False: one context per answer (the older pool, kept for comparison).")
    pool_size: int = Field(default=0, ge=0,
                           description="Concurrent answers (batch slots or contexts); 0 = from the memory budget.")
    pool_max_size: int = Field(default=8, ge=1)
    pool_wait_timeout_seconds: float = Field(default=30.0, gt=0)
    idle_unload_seconds: float = Field(
        default=900.0, ge=0.0, description="Free the in-process model and its contexts after this long without "
        "a question (0 = never); the next question loads it again (generate/idle_unload.py).")
    admission_wait_seconds: float = Field(
        default=4.0, ge=0.0, description="Expected wait for a slot above which a question is answered at once "
        "with quotes from the documents instead of queueing (keeps p95 under ~10 s).")
    memory_budget_fraction: float = Field(default=0.6, gt=0.0, le=1.0)
    guard_rss_limit_mb: int = Field(default=6144, ge=64)
    guard_system_memory_percent: float = Field(default=90.0, gt=0.0, le=100.0)

    @field_validator("models_dir", mode="after")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return Path(value).expanduser()

    @field_validator("model_path", mode="after")
    @classmethod
    def _expand_optional(cls, value: Path | None) -> Path | None:
        return Path(value).expanduser() if value else None

    @model_validator(mode="after")
    def _select_backend(self) -> "GenerationSettings":
        return _select_by_url(self, "backend", "openai", ",".join(self.server_url_list()), "NEOC_LLM_URLS")

    def server_url_list(self) -> list[str]:
        return [u.strip().rstrip("/") for u in self.server_urls.split(",") if u.strip()]

    def resolved_model_path(self) -> Path | None:
        """The GGUF to load: ``model_path`` if set, else the first ``*.gguf`` in ``models_dir``."""
        if self.model_path:
            return self.model_path
        if self.models_dir.is_dir():
            ggufs = sorted(self.models_dir.glob("*.gguf"))
            if ggufs:
                return ggufs[0]
        return None


class VerificationSettings(_Section):
    enabled: bool = Field(
        default=True, description="Check every claim against the passages. Off only to evaluate the raw model: "
        "answers are then labelled 'unchecked' and never cached.")
    answerability_check: bool = Field(
        default=True, description="Answer not-found when the question names something no passage mentions.")
    # Chosen on the tune split of tests/data/claims_labelled.jsonl (scripts/eval_claims.py --sweep).
    min_coverage: float = Field(default=0.4, ge=0.0, le=1.0,
                                description="Claim support: share of its content words in the passage.")
    min_similarity: float = Field(default=0.4, ge=-1.0, le=1.0,
                                  description="Claim support: cosine to the best passage statement.")
    min_sum: float = Field(default=1.5, ge=0.0, le=2.0,
                           description="Claim support: content-word share + cosine together.")
    strong_similarity: float = Field(default=0.85, ge=-1.0, le=2.0,
                                     description="Cosine that is enough on its own (facts still checked).")
    nli_model_path: str | None = Field(default=None, description="Local NLI cross-encoder dir (optional extra check).")
    nli_min_entailment: float = Field(default=0.5, ge=0.0, le=1.0)
    extractive_off_topic_margin: float = Field(
        default=0.2, ge=0.0, description="Show quotes instead of a verified answer whose best claim is this much "
        "further (cosine) from the question than the passages' best statement.")


class ReaderSettings(_Section):
    """How the shown answer is composed from the passages (``compose/``); chosen on the tune splits
    of tests/data/reader_*.jsonl (scripts/eval_reader.py)."""

    mode: Literal["rules", "model"] = Field(
        default="rules", description="With a model installed: rules = the model writes, verified, over the "
        "reader's extracts; model = the model only chooses which extract answers (quoted verbatim).")
    unit: Literal["window", "scattered", "passage"] = Field(
        default="window", description="What an extract is: a run of statements within one paragraph/list/"
        "table, single statements, or a whole short passage.")
    max_statements: int = Field(default=3, ge=1, le=10, description="Longest run of statements in one extract.")
    max_extracts: int = Field(default=2, ge=1, le=5)
    term_weight: float = Field(default=0.8, ge=0.0, description="Weight of question-word coverage in an extract's score.")
    ask_weight: float = Field(default=0.3, ge=0.0, description="Bonus of an extract that gives what is asked for.")
    length_penalty: float = Field(default=0.0, ge=0.0, description="Cost of each statement beyond the first.")
    rank_penalty: float = Field(default=0.05, ge=0.0, description="Cost per retrieval rank of the passage.")
    min_coverage: float = Field(
        default=0.15, ge=0.0, le=1.0, description="Not-found when the best extract holds less than this share of the "
        "question's (IDF-weighted) content words.")
    common_weight: float = Field(default=1.0, ge=0.0, description="Weight of an ordinary English word the "
                                 "knowledge base never uses (the officer's own situation: 'gym', 'tanker').")
    background_weight: float = Field(default=0.5, ge=0.0, le=1.0, description="Weight of words outside the "
                                     "clause that asks (the situation around the question).")
    second_from_other_passage: bool = Field(
        default=True, description="A second extract from another passage within second_margin is shown even if it "
        "adds no question word (PDF facts are often in the next passage).")
    second_margin: float = Field(default=0.1, ge=0.0, description="A second extract is shown if it scores within "
                                 "this of the best and adds question words.")
    max_list_items: int = Field(default=8, ge=1, description="A question asking for steps gets a whole list up to this.")
    max_block: int = Field(default=6, ge=0, description="Show the whole paragraph/list/table of the best extract "
                           "when it has at most this many statements (0 = never).")
    read_all_hits: bool = Field(default=True, description="Read every retrieved passage (those above the relevance "
                                "floor first), not only those above it.")
    below_floor: int = Field(default=3, ge=0, description="When no passage passes the relevance floor, read this "
                             "many of the best anyway (0 = not-found at once)...")
    min_coverage_below_floor: float = Field(default=0.3, ge=0.0, le=1.0, description="...and answer from them only "
                                            "if the best extract holds this share of the question's words.")
    model_offered: int = Field(default=5, ge=2, le=8, description="Model reader: extracts it chooses among.")
