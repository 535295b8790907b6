"""What a question produces: the ``Answer`` and the stream of events leading to it."""

from __future__ import annotations

from dataclasses import dataclass, field

# llm: written by the model, every shown claim verified against the passages;
# extractive: sentences quoted from the passages (no model, an answer that did not
# survive verification, or no time to generate); not-found: the documents do not answer it.
MODES = ("llm", "extractive", "not-found")
# Reasons a model's sentence was not shown that do not make it a false fact (framing, a repeat, a
# refusal, a cut-off last sentence...): not listed as "removed as not found in the documents".
NOT_A_FACT = ("repeated", "refusal", "lead-in", "cut off", "heading", "states nothing")

NO_MODEL_NOTICE = (
    "No language model is installed - showing the sentences of the documents that answer this best. "
    "To get written answers, copy a GGUF chat model into models/ (see models/README.md, or run "
    "`python -m neoc_assistant models install smollm2-135m`), then restart."
)
BAD_MODEL_PATH_NOTICE = (
    "The language model cannot be loaded - {problem}. Showing the sentences of the documents that answer this "
    "best until it is fixed (`python -m neoc_assistant models verify` checks it), then restart."
)
SERVERS_DOWN_NOTICE = (
    "The language-model server is not answering - showing the sentences of the documents that answer this "
    "best. The assistant retries the server by itself; the System tab shows its state."
)
SERVER_CUT_NOTICE = "The language-model server stopped in the middle of this answer; it may be incomplete."
NOT_FOUND_NOTICE = "Not in the knowledge base: no passage is relevant enough to answer this."
UNVERIFIED_NOTICE = ("The model's answer could not be checked against the documents, so it is not shown; "
                     "these are the documents' own sentences that answer it best.")
BUSY_NOTICE = ("Every answer slot of the model is busy, so these are the documents' own sentences that answer "
               "this best; ask again in a minute for a written answer.")
OFF_TOPIC_NOTICE = ("The model's answer was true to the documents but did not answer the question; "
                    "these are the documents' own sentences that answer it best.")
PARTIAL_NOTICE = "Part of the model's answer was removed because the documents do not support it."
TRUNCATED_NOTICE = "The answer was cut off at the length limit (NEOC_MAX_TOKENS); it may be incomplete."


def shorten(text: str, limit: int, ellipsis: str = "…") -> str:
    """``text`` on one line, cut at a word boundary so that it ends with ``ellipsis`` within ``limit``
    characters: the excerpt of a source, in an answer and on screen."""
    flat = " ".join(str(text or "").split())
    if len(flat) <= limit:
        return flat
    room = max(1, limit - len(ellipsis))
    cut = flat[:room].rsplit(" ", 1)[0]
    return (cut or flat[:room]) + ellipsis


@dataclass
class Answer:
    question: str
    answer: str
    mode: str  # one of MODES
    cached: bool = False
    cache_tier: str | None = None
    # n (the [n] used in the text), source, page, chunk_id, score, excerpt, section, text (the whole passage)
    sources: list[dict] = field(default_factory=list)
    timings_ms: dict = field(default_factory=dict)
    tokens: dict = field(default_factory=lambda: {"prompt": 0, "completion": 0})
    notice: str = ""
    complete: bool = True  # False when the stream was cancelled part-way
    verification: dict | None = None  # {"status", "claims": [{"text", "supported", "sources"}]}
    finish_reason: str = ""  # the model's: stop | length | loop | cancelled ("" when no model ran)
    generation: dict = field(default_factory=dict)  # engine figures: ttft, prefill, stopped_on (a marker), loop
    understood_as: str = ""  # a follow-up as read with the conversation ("" when it stood alone)
    understood_by: str = ""  # who read it so: "rules" | "model" ("" when it stood alone)
    worked: list[str] = field(default_factory=list)  # calculations shown (compose/worked.py)
    kb_version: str = ""  # the knowledge base answered from (set by the Assistant)
    audit_id: str = ""  # its record in the audit trail (feedback points at it; "" when not recorded)

    @property
    def unsupported_claims(self) -> list[dict]:
        claims = (self.verification or {}).get("claims", [])
        return [c for c in claims if not c.get("supported") and c.get("reason") not in NOT_A_FACT]

    def to_json(self) -> dict:
        """The `ask --json` object."""
        return {
            "answer": self.answer,
            "mode": self.mode,
            "cached": self.cached,
            "cache_tier": self.cache_tier,
            "sources": [  # a superseded revision's source says by what (answering/versions.py)
                {k: s.get(k) for k in ("n", "source", "page", "chunk_id", "score", "excerpt", "text", "superseded_by")
                 if k != "superseded_by" or s.get(k)}
                for s in self.sources
            ],
            "verification": self.verification,
            "unsupported_claims": self.unsupported_claims,
            "finish_reason": self.finish_reason,
            "generation": self.generation,
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
            "tokens": self.tokens,
            "notice": self.notice,
            "understood_as": self.understood_as,
            "understood_by": self.understood_by,
            "worked": self.worked,
            "kb_version": self.kb_version,
            "audit_id": self.audit_id,
        }


@dataclass
class StreamEvent:
    # "token": more text; "replace": the text so far is withdrawn and this is the whole text
    # (a verified answer that turned out not to answer the question); "done": the Answer
    kind: str
    text: str = ""
    answer: Answer | None = None
