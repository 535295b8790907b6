"""A scripted stand-in for the assistant service, for the UI tests (handlers and the FastAPI app).

``FakeAssistant`` streams fixed tokens and honours ``cancel`` like the real
chain, so the UI's streaming, Stop, errors and feedback can be tested without a
model or a store. One home for it: ``test_ui_handlers.py`` and
``test_ui_app.py`` both use it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from neoc_assistant.answer import Answer, StreamEvent
from neoc_assistant.settings import Settings


def make_answer(text="Each person needs at least 15 litres per day [1].", **kw) -> Answer:
    defaults = dict(
        question="q",
        answer=text,
        mode="llm",
        sources=[{"source": "11-minimum-standards-wash-shelter.md", "page": None, "chunk_id": "c1", "score": 0.9,
                  "excerpt": "Minimum 15 litres of water per person per day for drinking, cooking and hygiene."}],
        timings_ms={"total": 1234.0},
    )
    defaults.update(kw)
    return Answer(**defaults)


@dataclass
class LookedUp:
    answer: Answer | None
    question: str
    kw: dict


class FakeAssistant:
    """Streams scripted tokens; honours ``cancel`` like the real chain (done with complete=False)."""

    def __init__(self, settings: Settings, tokens=("Each ", "person ", "needs ", "15 litres [1]."), *,
                 error: Exception | None = None, token_delay: float = 0.0, answer: Answer | None = None):
        self.paths = settings.paths
        self.serve = settings.serve
        self.tokens = list(tokens)
        self.error = error
        self.token_delay = token_delay
        self.scripted = answer  # the answer every question gets (default: the tokens streamed)
        self.cached: dict[str, Answer] = {}  # questions the response cache answers (look_up)
        self.calls: list[dict] = []
        self.feedback_calls: list[tuple] = []
        self.started = threading.Event()

    def ask_stream(self, question, *, history=None, filters=None, use_cache=True, cancel=None, asker=None):
        self.calls.append({"question": question, "history": history, "cancel": cancel})
        if self.error is not None:
            raise self.error
        self.started.set()
        sent = []
        for tok in self.tokens:
            if cancel is not None and cancel.is_set():
                break
            if self.token_delay:
                time.sleep(self.token_delay)
            sent.append(tok)
            yield StreamEvent("token", text=tok)
        complete = not (cancel is not None and cancel.is_set())
        answer = self.scripted or make_answer("".join(sent).strip(), question=question, complete=complete)
        yield StreamEvent("done", answer=answer)

    def validate_question(self, question, history=()):
        return question.strip()

    # the two steps a server takes (Assistant.look_up, then answer / answer_stream on a miss)
    def look_up(self, question, *, history=None, filters=None, use_cache=True, asker=None):
        kw = {"history": history, "filters": filters, "use_cache": use_cache, "asker": asker}
        return LookedUp(self.cached.get(question) if use_cache else None, question, kw)

    def answer_stream(self, looked_up, *, cancel=None):
        if looked_up.answer is not None:
            return iter([StreamEvent("token", text=looked_up.answer.answer), StreamEvent("done", answer=looked_up.answer)])
        return self.ask_stream(looked_up.question, cancel=cancel, **looked_up.kw)

    def answer(self, looked_up):
        if looked_up.answer is not None:
            return looked_up.answer
        return self.ask(looked_up.question, **looked_up.kw)

    def ask(self, question, **kw):
        return [e.answer for e in self.ask_stream(question, **kw) if e.kind == "done"][0]

    def feedback(self, question, answer, helpful, comment="", *, who="local"):
        self.feedback_calls.append((question, answer, helpful))

    def documents(self):
        return []

    def kb_version(self):
        return "v0"

    def model_problem(self):
        return None

    def health(self):
        return {"healthy": True, "checks": {"model": {"ok": True, "mode": "extractive"}}}

    def stats(self):
        return {"latency_ms": {"total": {"p50": 120.0, "p95": 900.0, "p99": None}}, "hit_rate": 0.5,
                "cache": {"hit_rate": 0.5}}


def roundtrip(messages):
    """What the browser sends back: Gradio's postprocess -> preprocess (content as a list of parts)."""
    import gradio as gr

    chatbot = gr.Chatbot()
    return chatbot.preprocess(chatbot.postprocess(messages))


def run_turn(chat, question: str, messages=None, turns=None, request=None):
    """One question through ``add_user`` and ``respond``, as the browser would send it; all updates."""
    from neoc_assistant.serve.chat_handlers import WAITING_TEXT

    _, messages, pending = chat.add_user(question, roundtrip(messages or []), request)
    assert messages[-1]["content"] == WAITING_TEXT
    return list(chat.respond(pending, roundtrip(messages), turns, request))


def quoted_lines(answer_text: str) -> list[str]:
    """The quoted document lines of a composed answer (not its label or heading lines)."""
    return [line for line in answer_text.splitlines() if "\u201c" in line]


class ApiFake(FakeAssistant):
    def __init__(self, settings, **kw):
        super().__init__(settings, **kw)
        self.ask_error: Exception | None = None
        self.healthy = True
        self.metrics_text = lambda: "neoc_requests_total 3\n"

    def ask(self, question, *, history=None, filters=None, use_cache=True, asker=None):
        self.calls.append({"question": question, "history": history, "use_cache": use_cache})
        if self.ask_error:
            raise self.ask_error
        return make_answer(question=question)

    def health(self):
        return {"healthy": self.healthy, "checks": {"store": {"ok": self.healthy}}}
