"""The FastAPI app around the UI: JSON endpoints, auth, and no external URLs in what the page loads.

In-process (FastAPI TestClient) with a scripted fake assistant; fast. The System tab's store rows
are checked against the real store (its damage is what they exist to show).
"""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from neoc_assistant.errors import BusyError, InputError, MemoryGuardError, ModelError
from neoc_assistant.container import Container
from neoc_assistant.serve.app import create_app, is_loopback
from neoc_assistant.settings import Settings

from ui_fixtures import ApiFake, make_answer
from store_fixtures import ingested  # noqa: F401 - the real three-document store fixture


@pytest.fixture
def fake_api(settings):
    return ApiFake(settings)


@pytest.fixture
def client(fake_api):
    app = create_app(fake_api, concurrency_limit=1, mode="extractive")
    with TestClient(app) as c:
        yield c


def test_api_ask_returns_the_answer_json(client, fake_api):
    resp = client.post("/api/ask", json={"question": "How much water?", "use_cache": False})
    assert resp.status_code == 200
    body = resp.json()
    assert body == make_answer(question="How much water?").to_json()
    assert fake_api.calls[-1] == {"question": "How much water?", "history": None, "use_cache": False}


@pytest.mark.parametrize("error,status", [
    (InputError("The question is empty"), 400),
    (BusyError("all model contexts are busy"), 503),
    (MemoryGuardError("memory is tight"), 503),
    (ModelError("model truncated"), 503),
    (RuntimeError("internal secret"), 500),
])
def test_api_ask_maps_errors_to_status_codes(client, fake_api, error, status):
    fake_api.ask_error = error
    resp = client.post("/api/ask", json={"question": "q"})
    assert resp.status_code == status
    body = resp.json()
    if status == 500:
        assert body["error"] == "InternalError" and "secret" not in resp.text
    else:
        assert body == {"error": type(error).__name__, "message": str(error)}
    if status == 503:
        assert resp.headers["retry-after"] == "2"


def test_api_ask_rejects_a_malformed_body(client):
    assert client.post("/api/ask", json={"use_cache": True}).status_code == 400


def test_health_is_503_when_unhealthy(client, fake_api):
    assert client.get("/health").status_code == 200
    fake_api.healthy = False
    resp = client.get("/health")
    assert resp.status_code == 503 and resp.json()["healthy"] is False


def test_metrics_prometheus_text_and_guard(client, fake_api):
    resp = client.get("/metrics")
    assert resp.status_code == 200 and resp.text == "neoc_requests_total 3\n"
    assert resp.headers["content-type"].startswith("text/plain; version=0.0.4")
    del fake_api.metrics_text  # metrics module missing / not wired
    resp = client.get("/metrics")
    assert resp.status_code == 503 and "metrics unavailable" in resp.text


def test_no_swagger_pages_they_would_load_a_cdn(client):
    for path in ("/docs", "/redoc"):
        text = client.get(path).text.lower()
        assert "swagger" not in text and "redoc" not in text and "cdn.jsdelivr" not in text


def test_page_and_theme_reference_no_external_host(client):
    """The HTML, config and theme CSS the browser loads name no host but ours (no Google Fonts)."""
    index = client.get("/")
    assert index.status_code == 200
    theme = client.get("/theme.css")
    assert theme.status_code == 200 and "--font" in theme.text
    assert "googleapis" not in theme.text and "gstatic" not in theme.text
    assert "system-ui" in theme.text
    config = client.get("/config").text
    for text in (index.text, config, theme.text):
        urls = re.findall(r"(?:src|href)=[\"'](https?://[^\"']+)", text) + re.findall(r"url\((https?://[^)]+)\)", text)
        assert not urls, urls


def test_auth_protects_ui_and_api(settings):
    fake = ApiFake(Settings(data_dir=settings.paths.data_dir, auth_username="duty", auth_password="s3cret"))
    app = create_app(fake, concurrency_limit=1, mode="extractive")
    with TestClient(app) as c:
        assert c.post("/api/ask", json={"question": "q"}).status_code == 401
        assert c.post("/api/ask", json={"question": "q"}, auth=("duty", "wrong")).status_code == 401
        assert c.post("/api/ask", json={"question": "q"}, auth=("duty", "s3cret")).status_code == 200
        # Gradio's own login guards the page config
        assert c.get("/config").status_code == 401
        assert c.post("/login", data={"username": "duty", "password": "s3cret"}).status_code == 200
        assert c.get("/config").status_code == 200


def test_half_configured_auth_is_refused(settings):
    fake = ApiFake(Settings(data_dir=settings.paths.data_dir, auth_username="duty"))
    with pytest.raises(InputError, match="both"):
        create_app(fake, concurrency_limit=1, mode="extractive")


def test_generation_slots_follow_the_engine_pool(settings):
    class Engine:
        pool_plan = {"size": 3}
        loaded = False

        def available(self):
            return True

        def load(self):
            self.loaded = True

    engine = Engine()
    assistant = Container(settings, engine=engine).assistant  # the real front door around a stand-in engine
    assert assistant.generation_slots() == (3, "llm") and engine.loaded

    engine.available = lambda: False
    assert assistant.generation_slots() == (2, "extractive")

    def broken():
        raise ModelError("truncated")

    engine.available = lambda: True
    engine.load = broken
    assert assistant.generation_slots() == (2, "extractive")


def test_is_loopback():
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")


def test_the_system_tab_shows_store_integrity_drift_and_free_disk(ingested):
    """Issue 12 evidence: what `health` knows about the store reaches the System tab's rows - on the real
    store: a lost vector (drift), then a damaged manifest (integrity), with free disk alongside."""
    from neoc_assistant.serve.admin_handlers import SystemHandlers
    from neoc_assistant.serve.chat_handlers import RecentRequests
    from store_fixtures import corrupt_middle

    container = ingested
    system = SystemHandlers(container.assistant, RecentRequests())

    def rows() -> dict[str, str]:
        text = system.refresh()[0].replace("\\", "")  # undo Markdown escaping
        return {cells[1].strip(): "|".join(cells[2:]) for line in text.splitlines()
                if (cells := line.split("|")) and len(cells) > 3 and cells[1].strip() not in ("check", "---")}

    healthy = rows()
    assert "every chunk has its vector" in healthy["store"] and "quick_check ok" in healthy["integrity"]
    assert re.search(r"✓ \| [\d.]+ GB free", healthy["disk"]), healthy["disk"]
    container.vectors.delete_ids([sorted(container.vectors.ids())[0]])
    drifted = rows()
    assert "✓ degraded" in drifted["store"] and "1 chunk(s) have no vector" in drifted["store"]
    assert "ingest --repair" in drifted["store"]
    container.manifest.close()
    corrupt_middle(container.settings.paths.manifest_path)
    damaged = rows()
    assert damaged["integrity"].startswith(" ✗") and "ingest --rebuild" in damaged["integrity"], damaged


def test_the_status_line_says_what_is_wrong_with_a_model_path(make_container, tmp_path):
    """Issue 12.13: a NEOC_MODEL_PATH naming a folder read "No model installed" in the UI."""
    from neoc_assistant.serve.admin_handlers import status_line

    folder = tmp_path / "my-models"
    folder.mkdir()
    line = status_line(make_container(model_path=folder).assistant, 2, "extractive")
    assert "names the folder" in line and "No model installed" not in line, line
    line = status_line(make_container(model_path=None).assistant, 2, "extractive")
    assert "No model installed" in line, line
