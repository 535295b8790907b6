"""The duty officer's browser UI: Chat, Knowledge base and System tabs.

``build_ui(assistant)`` returns a ``gr.Blocks``; ``serve/app.py`` mounts it on
the FastAPI app that also serves ``/api/ask``, ``/health`` and ``/metrics``.
The handlers live on small controller classes (``ChatHandlers``,
``KnowledgeBaseHandlers``, ``SystemHandlers``) so tests can call them without a
browser. Everything the page needs is served by this process: the theme uses
system fonts (Gradio's default theme would fetch Google Fonts), analytics are
off (``serve/offline.py``), nothing is shared.

Stop really stops: each generation registers a ``threading.Event`` under the
browser session; the Stop button sets it (the engine frees the model context at
once) and also cancels the Gradio event (``cancels=``) so the page stops
waiting.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import neoc_assistant.serve.offline  # noqa: F401  (environment before gradio)
import gradio as gr

from neoc_assistant.errors import InputError, NeocError
from neoc_assistant.ingest.loaders import SUPPORTED_SUFFIXES
from neoc_assistant.serve import render

log = logging.getLogger(__name__)

MAX_HISTORY_TURNS = 6
STREAM_MIN_INTERVAL_S = 0.05  # at most ~20 UI updates per second while streaming
WAITING_TEXT = "_Waiting for a free answer slot…_"
THINKING_TEXT = "_Searching the knowledge base…_"
UPLOADS_DIRNAME = "uploads"

EXAMPLE_QUESTIONS = [
    "How many litres of water per person per day is the minimum?",
    "What are the EOC activation levels?",
    "What must be covered in a duty officer shift handover?",
]

# Light/dark toggle that works offline: Gradio styles `body.dark`; we remember the choice.
THEME_TOGGLE_JS = """
() => {
  const dark = !document.body.classList.contains('dark');
  document.body.classList.toggle('dark', dark);
  try { localStorage.setItem('neoc-theme', dark ? 'dark' : 'light'); } catch (e) {}
}
"""

ON_LOAD_JS = """
() => {
  let mode = null;
  try { mode = localStorage.getItem('neoc-theme'); } catch (e) {}
  const param = new URLSearchParams(window.location.search).get('__theme');
  if (!param && (mode === 'dark' || mode === 'light')) {
    document.body.classList.toggle('dark', mode === 'dark');
  }
}
"""

CSS = """
.gradio-container { max-width: 1400px !important; }
#neoc-header { align-items: center; }
#neoc-header h1 { margin: 0; font-size: 1.35rem; }
#neoc-status { font-size: 0.9rem; }
#neoc-chat .message-wrap blockquote { margin: 0 0 0.5em 0; }
#neoc-input textarea { font-size: 1rem; }
footer { display: none !important; }
#neoc-health td:first-child, #neoc-health th, #neoc-stats td:first-child { white-space: nowrap; }
"""


def make_theme() -> gr.themes.Base:
    """Gradio's default look with system fonts only (no Google Fonts request)."""
    return gr.themes.Default(
        font=[gr.themes.Font("system-ui"), "Segoe UI", "Roboto", "Helvetica", "Arial", "sans-serif"],
        font_mono=[gr.themes.Font("ui-monospace"), "Consolas", "monospace"],
    )


def _error_kind(exc: BaseException) -> str:
    return type(exc).__name__ if isinstance(exc, NeocError) else "Error"


# ---------------------------------------------------------------------------
# shared: recent request latencies (chat + /api/ask), for the System tab plot
# ---------------------------------------------------------------------------
class RecentRequests:
    def __init__(self, maxlen: int = 200):
        self._items: deque[tuple[float, float, str, str]] = deque(maxlen=maxlen)
        self._lock = threading.Lock()

    def add(self, total_ms: float, channel: str, outcome: str) -> None:
        with self._lock:
            self._items.append((time.time(), float(total_ms), channel, outcome))

    def snapshot(self) -> list[tuple[float, float, str, str]]:
        with self._lock:
            return list(self._items)


# ---------------------------------------------------------------------------
# chat
# ---------------------------------------------------------------------------
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
    def __init__(self, assistant, recent: RecentRequests | None = None):
        self.assistant = assistant
        self.recent = recent or RecentRequests()
        self._cancels: dict[str, threading.Event] = {}
        self._live: dict[str, dict] = {}  # session -> the answer being streamed (for Stop)
        self._lock = threading.Lock()

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

    # -- events ----------------------------------------------------------------------
    def add_user(self, question: str, messages: list | None, request: gr.Request = None):
        """Instant (unqueued): show the question and a waiting bubble; clear the box.

        While this session's previous answer is still being written the question is refused
        (kept in the box): its stream would otherwise keep overwriting the conversation.
        """
        if self.running(self._session(request)):
            raise gr.Error("An answer is still being written: wait for it, or press Stop first.",
                           title="Please wait", duration=6, print_exception=False)
        messages = list(messages or [])
        question = question or ""
        messages.append({"role": "user", "content": question})
        messages.append({"role": "assistant", "content": WAITING_TEXT})
        return "", messages, question

    def respond(self, question: str, messages: list | None, turns: list | None,
                request: gr.Request = None) -> Iterator[tuple[list, list]]:
        """Queued generator: stream the answer into the last bubble."""
        messages = list(messages or [])
        turns = list(turns or [])
        if not messages or messages[-1].get("role") != "assistant":
            messages.append({"role": "assistant", "content": ""})
        index = len(messages) - 1
        session = self._session(request)
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
            yield show(THINKING_TEXT)
            stream = self.assistant.ask_stream(question, history=history or None, cancel=cancel)
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
                yield show(render.answer_markdown(answer, stopped=stopped))
            else:
                turns.append(Turn(question, None, index, partial))
                safe = render.safe_markdown(partial)
                yield show(render.stopped_markdown(safe) if stopped
                           else safe + "\n\n_The answer ended unexpectedly; please ask again._")
        except NeocError as exc:
            turns.append(Turn(question, None, index))
            self.recent.add((time.perf_counter() - started) * 1000, "ui", "error")
            yield show(render.error_markdown(_error_kind(exc), str(exc)))
        except Exception:  # noqa: BLE001 - never a traceback in the chat
            log.exception("answering %r failed", question[:80])
            turns.append(Turn(question, None, index))
            self.recent.add((time.perf_counter() - started) * 1000, "ui", "error")
            yield show(render.error_markdown(
                "Error", "Something went wrong while answering (details are in the server log). Please try again."))
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
        live = self._cancel_session(self._session(request))
        messages = list(messages or [])
        turns = list(turns or [])
        if messages and messages[-1].get("role") == "assistant":
            content = message_text(messages[-1])
            if content.endswith("▌") or content in (WAITING_TEXT, THINKING_TEXT):
                partial = "" if content in (WAITING_TEXT, THINKING_TEXT) else content
                messages[-1] = {"role": "assistant", "content": render.stopped_markdown(partial)}
                if live is not None and live["index"] == len(messages) - 1:
                    turns = [t for t in turns if t.msg_index != live["index"]]
                    turns.append(Turn(live["question"], None, live["index"], live["partial"]))
        return messages, turns

    def new_conversation(self, request: gr.Request = None):
        self._cancel_session(self._session(request))
        return [], [], ""

    def feedback(self, turns: list | None, data: gr.LikeData) -> None:
        index = data.index[0] if isinstance(data.index, (list, tuple)) else data.index
        liked = data.liked
        if not isinstance(liked, bool):
            return  # feedback removed (toggle off): nothing to record
        turn = next((t for t in (turns or []) if t.msg_index == index), None)
        if turn is None or turn.answer is None:
            gr.Info("There is no answer to rate here.")
            return
        try:
            self.assistant.feedback(turn.question, turn.answer, liked)
        except NeocError as exc:
            gr.Warning(f"Feedback not recorded: {exc}")
            return
        except Exception:  # noqa: BLE001
            log.exception("feedback failed")
            gr.Warning("Feedback not recorded (see the server log).")
            return
        if liked:
            gr.Info("Thanks — marked helpful.")
        elif getattr(turn.answer, "cached", False):
            gr.Info("Thanks — marked not helpful; this cached answer was removed from the cache.")
        else:
            gr.Info("Thanks — marked not helpful.")


# ---------------------------------------------------------------------------
# knowledge base
# ---------------------------------------------------------------------------
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._() -]+")


def safe_filename(name: str) -> str:
    base = Path(str(name).replace("\\", "/")).name
    base = _SAFE_NAME.sub("_", base).strip(" .")
    return base[:150]


class KnowledgeBaseHandlers:
    def __init__(self, assistant):
        self.assistant = assistant
        self.settings = assistant.settings

    @property
    def uploads_dir(self) -> Path:
        return Path(self.settings.kb_dir) / UPLOADS_DIRNAME

    def validate(self, paths: list[str]) -> tuple[list[tuple[Path, str]], list[tuple[str, str]]]:
        """Server-side checks (the browser's file filter is only a convenience)."""
        limit = self.settings.upload_max_mb * 1024 * 1024
        accepted: list[tuple[Path, str]] = []
        rejected: list[tuple[str, str]] = []
        seen: set[str] = set()
        for raw in paths or []:
            path = Path(raw if isinstance(raw, (str, os.PathLike)) else getattr(raw, "name", str(raw)))
            name = safe_filename(path.name)
            suffix = Path(name).suffix.lower()
            if not name or name.startswith("."):
                rejected.append((path.name or "?", "not a usable file name"))
            elif suffix not in SUPPORTED_SUFFIXES:
                allowed = ", ".join(sorted(SUPPORTED_SUFFIXES))
                rejected.append((path.name, f"file type '{suffix or '(none)'}' is not supported (allowed: {allowed})"))
            elif not path.is_file():
                rejected.append((path.name, "upload is missing on the server; try again"))
            elif path.stat().st_size > limit:
                size_mb = path.stat().st_size / 1024 / 1024
                rejected.append((path.name, f"{size_mb:.1f} MB is over the {self.settings.upload_max_mb} MB limit"))
            elif path.stat().st_size == 0:
                rejected.append((path.name, "the file is empty"))
            elif name.lower() in seen:
                rejected.append((path.name, "uploaded twice in one batch"))
            else:
                seen.add(name.lower())
                accepted.append((path, name))
        return accepted, rejected

    def store(self, accepted: list[tuple[Path, str]]) -> list[Path]:
        """Copy uploads into ``kb_dir/uploads`` (atomic rename, so no half-written files)."""
        target_dir = self.uploads_dir
        target_dir.mkdir(parents=True, exist_ok=True)
        stored = []
        for src, name in accepted:
            fd, tmp = tempfile.mkstemp(prefix=".upload-", dir=target_dir)
            os.close(fd)
            try:
                shutil.copyfile(src, tmp)
                os.replace(tmp, target_dir / name)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
            stored.append(target_dir / name)
        return stored

    def upload(self, files, progress=gr.Progress()):
        paths = files if isinstance(files, list) else ([files] if files else [])
        if not paths:
            return ("Choose one or more files first.", *self.listing())
        accepted, rejected = self.validate(paths)
        if not accepted:
            md = render.ingest_summary_markdown({}, rejected, title="Nothing ingested")
            return (md, *self.listing())
        try:
            self.store(accepted)
        except OSError as exc:
            return (render.error_markdown("StoreError", f"could not save the upload: {exc.strerror or exc}"), *self.listing())

        def on_progress(done: int, total: int, source: str) -> None:
            progress((done, max(total, 1)), desc=f"Ingesting {source}" if source else "Finishing", unit="files")

        progress(0, desc="Scanning the knowledge-base folder")
        try:
            # The whole KB folder, so an upload gets the same source name ("uploads/x.pdf")
            # as in a later `ingest` from the CLI; unchanged files cost one stat each.
            summary = self.assistant.ingest([Path(self.settings.kb_dir)], prune=False, on_progress=on_progress)
        except NeocError as exc:
            return (render.error_markdown(_error_kind(exc), str(exc)), *self.listing())
        except Exception:  # noqa: BLE001
            log.exception("ingest from the UI failed")
            return (render.error_markdown("Error", "Ingest failed (see the server log)."), *self.listing())
        return (render.ingest_summary_markdown(summary.to_dict(), rejected), *self.listing())

    def delete(self, source: str | None):
        if not source:
            return ("Pick a document to delete.", *self.listing())
        try:
            summary = self.assistant.delete_documents([source])
        except NeocError as exc:
            return (render.error_markdown(_error_kind(exc), str(exc)), *self.listing())
        data = summary.to_dict()
        note = ""
        uploads = self.uploads_dir.resolve()
        candidate = (Path(self.settings.kb_dir) / source).resolve()
        if candidate.is_relative_to(uploads) and candidate.is_file():
            candidate.unlink()
            note = f"\n\nThe uploaded file {render.code(source)} was deleted too."
        elif data.get("purged"):
            note = ("\n\nThe file itself was not touched: a later full ingest of its folder adds it again "
                    "unless you remove it there.")
        if not data.get("purged"):
            return (f"{render.code(source)} was not in the knowledge base.", *self.listing())
        return (render.ingest_summary_markdown(data, title="Deleted") + note, *self.listing())

    def listing(self):
        """(documents table, delete dropdown, kb version line)."""
        try:
            docs = self.assistant.documents()
            version = self.assistant.kb_version()
        except NeocError as exc:
            return [], gr.update(choices=[], value=None), render.error_markdown(_error_kind(exc), str(exc))
        rows = render.document_rows(docs)
        sources = sorted({s for d in docs for s in d.sources}, key=str.lower)
        n_chunks = sum(d.n_chunks for d in docs)
        info = f"**{len(docs)} documents**, {n_chunks} chunks · knowledge-base version `{version}`"
        return rows, gr.update(choices=sources, value=None), info


# ---------------------------------------------------------------------------
# system
# ---------------------------------------------------------------------------
class SystemHandlers:
    def __init__(self, assistant, recent: RecentRequests, queue_info=None):
        self.assistant = assistant
        self.recent = recent
        self.queue_info = queue_info  # () -> {"waiting": int, "running": int}

    def _call(self, name: str) -> tuple[dict, str]:
        try:
            return getattr(self.assistant, name)(), ""
        except NeocError as exc:
            return {}, str(exc)
        except Exception as exc:  # noqa: BLE001 - e.g. a monitoring module missing on this build
            log.warning("%s() failed: %s", name, exc)
            return {}, f"{name} unavailable: {type(exc).__name__}"

    def latency_frame(self, stats: dict):
        """Recent answers (all channels, from the service's metrics; else this UI's own log)."""
        import pandas as pd

        points = [(ts, ms, outcome) for ts, ms, outcome in (stats.get("recent") or []) if ms is not None]
        if not points:
            points = [(ts, ms, f"{channel} {outcome}") for ts, ms, channel, outcome in self.recent.snapshot()]
        return pd.DataFrame({
            "request": list(range(1, len(points) + 1)),
            "seconds": [round(ms / 1000, 3) for _, ms, _ in points],
            "outcome": [str(outcome) for _, _, outcome in points],
        })

    def refresh(self):
        health, herr = self._call("health")
        stats, serr = self._call("stats")
        queue = None
        if self.queue_info is not None:
            try:
                queue = self.queue_info()
            except Exception:  # noqa: BLE001
                queue = None
        health_md = render.health_markdown(health) if health else render.error_markdown("Error", herr)
        stats_md = render.metrics_markdown(stats, queue) if stats else render.error_markdown("Error", serr)
        stamp = time.strftime("%H:%M:%S")
        return (health_md, stats_md, self.latency_frame(stats), {"health": health, "stats": stats},
                f"Updated {stamp} (every few seconds while this page is open)")


def status_line(assistant, generation_slots: int, mode: str) -> str:
    try:
        docs = assistant.documents()
        version = assistant.kb_version()
        kb = f"{len(docs)} documents (version `{version}`)"
        if not docs:
            kb = "⚠ knowledge base is empty — add documents in the Knowledge base tab"
    except NeocError as exc:
        kb = f"⚠ {render.md_escape(str(exc))}"
    if mode == "llm":
        model = f"● Model ready · {generation_slots} answer slot{'s' if generation_slots != 1 else ''}"
    else:
        model = "⚠ No model installed — answers show knowledge-base passages"
    return f"{model} · {kb}"


# ---------------------------------------------------------------------------
# the page
# ---------------------------------------------------------------------------
def build_ui(assistant, *, concurrency_limit: int = 1, mode: str = "extractive",
             recent: RecentRequests | None = None, refresh_seconds: float = 10.0) -> gr.Blocks:
    recent = recent or RecentRequests()
    chat = ChatHandlers(assistant, recent)
    kb = KnowledgeBaseHandlers(assistant)
    system = SystemHandlers(assistant, recent)  # queue_info is wired once the Blocks exist (below)
    allowed = sorted(SUPPORTED_SUFFIXES)
    limit = max(1, int(concurrency_limit))

    with gr.Blocks(title="NEOC Assistant", analytics_enabled=False, fill_height=False,
                   delete_cache=(3600, 6 * 3600)) as demo:
        with gr.Row(elem_id="neoc-header", equal_height=True):
            gr.Markdown("# NEOC Assistant", elem_id="neoc-title")
            status = gr.Markdown(status_line(assistant, limit, mode), elem_id="neoc-status")
            theme_btn = gr.Button("◐ Light / dark", size="sm", scale=0, min_width=130, elem_id="neoc-theme")

        with gr.Tabs():
            # ---------------- chat ----------------
            with gr.Tab("Chat", id="chat"):
                chatbot = gr.Chatbot(
                    elem_id="neoc-chat",
                    label="Answers from your centre's documents",
                    show_label=False,
                    height="calc(100vh - 250px)",
                    min_height=300,
                    buttons=["copy", "copy_all"],
                    feedback_options=("Like", "Dislike"),
                    placeholder="**Ask an operational question.** Answers cite the centre's own documents. "
                                "Press Enter to send, Shift+Enter for a new line.",
                    examples=[{"text": q} for q in EXAMPLE_QUESTIONS],
                    sanitize_html=True,
                    autoscroll=True,
                    layout="bubble",
                )
                turns = gr.State([])
                pending = gr.State("")
                with gr.Row(equal_height=True):
                    question = gr.Textbox(
                        elem_id="neoc-input", show_label=False, lines=1, max_lines=6, scale=6,
                        placeholder="e.g. How many litres of water per person per day is the minimum?",
                        autofocus=True, submit_btn=False,
                    )
                    send_btn = gr.Button("Send", variant="primary", scale=1, min_width=90, elem_id="neoc-send")
                    stop_btn = gr.Button("■ Stop", variant="stop", scale=1, min_width=90, elem_id="neoc-stop")
                    new_btn = gr.Button("New conversation", scale=1, min_width=120, elem_id="neoc-new")

                respond_kwargs = dict(
                    fn=chat.respond,
                    inputs=[pending, chatbot, turns],
                    outputs=[chatbot, turns],
                    concurrency_limit=limit,
                    concurrency_id="generate",
                    show_progress="minimal",
                    api_visibility="private",
                )
                # Queued, but on its own unlimited lane (never waits behind answers): a refusal
                # (gr.Error) then shows as a toast instead of an error badge on the textbox.
                input_lane = dict(concurrency_id="chat-input", concurrency_limit=None, show_progress="hidden",
                                  api_visibility="private")
                add_kwargs = dict(fn=chat.add_user, inputs=[question, chatbot], outputs=[question, chatbot, pending],
                                  **input_lane)
                # .success: no answer is started when add_user refuses (an answer is still running)
                submit_evt = question.submit(**add_kwargs).success(**respond_kwargs)
                click_evt = send_btn.click(**add_kwargs).success(**respond_kwargs)

                def pick_example(data: gr.SelectData, messages, request: gr.Request):
                    return chat.add_user(data.value["text"], messages, request)

                example_evt = chatbot.example_select(
                    pick_example, inputs=[chatbot], outputs=[question, chatbot, pending], **input_lane,
                ).success(**respond_kwargs)
                generating = [submit_evt, click_evt, example_evt]
                stop_btn.click(chat.stop, inputs=[chatbot, turns], outputs=[chatbot, turns], cancels=generating,
                               queue=False,
                               api_visibility="private")
                new_btn.click(chat.new_conversation, inputs=None, outputs=[chatbot, turns, question],
                              cancels=generating, queue=False, api_visibility="private")
                chatbot.clear(chat.new_conversation, inputs=None, outputs=[chatbot, turns, question],
                              cancels=generating, queue=False, api_visibility="private")
                # queued (own small limit): gr.Info toasts only reach the page from queued events
                chatbot.like(chat.feedback, inputs=[turns], outputs=None, concurrency_id="feedback",
                             concurrency_limit=4, show_progress="hidden", api_visibility="private")

            # ---------------- knowledge base ----------------
            with gr.Tab("Knowledge base", id="kb"):
                kb_info = gr.Markdown(elem_id="neoc-kb-info")
                with gr.Row():
                    with gr.Column(scale=2):
                        upload = gr.File(
                            label=f"Add documents ({', '.join(allowed)}; up to {kb.settings.upload_max_mb} MB each)",
                            file_count="multiple", file_types=allowed, type="filepath", elem_id="neoc-upload",
                            height=140,
                        )
                        ingest_btn = gr.Button("Add to knowledge base", variant="primary", elem_id="neoc-ingest")
                        gr.Markdown(
                            f"Files are saved in {render.code(kb.uploads_dir)} and the knowledge-base folder "
                            "is re-scanned (unchanged files are skipped). Adding or deleting documents clears cached answers.",
                            elem_classes=["neoc-small"],
                        )
                    with gr.Column(scale=3):
                        ingest_out = gr.Markdown(elem_id="neoc-ingest-summary")
                        with gr.Row(equal_height=True):
                            delete_pick = gr.Dropdown(label="Delete a document", choices=[], scale=4,
                                                      elem_id="neoc-delete-pick", allow_custom_value=False)
                            delete_btn = gr.Button("Delete", variant="stop", scale=1, elem_id="neoc-delete")
                            refresh_kb = gr.Button("↻ Refresh", scale=1, elem_id="neoc-kb-refresh")
                docs_table = gr.Dataframe(
                    headers=render.DOC_COLUMNS, datatype=["str", "str", "str", "number", "number", "str"],
                    interactive=False, wrap=True, elem_id="neoc-docs", label="Ingested documents",
                    max_height=420,
                )
                listing_out = [docs_table, delete_pick, kb_info]
                ingest_btn.click(kb.upload, inputs=[upload], outputs=[ingest_out, *listing_out],
                                 concurrency_limit=1, concurrency_id="ingest", api_visibility="private").then(
                    lambda: (None, status_line(assistant, limit, mode)), None, [upload, status], queue=False)
                delete_btn.click(kb.delete, inputs=[delete_pick], outputs=[ingest_out, *listing_out],
                                 js="(s) => (s && confirm('Remove ' + s + ' from the knowledge base?')) ? s : null",
                                 concurrency_limit=1, concurrency_id="ingest", api_visibility="private").then(
                    lambda: status_line(assistant, limit, mode), None, [status], queue=False)
                refresh_kb.click(kb.listing, None, listing_out, queue=False, api_visibility="private")

            # ---------------- system ----------------
            with gr.Tab("System", id="system"):
                with gr.Row():
                    sys_refresh = gr.Button("↻ Refresh", size="sm", scale=0, min_width=110, elem_id="neoc-sys-refresh")
                    sys_stamp = gr.Markdown(elem_id="neoc-sys-stamp")
                with gr.Row():
                    with gr.Column():
                        health_md = gr.Markdown(elem_id="neoc-health")
                    with gr.Column():
                        gr.Markdown("### Key metrics (recent window)")
                        stats_md = gr.Markdown(elem_id="neoc-stats")
                latency_plot = gr.LinePlot(
                    x="request", y="seconds", color="outcome", title="Recent answer latency",
                    x_title="request (oldest → newest)", y_title="seconds", height=260, elem_id="neoc-latency",
                )
                with gr.Accordion("Raw health and stats (JSON)", open=False):
                    raw = gr.JSON()
                sys_out = [health_md, stats_md, latency_plot, raw, sys_stamp]
                sys_refresh.click(system.refresh, None, sys_out, queue=False, api_visibility="private")
                timer = gr.Timer(refresh_seconds)
                timer.tick(system.refresh, None, sys_out, queue=False, show_progress="hidden",
                           api_visibility="private")

        theme_btn.click(None, None, None, js=THEME_TOGGLE_JS, queue=False)
        demo.load(kb.listing, None, listing_out, queue=False, api_visibility="private")
        demo.load(system.refresh, None, sys_out, queue=False, api_visibility="private")

    demo.queue(default_concurrency_limit=limit, status_update_rate="auto")

    def queue_info() -> dict:
        queue = demo._queue
        return {"waiting": len(queue), "running": queue.get_active_worker_count()}

    system.queue_info = queue_info
    demo.neoc_handlers = {"chat": chat, "kb": kb, "system": system}  # for tests
    return demo
