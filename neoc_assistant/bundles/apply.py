"""``kb import``: verify a bundle completely, then apply it so that a kill -9 at any point leaves the old
knowledge base intact and usable.

**Nothing is touched before everything is checked**: the signature (against
the trusted keys), every member's SHA-256 (against the signed manifest), the
embedding model and chunking (vectors are only meaningful to the model that
made them; the laptop never re-embeds), and - for a delta - that this laptop
is at the version the delta applies to.

**Atomicity: SQLite transaction + content-addressed Chroma upserts + the
manifest's ``chroma_pending`` journal** (the protocol ingest already uses,
``store/manifest.py``), not a second store built beside the old one and
swapped in. Why: the manifest is the source of truth - readers only trust
chunk ids it lists - and chunk ids are derived from document hashes, so new
vectors never overwrite live ones. A copy-and-swap would have to copy the
whole Chroma folder for a one-file delta (slow and twice the disk on a
laptop) and to swap two paths that other processes (a running server) hold
open. The steps:

1. ``journaled``: each document the laptop lacks is marked in ``chroma_pending`` (committed);
2. ``vectors``: their vectors are upserted into Chroma (invisible: the manifest does not list them);
3. ``commit``: ONE SQLite transaction inserts the documents, chunks and FTS rows, makes the file
   registry the bundle's target state, clears the marks, queues replaced documents, sets the version
   and checks it is the one the bundle promises (else it rolls back);
4. ``cleanup``: the replaced documents' vectors leave Chroma.

Killed before 3 commits: the manifest is the old one, the stray vectors are
ignored by readers and deleted by the next import or ingest (their marks).
Killed after: the new knowledge base is complete; the replaced vectors are
deleted next time. ``NEOC_BUNDLE_IMPORT_PAUSE=<step>`` makes the import stop
and wait at a step (the kill -9 tests use it).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from neoc_assistant.bundles import signing
from neoc_assistant.bundles.format import (DOCUMENTS, MANIFEST, SIGNATURE, VECTORS, BundleManifest, BundleReader,
                                           decode_vectors, sha256)
from neoc_assistant.errors import InputError
from neoc_assistant.ingest.packages import PackageLimits
from neoc_assistant.ingest.pipeline import Ingestor
from neoc_assistant.ingest.versions import facts_from_dict
from neoc_assistant.store.manifest import Manifest
from neoc_assistant.store.records import ChunkRecord, FileRecord
from neoc_assistant.store.vector_store import VectorStore

log = logging.getLogger(__name__)

PAUSE_ENV = "NEOC_BUNDLE_IMPORT_PAUSE"


@dataclass
class ImportSummary:
    kb_version: str
    previous_version: str
    key_id: str
    delta: bool
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    documents: int = 0  # documents stored (the laptop lacked them)
    chunks: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class VerifiedBundle:
    manifest: BundleManifest
    key_id: str
    documents: list[tuple[dict, list[ChunkRecord]]]
    vectors: object  # np.ndarray, rows in the order of the documents' chunks
    version_facts: dict[str, dict] = field(default_factory=dict)  # source -> its version facts (none: older bundle)


def checkpoint(step: str) -> None:
    """Test hook: stop here (and say so on stderr) when ``NEOC_BUNDLE_IMPORT_PAUSE`` names this step."""
    if os.environ.get(PAUSE_ENV) == step:
        print(f"bundle import paused at {step}", file=sys.stderr, flush=True)
        time.sleep(600)


class BundleImporter:
    def __init__(self, manifest: Manifest, vectors: VectorStore, ingestor: Ingestor, *, model_id, trusted_dir: Path,
                 limits: PackageLimits, source_scheme: str):
        """``model_id``: a callable giving this laptop's embedding model identity (cheap: no model loads);
        ``source_scheme``: the KB folder source names are made for (set if unset, so a later ingest does
        not rename the imported sources and so change the version the next delta needs)."""
        self._manifest = manifest
        self._vectors = vectors
        self._ingestor = ingestor
        self._model_id = model_id
        self._trusted_dir = Path(trusted_dir)
        self._limits = limits
        self._scheme = source_scheme

    # -- 0. everything checked, nothing touched ------------------------------------------------------
    def verify(self, path: Path) -> VerifiedBundle:
        with BundleReader(path, self._limits) as reader:
            raw = reader.read_small(MANIFEST)
            key = signing.verify(raw, reader.read_small(SIGNATURE), signing.trusted_keys(self._trusted_dir),
                                 self._trusted_dir)
            manifest = BundleManifest.from_bytes(raw)
            self._check_identity(manifest)
            payload = {}
            for name in (DOCUMENTS, VECTORS):
                data = reader.read(name)
                expected = manifest.members.get(name) or {}
                if expected.get("size") != len(data) or expected.get("sha256") != sha256(data):
                    raise InputError(f"the bundle's {name} is not the one its signed manifest names (altered or "
                                     "damaged after signing): refused; nothing was changed")
                payload[name] = data
        documents = _documents(payload[DOCUMENTS])
        vectors = decode_vectors(payload[VECTORS])
        chunks = sum(len(c) for _, c in documents)
        if vectors.shape[0] != chunks or (chunks and vectors.shape[1] != manifest.dimension):
            raise InputError(f"the bundle holds {vectors.shape[0]} vectors for {chunks} chunks: refused")
        return VerifiedBundle(manifest, key, documents, vectors, _version_facts(manifest))

    def _check_identity(self, manifest: BundleManifest) -> None:
        mine = self._model_id()
        if manifest.model_id != mine:
            raise InputError(f"the bundle's vectors were made by embedding model {manifest.model_id}; this laptop's "
                             f"is {mine} (embedding.model_path): its vectors would be meaningless here; install "
                             "the same model or ask for a bundle made with this one; refused")
        pipeline = self._ingestor.pipeline_fingerprint
        if manifest.pipeline != pipeline:
            raise InputError(f"the bundle was chunked as {manifest.pipeline!r}, this laptop's settings give "
                             f"{pipeline!r}: set store.chunk_size_tokens and store.chunk_overlap_tokens as the "
                             "national EOC has them (a later ingest would otherwise clear the knowledge base); refused")

    # -- 1-4. applied ------------------------------------------------------------------------------
    def apply(self, path: Path, *, show_progress: bool = False) -> ImportSummary:
        started = time.perf_counter()
        bundle = self.verify(path)
        checkpoint("verified")
        target = bundle.manifest
        kb = self._manifest
        with self._ingestor.exclusive():
            kb.refresh(strict=True)
            self._vectors.refresh(kb.kb_version())
            self._ingestor.finish_interrupted_writes()  # what a killed import or ingest left in Chroma
            before = kb.kb_version()
            if target.is_delta and before not in (target.base_version, target.kb_version):
                raise InputError(f"this delta bundle applies to knowledge-base version {target.base_version}; this "
                                 f"laptop is at version {before}: import the bundle that brings it to "
                                 f"{target.base_version} first, or a full bundle; refused, nothing was changed")
            local = {f.source: f.doc_hash for f in kb.file_records()}
            state = target.state()
            summary = ImportSummary(kb_version=target.kb_version, previous_version=before, key_id=bundle.key_id,
                                    delta=target.is_delta, added=sorted(set(state) - set(local)),
                                    changed=sorted(s for s in state if s in local and local[s] != state[s]),
                                    removed=sorted(set(local) - set(state)))
            summary.unchanged = len(state) - len(summary.added) - len(summary.changed)
            if before == target.kb_version:  # the same documents; a sidecar may have changed alone
                if bundle.version_facts and bundle.version_facts != kb.carried_versions():
                    kb.replace_carried_versions(bundle.version_facts)
                    summary.notes.append(f"already at version {before}; the files' version facts (sidecars) "
                                         "changed: revisions relinked")
                else:
                    summary.notes.append(f"already at version {before}: nothing to do")
                return summary
            new = [(d, c) for d, c in bundle.documents if not kb.has_document(d["doc_hash"])]
            self._store_vectors(bundle, new, show_progress)
            checkpoint("before-commit")
            files = [FileRecord(f["source"], "bundle:" + bundle.key_id, "bundle:" + f["source"], int(f["size"]),
                                int(f["mtime_ns"]), f["doc_hash"], float(f["ingested_at"])) for f in target.files]
            orphaned = kb.apply_state(files, new, pipeline=target.pipeline, expected_version=target.kb_version,
                                      meta_defaults={"source_names": self._scheme},
                                      version_facts=bundle.version_facts)
            checkpoint("committed")
            self._vectors.note_written(target.kb_version)
            if orphaned:
                self._vectors.delete_documents(orphaned)
                for doc_hash in orphaned:
                    kb.clear_pending(doc_hash)
        summary.documents = len(new)
        summary.chunks = sum(len(c) for _, c in new)
        summary.seconds = time.perf_counter() - started
        return summary

    def _store_vectors(self, bundle: VerifiedBundle, new: list[tuple[dict, list[ChunkRecord]]],
                       show_progress: bool) -> None:
        """Journal, then upsert the vectors of the documents this laptop lacks (no model is called)."""
        from tqdm import tqdm

        kb = self._manifest
        for document, _ in new:
            kb.mark_pending(document["doc_hash"], "bundle import")
        checkpoint("journaled")
        rows: dict[str, tuple[int, int]] = {}
        offset = 0
        for document, chunks in bundle.documents:
            rows[document["doc_hash"]] = (offset, offset + len(chunks))
            offset += len(chunks)
        with tqdm(total=sum(len(c) for _, c in new), unit="chunk", desc="importing",
                  disable=not show_progress) as bar:
            for number, (document, chunks) in enumerate(new):
                start, stop = rows[document["doc_hash"]]
                self._vectors.upsert([c.chunk_id for c in chunks], bundle.vectors[start:stop],  # type: ignore[index]
                                     document["doc_hash"], [c.page for c in chunks])
                bar.update(len(chunks))
                if number == 0:
                    checkpoint("vectors")


def _version_facts(manifest: BundleManifest) -> dict[str, dict]:
    """source -> the version facts the bundle carries (checked now: linking runs after the commit);
    a bundle from before they were carried has none, and its files are linked by their text."""
    out = {}
    for f in manifest.files:
        if "version" in f:
            try:
                facts_from_dict(str(f["source"]), f["version"])
            except ValueError as exc:
                raise InputError(f"the bundle's {MANIFEST}: {exc}; refused") from exc
            out[str(f["source"])] = f["version"]
    return out


def _documents(raw: bytes) -> list[tuple[dict, list[ChunkRecord]]]:
    """``documents.jsonl`` as (document row, chunks), each checked for the shape the manifest needs."""
    out = []
    seen: set[str] = set()
    try:
        for number, line in enumerate(raw.decode("utf-8").splitlines(), start=1):
            item = json.loads(line)
            doc_hash = str(item["doc_hash"])
            chunks = [ChunkRecord(str(c["chunk_id"]), doc_hash, int(c["chunk_index"]),
                                  None if c["page"] is None else int(c["page"]), str(c["section"]), str(c["text"]),
                                  str(c["content_hash"]), c.get("ocr_confidence")) for c in item["chunks"]]
            if doc_hash in seen or any(not c.chunk_id.startswith(doc_hash[:16]) for c in chunks):
                raise InputError(f"the bundle's {DOCUMENTS} line {number} repeats a document or names chunks "
                                 "of another: refused")
            seen.add(doc_hash)
            document = {"doc_hash": doc_hash, "title": str(item["title"]), "doc_type": str(item["doc_type"]),
                        "n_pages": int(item["n_pages"]), "n_chunks": int(item["n_chunks"]),
                        "ingested_at": float(item["ingested_at"])}
            out.append((document, chunks))
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise InputError(f"the bundle's {DOCUMENTS} is not what `kb export` writes ({exc}): refused") from exc
    return out

