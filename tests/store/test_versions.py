"""The version links as the manifest keeps them (``store/versions.py``): one table rewritten as a whole,
a fingerprint that moves with the links, and what the document lists show. A real manifest, filled by
a real ingest."""

from __future__ import annotations

import shutil

from neoc_assistant.store.manifest import Manifest
from neoc_assistant.store.versions import VersionRecord


def _write(kb, name, text):
    (kb / name).write_text(text)


def test_links_are_recomputed_on_every_ingest_and_shown_in_the_document_list(container):
    kb = container.settings.paths.kb_dir
    kb.mkdir(parents=True)
    _write(kb, "evac-plan-v1.md", "# Evacuation Plan for Ward 4\n\nVersion 1\n\nAssemble at the school.\n")
    _write(kb, "evac-plan-v2.md", "# Evacuation Plan for Ward 4\n\nVersion 2\n\nAssemble at the temple.\n")
    summary = container.assistant.ingest()
    assert any("relinked" in n for n in summary.notes)
    manifest: Manifest = container.manifest
    fingerprint = manifest.versions_fingerprint()
    assert fingerprint
    shown = {d.sources[0]: d.version for d in container.assistant.documents()}
    assert shown == {"evac-plan-v1.md": "superseded by evac-plan-v2.md (Rev. 2)", "evac-plan-v2.md": "current (Rev. 2)"}

    # the same bytes under another name, declared a document of its own: current under that name,
    # so those bytes are not left out of answers
    shutil.copy(kb / "evac-plan-v1.md", kb / "drill-handout.md")
    _write(kb, "drill-handout.md.meta.toml", 'document_id = "ward-4-drill-handout"\n')
    container.assistant.ingest()
    assert manifest.superseded_documents() == {}
    (kb / "drill-handout.md").unlink()
    container.assistant.ingest()
    assert [s.source for s in manifest.superseded_documents().values()] == ["evac-plan-v1.md"]
    assert manifest.versions_fingerprint() == fingerprint  # the same links, the same fingerprint

    container.assistant.delete_documents(["evac-plan-v2.md"])
    assert manifest.versions_fingerprint() == "" and manifest.superseded_documents() == {}
    assert {d.version for d in container.assistant.documents()} == {""}


def test_replace_versions_says_whether_a_link_changed(container):
    manifest: Manifest = container.manifest
    a = VersionRecord("a.md", "title:x", revision="1", superseded_by="b.md")
    b = VersionRecord("b.md", "title:x", revision="2")
    assert manifest.replace_versions([a, b]) is True
    assert manifest.replace_versions([a, b]) is False
    assert [r.source for r in manifest.version_records()] == ["a.md", "b.md"]
    assert manifest.version_records()[0].superseded_by == "b.md"
    assert manifest.replace_versions([]) is True and manifest.version_records() == []
