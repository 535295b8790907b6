"""The bundle file: a zip with a signed JSON manifest that names the SHA-256 of every other member.

Why this shape: a single file survives a USB stick and a chat upload; the
manifest is small, so it is what gets signed (``signature.json`` holds the
Ed25519 signature over its exact bytes and the key's id), and because it lists
the hash and size of every payload member, one signature covers them all
without signing hundreds of MB. Members:

* ``manifest.json`` - what the bundle is: ``kb_version`` it produces, the
  ``base_version`` a delta applies to (null: a full bundle), the embedding
  model and pipeline the vectors were made with, the target state (every
  source and its document hash), the sources removed, and the members' hashes;
* ``documents.jsonl`` - one line per document the laptop may lack: its record
  and its chunks (text, section, page, ...) in order;
* ``vectors.npy`` - float32 rows, one per chunk, in the order of
  ``documents.jsonl`` (the laptop never re-embeds);
* ``signature.json``.

Reading is defensive: only these four names are accepted (no path is ever
extracted, so a ``../`` name cannot land anywhere, and it is refused anyway),
each member's declared size is checked against ``bundles.*`` limits before it
is read (``ingest/packages.py``'s zip-bomb checks), at most that many bytes are
read, and its SHA-256 must match the manifest's.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from neoc_assistant.errors import InputError
from neoc_assistant.ingest.packages import MB, PackageLimits, check_members

FORMAT = "neoc-kb-bundle"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SIGNATURE = "signature.json"
DOCUMENTS = "documents.jsonl"
VECTORS = "vectors.npy"
PAYLOAD = (DOCUMENTS, VECTORS)
MEMBERS = {MANIFEST, SIGNATURE, *PAYLOAD}
SMALL_MEMBER_BYTES = 64 * MB  # manifest.json and signature.json: their own cap, far below the payload's


@dataclass
class BundleManifest:
    """The signed description of a bundle (``manifest.json``)."""

    kb_version: str
    base_version: str | None  # None: a full bundle (replaces the laptop's knowledge base)
    model_id: str
    pipeline: str
    dimension: int
    created_at: float
    files: list[dict[str, Any]]  # the target state: every file record (source, doc_hash, size, ...)
    removed: list[str] = field(default_factory=list)  # delta: sources the base had and the target has not
    members: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> {"sha256", "size"}
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def is_delta(self) -> bool:
        return self.base_version is not None

    def state(self) -> dict[str, str]:
        """source -> doc_hash of the knowledge base this bundle produces."""
        return {f["source"]: f["doc_hash"] for f in self.files}

    def to_bytes(self) -> bytes:
        data = {"format": FORMAT, "format_version": FORMAT_VERSION, **self.__dict__}
        return json.dumps(data, ensure_ascii=False, sort_keys=True, indent=1).encode("utf-8")

    @classmethod
    def from_bytes(cls, raw: bytes) -> "BundleManifest":
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(f"the bundle's {MANIFEST} is not JSON ({exc}): the file is damaged") from exc
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise InputError("this file is not a NEOC knowledge-base bundle (made by `kb export`)")
        if data.get("format_version") != FORMAT_VERSION:
            raise InputError(f"the bundle is format version {data.get('format_version')}; this assistant reads "
                             f"version {FORMAT_VERSION}: update the assistant on this laptop")
        names = ("kb_version", "base_version", "model_id", "pipeline", "dimension", "created_at", "files",
                 "removed", "members", "counts")
        try:
            return cls(**{name: data[name] for name in names})
        except (KeyError, TypeError) as exc:
            raise InputError(f"the bundle's {MANIFEST} lacks {exc}: the file is damaged") from exc


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def encode_vectors(vectors: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(vectors, dtype=np.float32), allow_pickle=False)
    return buffer.getvalue()


def decode_vectors(raw: bytes) -> np.ndarray:
    try:
        array = np.load(io.BytesIO(raw), allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise InputError(f"the bundle's {VECTORS} is not a vector array ({exc}): the file is damaged") from exc
    if array.dtype != np.float32 or array.ndim != 2:
        raise InputError(f"the bundle's {VECTORS} holds {array.dtype} of shape {array.shape}, not float32 rows")
    return array


def write_bundle(path: Path, manifest: BundleManifest, payload: dict[str, bytes], signature: bytes) -> None:
    """Write the zip to ``path`` through a temporary name (a half-written bundle is never left under it)."""
    tmp = path.with_name(path.name + ".part")
    with zipfile.ZipFile(tmp, "w", allowZip64=True) as bundle:
        bundle.writestr(MANIFEST, manifest.to_bytes(), compress_type=zipfile.ZIP_DEFLATED)
        bundle.writestr(SIGNATURE, signature, compress_type=zipfile.ZIP_DEFLATED)
        for name, data in payload.items():  # vectors barely compress: stored as they are
            bundle.writestr(name, data, compress_type=zipfile.ZIP_STORED if name == VECTORS else zipfile.ZIP_DEFLATED)
    tmp.replace(path)


class BundleReader:
    """Reads a bundle's members, each checked (name, declared size, bytes read) before it is trusted."""

    def __init__(self, path: Path, limits: PackageLimits):
        self.path = Path(path)
        self._limits = limits
        try:
            self._zip = zipfile.ZipFile(self.path)
            members = self._zip.infolist()
        except FileNotFoundError as exc:
            raise InputError(f"no bundle at {self.path}") from exc
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
            raise InputError(f"{self.path} is not a knowledge-base bundle or is damaged ({exc})") from exc
        names = [m.filename for m in members]
        odd = sorted(set(names) - MEMBERS)
        if odd:
            raise InputError(f"the bundle holds unexpected members {odd[:5]}: it was not made by `kb export`; refused")
        if len(names) != len(set(names)):
            raise InputError("the bundle holds a member twice: it was not made by `kb export`; refused")
        missing = sorted(MEMBERS - set(names))
        if missing:
            raise InputError(f"the bundle lacks {missing}: it is incomplete (copied before it was finished?)")
        check_members(members, limits, "knowledge-base bundle", self.path.stat().st_size, section="bundles")
        self._info = {m.filename: m for m in members}

    def read(self, name: str, cap: int | None = None) -> bytes:
        """At most the member's checked size: a lying directory cannot make us read more."""
        info = self._info[name]
        cap = cap if cap is not None else self._limits.member_mb * MB
        if info.file_size > cap:
            raise InputError(f"the bundle's {name} is {info.file_size / MB:,.0f} MB, more than a bundle may hold")
        try:
            with self._zip.open(info) as member:
                data = member.read(info.file_size + 1)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:  # CRC mismatch, truncated file
            raise InputError(f"the bundle's {name} cannot be read ({exc}): the file is damaged") from exc
        if len(data) != info.file_size:
            raise InputError(f"the bundle's {name} is not the size its directory says: the file is damaged")
        return data

    def read_small(self, name: str) -> bytes:
        return self.read(name, cap=SMALL_MEMBER_BYTES)

    def close(self) -> None:
        self._zip.close()

    def __enter__(self) -> "BundleReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
