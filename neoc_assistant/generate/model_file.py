"""The GGUF model file: validation, identity, checksums and the recommended list.

Why validate in Python first: llama.cpp reads a truncated or foreign file
with C code, which at best prints pages of log lines and returns NULL, and at
worst reads past the end of a memory map. A duty officer must instead get one
line saying what was expected where and how to fix it. So before any file is
handed to llama.cpp we parse the GGUF header ourselves (magic, version, every
metadata entry, every tensor descriptor), compute where the last tensor's
data must end, and compare that with the size on disk. This is a pure-Python
streaming parse over an ``mmap`` (about 0.1 s even for a 150k-token
vocabulary) using the ``gguf`` library's type tables, so it also works before
llama.cpp is imported, e.g. for ``models list``/``models verify``.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from neoc_assistant.errors import ModelError

GGUF_MAGIC = b"GGUF"
_SUPPORTED_VERSIONS = (2, 3)
_FIX = "see models/README.md"


@dataclass(frozen=True)
class RecommendedModel:
    """A model known to work well on a 2-core, 8 GB laptop, pinned to one upload."""

    key: str
    title: str
    filename: str
    url: str  # pinned to a repository revision so the checksum below stays valid
    sha256: str | None  # None = not verified: say so rather than invent one
    approx_size_mb: int
    ram_hint: str
    checksum_source: str = ""


RECOMMENDED_MODELS: tuple[RecommendedModel, ...] = (
    RecommendedModel(
        key="qwen2.5-1.5b",
        title="Qwen2.5 1.5B Instruct Q4_K_M (default: fastest, ~1.5 GB RAM in use)",
        filename="Qwen2.5-1.5B-Instruct-Q4_K_M.gguf",
        url="https://huggingface.co/bartowski/Qwen2.5-1.5B-Instruct-GGUF/resolve/"
        "85553858e3522ce5b531285b2202bdb40fab1624/Qwen2.5-1.5B-Instruct-Q4_K_M.gguf",
        sha256="50961d9b7d3b89e46be230528fc66d38bbdda8ac3748323dd34f129a714124fc",
        approx_size_mb=986,
        ram_hint="4 GB RAM laptops and up",
        checksum_source="Hugging Face LFS pointer of bartowski/Qwen2.5-1.5B-Instruct-GGUF @ 8555385",
    ),
    RecommendedModel(
        key="qwen2.5-3b",
        title="Qwen2.5 3B Instruct Q4_K_M (better answers, ~2.5 GB RAM in use)",
        filename="Qwen2.5-3B-Instruct-Q4_K_M.gguf",
        url="https://huggingface.co/bartowski/Qwen2.5-3B-Instruct-GGUF/resolve/"
        "254600e47ea694216f6108325376ce5b35d456a1/Qwen2.5-3B-Instruct-Q4_K_M.gguf",
        sha256="9c9f56a391a3abbd5b89d0245bf6106081bcc3173119d4229235dd9d23253f94",
        approx_size_mb=1930,
        ram_hint="8 GB RAM laptops",
        checksum_source="Hugging Face LFS pointer of bartowski/Qwen2.5-3B-Instruct-GGUF @ 254600e",
    ),
    RecommendedModel(
        key="llama3.2-3b",
        title="Llama 3.2 3B Instruct Q4_K_M (alternative, ~2.5 GB RAM in use)",
        filename="Llama-3.2-3B-Instruct-Q4_K_M.gguf",
        url="https://huggingface.co/bartowski/Llama-3.2-3B-Instruct-GGUF/resolve/"
        "c346bfc2029e79ba6d7edf026cf01fe44242db0d/Llama-3.2-3B-Instruct-Q4_K_M.gguf",
        sha256="6c1a2b41161032677be168d354123594c0e6e67d2b9227c84f296ad037c728ff",
        approx_size_mb=2020,
        ram_hint="8 GB RAM laptops (Llama 3.2 community licence)",
        checksum_source="Hugging Face LFS pointer of bartowski/Llama-3.2-3B-Instruct-GGUF @ c346bfc",
    ),
)


def recommended_by_filename(name: str) -> RecommendedModel | None:
    for model in RECOMMENDED_MODELS:
        if model.filename.lower() == name.lower():
            return model
    return None


@dataclass
class GGUFInfo:
    """What the header says; enough to size the pool and pick a chat template."""

    path: Path
    file_size: int
    version: int
    n_tensors: int
    data_end: int  # bytes the file must have for every tensor to be complete
    metadata: dict[str, object] = field(default_factory=dict)  # scalars and strings only
    array_lengths: dict[str, int] = field(default_factory=dict)

    @property
    def architecture(self) -> str:
        return str(self.metadata.get("general.architecture", "unknown"))

    def arch_value(self, suffix: str, default=None):
        return self.metadata.get(f"{self.architecture}.{suffix}", default)

    @property
    def chat_template(self) -> str | None:
        value = self.metadata.get("tokenizer.chat_template")
        return value if isinstance(value, str) and value.strip() else None

    @property
    def name(self) -> str:
        return str(self.metadata.get("general.name", self.path.stem))

    @property
    def vocab_size(self) -> int:
        return int(self.array_lengths.get("tokenizer.ggml.tokens", 0))


class _Reader:
    __slots__ = ("buf", "pos", "size")

    def __init__(self, buf, size: int):
        self.buf, self.pos, self.size = buf, 0, size

    def need(self, n: int) -> None:
        if n < 0 or self.pos + n > self.size:
            raise _Truncated(self.pos + max(n, 0))

    def unpack(self, fmt: str):
        n = struct.calcsize(fmt)
        self.need(n)
        value = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += n
        return value[0] if len(value) == 1 else value

    def string(self, keep: bool = True) -> str | None:
        n = self.unpack("<Q")
        self.need(n)
        start = self.pos
        self.pos += n
        if not keep:
            return None
        return bytes(self.buf[start:start + n]).decode("utf-8", errors="replace")


class _Truncated(Exception):
    def __init__(self, needed: int):
        super().__init__(needed)
        self.needed = needed


class _Malformed(Exception):
    pass


# GGUF value type -> struct format for fixed-size scalars.
_SCALAR_FMT = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9


def _skip_or_read_value(r: _Reader, vtype: int, keep: bool):
    if vtype in _SCALAR_FMT:
        return r.unpack(_SCALAR_FMT[vtype])
    if vtype == _STRING:
        return r.string(keep)
    if vtype == _ARRAY:
        item_type = r.unpack("<I")
        count = r.unpack("<Q")
        if count > r.size:
            raise _Malformed(f"array of {count} items")
        if item_type in _SCALAR_FMT:
            r.need(count * struct.calcsize(_SCALAR_FMT[item_type]))
            r.pos += count * struct.calcsize(_SCALAR_FMT[item_type])
        elif item_type == _STRING:
            buf, pos, size = r.buf, r.pos, r.size
            for _ in range(count):
                if pos + 8 > size:
                    raise _Truncated(pos + 8)
                (n,) = struct.unpack_from("<Q", buf, pos)
                pos += 8 + n
            if pos > size:
                raise _Truncated(pos)
            r.pos = pos
        elif item_type == _ARRAY:
            for _ in range(count):
                _skip_or_read_value(r, _ARRAY, False)
        else:
            raise _Malformed(f"unknown array item type {item_type}")
        return ("__array__", count)
    raise _Malformed(f"unknown value type {vtype}")


def _quant_sizes() -> dict[int, tuple[int, int]]:
    import gguf

    return {int(k): v for k, v in gguf.GGML_QUANT_SIZES.items()}


def missing_model_message(settings_models_dir: Path | None = None, path: Path | None = None) -> str:
    where = f"at {path}" if path else f"in {settings_models_dir}"
    return (
        f"no GGUF chat model found {where}: copy a .gguf file (e.g. Qwen2.5-1.5B-Instruct-Q4_K_M.gguf) "
        f"into {settings_models_dir or 'models/'} or set NEOC_MODEL_PATH ({_FIX})"
    )


def configured_path_problem(path: Path | None) -> str | None:
    """What is wrong with the ``NEOC_MODEL_PATH`` an operator set, or None. A folder or a typo there
    used to look exactly like "no model installed" - the notice then sent people to install one."""
    if path is None or Path(path).is_file():
        return None
    path = Path(path)
    if path.is_dir():
        found = sorted(p.name for p in path.glob("*.gguf"))[:3]
        inside = f" (it holds {', '.join(found)})" if found else " (it holds no .gguf file)"
        return f"NEOC_MODEL_PATH names the folder {path}, not a .gguf file{inside}: point it at the model file"
    if not path.exists():
        return f"NEOC_MODEL_PATH names {path}, which does not exist: correct the path or copy the .gguf there"
    return f"NEOC_MODEL_PATH names {path}, which is not a regular file: point it at a .gguf file"


def inspect_gguf(path: str | os.PathLike) -> GGUFInfo:
    """Parse and check a GGUF file; raise ``ModelError`` (one line) if it is unusable."""
    path = Path(path)
    if not path.exists():
        raise ModelError(
            f"model file {path} does not exist: copy a .gguf chat model there or point NEOC_MODEL_PATH "
            f"at one ({_FIX})"
        )
    if not path.is_file():
        raise ModelError(f"model path {path} is not a file: NEOC_MODEL_PATH must name a .gguf file ({_FIX})")
    size = path.stat().st_size
    if size < 24:
        raise ModelError(
            f"{path} is not a usable GGUF model ({size} bytes): the download failed or was cut short - "
            f"download it again ({_FIX})"
        )
    try:
        with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            return _parse(path, mm, size)
    except ModelError:
        raise
    except _Truncated as exc:
        raise ModelError(
            f"{path} is truncated ({size:,} bytes on disk, at least {exc.needed:,} expected): "
            f"the download or copy was interrupted - copy/download it again and check it with "
            f"`python -m neoc_assistant models verify {path}`"
        ) from None
    except _Malformed as exc:
        raise ModelError(
            f"{path} has a corrupt GGUF header ({exc}): download the model again ({_FIX})"
        ) from None
    except OSError as exc:
        raise ModelError(f"cannot read model file {path}: {exc.strerror or exc} - check the file permissions") from None


def _parse(path: Path, mm, size: int) -> GGUFInfo:
    r = _Reader(mm, size)
    magic = bytes(mm[0:4])
    if magic != GGUF_MAGIC:
        hint = ""
        head = bytes(mm[0:64]).lstrip().lower()
        if head.startswith((b"<!doctype", b"<html")):
            hint = " (it is an HTML page - the download link probably needed a login or was wrong)"
        elif head.startswith(b"version https://git-lfs"):
            hint = " (it is a Git LFS pointer, not the model - download the file itself)"
        elif magic in (b"ggjt", b"ggml", b"ggmf", b"tjgg", b"lmgg"):
            hint = " (old GGML format - download the GGUF version of the model)"
        raise ModelError(
            f"{path} is not a GGUF model file: it starts with {magic!r} instead of b'GGUF'{hint}; "
            f"put a .gguf chat model in models/ or set NEOC_MODEL_PATH ({_FIX})"
        )
    r.pos = 4
    version = r.unpack("<I")
    if version not in _SUPPORTED_VERSIONS:
        raise ModelError(
            f"{path} is GGUF version {version}, this build reads versions 2-3: "
            f"download a current .gguf of the model ({_FIX})"
        )
    n_tensors = r.unpack("<Q")
    n_kv = r.unpack("<Q")
    if n_tensors > 1_000_000 or n_kv > 1_000_000:
        raise _Malformed(f"{n_tensors} tensors / {n_kv} metadata entries")
    metadata: dict[str, object] = {}
    array_lengths: dict[str, int] = {}
    for _ in range(n_kv):
        key: str = r.string()  # type: ignore[assignment]  # kept: never None
        vtype = r.unpack("<I")
        keep = key in ("general.architecture", "general.name", "tokenizer.chat_template") or not key.startswith("tokenizer.ggml.")
        value = _skip_or_read_value(r, vtype, keep)
        if isinstance(value, tuple) and value and value[0] == "__array__":
            array_lengths[key] = value[1]
        elif value is not None:
            metadata[key] = value
    alignment = int(metadata.get("general.alignment", 32) or 32)  # type: ignore[call-overload]
    if alignment <= 0 or alignment & (alignment - 1):
        raise _Malformed(f"alignment {alignment}")
    sizes = _quant_sizes()
    tensor_end = 0
    for _ in range(n_tensors):
        name = r.string()
        n_dims = r.unpack("<I")
        if n_dims > 8:
            raise _Malformed(f"tensor {name} has {n_dims} dimensions")
        dims = [r.unpack("<Q") for _ in range(n_dims)]
        ttype = r.unpack("<I")
        offset = r.unpack("<Q")
        if ttype not in sizes:
            raise ModelError(
                f"{path} uses tensor type {ttype} (tensor {name}) that this llama.cpp build does not know: "
                f"use a standard quantization such as Q4_K_M ({_FIX})"
            )
        block, type_size = sizes[ttype]
        n_elems = 1
        for d in dims:
            n_elems *= d
        if n_elems % block:
            raise _Malformed(f"tensor {name} size {n_elems} not a multiple of its block size")
        tensor_end = max(tensor_end, offset + n_elems // block * type_size)
    data_start = (r.pos + alignment - 1) // alignment * alignment
    data_end = data_start + tensor_end
    if n_tensors == 0:
        raise ModelError(f"{path} contains no tensors (vocabulary-only GGUF?): use a full chat model ({_FIX})")
    if data_end > size:
        raise _Truncated(data_end)
    return GGUFInfo(path=path, file_size=size, version=version, n_tensors=n_tensors, data_end=data_end,
                    metadata=metadata, array_lengths=array_lengths)


_IDENTITY_CHUNK = 1 << 20


def file_identity(path: str | os.PathLike) -> str:
    """Stable id for cache keys: name + size + BLAKE2 of the first and last MiB.

    Cheap (two 1 MiB reads) yet changes whenever the model is replaced by a
    different file, even one with the same name; a full SHA-256 of a 2 GB file
    would take ~10 s on the target laptop.
    """
    path = Path(path)
    size = path.stat().st_size
    h = hashlib.blake2b(digest_size=12)
    h.update(str(size).encode())
    with open(path, "rb") as fh:
        h.update(fh.read(_IDENTITY_CHUNK))
        if size > _IDENTITY_CHUNK:
            fh.seek(max(size - _IDENTITY_CHUNK, _IDENTITY_CHUNK))
            h.update(fh.read(_IDENTITY_CHUNK))
    return f"{path.name}:{size}:{h.hexdigest()}"


def sha256_file(path: str | os.PathLike, progress: Callable[[int], None] | None = None,
                chunk: int = 8 << 20) -> str:
    """Full SHA-256 (the published checksum); ``progress(n_bytes)`` after each chunk."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while True:
            data = fh.read(chunk)
            if not data:
                break
            h.update(data)
            if progress:
                progress(len(data))
    return h.hexdigest()
