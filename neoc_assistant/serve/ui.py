"""The duty officer's browser UI: the layout of the Chat, Knowledge base and System tabs.

``build_ui(assistant)`` returns a ``gr.Blocks``; ``serve/app.py`` mounts it on
the FastAPI app that also serves ``/api/ask``, ``/health`` and ``/metrics``.
What each control does lives in ``chat_handlers.py`` and
``admin_handlers.py`` (testable without a browser); the page's CSS and
JavaScript are files in ``static/``. Every Markdown and chat component is a
``safe_components`` one: what it shows was rendered to inert HTML on the server
(``safe_html.py``), whatever a document or a question contains. Everything the page needs is served by
this process: the theme uses system fonts (Gradio's default theme would fetch
Google Fonts), analytics are off (``runtime.py``), nothing is shared. Every fixed text is
``language/data/texts.toml``'s, in ``serve.ui_language`` (English or Nepali).
"""

from __future__ import annotations

import json
from pathlib import Path

from neoc_assistant import runtime

runtime.configure_process()  # Gradio reads its environment when it is imported
import gradio as gr  # noqa: E402

from neoc_assistant.ingest.loaders import SUPPORTED_SUFFIXES  # noqa: E402
from neoc_assistant.language.texts import ui_list, ui_text  # noqa: E402
from neoc_assistant.serve import render  # noqa: E402
from neoc_assistant.serve.admin_handlers import KnowledgeBaseHandlers, SystemHandlers, status_line  # noqa: E402
from neoc_assistant.serve.chat_handlers import ChatHandlers, RecentRequests  # noqa: E402
from neoc_assistant.serve.safe_components import SafeChatbot, SafeMarkdown  # noqa: E402

STATIC_DIR = Path(__file__).resolve().parent / "static"
CSS = (STATIC_DIR / "neoc.css").read_text(encoding="utf-8")
ON_LOAD_JS = (STATIC_DIR / "on_load.js").read_text(encoding="utf-8")
THEME_TOGGLE_JS = (STATIC_DIR / "theme_toggle.js").read_text(encoding="utf-8")

def make_theme() -> gr.themes.Base:
    """Gradio's default look with system fonts only (no Google Fonts request)."""
    return gr.themes.Default(
        font=[gr.themes.Font("system-ui"), "Segoe UI", "Roboto", "Helvetica", "Arial", "sans-serif"],
        font_mono=[gr.themes.Font("ui-monospace"), "Consolas", "monospace"],
    )


def ui_language(assistant) -> str:
    """The UI's language: ``serve.ui_language`` of the assistant's settings ("en" without one)."""
    return getattr(getattr(assistant, "serve", None), "ui_language", "en") or "en"


def confirm_delete_js(lang: str) -> str:
    """The Delete button's browser-side confirmation, its question in the UI's language."""
    before, _, after = ui_text("delete_confirm", lang).partition("{name}")
    return f"(s) => (s && confirm({json.dumps(before)} + s + {json.dumps(after)})) ? s : null"


def build_ui(assistant, *, concurrency_limit: int = 1, mode: str = "extractive",
             recent: RecentRequests | None = None, refresh_seconds: float = 10.0,
             language: str | None = None) -> gr.Blocks:
    """``language``: of the fixed texts ("en" | "ne"; default ``serve.ui_language``)."""
    lang = language or ui_language(assistant)

    def t(key: str, **fields) -> str:
        return ui_text(key, lang, **fields)

    recent = recent or RecentRequests()
    chat = ChatHandlers(assistant, recent, language=lang)
    kb = KnowledgeBaseHandlers(assistant)
    system = SystemHandlers(assistant, recent)  # queue_info is wired once the Blocks exist (below)
    allowed = sorted(SUPPORTED_SUFFIXES)
    limit = max(1, int(concurrency_limit))

    with gr.Blocks(title=t("title"), analytics_enabled=False, fill_height=False,
                   delete_cache=(3600, 6 * 3600)) as demo:
        with gr.Row(elem_id="neoc-header", equal_height=True):
            SafeMarkdown(f"# {t('title')}", elem_id="neoc-title")
            status = SafeMarkdown(status_line(assistant, limit, mode, lang), elem_id="neoc-status")
            theme_btn = gr.Button(t("theme"), size="sm", scale=0, min_width=130, elem_id="neoc-theme")

        with gr.Tabs():
            # ---------------- chat ----------------
            with gr.Tab(t("tab_chat"), id="chat"):
                chatbot = SafeChatbot(
                    elem_id="neoc-chat",
                    label=t("chat_label"),
                    show_label=False,
                    height="calc(100vh - 250px)",
                    min_height=300,
                    buttons=["copy", "copy_all"],
                    feedback_options=("Like", "Dislike"),  # Gradio's names of the thumbs (not shown as text)
                    placeholder=t("chat_placeholder"),
                    examples=[{"text": q} for q in ui_list("examples", lang)],
                    autoscroll=True,
                    layout="bubble",
                )
                turns = gr.State([])
                pending = gr.State("")
                with gr.Row(equal_height=True):
                    question = gr.Textbox(
                        elem_id="neoc-input", show_label=False, lines=1, max_lines=6, scale=6,
                        placeholder=t("input_placeholder"),
                        autofocus=True, submit_btn=False,
                    )
                    send_btn = gr.Button(t("send"), variant="primary", scale=1, min_width=90, elem_id="neoc-send")
                    stop_btn = gr.Button(t("stop"), variant="stop", scale=1, min_width=90, elem_id="neoc-stop")
                    new_btn = gr.Button(t("new"), scale=1, min_width=120, elem_id="neoc-new")
                    fix_btn = gr.Button(t("fix"), size="sm", scale=0, min_width=120,
                                        elem_id="neoc-fix")
                    export_btn = gr.Button(t("export"), size="sm", scale=0, min_width=120,
                                           elem_id="neoc-export")
                export_file = gr.File(label=t("export_file"), interactive=False,
                                      elem_id="neoc-export-file", height=60, visible=False)

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
                question.submit(**add_kwargs).success(**respond_kwargs)
                send_btn.click(**add_kwargs).success(**respond_kwargs)

                def pick_example(data: gr.SelectData, messages, request: gr.Request):
                    return chat.add_user(data.value["text"], messages, request)

                chatbot.example_select(
                    pick_example, inputs=[chatbot], outputs=[question, chatbot, pending], **input_lane,
                ).success(**respond_kwargs)
                # Stop signals the generation (chat_handlers.respond shows the stopped answer last);
                # cancelling the event as well let a late streaming update overwrite "Stopped".
                stop_btn.click(chat.stop, inputs=[chatbot, turns], outputs=[chatbot, turns], queue=False,
                               api_visibility="private")
                # one click: the last question as the assistant read it, in the box, to edit and send
                fix_btn.click(chat.understood_text, inputs=[turns], outputs=[question], queue=False,
                              api_visibility="private")
                # the conversation as recorded in the audit trail (what was answered, from which sources)
                export_btn.click(chat.export_conversation, inputs=None, outputs=[export_file],
                                 api_visibility="private")
                # Like Stop, not a cancellation: chat_handlers.respond ends with the cleared chat as its
                # last update, so no late streaming update can bring the old conversation back.
                new_btn.click(chat.new_conversation, inputs=None, outputs=[chatbot, turns, question],
                              queue=False, api_visibility="private")
                chatbot.clear(chat.new_conversation, inputs=None, outputs=[chatbot, turns, question],
                              queue=False, api_visibility="private")
                # queued (own small limit): gr.Info toasts only reach the page from queued events
                chatbot.like(chat.feedback, inputs=[turns], outputs=None, concurrency_id="feedback",
                             concurrency_limit=4, show_progress="hidden", api_visibility="private")

            # ---------------- knowledge base ----------------
            with gr.Tab(t("tab_kb"), id="kb"):
                kb_info = SafeMarkdown(elem_id="neoc-kb-info")
                with gr.Row():
                    with gr.Column(scale=2):
                        upload = gr.File(
                            label=t("upload", types=", ".join(allowed), mb=kb.upload_max_mb),
                            file_count="multiple", file_types=allowed, type="filepath", elem_id="neoc-upload",
                            height=140,
                        )
                        ingest_btn = gr.Button(t("ingest"), variant="primary", elem_id="neoc-ingest")
                        SafeMarkdown(t("upload_note", folder=render.code(kb.uploads_dir)), elem_classes=["neoc-small"])
                    with gr.Column(scale=3):
                        ingest_out = SafeMarkdown(elem_id="neoc-ingest-summary")
                        with gr.Row(equal_height=True):
                            delete_pick = gr.Dropdown(label=t("delete_pick"), choices=[], scale=4,
                                                      elem_id="neoc-delete-pick", allow_custom_value=False)
                            delete_btn = gr.Button(t("delete"), variant="stop", scale=1, elem_id="neoc-delete")
                            refresh_kb = gr.Button(t("refresh"), scale=1, elem_id="neoc-kb-refresh")
                docs_table = gr.Dataframe(
                    headers=ui_list("doc_columns", lang), datatype=["str", "str", "str", "number", "number", "str", "str"],
                    interactive=False, wrap=True, elem_id="neoc-docs", label=t("documents"),
                    max_height=420,
                )
                listing_out = [docs_table, delete_pick, kb_info]
                ingest_btn.click(kb.upload, inputs=[upload], outputs=[ingest_out, *listing_out],
                                 concurrency_limit=1, concurrency_id="ingest", api_visibility="private").then(
                    lambda: (None, status_line(assistant, limit, mode, lang)), None, [upload, status], queue=False)
                delete_btn.click(kb.delete, inputs=[delete_pick], outputs=[ingest_out, *listing_out],
                                 js=confirm_delete_js(lang),
                                 concurrency_limit=1, concurrency_id="ingest", api_visibility="private").then(
                    lambda: status_line(assistant, limit, mode, lang), None, [status], queue=False)
                refresh_kb.click(kb.listing, None, listing_out, queue=False, api_visibility="private")

            # ---------------- system ----------------
            with gr.Tab(t("tab_system"), id="system"):
                with gr.Row():
                    sys_refresh = gr.Button(t("refresh"), size="sm", scale=0, min_width=110, elem_id="neoc-sys-refresh")
                    sys_stamp = SafeMarkdown(elem_id="neoc-sys-stamp")
                with gr.Row():
                    with gr.Column():
                        health_md = SafeMarkdown(elem_id="neoc-health")
                    with gr.Column():
                        SafeMarkdown(t("metrics"))
                        stats_md = SafeMarkdown(elem_id="neoc-stats")
                latency_plot = gr.LinePlot(
                    x="request", y="seconds", color="outcome", title=t("latency"),
                    x_title=t("latency_x"), y_title=t("latency_y"), height=260, elem_id="neoc-latency",
                )
                with gr.Accordion(t("raw"), open=False):
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
    chat.waiting = lambda: len(demo._queue)
    chat.slots = limit
    demo.neoc_handlers = {"chat": chat, "kb": kb, "system": system}  # for tests
    return demo
