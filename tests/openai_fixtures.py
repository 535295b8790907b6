"""The real server for the OpenAI-compatible API tests: ``create_app`` under uvicorn on a free 127.0.0.1
port, in a thread of the test process (so a test can look at the assistant it serves), over a small
knowledge base ingested by the real pipeline.

The clients are real and nobody here wrote them: the ``openai`` package, LangChain's
``ChatOpenAI`` and ``curl`` talk HTTP to this server as they would to OpenAI.
"""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import uvicorn

from neoc_assistant.container import Container
from neoc_assistant.serve.api_keys import new_key
from neoc_assistant.serve.app import create_app
from neoc_assistant.settings import Settings

from services import free_port

REPO_ROOT = Path(__file__).resolve().parent.parent
KB_FILES = ("11-minimum-standards-wash-shelter.md", "09-evacuation-procedures.md", "01-eoc-activation-levels.md")
WATER = "How much water does each person need per day?"


class LiveServer:
    """``with LiveServer(app) as server: server.base_url`` - uvicorn serving ``app`` until the block ends."""

    def __init__(self, app):
        self.app = app
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.base_url = self.url + "/v1"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    access_log=False, timeout_graceful_shutdown=2))
        self.thread = threading.Thread(target=self.server.run, name=f"uvicorn-{self.port}", daemon=True)

    def __enter__(self) -> "LiveServer":
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn did not start on port {self.port}")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


def small_kb_container(root: Path, embedder, **sections) -> Container:
    """A container over three documents of ``knowledge_base/``, ingested; no model (quoted answers)."""
    kb = root / "kb"
    kb.mkdir(parents=True, exist_ok=True)
    for name in KB_FILES:
        shutil.copy(REPO_ROOT / "knowledge_base" / name, kb / name)
    settings = Settings(data_dir=root / "data", kb_dir=kb, models_dir=root / "models", **sections)
    container = Container(settings, embedder=embedder)
    summary = container.assistant.ingest()
    assert summary.ok, summary
    return container


def make_key() -> tuple[str, str]:
    """(the key a client sends, the hash the server keeps)."""
    return new_key()


def serve_app(assistant, **kw):
    return create_app(assistant, concurrency_limit=2, mode="extractive", **kw)
