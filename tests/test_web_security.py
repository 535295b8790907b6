"""The web server against an adversarial client: forged uploads, auth, throttling, body limits.

The real app (``create_app``) in-process through FastAPI's TestClient; the knowledge-base
tests use the real ingest pipeline on a temp data dir, and the forged upload goes
through Gradio's own queue API exactly as a browser's request would.
"""

from __future__ import annotations

import json
import time

import pytest
from fastapi.testclient import TestClient

from neoc_assistant.serve.app import create_app
from neoc_assistant.settings import Settings

from test_ui_app import ApiFake


def _upload_fn_index(app) -> int:
    blocks = app.state.blocks
    return next(i for i, fn in blocks.fns.items() if getattr(fn.fn, "__name__", "") == "upload")


def _run_event(client: TestClient, fn_index: int, data: list, session: str = "attacker") -> list[dict]:
    """Join the queue like the browser does and read the event's messages to the end."""
    resp = client.post("/gradio_api/queue/join",
                       json={"data": data, "fn_index": fn_index, "session_hash": session, "event_data": None})
    assert resp.status_code == 200, resp.text
    messages = []
    with client.stream("GET", f"/gradio_api/queue/data?session_hash={session}") as stream:
        for line in stream.iter_lines():
            if line.startswith("data:"):
                msg = json.loads(line[5:])
                messages.append(msg)
                if msg.get("msg") in ("process_completed", "close_stream", "unexpected_error"):
                    break
    return messages


@pytest.mark.slow
def test_a_forged_upload_path_cannot_pull_a_server_file_into_the_knowledge_base(container, tmp_path, gradio_uploads):
    """Issue 12.1: FileData whose ``path`` names any file on the server was copied into the KB."""
    secret = tmp_path / "elsewhere" / "payroll.md"
    secret.parent.mkdir()
    secret.write_text("# Payroll\n\nThe director's salary is 987654 rupees; the vault code is 4711.\n")
    assistant = container.assistant
    app = create_app(assistant, concurrency_limit=1, mode="extractive")
    with TestClient(app) as client:
        forged = [[{"path": str(secret), "orig_name": "payroll.md", "meta": {"_type": "gradio.FileData"}}]]
        messages = _run_event(client, _upload_fn_index(app), forged)
    assert messages and messages[-1].get("success") is False, messages[-1:]
    uploads = container.settings.paths.kb_dir / "uploads"
    assert not uploads.exists() or not any(uploads.iterdir())
    assert all("payroll" not in s for d in assistant.documents() for s in d.sources)


def test_the_upload_handler_refuses_files_gradio_did_not_receive(container, tmp_path, gradio_uploads):
    """Defence in depth: called directly with a path outside Gradio's upload folder."""
    from neoc_assistant.serve.admin_handlers import KnowledgeBaseHandlers

    outside = tmp_path / "etc" / "shadow.md"
    outside.parent.mkdir()
    outside.write_text("# root\n\nroot:$6$hash\n")
    accepted, rejected = KnowledgeBaseHandlers(container.assistant).validate([str(outside)])
    assert accepted == []
    assert "was not uploaded" in dict(rejected)["shadow.md"]
