"""A document that tries to make the officer's browser fetch another host, in real headless Chromium.

The adversarial test's finding: a Markdown image with an escaped bracket in its alt text,
``![a\\]b](http://evil.example/x.png)``, in a knowledge-base document survived into the quoted
answer, was rendered as ``<img>``, and the browser requested the external host. Here a real
document carrying that and its relatives (raw URLs, raw ``<img>``/``<script>``, an image in
the title) is ingested by the real CLI next to the default knowledge base; the real server is
driven in Chromium through the Chat, Knowledge base and System tabs. The images point at a
local listener on another port: it must receive nothing, and the browser must request no host
but the server.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from browser_support import BOT, REPO_ROOT, ask, clean_environ, free_port, live_session, post_json, server_env, \
    server_root, wait_bot

pytestmark = [pytest.mark.browser, pytest.mark.slow]


class Beacon:
    """A local HTTP listener standing in for the outside host: records every request it gets."""

    def __init__(self):
        self.hits: list[str] = []
        hits = self.hits

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                hits.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.end_headers()

            do_POST = do_GET  # noqa: N815

            def log_message(self, *args):
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def hostile_document(beacon: int) -> str:
    here = f"http://127.0.0.1:{beacon}"
    return (
        f"# Jetty plan ![t\\]x]({here}/title.png)\n\n"
        "## Boat evacuation\n\n"
        f"- The boat evacuation point for ward 9 is the Bagmati jetty ![a\\]b](http://evil.example/x.png) "
        f"![a\\]b]({here}/answer.png) behind the school.\n"
        f"- Boats for ward 9 launch from the Bagmati jetty; the map is at {here}/raw-url and www.evil.example "
        f"<img src=\"{here}/raw-img.png\"> <script>fetch('{here}/script')</script>.\n"
        f"- The ward 9 jetty has a siren [pattern]({here}/link) and ![ref][logo].\n\n"
        f"[logo]: {here}/ref.png\n"
    )


@pytest.fixture(scope="module")
def beacon():
    with Beacon() as b:
        yield b


@pytest.fixture(scope="module")
def hostile_live(ingested, tmp_path_factory, playwright, beacon):
    root = server_root(ingested, tmp_path_factory, "ui-hostile")
    doc = root / "kb" / "jetty-plan.md"
    doc.write_text(hostile_document(beacon.port), encoding="utf-8")
    env = server_env(root / "data", root / "kb", root / "models")
    proc = subprocess.run([sys.executable, "-m", "neoc_assistant", "ingest", str(doc), "--json", "--no-progress"],
                          cwd=REPO_ROOT, env={**clean_environ(), **env}, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 and json.loads(proc.stdout)["added"] == 1, proc.stderr[-2000:]
    yield from live_session(root, "hostile", playwright)


QUESTION = "Where is the boat evacuation point for ward 9?"


def test_a_document_cannot_make_the_browser_fetch_another_host(hostile_live, beacon):
    status, body = post_json(hostile_live.url + "/api/ask", {"question": QUESTION, "use_cache": False})
    assert status == 200 and "Bagmati jetty" in body["answer"], body["answer"][:500]
    assert any(s["source"] == "jetty-plan.md" for s in body["sources"])
    assert "![a\\]b]" in body["answer"]  # the API gives the documents' words as data; the page renders them

    page = hostile_live.new_page()
    ask(page, QUESTION)
    text = wait_bot(page, 1, lambda t: "answered in" in t, what="finished")
    assert "Bagmati jetty" in text and "jetty-plan.md" in text, text[:800]  # the hostile passage was quoted
    page.wait_for_timeout(1000)  # time for any image the answer might load
    assert beacon.hits == [], f"the browser fetched from the 'outside' host: {beacon.hits}"
    assert not hostile_live.recorder.external(), hostile_live.recorder.external()
    assert "[image: a]b]" in text  # the image is shown as text
    bubble = page.locator(BOT).first
    assert bubble.locator("img, script, iframe, object, embed, video, audio, svg image").count() == 0
    hrefs = bubble.locator("a").evaluate_all("els => els.map(e => e.getAttribute('href'))")
    assert not [h for h in hrefs if h and not h.startswith("#")], hrefs  # no link leaves the page
    # the copy button copies what the message shows, not the sanitised markup the page was sent
    hostile_live.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=hostile_live.url)
    page.locator("#neoc-chat .message-buttons-left").last.get_by_label("Copy message", exact=True).click()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert "Bagmati jetty" in copied and "[image: a]b]" in copied and "<" not in copied, copied[:300]
    handlers = bubble.evaluate("el => [...el.querySelectorAll('*')].flatMap(e => [...e.attributes]"
                               ".map(a => a.name)).filter(n => n.startsWith('on'))")
    assert handlers == []

    ask(page, "What does the ward 9 jetty siren pattern look like?", button=True)
    wait_bot(page, 2, lambda t: "answered in" in t, what="finished")
    page.get_by_role("tab", name="Knowledge base").click()
    page.wait_for_function("document.querySelector('#neoc-docs').innerText.includes('jetty-plan.md')")
    page.get_by_role("tab", name="System").click()
    page.click("#neoc-sys-refresh")
    page.wait_for_function("document.querySelector('#neoc-health').innerText.includes('Healthy')")
    page.wait_for_timeout(1500)  # time for any image the page might still load
    assert page.locator("img[src*='127.0.0.1:%d'], img[src*='evil.example']" % beacon.port).count() == 0
    assert beacon.hits == [], f"the browser fetched from the 'outside' host: {beacon.hits}"
    hostile_live.assert_offline()
