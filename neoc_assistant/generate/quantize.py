"""Quantization types: which are slow on this kind of CPU, and converting with llama.cpp.

llama.cpp's CPU backend *repacks* some quantization types at load time into
interleaved layouts with AVX2/AVX-512 kernels (Q4_0, Q4_K, IQ4_NL, Q8_0);
others (Q4_1, Q5_0, Q5_1, Q2_K, Q3_K ...) run on the generic kernels.
Measured on the 2-core AVX-512 VNNI machine (``scripts/bench_batched.py``):
SmolLM2-135M as shipped (Q4_1) prefills ~3.5x slower than the same model
requantized to Q4_0. Prefill dominates a RAG answer's time to first token, so
``models install`` and ``models verify`` name a slow type and ``models
convert`` rewrites the file with ``llama_model_quantize``. Requantizing an
already-quantized file loses a little more precision; ``scripts/eval_answers.py``
measures whether answers change (see the README).
"""

from __future__ import annotations

import os
from pathlib import Path

from neoc_assistant.errors import ModelError

# llama.cpp's llama_ftype values (llama.h) for the types people meet in GGUF files
FTYPES = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K", 11: "Q3_K_S",
    12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S", 17: "Q5_K_M", 18: "Q6_K",
    25: "IQ4_NL", 30: "IQ4_XS", 32: "BF16",
}
BY_NAME = {name: code for code, name in FTYPES.items()}
# Types with repacked CPU kernels; converting to these is offered.
FAST_TYPES = ("Q4_0", "Q4_K_M", "Q4_K_S", "IQ4_NL", "Q8_0")
SLOW_TYPES = ("Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K_S", "Q3_K_M", "Q3_K_L")


def file_type(metadata: dict) -> str:
    code = metadata.get("general.file_type")
    return FTYPES.get(int(code), f"type {code}") if code is not None else "unknown"


def slow_type_advice(metadata: dict, path: Path) -> str | None:
    """A one-line hint when the file's quantization runs on generic (slow) kernels."""
    kind = file_type(metadata)
    if kind not in SLOW_TYPES:
        return None
    return (f"{kind} has no fast (repacked) CPU kernels in llama.cpp: prompts are evaluated several times "
            f"slower than with Q4_0. Convert it once with `python -m neoc_assistant models convert {path} "
            f"--to Q4_0` (a little more quantization loss; measured in the README)")


def quantize(source: Path, target: Path, to: str = "Q4_0", threads: int = 0) -> Path:
    """Write ``target`` as ``source`` requantized to ``to`` (via a temporary file)."""
    import llama_cpp

    if to not in BY_NAME:
        raise ModelError(f"unknown quantization type {to!r}: use one of {', '.join(FAST_TYPES)}")
    if target.exists():
        raise ModelError(f"{target} already exists: move it away first")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = BY_NAME[to]
    params.nthread = threads
    params.allow_requantize = True
    partial = target.with_name(target.name + ".partial")
    try:
        rc = llama_cpp.llama_model_quantize(str(source).encode(), str(partial).encode(), params)
        if rc != 0:
            raise ModelError(f"llama.cpp could not quantize {source} to {to} (code {rc})")
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target
