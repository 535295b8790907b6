"""Markdown from documents, models and questions -> HTML that can only show text.

Why: the page's own Markdown renderer (Gradio's, in the browser) turned what a
document said into live markup. A Markdown image with an escaped bracket in its
alt text, ``![a\\]b](http://evil.example/x.png)``, got past the pattern that was
meant to remove images and became an ``<img>``: the browser of an offline EOC
requested another host because of a document's content; raw URLs in excerpts
became links. Patterns over Markdown cannot win against a parser, so the server
now renders every shown text itself, in three steps that each suffice for
fetching:

1. **markdown-it-py** (CommonMark, tables, strikethrough; no linkify) parses it;
   images render as the text ``[image: alt]``, links as their text (the URL
   after it in brackets, not clickable), code without a language (no diagrams).
2. **nh3** (ammonia) keeps only text-formatting tags and *no attribute at all*:
   no ``src``, ``href``, ``style`` or ``on*=`` can survive, whatever got this far.
3. Every ASCII punctuation character and line break in the remaining text
   becomes a numeric character reference, and the result is one line inside
   ``<div class="neoc-md">``: the browser's Markdown renderer sees one HTML
   block and nothing in it it could read as Markdown, an autolink or LaTeX
   (a character reference never counts as Markdown syntax).

The page's Content-Security-Policy (``guards.PagePolicy``) is the last line
behind these. ``plain_html`` renders a question as literal text.
"""

from __future__ import annotations

import html
import re

import nh3
from markdown_it import MarkdownIt

MARKER = '<div class="neoc-md">'
_END = "</div>"

ALLOWED_TAGS = {
    "p", "br", "strong", "b", "em", "i", "del", "s", "code", "pre", "blockquote", "ul", "ol", "li",
    "h1", "h2", "h3", "h4", "h5", "h6", "hr", "table", "thead", "tbody", "tr", "th", "td",
    "details", "summary", "sub", "sup", "mark", "span", "div",
}

_PUNCT = set("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
_TAG_OR_TEXT = re.compile(r"(<[^<>]*>)|([^<]+)")


def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": True, "linkify": False, "typographer": False, "breaks": True})
    md.enable(["table", "strikethrough"])
    rules = md.add_render_rule

    def image(self, tokens, idx, options, env):
        alt = self.renderInlineAsText(tokens[idx].children or [], options, env)
        return html.escape(f"[image: {alt}]" if alt else "[image]")

    def link_open(self, tokens, idx, options, env):
        env.setdefault("links", []).append(tokens[idx].attrGet("href") or "")
        return ""

    def link_close(self, tokens, idx, options, env):
        href = env["links"].pop() if env.get("links") else ""
        text = ""  # the link's own text was rendered already; repeat the address only if it differs
        for token in reversed(tokens[:idx]):
            if token.type == "link_open":
                break
            text = (token.content or "") + text
        return "" if not href or href == text or href.removeprefix("mailto:") == text else html.escape(f" ({href})")

    def code(self, tokens, idx, options, env):
        return f"<pre><code>{html.escape(tokens[idx].content)}</code></pre>"

    rules("image", image)
    rules("link_open", link_open)
    rules("link_close", link_close)
    rules("fence", code)
    rules("code_block", code)
    return md


_MD = _parser()


def _inert_text(text: str) -> str:
    out = []
    for ch in html.unescape(text):
        if ch in _PUNCT or ch in "\n\r":
            out.append(f"&#{ord(ch)};")
        else:
            out.append(ch)
    return "".join(out)


def _inert(clean: str) -> str:
    """nh3's output (tags without attributes, and text) with every text character that markup
    could be made of written as a character reference, on one line."""
    parts, in_pre = [], 0
    for tag, text in _TAG_OR_TEXT.findall(clean):
        if tag:
            in_pre += {"<pre>": 1, "</pre>": -1}.get(tag, 0)
            parts.append(tag)
        elif in_pre or text.strip():
            parts.append(_inert_text(text))  # (the line breaks between block tags are dropped)
    return "".join(parts)


def sanitise(fragment: str) -> str:
    """Any HTML -> allowed tags without attributes, inert text (steps 2 and 3)."""
    if fragment.startswith(MARKER) and fragment.endswith(_END):
        fragment = fragment[len(MARKER):-len(_END)]
    clean = nh3.clean(fragment, tags=ALLOWED_TAGS, attributes={}, url_schemes=set(), link_rel=None,
                      strip_comments=True)
    return MARKER + _inert(clean) + _END


def to_html(markdown: str | None) -> str:
    """Markdown (ours, a document's or a model's) -> inert HTML. Idempotent: HTML this made passes
    through steps 2 and 3 again unchanged (what the browser sends back is not trusted either)."""
    text = str(markdown or "")
    if text.startswith(MARKER):
        return sanitise(text)
    return sanitise(_MD.render(text))


def plain_html(text: str | None) -> str:
    """Literal text (an officer's question) -> inert HTML: nothing in it is read as Markdown or HTML."""
    text = str(text or "")
    if text.startswith(MARKER):
        return sanitise(text)
    return sanitise("<p>" + html.escape(text).replace("\n", "<br>") + "</p>")


def text_of(fragment: str | None) -> str:
    """What the browser shows of ``to_html``/``plain_html`` output, as plain text (for comparing)."""
    text = re.sub(r"<br\s*/?>", "\n", str(fragment or ""))
    text = re.sub(r"</(p|li|h\d|pre|blockquote|tr|div|summary)>", "\n", text)
    text = html.unescape(re.sub(r"<[^<>]*>", "", text))
    return re.sub(r"\n\s*\n+", "\n", text).strip()
