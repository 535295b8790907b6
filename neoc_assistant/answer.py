"""What a question produces: the ``Answer`` and the stream of events leading to it."""

from __future__ import annotations

from dataclasses import dataclass, field

from neoc_assistant.language.texts import answer_text

# llm: written by the model, every shown claim verified against the passages;
# extractive: sentences quoted from the passages (no model, an answer that did not
# survive verification, or no time to generate); not-found: the documents do not answer it.
MODES = ("llm", "extractive", "not-found")
# Reasons a model's sentence was not shown that do not make it a false fact (framing, a repeat, a
# refusal, a cut-off last sentence...): not listed as "removed as not found in the documents".
NOT_A_FACT = ("repeated", "refusal", "lead-in", "cut off", "heading", "states nothing")

# The English notices (the Nepali ones, for a question in Devanagari: ``language/texts.py``, whose
# ``data/texts.toml`` is the one home of each sentence).
NO_MODEL_NOTICE = answer_text("no_model")
BAD_MODEL_PATH_NOTICE = answer_text("bad_model_path")  # .format(problem=...)
SERVERS_DOWN_NOTICE = answer_text("servers_down")
SERVER_CUT_NOTICE = answer_text("server_cut")
NOT_FOUND_NOTICE = answer_text("not_found")
UNVERIFIED_NOTICE = answer_text("unverified")
BUSY_NOTICE = answer_text("busy")
OFF_TOPIC_NOTICE = answer_text("off_topic")
PARTIAL_NOTICE = answer_text("partial")
TRUNCATED_NOTICE = answer_text("truncated")


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
