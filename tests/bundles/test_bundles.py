"""Signed bundles end to end: a full and a delta bundle exported at the national EOC and imported on a laptop
with the real Chroma store and embedding model; every refusal leaves the laptop as it was."""

from __future__ import annotations

import json
import stat
import zipfile

import numpy as np
import pytest

from neoc_assistant.errors import InputError
from neoc_assistant.store.embeddings import Embedder

from bundle_fixtures import NoEncodingEmbedder, make_laptop, national, pub, revise  # noqa: F401 - fixtures
from generate_fixtures import ScriptedEngine
from store_fixtures import ingested  # noqa: F401 - the national store (not the browser tests' one)

pytestmark = pytest.mark.slow


def test_keygen_writes_a_private_key_only_its_owner_reads_and_never_overwrites_one(tmp_path):
    from neoc_assistant.service import Assistant

    public, ident = Assistant.bundle_keygen(tmp_path / "k.key")
    assert stat.S_IMODE((tmp_path / "k.key").stat().st_mode) == 0o600
    assert public.read_text().startswith("-----BEGIN PUBLIC KEY") and len(ident) == 16
    with pytest.raises(InputError, match="refusing to overwrite"):
        Assistant.bundle_keygen(tmp_path / "k.key")


def test_a_full_bundle_gives_an_empty_laptop_the_same_chunks_and_vectors_without_embedding(
        national, make_laptop, embedder, tmp_path):
    nat, key = national
    out = tmp_path / "full.neockb"
    exported = nat.assistant.export_bundle(out, key=key)
    assert exported.base_version is None and exported.documents == 3 and exported.chunks == 3
    no_embedding = NoEncodingEmbedder(embedder._settings)
    laptop = make_laptop(trust=(pub(key),), use_embedder=no_embedding)
    summary = laptop.assistant.import_bundle(out)
    assert sorted(summary.added) == ["boats.md", "radio.md", "water.md"] and not summary.changed
    assert summary.kb_version == nat.manifest.kb_version() == laptop.manifest.kb_version()
    laptop.vectors.close()

    fresh = make_laptop()  # a new process on the laptop, with the model
    hit = fresh.assistant.search("how many rescue boats", k=1)[0]
    want = nat.assistant.search("how many rescue boats", k=1)[0]
    assert hit.source == want.source == "boats.md" and hit.chunk_id == want.chunk_id and hit.text == want.text
    ids = sorted(nat.vectors.ids())
    assert sorted(fresh.vectors.ids()) == ids
    theirs, ours = nat.vectors.vectors(ids), fresh.vectors.vectors(ids)
    # the same vectors, to the last bit of float32 that Chroma's cosine normalisation on upsert leaves
    assert all(np.allclose(theirs[i], ours[i], rtol=0, atol=1e-7) for i in ids)
    again = fresh.assistant.import_bundle(out)  # the same bundle twice: nothing to do
    assert again.notes and "nothing to do" in again.notes[0]


def test_a_delta_adds_changes_and_removes_files(national, make_laptop, tmp_path):
    nat, key = national
    nat.assistant.export_bundle(tmp_path / "v1.neockb", key=key)
    v1 = nat.manifest.kb_version()
    laptop = make_laptop(trust=(pub(key),))
    laptop.assistant.import_bundle(tmp_path / "v1.neockb")
    revise(nat)
    delta = nat.assistant.export_bundle(tmp_path / "v2.neockb", key=key, since=v1)
    assert delta.base_version == v1 and delta.documents == 2  # water.md's new text and shelter.md only

    summary = laptop.assistant.import_bundle(tmp_path / "v2.neockb")
    assert (summary.added, summary.changed, summary.removed, summary.unchanged) == (
        ["shelter.md"], ["water.md"], ["radio.md"], 1)
    assert laptop.manifest.kb_version() == nat.manifest.kb_version()
    assert laptop.vectors.ids() == laptop.manifest.all_chunk_ids()  # the replaced vectors are gone
    assert "20 litres" in laptop.assistant.search("how much water per person", k=1)[0].text
    assert [d.sources for d in laptop.assistant.documents()] == [("boats.md",), ("shelter.md",), ("water.md",)]


def test_a_delta_for_another_version_is_refused_naming_the_version_it_needs(national, make_laptop, tmp_path):
    nat, key = national
    nat.assistant.export_bundle(tmp_path / "v1.neockb", key=key)
    v1 = nat.manifest.kb_version()
    revise(nat)
    nat.assistant.export_bundle(tmp_path / "v2.neockb", key=key, since=v1)
    laptop = make_laptop(trust=(pub(key),))
    with pytest.raises(InputError, match=f"applies to knowledge-base version {v1}; this laptop is at version empty"):
        laptop.assistant.import_bundle(tmp_path / "v2.neockb")
    assert laptop.manifest.counts()["files"] == 0 and laptop.vectors.count() == 0


def test_a_bundle_signed_by_an_unknown_key_is_refused(national, make_laptop, tmp_path):
    nat, key = national
    nat.assistant.export_bundle(tmp_path / "full.neockb", key=key)
    other = tmp_path / "keys" / "other.key"
    nat.assistant.bundle_keygen(other)
    laptop = make_laptop(trust=(pub(other),))
    with pytest.raises(InputError, match="does not trust"):
        laptop.assistant.import_bundle(tmp_path / "full.neockb")
    assert laptop.manifest.counts()["files"] == 0


def _rewrite(src, dst, change):
    """Copy the bundle, passing each member through ``change(name, data) -> data | None`` (None: drop it)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = change(info.filename, zin.read(info))
            if data is not None:
                zout.writestr(info.filename, data)
        extra = change("", b"")
        if extra:
            zout.writestr(*extra)


@pytest.mark.parametrize("tamper, message", [
    (lambda n, d: d.replace(b"Fourteen", b"Forty") if n == "documents.jsonl" else d, "not the one its signed manifest"),
    (lambda n, d: d.replace(b'"kb_version": "', b'"kb_version": "0') if n == "manifest.json" else d,
     "signature does not match"),
    (lambda n, d: ("../../evil.sh", b"boom") if n == "" else d, "unexpected members"),
])
def test_a_tampered_bundle_is_refused_before_anything_changes(national, make_laptop, tmp_path, tamper, message):
    nat, key = national
    nat.assistant.export_bundle(tmp_path / "full.neockb", key=key)
    _rewrite(tmp_path / "full.neockb", tmp_path / "bad.neockb", tamper)
    laptop = make_laptop(trust=(pub(key),))
    with pytest.raises(InputError, match=message):
        laptop.assistant.import_bundle(tmp_path / "bad.neockb")
    assert laptop.manifest.counts()["files"] == 0 and laptop.vectors.count() == 0
    assert not (tmp_path / "evil.sh").exists()


def test_a_bundle_made_with_another_embedding_model_is_refused(national, make_laptop, embedder, tmp_path):
    nat, key = national
    nat.assistant.export_bundle(tmp_path / "full.neockb", key=key)

    class OtherModel(Embedder):
        @property
        def model_id(self) -> str:
            return "some-other-model@0123456789ab"

    laptop = make_laptop(trust=(pub(key),), use_embedder=OtherModel(embedder._settings))
    with pytest.raises(InputError, match=f"made by embedding model {embedder.model_id}; this laptop's is some-other"):
        laptop.assistant.import_bundle(tmp_path / "full.neockb")
    assert laptop.manifest.counts()["files"] == 0


def test_an_import_makes_the_response_cache_forget_answers_about_the_old_knowledge(national, make_laptop, tmp_path):
    nat, key = national
    nat.assistant.export_bundle(tmp_path / "v1.neockb", key=key)
    v1 = nat.manifest.kb_version()
    revise(nat)
    nat.assistant.export_bundle(tmp_path / "v2.neockb", key=key, since=v1)
    engine = ScriptedEngine("Each person needs at least 15 litres of water per day.")
    laptop = make_laptop(trust=(pub(key),), engine=engine)
    laptop.assistant.import_bundle(tmp_path / "v1.neockb")
    question = "How much water does each person need per day?"
    laptop.assistant.ask(question)
    assert laptop.assistant.ask(question).cached
    laptop.assistant.import_bundle(tmp_path / "v2.neockb")
    after = laptop.assistant.ask(question)
    assert not after.cached
    assert json.dumps(laptop.assistant.cache_stats(), default=str).count(laptop.manifest.kb_version()) >= 1
