"""Bad model files give one actionable line (never a C-level crash); `models` CLI."""

from __future__ import annotations

import json
import shutil

import pytest
from generate_fixtures import engine_settings, tiny_model  # noqa: F401

from neoc_assistant.errors import ModelError
from neoc_assistant.cli import main
from neoc_assistant.generate import model_file, quantize
from neoc_assistant.generate.engine import GenerationEngine
from neoc_assistant.settings import Settings


def _one_line(exc: BaseException) -> str:
    msg = str(exc)
    assert msg and "\n" not in msg and "Traceback" not in msg
    return msg


def test_no_model_configured(tmp_path):
    eng = GenerationEngine(Settings(data_dir=tmp_path, models_dir=tmp_path / "models").generation)
    assert not eng.available() and eng.model_identity() is None
    with pytest.raises(ModelError) as info:
        eng.load()
    msg = _one_line(info.value)
    assert str(tmp_path / "models") in msg and "NEOC_MODEL_PATH" in msg and ".gguf" in msg


def test_missing_file(tmp_path):
    eng = GenerationEngine(engine_settings(tmp_path, tmp_path / "nope.gguf").generation)
    assert not eng.available()
    with pytest.raises(ModelError) as info:
        eng.load()
    msg = _one_line(info.value)
    assert "nope.gguf" in msg and "does not exist" in msg and "NEOC_MODEL_PATH" in msg


@pytest.mark.parametrize("fraction", [0.001, 0.3, 0.999])
def test_truncated_file(tmp_path, tiny_model, fraction):
    data = tiny_model.read_bytes()
    bad = tmp_path / "cut.gguf"
    bad.write_bytes(data[: max(30, int(len(data) * fraction))])
    eng = GenerationEngine(engine_settings(tmp_path, bad).generation)
    assert eng.available()  # a file is there; it's only checked on load
    with pytest.raises(ModelError) as info:
        eng.load()
    msg = _one_line(info.value)
    assert "truncated" in msg and "cut.gguf" in msg and "again" in msg
    assert not eng.pool_stats()["model_loaded"]


@pytest.mark.parametrize(
    ("content", "hint"),
    [
        (b"<!DOCTYPE html><html><body>Sign in</body></html>" * 10, "HTML"),
        (b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 1\n", "LFS"),
        (b"\x00" * 4096, "GGUF"),
        (b"hi", "bytes"),
    ],
)
def test_not_a_gguf(tmp_path, content, hint):
    bad = tmp_path / "model.gguf"
    bad.write_bytes(content)
    with pytest.raises(ModelError) as info:
        GenerationEngine(engine_settings(tmp_path, bad).generation).load()
    msg = _one_line(info.value)
    assert hint in msg and "model.gguf" in msg


def test_directory_instead_of_file(tmp_path):
    with pytest.raises(ModelError, match="not a file"):
        model_file.inspect_gguf(tmp_path)


def test_header_info_and_identity(tmp_path, tiny_model):
    info = model_file.inspect_gguf(tiny_model)
    assert info.architecture == "llama" and info.vocab_size == 2048 and info.chat_template
    assert info.data_end == info.file_size
    copy = tmp_path / tiny_model.name
    shutil.copy(tiny_model, copy)
    assert model_file.file_identity(copy) == model_file.file_identity(tiny_model)
    with open(copy, "r+b") as fh:  # same name and size, different last bytes
        fh.seek(-5, 2)
        fh.write(b"\x01\x02\x03\x04\x05")
    assert model_file.file_identity(copy) != model_file.file_identity(tiny_model)


def test_recommended_list_has_pinned_urls_and_checksums():
    assert {m.key for m in model_file.RECOMMENDED_MODELS} == {"qwen2.5-1.5b", "qwen2.5-3b", "llama3.2-3b"}
    for m in model_file.RECOMMENDED_MODELS:
        assert m.url.startswith("https://") and m.url.endswith(m.filename)
        assert m.sha256 is None or (len(m.sha256) == 64 and int(m.sha256, 16) >= 0)


def _cli(argv, capsys):
    from neoc_assistant.cli import main

    with pytest.raises(SystemExit) as info:
        main(argv)
        raise SystemExit(0)
    out = capsys.readouterr()
    return info.value.code or 0, out.out, out.err


def test_cli_verify_ok_and_checksum(tiny_model, capsys):
    code, out, _ = _cli(["models", "verify", str(tiny_model), "--json"], capsys)
    data = json.loads(out)
    assert code == 0 and data["valid_header"] and data["architecture"] == "llama"
    assert data["sha256"] == model_file.sha256_file(tiny_model) and data["checksum_ok"] is None
    code, out, err = _cli(["models", "verify", str(tiny_model), "--sha256", "0" * 64], capsys)
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and "download it again" in err
    code, out, _ = _cli(["models", "verify", str(tiny_model), "--sha256", data["sha256"]], capsys)
    assert code == 0 and "checksum matches" in out


def test_cli_verify_truncated_is_one_line(tmp_path, tiny_model, capsys):
    bad = tmp_path / "Qwen2.5-1.5B-Instruct-Q4_K_M.gguf"
    bad.write_bytes(tiny_model.read_bytes()[:5000])
    code, out, err = _cli(["models", "verify", str(bad)], capsys)
    assert code == 2 and err.startswith("error: ") and "truncated" in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_cli_list(tmp_path, tiny_model, capsys, monkeypatch):
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(tiny_model, models / "a-good.gguf")
    (models / "b-broken.gguf").write_bytes(tiny_model.read_bytes()[:3000])
    monkeypatch.setenv("NEOC_MODELS_DIR", str(models))
    monkeypatch.delenv("NEOC_MODEL_PATH", raising=False)
    from neoc_assistant.cli import common

    common.container.cache_clear()
    try:
        code, out, _ = _cli(["models", "list", "--json"], capsys)
    finally:
        common.container.cache_clear()
    data = json.loads(out)
    by_file = {e["file"]: e for e in data["local"]}
    assert code == 0
    assert by_file["a-good.gguf"]["valid"] and by_file["a-good.gguf"]["active"]
    assert not by_file["b-broken.gguf"]["valid"] and "truncated" in by_file["b-broken.gguf"]["problem"]
    assert len(data["recommended"]) == 3


def test_valid_gguf_of_unknown_architecture(tmp_path):
    """The header is fine, so llama.cpp gets it - and its own error becomes the one line."""
    import gguf
    import numpy as np

    path = tmp_path / "strange.gguf"
    w = gguf.GGUFWriter(str(path), "foo-arch")
    w.add_tensor("token_embd.weight", np.zeros((4, 8), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    eng = GenerationEngine(engine_settings(tmp_path, path).generation)
    with pytest.raises(ModelError) as info:
        eng.load()
    msg = _one_line(info.value)
    assert "unknown model architecture" in msg and "foo-arch" in msg and "strange.gguf" in msg
    assert not eng.pool_stats()["model_loaded"]


def test_slow_quant_type_is_named_and_converted(tmp_path, capsys):
    """SmolLM2 ships as Q4_1 (no fast CPU kernels): verify says so, convert makes a Q4_0 that loads."""
    from generate_fixtures import real_model

    source = real_model("smollm2-135m")
    with pytest.raises(SystemExit) as done:
        main(["models", "verify", str(source), "--no-checksum", "--json"])
    assert done.value.code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["quantization"] == "Q4_1" and "models convert" in report["quantization_advice"]

    target = tmp_path / "smol.Q4_0.gguf"
    with pytest.raises(SystemExit) as done:
        main(["models", "convert", str(source), "--out", str(target)])
    assert done.value.code == 0 and target.is_file()
    capsys.readouterr()
    info = model_file.inspect_gguf(target)
    assert quantize.file_type(info.metadata) == "Q4_0" and quantize.slow_type_advice(info.metadata, target) is None
    engine = GenerationEngine(engine_settings(tmp_path, target).generation)
    assert engine.generate([{"role": "user", "content": "Say hello."}], max_tokens=8)
    engine.close()
