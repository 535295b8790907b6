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

from ui_fixtures import ApiFake


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


# -- item 2: what is open with auth configured, throttling, body limits --------------------------------------
@pytest.fixture
def auth_client(settings):
    fake = ApiFake(Settings(data_dir=settings.paths.data_dir, auth_username="duty", auth_password="s3cret",
                            login_free_attempts=3, login_backoff_max_seconds=60, max_request_body_kb=64))
    fake.health = lambda: {"healthy": True, "status": "ok",
                           "checks": {"store": {"ok": True, "message": f"{settings.paths.data_dir} 12 chunks"}}}
    app = create_app(fake, concurrency_limit=1, mode="extractive")
    with TestClient(app) as client:
        yield client, fake


def test_with_auth_health_reveals_only_its_verdict_and_metrics_and_schema_are_closed(auth_client):
    client, _ = auth_client
    public = client.get("/health")
    assert public.status_code == 200 and public.json() == {"healthy": True, "status": "ok"}
    assert "data" not in public.text and "chunks" not in public.text
    full = client.get("/health", auth=("duty", "s3cret"))
    assert full.json()["checks"]["store"]["message"].endswith("12 chunks")
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", auth=("duty", "s3cret")).text == "neoc_requests_total 3\n"
    assert client.get("/openapi.json").status_code == 404


def test_wrong_passwords_are_throttled_with_a_growing_wait(auth_client):
    client, fake = auth_client
    for _ in range(3):  # the free attempts: checked and refused
        assert client.post("/login", data={"username": "duty", "password": "guess"}).status_code == 400
    refused = client.post("/login", data={"username": "duty", "password": "s3cret"})
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
    assert "try again in" in refused.json()["message"]
    # the JSON API's Basic auth shares the count: not even checked while the wait runs
    assert client.post("/api/ask", json={"question": "q"}, auth=("duty", "s3cret")).status_code == 429
    assert fake.calls == []
    time.sleep(1.1)  # 1 s after the 3rd failure
    assert client.post("/login", data={"username": "duty", "password": "guess"}).status_code == 400
    again = client.post("/login", data={"username": "duty", "password": "s3cret"})
    assert again.status_code == 429 and int(again.headers["retry-after"]) == 2  # the wait doubled
    time.sleep(2.1)
    assert client.post("/login", data={"username": "duty", "password": "s3cret"}).status_code == 200
    assert client.post("/login", data={"username": "duty", "password": "guess"}).status_code == 400  # count reset


def test_an_oversized_body_is_refused_before_it_is_read(auth_client):
    client, fake = auth_client
    big = json.dumps({"question": "x" * (200 * 1024)}).encode()
    resp = client.post("/api/ask", content=big, headers={"content-type": "application/json"}, auth=("duty", "s3cret"))
    assert resp.status_code == 413 and resp.json()["error"] == "InputError"
    assert "64 KB" in resp.json()["message"]

    def chunks():  # no Content-Length: counted as it arrives
        for _ in range(200):
            yield b"x" * 1024

    resp = client.post("/api/ask", content=chunks(), headers={"content-type": "application/json"},
                       auth=("duty", "s3cret"))
    assert resp.status_code == 413 and fake.calls == []


def test_malformed_json_is_a_400_in_the_documented_shape_without_the_input(auth_client):
    client, _ = auth_client
    resp = client.post("/api/ask", content=b'{"question": "SECRET-INPUT', headers={"content-type": "application/json"},
                       auth=("duty", "s3cret"))
    assert resp.status_code == 400
    assert set(resp.json()) == {"error", "message"} and resp.json()["error"] == "InputError"
    assert "SECRET-INPUT" not in resp.text
    resp = client.post("/api/ask", json={"use_cache": True}, auth=("duty", "s3cret"))
    assert resp.status_code == 400 and "question" in resp.json()["message"]


def test_a_lone_surrogate_in_the_question_or_history_is_a_documented_400(container):
    """Issue 12.13: ``{"question": "\\ud800"}`` reached the real assistant and came back as a 500."""
    app = create_app(container.assistant, concurrency_limit=1, mode="extractive")
    with TestClient(app) as client:
        for body in (b'{"question": "boats \\ud800"}',
                     b'{"question": "boats?", "history": [["\\udfff", "an answer"]]}'):
            resp = client.post("/api/ask", content=body, headers={"content-type": "application/json"})
            assert resp.status_code == 400, resp.text
            assert set(resp.json()) == {"error", "message"} and resp.json()["error"] == "InputError"
            assert "not valid Unicode" in resp.json()["message"]


# -- item 6 and 13: uploads never overwrite, failed uploads do not linger ---------------------------------------
def _upload(kb, folder, name: str, text: str | bytes):
    """What Gradio hands the handler: a file in its upload folder (a sub-folder per upload)."""
    target = folder / f"u{len(list(folder.iterdir()))}" / name
    target.parent.mkdir()
    (target.write_bytes if isinstance(text, bytes) else target.write_text)(text)
    return kb.upload([str(target)])


@pytest.mark.slow
def test_an_upload_with_the_name_of_an_earlier_one_keeps_both(container, gradio_uploads):
    """Issue 12.6: District B's report.md replaced District A's, on disk and in the KB."""
    from neoc_assistant.serve.admin_handlers import KnowledgeBaseHandlers

    kb = KnowledgeBaseHandlers(container.assistant)
    _upload(kb, gradio_uploads, "report.md", "# District A\n\nDistrict A: 1250 families displaced by the flood.\n")
    summary, rows, dropdown, _ = _upload(kb, gradio_uploads, "report.md",
                                         "# District B\n\nDistrict B: 85 families displaced by the landslide.\n")
    assert "report (2).md" in summary and "already" in summary
    uploads = container.settings.paths.kb_dir / "uploads"
    assert "1250" in (uploads / "report.md").read_text() and "85 families" in (uploads / "report (2).md").read_text()
    assert {"uploads/report.md", "uploads/report (2).md"} <= set(dropdown["choices"])
    hit = container.assistant.search("How many families were displaced in District A?", k=1)[0]
    assert "1250" in hit.text
    # the same bytes again: nothing new is stored
    summary, rows, dropdown, _ = _upload(kb, gradio_uploads, "report.md",
                                         "# District A\n\nDistrict A: 1250 families displaced by the flood.\n")
    assert sorted(p.name for p in uploads.iterdir()) == ["report (2).md", "report.md"]
    assert "identical" in summary


@pytest.mark.slow
def test_a_failed_upload_is_removed_and_a_stray_one_can_be_deleted(container, gradio_uploads):
    """Issue 12.13: a failed upload stayed in uploads/, failed on every ingest, and could not be deleted."""
    from neoc_assistant.serve.admin_handlers import KnowledgeBaseHandlers

    kb = KnowledgeBaseHandlers(container.assistant)
    summary, _, dropdown, _ = _upload(kb, gradio_uploads, "scan.pdf", b"%PDF-1.4 not really a pdf")
    uploads = container.settings.paths.kb_dir / "uploads"
    assert "failed" in summary and "removed" in summary
    assert not (uploads / "scan.pdf").exists()
    # one left behind by an older version: listed, and the delete button removes it
    (uploads / "old-broken.pdf").write_bytes(b"%PDF-1.4 broken")
    _, dropdown, _ = kb.listing()
    assert "uploads/old-broken.pdf" in dropdown["choices"]
    summary, _, dropdown, _ = kb.delete("uploads/old-broken.pdf")
    assert not (uploads / "old-broken.pdf").exists() and "deleted" in summary
    assert "uploads/old-broken.pdf" not in dropdown["choices"]
