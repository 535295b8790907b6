"""The optional cross-encoder reranker: a local sentence-transformers ``CrossEncoder`` directory.

Loaded only when ``retrieval.reranker_model_path`` is set and the first search
needs it; a wrong path is one actionable line, not a traceback.
"""

from __future__ import annotations

from pathlib import Path

from neoc_assistant import runtime
from neoc_assistant.errors import ModelError


def load_cross_encoder(path: str, device: str, max_length: int):
    runtime.configure_process()
    from sentence_transformers import CrossEncoder

    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise ModelError(
            f"Reranker model directory not found: {folder}. Point NEOC_RERANKER_MODEL_PATH at a local "
            "sentence-transformers CrossEncoder folder, or unset it to use the built-in fallback reranker."
        )
    try:
        return CrossEncoder(str(folder), device=device, max_length=max_length, local_files_only=True)
    except Exception as exc:  # noqa: BLE001 - one actionable line
        raise ModelError(f"Could not load the reranker model at {folder}: {exc}") from exc
