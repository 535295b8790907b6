"""Settings: env vars beat the TOML file, which beats defaults; `config` prints the result."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from neoc_assistant.settings import Settings, bundled_embedding_model_path

from conftest import REPO_ROOT


def test_defaults_point_at_bundled_model_and_localhost():
    s = Settings()
    assert s.host == "127.0.0.1"
    assert s.embedding_model_path == bundled_embedding_model_path()
    assert (os.path.isdir(s.embedding_model_path)) and s.embedding_model_path.endswith("model")


def test_env_overrides_toml_overrides_default(tmp_path, monkeypatch):
    toml = tmp_path / "neoc.toml"
    toml.write_text('data_dir = "/srv/from-toml"\nhnsw_m = 24\nchunk_size_tokens = 180\n', encoding="utf-8")
    monkeypatch.setenv("NEOC_CONFIG", str(toml))
    monkeypatch.setenv("NEOC_HNSW_M", "32")
    s = Settings()
    assert str(s.data_dir) == "/srv/from-toml"  # from TOML
    assert s.hnsw_m == 32  # env beats TOML
    assert s.chunk_size_tokens == 180
    assert Settings(hnsw_m=8).hnsw_m == 8  # explicit argument beats both


def test_invalid_value_is_rejected(monkeypatch):
    import pydantic
    import pytest

    monkeypatch.setenv("NEOC_CHUNK_SIZE_TOKENS", "5000")
    with pytest.raises(pydantic.ValidationError):
        Settings()


def test_model_path_falls_back_to_first_gguf_in_models_dir(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    assert Settings(models_dir=models).resolved_model_path() is None
    (models / "b.gguf").write_bytes(b"GGUF")
    (models / "a.gguf").write_bytes(b"GGUF")
    assert Settings(models_dir=models).resolved_model_path() == models / "a.gguf"
    assert Settings(models_dir=models, model_path=tmp_path / "x.gguf").resolved_model_path() == tmp_path / "x.gguf"


def test_config_command_prints_effective_settings_with_password_masked(tmp_path):
    env = {**os.environ, "NEOC_DATA_DIR": str(tmp_path / "d"), "NEOC_AUTH_PASSWORD": "s3cret"}
    proc = subprocess.run(
        [sys.executable, "-m", "neoc_assistant", "config", "--json"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["data_dir"] == str(tmp_path / "d")
    assert data["auth_password"] == "***"
    assert data["hnsw_ef_search"] == Settings().hnsw_ef_search
