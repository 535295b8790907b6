"""The Chat tab's behaviour: stream an answer into the conversation, Stop, feedback.

Stop really stops: each generation registers a ``threading.Event`` under the
browser session; the Stop button sets it (the engine frees the model context at
once) and the page also cancels the Gradio event (``cancels=`` in ``ui.py``) so
it stops waiting. These handlers talk to the ``Assistant`` only, so tests call
them without a browser. What they say themselves is in the UI's language (``language/texts.py``).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from neoc_assistant import runtime

runtime.configure_process()  # Gradio reads its environment when it is imported
import gradio as gr  # noqa: E402

from neoc_assistant.audit import Asker  # noqa: E402
from neoc_assistant.errors import NeocError  # noqa: E402
from neoc_assistant.language.texts import every_language, ui_text  # noqa: E402
from neoc_assistant.serve import render  # noqa: E402
from neoc_assistant.serve.render import error_kind  # noqa: E402
from neoc_assistant.serve.safe_html import text_of, to_html  # noqa: E402

log = logging.getLogger(__name__)

MAX_HISTORY_TURNS = 6
STREAM_MIN_INTERVAL_S = 0.05  # at most ~20 UI updates per second while streaming
WAITING_TEXT = ui_text("waiting")  # the English ones; a Nepali UI shows ui_text("waiting", "ne")
THINKING_TEXT = ui_text("thinking")


class RecentRequests:
    """This server's recent answer latencies (chat and ``/api/ask``): the System tab plots them
    when the service's own metrics have no recent points."""

    def __init__(self, maxlen: int = 200):
        self._items: deque[tuple[float, float, str, str]] = deque(maxlen=maxlen)
        self._lock = threading.Lock()

    def add(self, total_ms: float, channel: str, outcome: str) -> None:
        with self._lock:
            self._items.append((time.time(), float(total_ms), channel, outcome))

    def snapshot(self) -> list[tuple[float, float, str, str]]:
        with self._lock:
            return list(self._items)


def shown_text(content: str) -> str:
    """What a bubble shows, as text: the same whether the browser sent back the HTML the page
    got (``safe_components``) or a caller passed the Markdown."""
    return text_of(to_html(content))


# in every language: a page in one language is never told apart from another by its placeholders
_PLACEHOLDERS = {shown_text(text) for key in ("waiting", "thinking") for text in every_language("ui", key)}


def message_text(message: dict) -> str:
    """The text of a chat message as the browser sends it back (a string or a list of parts)."""
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, str):
        return content
    if isinstance(content, (list, tuple)):
        return "".join(part.get("text", "") if isinstance(part, dict) else str(part) for part in content)
    if isinstance(content, dict):
        return str(content.get("text", ""))
    return "" if content is None else str(content)


@dataclass
class Turn:
    question: str
    answer: Any | None  # Answer, or None when the turn failed / was stopped without one
    msg_index: int  # index of the assistant message in the chatbot value
    text: str = ""


class ChatHandlers:
    def __init__(self, assistant, recent: RecentRequests | None = None, language: str = "en"):
        self.assistant = assistant
        self.recent = recent or RecentRequests()
        self.lang = language  # of what the handlers say (the answer's own notices follow its question)
        self._cancels: dict[str, threading.Event] = {}
        self._live: dict[str, dict] = {}  # session -> the answer being streamed (for Stop)
        self._epochs: dict[str, int] = {}  # session -> how many times it started a new conversation
        self._stopped_waiting: dict[str, str] = {}  # session -> a question stopped before it started
        self._asked: dict[str, str] = {}  # session -> its latest question (the bubble shows it rendered)
        self._asked_epoch: dict[str, int] = {}  # session -> the conversation its latest question belongs to
        # () -> questions waiting for an answer slot now; wired by ui.py once the queue exists
        self.waiting: Callable[[], int] | None = None
        self.max_waiting = getattr(getattr(assistant, "serve", None), "max_waiting", None)
        self.max_wait = getattr(getattr(assistant, "serve", None), "max_wait_seconds", 30.0)
        self.slots = 1
        self._lock = threading.Lock()

    def t(self, key: str, **fields) -> str:
        return ui_text(key, self.lang, **fields)

    # -- cancellation registry --------------------------------------------------
    @staticmethod
    def _session(request: gr.Request | None) -> str:
        return getattr(request, "session_hash", None) or "anonymous"

    def _register(self, session: str) -> threading.Event:
        self._cancel_session(session)  # one generation per browser session
        event = threading.Event()
        with self._lock:
            self._cancels[session] = event
        return event

    def _cancel_session(self, session: str) -> dict | None:
        """Stop this session's generation (if any) and forget it at once, so a new question is
        accepted even before the cancelled generator has been cleaned up. Returns its live record."""
        with self._lock:
            event = self._cancels.pop(session, None)
            live = self._live.pop(session, None)
        if live is not None:
            live["stopped"] = True
        if event is not None:
            event.set()
        return live

    def _unregister(self, session: str, event: threading.Event) -> None:
        with self._lock:
            if self._cancels.get(session) is event:
                del self._cancels[session]
                self._live.pop(session, None)

    def running(self, session: str) -> bool:
        with self._lock:
            return session in self._cancels

    def busy_seconds(self) -> int:
        """0 when a question may join the line; else the estimated wait (the recent answer time
        times the line ahead, over the slots): a line that is full - by count, or by the wait it
        implies (``serve.max_waiting``, ``serve.max_wait_seconds``) - answers at once instead of hanging."""
        if self.waiting is None or self.max_waiting is None:
            return 0
        waiting = self.waiting()
        recent = [total for _, total, _, outcome in self.recent.snapshot()[-20:] if outcome != "error"]
        per_answer = (sum(recent) / len(recent) / 1000) if recent else 2.0
        expected = per_answer * (waiting + 1) / max(1, self.slots)
        if waiting < self.max_waiting and expected <= self.max_wait:
            return 0
        return max(1, min(300, math.ceil(expected)))

    # -- events ----------------------------------------------------------------------
    def add_user(self, question: str, messages: list | None, request: gr.Request = None):
        """Instant (unqueued): show the question and a waiting bubble; clear the box.

        While this session's previous answer is still being written the question is refused
        (kept in the box): its stream would otherwise keep overwriting the conversation.
        """
        if self.running(self._session(request)):
            raise gr.Error(self.t("still_writing"), title=self.t("still_writing_title"), duration=6,
                           print_exception=False)
        busy = self.busy_seconds()
        if busy:
            raise gr.Error(self.t("busy", seconds=busy), title=self.t("busy_title"), duration=8, print_exception=False)
        messages = list(messages or [])
        question = question or ""
        session = self._session(request)
        with self._lock:
            self._asked[session] = question
            self._asked_epoch[session] = self._epochs.get(session, 0)
        messages.append({"role": "user", "content": question})
        messages.append({"role": "assistant", "content": self.t("waiting")})
        return "", messages, question

    def respond(self, question: str, messages: list | None, turns: list | None,
                request: gr.Request = None) -> Iterator[tuple[list, list]]:
        """Queued generator: stream the answer into the last bubble.

        Stop is a signal, not a cancellation of this event: the generator itself shows the
        stopped answer as its last update, so no streaming update can arrive after it and leave
        the bubble "still writing". A question stopped while it waited for a slot is skipped
        when its turn comes.

        "New conversation" is not a cancellation of this event either: a streaming update already
        on its way could reach the page after the cleared chat and bring the old conversation back.
        Instead this generator, on seeing the new conversation, ends with the cleared chat as its
        own last update (unless a question of the new conversation is already in the chat), and a
        question asked before the new conversation began is never started."""
        session = self._session(request)
        with self._lock:
            epoch = self._epochs.get(session, 0)
            skipped = self._stopped_waiting.get(session) == question
            if skipped:
                del self._stopped_waiting[session]
            stale = self._asked_epoch.get(session, epoch) != epoch
        if skipped or stale:
            return
        updates = self._respond(question, messages, turns, session, self.asker(request, epoch))
        try:
            for update in updates:
                with self._lock:
                    started_over = self._epochs.get(session, 0) != epoch
                    newer_question = self._asked_epoch.get(session, epoch) != epoch
                if started_over:
                    if not newer_question:
                        yield [], []
                    return
                yield update
        finally:
            updates.close()

    @classmethod
    def asker(cls, request: gr.Request | None, epoch: int = 0) -> Asker:
        """Who asks in this browser session, for the audit trail: the signed-in user (never the password);
        the session and its "New conversation" count make the conversation."""
        user = getattr(request, "username", None)
        return Asker(who=f"user:{user}" if user else "anonymous", channel="ui",
                     conversation=f"ui-{cls._session(request)[:16]}-{epoch}")

    def conversation_id(self, request: gr.Request = None) -> str:
        with self._lock:
            epoch = self._epochs.get(self._session(request), 0)
        return self.asker(request, epoch).conversation

    def _respond(self, question: str, messages: list | None, turns: list | None,
                 session: str, asker: Asker | None = None) -> Iterator[tuple[list, list]]:
        messages = list(messages or [])
        turns = list(turns or [])
        if not messages or messages[-1].get("role") != "assistant":
            messages.append({"role": "assistant", "content": ""})
        index = len(messages) - 1
        cancel = self._register(session)
        live = {"question": question, "index": index, "partial": "", "stopped": False}
        with self._lock:
            self._live[session] = live
        history = [(t.question, t.text) for t in turns if t.text][-MAX_HISTORY_TURNS:]
        partial = ""
        stream = None
        started = time.perf_counter()

        def show(content: str) -> tuple[list, list]:
            messages[index] = {"role": "assistant", "content": content}
            return list(messages), list(turns)

        try:
            yield show(self.t("thinking"))
            stream = self.assistant.ask_stream(question, history=history or None, cancel=cancel, asker=asker)
            answer = None
            last = 0.0
            for event in stream:
                if event.kind in ("token", "replace"):
                    partial = event.text if event.kind == "replace" else partial + event.text
                    live["partial"] = partial
                    now = time.perf_counter()
                    if now - last >= STREAM_MIN_INTERVAL_S:
                        last = now
                        yield show(render.streaming_markdown(partial))
                elif event.kind == "done":
                    answer = event.answer
                # On Stop the chain notices the event itself and still ends with a
                # "done" answer (complete=False), so keep consuming until then.
            # "Stopped" means the user pressed Stop (or started over), not answer.complete:
            # the engine also sets the event when it closes a finished stream.
            stopped = live["stopped"]
            turns = [t for t in turns if t.msg_index != index]
            if answer is not None:
                text = getattr(answer, "answer", "") or partial
                turns.append(Turn(question, answer, index, text))
                total = (getattr(answer, "timings_ms", {}) or {}).get("total")
                self.recent.add(total if total is not None else (time.perf_counter() - started) * 1000,
                                "ui", "cached" if getattr(answer, "cached", False) else getattr(answer, "mode", "llm"))
                yield show(render.answer_markdown(answer, stopped=stopped, lang=self.lang))
            else:
                turns.append(Turn(question, None, index, partial))
                safe = render.safe_markdown(partial)
                yield show(render.stopped_markdown(safe, self.lang) if stopped else safe + "\n\n" + self.t("ended"))
        except NeocError as exc:
            turns.append(Turn(question, None, index))
            self.recent.add((time.perf_counter() - started) * 1000, "ui", "error")
            yield show(render.error_markdown(error_kind(exc), str(exc), self.lang))
        except Exception:  # noqa: BLE001 - never a traceback in the chat
            log.exception("answering %r failed", question[:80])
            turns.append(Turn(question, None, index))
            self.recent.add((time.perf_counter() - started) * 1000, "ui", "error")
            yield show(render.error_markdown("Error", self.t("failed"), self.lang))
        finally:
            self._unregister(session, cancel)
            close = getattr(stream, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:  # noqa: BLE001
                    log.debug("closing the answer stream failed", exc_info=True)

    def stop(self, messages: list | None, turns: list | None, request: gr.Request = None):
        """Stop button: signal the generation, mark the bubble as stopped, keep the partial turn."""
        session = self._session(request)
        live = self._cancel_session(session)
        messages = list(messages or [])
        turns = list(turns or [])
        shown = shown_text(message_text(messages[-1])) if messages else ""
        if live is None and len(messages) >= 2 and shown in _PLACEHOLDERS:
            with self._lock:  # still queued: its answer must not start when a slot frees up
                self._stopped_waiting[session] = self._asked.get(session, message_text(messages[-2]))
        if messages and messages[-1].get("role") == "assistant":
            if shown.endswith("▌") or shown in _PLACEHOLDERS:
                if shown in _PLACEHOLDERS:
                    partial = ""
                elif live is not None:
                    partial = render.streaming_markdown(live["partial"]).removesuffix(" ▌")
                else:
                    partial = message_text(messages[-1])
                messages[-1] = {"role": "assistant", "content": render.stopped_markdown(partial, self.lang)}
                if live is not None and live["index"] == len(messages) - 1:
                    turns = [t for t in turns if t.msg_index != live["index"]]
                    turns.append(Turn(live["question"], None, live["index"], live["partial"]))
        return messages, turns

    @staticmethod
    def understood_text(turns: list | None) -> str:
        """The last question as it was understood, written out as one standalone question to correct
        ("who arranges them? [after: How many buses...]" -> "who arranges them? How many buses...")."""
        for turn in reversed(list(turns or [])):
            understood = getattr(turn.answer, "understood_as", "") if turn.answer is not None else ""
            text = understood or turn.question
            return text.replace(" [after: ", " ").removesuffix("]").strip()
        return ""

    def new_conversation(self, request: gr.Request = None):
        session = self._session(request)
        with self._lock:
            self._epochs[session] = self._epochs.get(session, 0) + 1
        self._cancel_session(session)
        return [], [], ""

    def export_conversation(self, request: gr.Request = None):
        """This session's conversation from the audit trail as a printable HTML page (a file to download)."""
        import tempfile

        from neoc_assistant.audit import report

        conversation = self.conversation_id(request)
        answers = self.assistant.audit_answers(conversation=conversation)
        if not answers:
            gr.Info(self.t("nothing_to_export"))
            return gr.File(value=None, visible=False)
        folder = Path(tempfile.mkdtemp(prefix="neoc-export-"))
        path = folder / f"conversation-{time.strftime('%Y%m%d-%H%M%S')}.html"
        path.write_text(report.as_html(answers, self.assistant.audit_verify(), f"conversation {conversation}"),
                        encoding="utf-8")
        return gr.File(value=str(path), visible=True)

    def feedback(self, turns: list | None, data: gr.LikeData, request: gr.Request = None) -> None:
        index = data.index[0] if isinstance(data.index, (list, tuple)) else data.index
        liked = data.liked
        if not isinstance(liked, bool):
            return  # feedback removed (toggle off): nothing to record
        turn = next((t for t in (turns or []) if t.msg_index == index), None)
        if turn is None or turn.answer is None:
            gr.Info(self.t("nothing_to_rate"))
            return
        try:
            self.assistant.feedback(turn.question, turn.answer, liked, who=self.asker(request).who)
        except NeocError as exc:
            gr.Warning(self.t("feedback_failed", error=exc))
            return
        except Exception:  # noqa: BLE001
            log.exception("feedback failed")
            gr.Warning(self.t("feedback_failed_log"))
            return
        if liked:
            gr.Info(self.t("thanks_helpful"))
        elif getattr(turn.answer, "cached", False):
            gr.Info(self.t("thanks_unhelpful_cached"))
        else:
            gr.Info(self.t("thanks_unhelpful"))
