"""Settings: sections, old flat names everywhere, env vars beat the TOML file, which beats defaults; `config`."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from neoc_assistant.settings import Settings, bundled_embedding_model_path
from neoc_assistant.settings_legacy import LEGACY_NAMES

from conftest import REPO_ROOT


def test_defaults_point_at_bundled_model_and_localhost():
    s = Settings()
    assert s.serve.host == "127.0.0.1"
    assert s.embedding.model_path == bundled_embedding_model_path()
    assert (os.path.isdir(s.embedding.model_path)) and s.embedding.model_path.endswith("model")


def test_env_overrides_toml_overrides_default(tmp_path, monkeypatch):
    toml = tmp_path / "neoc.toml"
    toml.write_text('data_dir = "/srv/from-toml"\nhnsw_m = 24\nchunk_size_tokens = 180\n', encoding="utf-8")
    monkeypatch.setenv("NEOC_CONFIG", str(toml))
    monkeypatch.setenv("NEOC_HNSW_M", "32")
    s = Settings()
    assert str(s.paths.data_dir) == "/srv/from-toml"  # from TOML
    assert s.store.hnsw_m == 32  # env beats TOML
    assert s.store.chunk_size_tokens == 180
    assert Settings(hnsw_m=8).store.hnsw_m == 8  # explicit argument beats both


def test_invalid_value_is_rejected(monkeypatch):
    import pydantic
    import pytest

    monkeypatch.setenv("NEOC_CHUNK_SIZE_TOKENS", "5000")
    with pytest.raises(pydantic.ValidationError):
        Settings()


def test_model_path_falls_back_to_first_gguf_in_models_dir(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    assert Settings(models_dir=models).generation.resolved_model_path() is None
    (models / "b.gguf").write_bytes(b"GGUF")
    (models / "a.gguf").write_bytes(b"GGUF")
    assert Settings(models_dir=models).generation.resolved_model_path() == models / "a.gguf"
    assert (Settings(models_dir=models, model_path=tmp_path / "x.gguf").generation.resolved_model_path()
            == tmp_path / "x.gguf")


def test_config_command_prints_effective_settings_with_password_masked(tmp_path):
    env = {**os.environ, "NEOC_DATA_DIR": str(tmp_path / "d"), "NEOC_AUTH_PASSWORD": "s3cret"}
    proc = subprocess.run(
        [sys.executable, "-m", "neoc_assistant", "config", "--json"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["paths"]["data_dir"] == str(tmp_path / "d")
    assert data["serve"]["auth_password"] == "***"
    assert data["store"]["hnsw_ef_search"] == Settings().store.hnsw_ef_search
    text = subprocess.run([sys.executable, "-m", "neoc_assistant", "config"], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=120).stdout
    assert "[generation]" in text and "n_ctx = 4096" in text and "s3cret" not in text


# -- sections and the old flat names -------------------------------------------------------------------
def test_every_old_name_points_at_a_real_field_and_new_sections_have_none():
    s = Settings()
    for old, (section, field) in LEGACY_NAMES.items():
        assert field in type(getattr(s, section)).model_fields, old
    # settings added after the sections existed are sectioned only (LEGACY_NAMES is frozen)
    assert not [old for old, (section, _) in LEGACY_NAMES.items() if section == "reader"]
    assert Settings(prompt_statements=2).generation.prompt_extracts == 2  # the renamed knob keeps its old name


def test_old_flat_names_as_constructor_arguments():
    s = Settings(n_ctx=1024, data_dir="/tmp/neoc-x", cache_enabled=False, verify_min_sum=1.2, retrieval_top_k=7,
                 embedding_batch_size=8, host="0.0.0.0", metrics_window=50)
    assert s.generation.n_ctx == 1024 and str(s.paths.data_dir) == "/tmp/neoc-x"
    assert s.cache.enabled is False and s.verification.min_sum == 1.2 and s.retrieval.top_k == 7
    assert s.embedding.batch_size == 8 and s.serve.host == "0.0.0.0" and s.monitoring.metrics_window == 50
    assert Settings.model_validate({"n_ctx": 777}).generation.n_ctx == 777
    with pytest.raises(Exception):
        Settings(n_ctx=10)  # still validated by the section's rules


def test_old_and_sectioned_env_vars(monkeypatch):
    monkeypatch.setenv("NEOC_N_CTX", "2048")
    monkeypatch.setenv("NEOC_CACHE_ENABLED", "false")
    monkeypatch.setenv("NEOC_VERIFY_MIN_SUM", "1.25")
    monkeypatch.setenv("NEOC_GENERATION__MAX_TOKENS", "99")
    monkeypatch.setenv("NEOC_RETRIEVAL__MMR_LAMBDA", "0.5")
    s = Settings()
    assert (s.generation.n_ctx, s.generation.max_tokens) == (2048, 99)
    assert s.cache.enabled is False and s.verification.min_sum == 1.25 and s.retrieval.mmr_lambda == 0.5
    monkeypatch.setenv("NEOC_GENERATION__N_CTX", "3000")
    assert Settings().generation.n_ctx == 3000  # the sectioned name beats the flat one
    assert Settings(n_ctx=512).generation.n_ctx == 512  # a constructor argument beats both
    assert Settings(generation={"n_ctx": 640}).generation.n_ctx == 640


def test_toml_flat_keys_and_sections(tmp_path, monkeypatch):
    toml = tmp_path / "neoc.toml"
    toml.write_text('n_ctx = 1024\ncache_similarity_threshold = 0.9\nkb_dir = "/srv/docs"\n\n'
                    '[generation]\nmax_tokens = 111\n\n[serve]\nport = 8000\n', encoding="utf-8")
    monkeypatch.setenv("NEOC_CONFIG", str(toml))
    s = Settings()
    assert (s.generation.n_ctx, s.generation.max_tokens) == (1024, 111)
    assert s.cache.similarity_threshold == 0.9 and str(s.paths.kb_dir) == "/srv/docs" and s.serve.port == 8000
    monkeypatch.setenv("NEOC_N_CTX", "2048")  # an env var (old name) beats the TOML file
    monkeypatch.setenv("NEOC_SERVE__PORT", "8001")
    s = Settings()
    assert s.generation.n_ctx == 2048 and s.serve.port == 8001 and s.generation.max_tokens == 111
