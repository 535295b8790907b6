"""Issue 12.13: what a hurried operator types reaches the CLI intact or is refused in one line.

The real CLI in a subprocess: the bytes of an argument are decoded by Python's
own start-up, which is the step that turned invalid UTF-8 into a traceback.
"""

from __future__ import annotations

import os

from ingest_fixtures import run_cli


def test_invalid_utf8_in_an_argument_is_one_line_and_exit_2(tmp_path):
    """``search $'\\xff\\xfe'`` printed a UnicodeEncodeError traceback from deep inside the search."""
    proc = run_cli(["search", os.fsdecode(b"\xff\xfe")], tmp_path / "d")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert proc.stderr.startswith("error: argument 2 is not valid UTF-8")


def test_a_usage_error_is_clicks_message_not_a_traceback(tmp_path):
    """typer bundles its own click, so ``except click.ClickException`` missed its usage errors."""
    proc = run_cli(["search", "rescue", "boats"], tmp_path / "d")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "unexpected extra argument" in proc.stderr


def test_models_verify_names_what_is_wrong_with_neoc_model_path(tmp_path):
    folder = tmp_path / "models-folder"
    folder.mkdir()
    proc = run_cli(["models", "verify"], tmp_path / "d", NEOC_MODEL_PATH=str(folder))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert f"NEOC_MODEL_PATH names the folder {folder}, not a .gguf file" in proc.stderr
    proc = run_cli(["models", "verify"], tmp_path / "d", NEOC_MODEL_PATH=str(tmp_path / "typo.gguf"))
    assert proc.returncode == 2 and "typo.gguf, which does not exist" in proc.stderr
