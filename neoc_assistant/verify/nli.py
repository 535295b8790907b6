"""Optional entailment check with a local NLI cross-encoder (none ships; nothing is downloaded).

Word overlap and embedding similarity cannot see that "Level 1 is authorised
by the NEOC Chief" contradicts a row naming the Secretary; an NLI model can.
Set ``NEOC_NLI_MODEL_PATH`` to a sentence-transformers ``CrossEncoder``
directory trained on NLI (e.g. a copy of ``cross-encoder/nli-deberta-v3-xsmall``
brought on a USB stick); the label called "entailment" in its config is used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from neoc_assistant.errors import ModelError


class CrossEncoderEntailment:
    def __init__(self, path: str):
        self.path = Path(path)
        self._model = None
        self._index: int | None = None

    def _load(self):
        if self._model is None:
            if not self.path.is_dir():
                raise ModelError(f"NLI model directory not found: {self.path} (NEOC_NLI_MODEL_PATH)")
            from sentence_transformers import CrossEncoder

            model = CrossEncoder(str(self.path), device="cpu", local_files_only=True)
            labels = {int(k): str(v).lower() for k, v in (model.config.id2label or {}).items()}
            index = next((k for k, v in labels.items() if v.startswith("entail")), None)
            if index is None:
                raise ModelError(f"{self.path} is not an NLI model: its labels {sorted(labels.values())} "
                                 "have no 'entailment'")
            self._model, self._index = model, index
        return self._model

    def entailment(self, premises: Sequence[str], hypotheses: Sequence[str]) -> np.ndarray:
        model = self._load()
        logits = np.asarray(model.predict(list(zip(premises, hypotheses)), apply_softmax=False))
        logits = logits.reshape(len(premises), -1)
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        return (exp / exp.sum(axis=1, keepdims=True))[:, self._index]
