"""``kb export``: this knowledge base (or what changed in it since a version) as one signed bundle.

Why the manifest's stored ``pipeline`` names the model, not the loaded
embedder: the vectors shipped are the ones in the store, made by the model the
manifest recorded when they were written; the exporter loads no model at all.

A delta needs to know what the laptops have. Every export records the state
it shipped (source -> document hash) under ``<data_dir>/bundles/exported/
<kb_version>.json``; ``--since VERSION`` diffs against that record (or against
a bundle file given instead of a version). The delta carries the whole target
state (sources and hashes: small) plus only the documents the base lacks, so
the laptop can apply it with the same single transaction as a full bundle.

Every file of the target state also carries its version facts (``version``: what
``ingest/versions.py`` read from its sidecar ``<file>.meta.toml`` and its text), in full and delta
bundles alike: the sidecars are not shipped, and without the facts a laptop would show a
sidecar-declared superseded document as current. They are small, and inside the signed manifest.
A sidecar edited alone changes no document, so not the knowledge-base version: ``--since`` that
version then still makes a delta (no documents, the new facts) when the facts differ from the ones
recorded with it, and a laptop at that version takes the facts from any bundle of it.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from neoc_assistant.bundles import signing
from neoc_assistant.bundles.format import (DOCUMENTS, MANIFEST, VECTORS, BundleManifest, BundleReader,
                                           encode_vectors, sha256, write_bundle)
from neoc_assistant.errors import InputError, StoreError
from neoc_assistant.ingest.packages import PackageLimits
from neoc_assistant.ingest.versions import facts_to_dict, knowledge_base_facts
from neoc_assistant.store.manifest import Manifest
from neoc_assistant.store.vector_store import VectorStore

VECTOR_BATCH = 2000


@dataclass
class ExportSummary:
    path: str
    kb_version: str
    base_version: str | None
    key_id: str
    documents: int = 0
    chunks: int = 0
    files: int = 0
    bytes: int = 0
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def model_of(pipeline: str) -> str:
    """The embedding model named in a pipeline fingerprint (``...;model=NAME@HASH;size=...``)."""
    for part in pipeline.split(";"):
        if part.startswith("model="):
            return part[len("model="):]
    return ""


class BundleExporter:
    def __init__(self, manifest: Manifest, vectors: VectorStore, states_dir: Path, limits: PackageLimits):
        self._manifest = manifest
        self._vectors = vectors
        self._states = Path(states_dir)
        self._limits = limits

    def export(self, out: Path, key_path: Path, since: str | None = None) -> ExportSummary:
        started = time.perf_counter()
        key = signing.load_private(key_path)
        kb = self._manifest
        version, pipeline = kb.kb_version(), kb.get_meta("pipeline") or ""
        files = kb.file_records()
        if not files:
            raise InputError("the knowledge base is empty: ingest documents before exporting a bundle")
        self._vectors.refresh(version)
        state = {f.source: f.doc_hash for f in files}
        base_version, base, base_facts = (None, {}, None) if since is None else self._base_state(since)
        facts = {f.source: facts_to_dict(f) for f in knowledge_base_facts(kb)[0]}
        if base_version == version and base_facts in (None, facts):
            raise InputError(f"nothing changed since version {version}: no bundle needed")
        ship = sorted({h for h in state.values() if h not in set(base.values())})
        lines, vectors = self._documents(ship)
        documents_raw = "".join(lines).encode("utf-8")
        vectors_raw = encode_vectors(vectors)
        dimension = int(vectors.shape[1]) if vectors.size else 0
        manifest = BundleManifest(
            kb_version=version, base_version=base_version, model_id=model_of(pipeline), pipeline=pipeline,
            dimension=dimension, created_at=time.time(),
            files=[{"source": f.source, "doc_hash": f.doc_hash, "size": f.size, "mtime_ns": f.mtime_ns,
                    "ingested_at": f.ingested_at, "version": facts[f.source]} for f in files],
            removed=sorted(set(base) - set(state)) if base_version is not None else [],
            members={DOCUMENTS: {"sha256": sha256(documents_raw), "size": len(documents_raw)},
                     VECTORS: {"sha256": sha256(vectors_raw), "size": len(vectors_raw)}},
            counts={"files": len(files), "documents": len(ship), "chunks": int(vectors.shape[0])},
        )
        raw = manifest.to_bytes()
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        write_bundle(out, manifest, {DOCUMENTS: documents_raw, VECTORS: vectors_raw}, signing.sign(raw, key))
        self._record_state(version, state, facts)
        summary = ExportSummary(
            path=str(out), kb_version=version, base_version=base_version, key_id=signing.key_id(key.public_key()),
            documents=len(ship), chunks=int(vectors.shape[0]), files=len(files), bytes=out.stat().st_size,
            added=sorted(set(state) - set(base)), changed=sorted(s for s in state if s in base and base[s] != state[s]),
            removed=manifest.removed)
        summary.seconds = time.perf_counter() - started
        return summary

    def _documents(self, doc_hashes: Sequence[str]) -> tuple[list[str], np.ndarray]:
        """One JSON line per document, and its chunks' vectors (read from the store, never recomputed)."""
        lines: list[str] = []
        blocks: list[np.ndarray] = []
        for doc_hash in doc_hashes:
            found = self._manifest.document_with_chunks(doc_hash)
            if found is None:  # pragma: no cover - a file row always points at a document
                raise StoreError(f"document {doc_hash} is in the file registry but not stored: run `ingest --repair`")
            document, chunks = found
            ids = [c.chunk_id for c in chunks]
            got: dict[str, np.ndarray] = {}
            for start in range(0, len(ids), VECTOR_BATCH):
                got.update(self._vectors.vectors(ids[start:start + VECTOR_BATCH]))
            missing = [cid for cid in ids if cid not in got]
            if missing:
                raise StoreError(f"{len(missing)} chunk(s) of document {doc_hash} have no vector in the store: "
                                 "run `ingest --repair`, then export again")
            if ids:
                blocks.append(np.stack([got[cid] for cid in ids]).astype(np.float32))
            record = {**document, "chunks": [
                {"chunk_id": c.chunk_id, "chunk_index": c.chunk_index, "page": c.page, "section": c.section,
                 "text": c.text, "content_hash": c.content_hash, "ocr_confidence": c.ocr_confidence} for c in chunks]}
            lines.append(json.dumps(record, ensure_ascii=False) + "\n")
        vectors = np.concatenate(blocks) if blocks else np.zeros((0, 0), dtype=np.float32)
        return lines, vectors

    def _base_state(self, since: str) -> tuple[str, dict[str, str], dict[str, dict] | None]:
        """The state a delta is made against (a version this instance exported, or a bundle file): its
        version, files and version facts (None: recorded before bundles carried them)."""
        path = Path(since)
        if path.is_file():
            with BundleReader(path, self._limits) as reader:
                manifest = BundleManifest.from_bytes(reader.read_small(MANIFEST))
            carried = {f["source"]: f["version"] for f in manifest.files if "version" in f}
            return manifest.kb_version, manifest.state(), carried or None
        record = self._states / f"{since}.json"
        if not since.isalnum() or not record.is_file():
            known = sorted(p.stem for p in self._states.glob("*.json")) if self._states.is_dir() else []
            raise InputError(f"no record of an export at version {since!r} (exported versions: "
                             f"{', '.join(known[-10:]) or 'none'}); give one of them, the bundle file itself, "
                             "or export a full bundle")
        data = json.loads(record.read_text(encoding="utf-8"))
        return since, dict(data["files"]), data.get("versions")

    def _record_state(self, version: str, state: dict[str, str], facts: dict[str, dict]) -> None:
        self._states.mkdir(parents=True, exist_ok=True)
        target = self._states / f"{version}.json"
        tmp = target.with_suffix(".part")
        tmp.write_text(json.dumps({"kb_version": version, "recorded_at": time.time(), "files": state,
                                   "versions": facts}), encoding="utf-8")
        tmp.replace(target)
