"""Health: a real Container on a temp data dir with a small real ingest; the `health` command's exit status."""

from __future__ import annotations

import json
import shutil

import pytest

from neoc_assistant.cli import common, main
from neoc_assistant.container import Container
from neoc_assistant.settings import Settings
from tests.conftest import KB_DIR


@pytest.fixture(scope="module")
def ingested_dir(embedder, tmp_path_factory):
    """One small real ingest (two short documents) shared by the read-only checks below."""
    root = tmp_path_factory.mktemp("health")
    kb = root / "kb"
    kb.mkdir()
    for name in ("07-cold-wave-response-sop.md", "08-epidemic-response-sop.md"):
        shutil.copy(KB_DIR / name, kb / name)
    c = Container(Settings(data_dir=root / "data", kb_dir=kb, models_dir=root / "models"), embedder=embedder)
    summary = c.assistant.ingest()
    assert summary.ok and summary.to_dict()["chunks"] > 0
    return root


@pytest.fixture
def ingested(ingested_dir, embedder):
    return _container(ingested_dir, embedder)


def _container(root, embedder, **kw) -> Container:
    base = {"data_dir": root / "data", "kb_dir": root / "kb", "models_dir": root / "models"}
    return Container(Settings(**{**base, **kw}), embedder=embedder)


def test_retrieval_only_is_healthy_but_degraded(ingested):
    result = ingested.assistant.health()
    assert result["healthy"] is True
    assert result["status"] == "degraded"
    model = result["checks"]["model"]
    assert model["ok"] and model["degraded"] and model["mode"] == "extractive" and not model["loaded"]
    store = result["checks"]["store"]
    assert store["ok"] and store["reachable"] and not store["degraded"]
    counts = ingested.manifest.counts()
    assert store["chunks"] == counts["chunks"] > 0 and store["documents"] == 2
    assert store["vectors"] == ingested.vectors.count() == counts["chunks"]
    assert result["checks"]["disk"]["ok"] and result["checks"]["disk"]["free_bytes"] > 0
    assert result["checks"]["memory"]["ok"]
    json.dumps(result)  # serialisable for `health --json`


def test_missing_store_is_unhealthy_and_not_created(make_container, tmp_path):
    c = make_container()
    result = c.assistant.health()
    assert result["healthy"] is False and result["status"] == "unhealthy"
    assert result["checks"]["store"]["reachable"] is False
    assert "ingest" in result["checks"]["store"]["message"]
    assert not (tmp_path / "data").exists()  # health reports; it does not initialise a store


def test_empty_store_is_unhealthy(make_container, tmp_path):
    (tmp_path / "kb").mkdir()
    c = make_container()
    c.assistant.ingest()
    store = c.assistant.health()["checks"]["store"]
    assert store["reachable"] is True and store["chunks"] == 0 and store["ok"] is False


def test_configured_model_missing_or_corrupt_is_unhealthy(ingested_dir, embedder, tmp_path):
    c = _container(ingested_dir, embedder, model_path=tmp_path / "models" / "gone.gguf")
    model = c.assistant.health()["checks"]["model"]
    assert model["ok"] is False and model["available"] is False and "gone.gguf" in model["message"]

    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"NOTAGGUF" * 100)
    result = _container(ingested_dir, embedder, model_path=bad).assistant.health()
    assert result["healthy"] is False and result["checks"]["model"]["ok"] is False
    assert "GGUF" in result["checks"]["model"]["message"]
    assert result["checks"]["store"]["ok"] is True  # the other checks still run


def test_disk_minimum(ingested):
    result = ingested.assistant.health(min_free_disk_bytes=1 << 60)
    assert result["healthy"] is False and result["checks"]["disk"]["ok"] is False


def _run(argv) -> int:
    """Exit status of the real CLI entry point."""
    try:
        main(argv)
    except SystemExit as exc:
        return exc.code or 0
    return 0


def test_health_command_exit_status(ingested_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NEOC_DATA_DIR", str(ingested_dir / "data"))
    monkeypatch.setenv("NEOC_MODELS_DIR", str(ingested_dir / "models"))
    monkeypatch.delenv("NEOC_MODEL_PATH", raising=False)
    common.container.cache_clear()
    try:
        assert _run(["health", "--json"]) == 0
        out = json.loads(capsys.readouterr().out)
        assert out["healthy"] is True and out["status"] == "degraded"

        common.container.cache_clear()
        assert _run(["health", "--min-free-mb", str(1 << 40)]) == 1
        text = capsys.readouterr().out
        assert "status: unhealthy" in text and "disk" in text and "FAIL" in text

        common.container.cache_clear()
        monkeypatch.setenv("NEOC_DATA_DIR", str(tmp_path / "elsewhere"))
        assert _run(["health"]) == 1
    finally:
        common.container.cache_clear()


def test_ask_records_its_real_outcome(ingested, tmp_path):
    """End to end through the real Assistant: `ask` feeds the metrics the chain's true outcome.

    (A regression guard for ``ask()`` returning at the "done" event: the suspended
    ``ask_stream`` generator is then closed, and must not be counted as cancelled.)
    """
    import gc

    answer = ingested.assistant.ask("What should shelters do to protect people during a cold wave?")
    assert answer.mode == "extractive"
    gc.collect()
    snap = ingested.metrics.snapshot()
    assert snap["outcomes"] == {"extractive": 1}, snap["outcomes"]
    assert snap["latency_ms"]["total"]["n"] == 1 and snap["cancelled"] == 0


def test_a_model_path_naming_a_folder_or_nothing_is_said_in_health_and_in_the_answer(ingested_dir, embedder,
                                                                                       tmp_path):
    """Issue 12.13: NEOC_MODEL_PATH at a folder or a typo answered "No language model is installed"."""
    question = "What should shelters do to protect people during a cold wave?"
    for path, says in ((tmp_path, f"names the folder {tmp_path}, not a .gguf file"),
                       (tmp_path / "typo.gguf", "typo.gguf, which does not exist")):
        c = _container(ingested_dir, embedder, model_path=path)
        model = c.assistant.health()["checks"]["model"]
        assert model["ok"] is False and says in model["message"], model
        answer = c.assistant.ask(question, use_cache=False)
        assert answer.mode == "extractive" and says in answer.notice, answer.notice
        assert "No language model is installed" not in answer.notice
