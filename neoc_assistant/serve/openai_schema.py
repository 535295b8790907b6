"""The shapes of the OpenAI-compatible API: what a chat request may hold, and the completions, chunks and
model list returned, as OpenAI's clients parse them.

Why a request is read here and not trusted to the clients' good manners: the
assistant answers from the documents only - it cannot call tools, return more
than one answer, give log-probabilities or look at an image - so a request that
asks for one of those is refused with a 400 that says so, rather than answered
as if the wish had been granted. Sampling knobs (``temperature``, ``top_p``,
``max_tokens``, ``stop``, penalties, ``seed``...) are accepted and ignored: the
answer is verified against the documents and its length and decoding are the
server's (``generation.*``); the ``X-Neoc-Ignored`` response header lists what
was ignored. ``system``/``developer`` messages are ignored too: the assistant's
instructions are fixed (they are what keeps it to the documents).

Two things are added to OpenAI's shapes, as extra fields that OpenAI's clients
keep (``choice.model_extra``): ``references`` per choice - the passages the
``[n]`` markers in the text point to - and ``neoc``: the answer's mode,
verification, ``kb_version`` and how a follow-up was understood.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from neoc_assistant.answer import Answer
from neoc_assistant.language.texts import answer_text, every_language, question_language

MODEL_ID = "neoc-assistant"
MAX_HISTORY_TURNS = 6  # as many earlier turns as the UI reads a follow-up with
IGNORED = ("temperature", "top_p", "max_tokens", "max_completion_tokens", "stop", "presence_penalty",
           "frequency_penalty", "seed", "logit_bias", "user", "metadata", "store", "parallel_tool_calls",
           "service_tier", "reasoning_effort", "top_k", "repeat_penalty", "min_p", "verbosity")


class RequestProblem(ValueError):
    """A request the assistant cannot honour: 400 with OpenAI's ``invalid_request_error``."""

    def __init__(self, message: str, param: str | None = None, code: str | None = "invalid_request"):
        super().__init__(message)
        self.param = param
        self.code = code


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str
    content: str | list[dict[str, Any]] | None = None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")
    include_usage: bool = False


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str
    messages: list[Message] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int | None = 1
    tools: list[Any] | None = None
    functions: list[Any] | None = None
    tool_choice: Any = None
    function_call: Any = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    response_format: dict[str, Any] | None = None
    modalities: list[str] | None = None
    audio: Any = None
    prediction: Any = None

    def refuse_unsupported(self) -> None:
        """``RequestProblem`` for anything asked that the assistant cannot do."""
        if self.n not in (None, 1):
            raise RequestProblem("n > 1 is not supported: the assistant gives one answer, checked against the "
                                 "documents; ask again for another.", "n", "unsupported_parameter")
        if self.tools or self.functions or self.tool_choice not in (None, "none", "auto") or self.function_call:
            raise RequestProblem("Tools and function calling are not supported: the assistant answers from the "
                                 "centre's documents only.", "tools", "unsupported_parameter")
        if self.logprobs or self.top_logprobs:
            raise RequestProblem("logprobs are not supported (the shown text is verified sentences, not raw model "
                                 "tokens).", "logprobs", "unsupported_parameter")
        if self.response_format and self.response_format.get("type", "text") != "text":
            raise RequestProblem("Only text answers are given (response_format json_object/json_schema is not "
                                 "supported).", "response_format", "unsupported_parameter")
        if (self.modalities and set(self.modalities) - {"text"}) or self.audio or self.prediction:
            raise RequestProblem("Only text is supported (no audio, no predicted outputs).", "modalities",
                                 "unsupported_parameter")

    def ignored(self) -> list[str]:
        """The fields sent that were accepted but have no effect (the ``X-Neoc-Ignored`` header)."""
        sent = set(self.model_fields_set) | set(self.model_extra or {})
        return sorted(sent - {"model", "messages", "stream", "stream_options", "n", "tools", "functions",
                              "tool_choice", "function_call", "logprobs", "top_logprobs", "response_format",
                              "modalities", "audio", "prediction"})

    def conversation(self) -> tuple[str, list[tuple[str, str]]]:
        """(question, earlier (question, answer) turns): the last message is the question, the ones before
        it the conversation a follow-up is read with."""
        turns: list[tuple[str, str]] = []
        pending: str | None = None
        for i, message in enumerate(self.messages):
            role = message.role
            if role in ("system", "developer"):
                continue
            if role not in ("user", "assistant"):
                raise RequestProblem(f"messages[{i}]: role {role!r} is not supported (only system, user and "
                                     "assistant: the assistant calls no tools).", f"messages[{i}].role")
            text = _text(message, i)
            if role == "user":
                if pending is not None:
                    turns.append((pending, ""))
                pending = text
            else:
                turns.append((pending or "", text))
                pending = None
        if self.messages[-1].role != "user" or pending is None:
            raise RequestProblem("The last message must be the user's question.", "messages")
        history = [(q, _without_sources(a)) for q, a in turns if q.strip()][-MAX_HISTORY_TURNS:]
        return pending, history


def _text(message: Message, index: int) -> str:
    content = message.content
    if content is None or isinstance(content, str):
        return content or ""
    parts = []
    for part in content:
        if part.get("type") != "text":
            raise RequestProblem(f"messages[{index}]: only text content is supported (got a "
                                 f"{str(part.get('type'))[:20]!r} part).", f"messages[{index}].content")
        parts.append(str(part.get("text", "")))
    return "".join(parts)


SOURCES_HEADING = answer_text("sources")  # English; a Nepali question's footer has the Nepali heading


def _without_sources(answer: str) -> str:
    """An answer as a client sends it back, without the footer we added to it (``footer``, either
    language's). The footer is one block of single-newline lines after a blank line; "Understood as"
    and a notice may come before the sources heading, so the block starts at the blank line before them."""
    kept = []
    for heading in every_language("answer", "sources"):
        head, sep, _ = answer.rpartition("\n" + heading + "\n")
        if not sep:
            continue
        if head.endswith("\n"):  # the heading opens the footer
            kept.append(head[:-1])
        elif (start := head.rfind("\n\n")) >= 0:  # lines of the footer before the heading
            kept.append(head[:start])
    if kept:
        return max(kept, key=len)
    body, sep, last = answer.rpartition("\n\n")  # a not-found answer's footer: "Understood as" alone
    prefixes = tuple(t.split("{text}")[0] for t in every_language("answer", "understood"))
    return body if sep and last.startswith(prefixes) and "\n" not in last else answer


# -- what is returned ---------------------------------------------------------------------------------
def references(answer: Answer) -> list[dict]:
    if answer.mode == "not-found":
        return []  # the nearest documents are named in the text; none of them answers
    return [{"n": s.get("n"), "source": s.get("source"), "page": s.get("page"), "chunk_id": s.get("chunk_id"),
             "section": s.get("section"), "excerpt": s.get("excerpt"), "score": s.get("score")}
            for s in answer.sources]


def neoc_details(answer: Answer) -> dict:
    verification = answer.verification or {}
    return {"mode": answer.mode, "cached": answer.cached, "kb_version": answer.kb_version,
            "verification": {"status": verification.get("status"),
                             "unsupported_claims": [c.get("text") for c in answer.unsupported_claims]},
            "understood_as": answer.understood_as, "notice": answer.notice, "complete": answer.complete,
            "worked": answer.worked, "audit_id": answer.audit_id}


def footer(answer: Answer) -> str:
    """What follows the answer's text in the message: how a follow-up was understood, a notice the text
    does not already carry, and the sources its [n] markers point to - so a chat client that shows only
    the text (Open WebUI) still shows where each figure comes from. Its fixed words are in the question's
    language, as the notices are."""
    lang = question_language(answer.question)
    lines = []
    if answer.understood_as:
        lines.append(answer_text("understood", lang, text=answer.understood_as))
    if answer.mode == "llm" and answer.notice:
        lines.append(answer.notice)
    refs = references(answer)
    if refs:
        lines.append(answer_text("sources", lang))
        for ref in refs:
            page = f", p. {ref['page']}" if ref.get("page") not in (None, "") else ""
            section = f" - {ref['section'].split(' > ')[-1]}" if ref.get("section") else ""
            lines.append(f"[{ref['n']}] {ref['source']}{page}{section}")
    return ("\n\n" + "\n".join(lines)) if lines else ""


def finish_reason(answer: Answer) -> str:
    return "length" if answer.finish_reason == "length" else "stop"


_WORDS = re.compile(r"\w+|[^\w\s]")


def usage(question: str, history: list[tuple[str, str]], answer: Answer, content: str) -> dict:
    """The model's own token counts when a model wrote the answer; otherwise (quotes, not-found, a cache
    hit) no model ran, and the counts are of words and punctuation, marked ``estimated``."""
    tokens = answer.tokens or {}
    if tokens.get("completion"):
        prompt, completion, estimated = int(tokens.get("prompt") or 0), int(tokens["completion"]), False
    else:
        asked = " ".join([question, *(q for q, _ in history)])
        prompt, completion, estimated = len(_WORDS.findall(asked)), len(_WORDS.findall(content)), True
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
            "estimated": estimated}


class Ids:
    """One completion's id and creation time, shared by all of its chunks."""

    def __init__(self, model: str):
        self.id = "chatcmpl-" + uuid.uuid4().hex[:24]
        self.created = int(time.time())
        self.model = model

    def chunk(self, delta: dict, finish: str | None = None, **extra: Any) -> dict:
        return {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish, **extra}]}

    def usage_chunk(self, counts: dict) -> dict:
        return {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                "choices": [], "usage": counts}

    def completion(self, content: str, answer: Answer, counts: dict) -> dict:
        return {"id": self.id, "object": "chat.completion", "created": self.created, "model": self.model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": content, "refusal": None},
                             "logprobs": None, "finish_reason": finish_reason(answer),
                             "references": references(answer),
                             "neoc": neoc_details(answer)}],
                "usage": counts}


def model_list(mode: str, created: int) -> dict:
    """One model: the assistant as this server answers (``neoc.mode``: llm - written and verified, falling
    back to quotes; extractive - quoted from the documents, no model installed)."""
    return {"object": "list", "data": [{"id": MODEL_ID, "object": "model", "created": created,
                                        "owned_by": "neoc-assistant", "neoc": {"mode": mode}}]}

