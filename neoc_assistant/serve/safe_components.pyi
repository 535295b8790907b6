"""The page's Markdown and chat components, showing only what ``safe_html`` rendered.

Why here and not in each handler: every value these components send to the
browser passes through ``postprocess``, so no handler - today's or a later
one, the chat, the Knowledge base or the System tab - can hand the browser
a document's text as live Markdown by forgetting to escape it. Answers
(assistant messages) are rendered Markdown; questions (user messages) are
literal text. The browser's own LaTeX rendering is off: a document's ``$$``
is text too.
"""

from __future__ import annotations

from neoc_assistant import runtime

runtime.configure_process()  # Gradio reads its environment when it is imported
import gradio as gr  # noqa: E402
from gradio.components.chatbot import TextMessage  # noqa: E402

from neoc_assistant.serve.safe_html import plain_html, to_html  # noqa: E402

from gradio.events import Dependency

class SafeMarkdown(gr.Markdown):
    is_template = True  # Gradio then uses its own Markdown front end (the parent's name), not a custom one

    @classmethod
    def get_component_class_id(cls) -> str:
        return gr.Markdown.get_component_class_id()  # ... and the parent's front-end files

    @functools.wraps(gr.Markdown.__init__)  # Gradio reads the props it sends from the signature
    def __init__(self, value=None, **kwargs):
        kwargs.setdefault("latex_delimiters", [])
        super().__init__(value, **{**kwargs, "sanitize_html": True})

    def postprocess(self, value):
        value = super().postprocess(value)
        return None if value is None else to_html(value)
    from typing import Callable, Literal, Sequence, Any, TYPE_CHECKING
    from gradio.blocks import Block
    if TYPE_CHECKING:
        from gradio.components import Timer
        from gradio.components.base import Component


class SafeChatbot(gr.Chatbot):
    is_template = True

    @classmethod
    def get_component_class_id(cls) -> str:
        return gr.Chatbot.get_component_class_id()

    @functools.wraps(gr.Chatbot.__init__)
    def __init__(self, value=None, **kwargs):
        kwargs.setdefault("latex_delimiters", [])
        super().__init__(value, **{**kwargs, "sanitize_html": True, "allow_tags": False})

    def postprocess(self, value):
        data = super().postprocess(value)
        for message in data.root:
            render = plain_html if message.role == "user" else to_html
            for part in message.content:
                if isinstance(part, TextMessage):
                    part.text = render(part.text)
        return data
    from typing import Callable, Literal, Sequence, Any, TYPE_CHECKING
    from gradio.blocks import Block
    if TYPE_CHECKING:
        from gradio.components import Timer
        from gradio.components.base import Component