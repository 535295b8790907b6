"""Revision links declared in sidecars (``<file>.meta.toml``) travel in bundles: the sidecar stays at the
national EOC, so the bundle carries each file's version facts and the laptop shows the same current and
superseded documents, in full and delta bundles; a bundle from before carried none and still imports.
Real Chroma, the real embedder, the real manifest; no model (answers are the reader's quotes)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from neoc_assistant.bundles import signing
from neoc_assistant.bundles.format import MANIFEST, SIGNATURE
from neoc_assistant.errors import InputError

import bundle_fixtures
from bundle_fixtures import pub

make_laptop = bundle_fixtures.make_laptop  # the fixture, seen by pytest (an import would be F811 at each use)

pytestmark = pytest.mark.slow

NO_MODEL = {"model_path": Path("/nonexistent/none.gguf")}

# Titles that share nothing, no revision or date in the text: only the sidecar links them.
OLD = """# Flood Boat Deployment Plan

## Boats per depot

Each district depot keeps six inflatable rescue boats ready during the monsoon.

## Life jackets

Life jackets on the rescue boats are inspected every 90 days by the depot keeper.
"""

NEW = """# District Rescue Craft Standard

## Boats per depot

Each district depot keeps ten inflatable rescue boats ready during the monsoon.
"""

SIDECAR = 'document_id = "rescue-boats"\nrevision = "2"\ndate = 2024-06-01\nsupersedes = ["boats-2019.md"]\n'
STATUS = "superseded by boats-2024.md (Rev. 2, 2024-06-01)"
JACKETS_Q = "How often are the life jackets on the rescue boats inspected?"


def _national(make_container, tmp_path: Path, *, with_new: bool = True):
    kb = tmp_path / "national-kb"
    kb.mkdir(exist_ok=True)
    (kb / "boats-2019.md").write_text(OLD)
    if with_new:
        (kb / "boats-2024.md").write_text(NEW)
        (kb / "boats-2024.md.meta.toml").write_text(SIDECAR)
    container = make_container(kb_dir=kb, **NO_MODEL)
    assert container.assistant.ingest([kb]).ok
    key = tmp_path / "keys" / "national.key"
    container.assistant.bundle_keygen(key)
    return container, key


def _status(container) -> dict[str, str]:
    return {source: d.version for d in container.assistant.documents() for source in d.sources}


def _assert_superseded_on(laptop) -> None:
    assert _status(laptop)["boats-2019.md"] == STATUS
    assert _status(laptop)["boats-2024.md"] == "current (Rev. 2, 2024-06-01)"
    answer = laptop.assistant.ask(JACKETS_Q, use_cache=False)
    assert "90 days" in answer.answer, answer.answer
    warning = f"boats-2019.md, {STATUS}"
    assert warning in answer.answer and warning in answer.notice
    assert answer.sources[0]["superseded_by"] == {"source": "boats-2024.md", "version": "Rev. 2, 2024-06-01"}


def test_a_full_bundle_carries_the_sidecar_declared_supersession(make_container, make_laptop, tmp_path):
    national, key = _national(make_container, tmp_path)
    assert _status(national)["boats-2019.md"] == STATUS  # what the laptop must show too
    national.assistant.export_bundle(tmp_path / "full.neockb", key=key)
    laptop = make_laptop(trust=(pub(key),))  # no model installed: quoted answers
    laptop.assistant.import_bundle(tmp_path / "full.neockb")
    _assert_superseded_on(laptop)
    assert laptop.manifest.versions_fingerprint() == national.manifest.versions_fingerprint() != ""


def test_a_delta_bundle_carries_the_sidecar_of_the_file_it_adds(make_container, make_laptop, tmp_path):
    national, key = _national(make_container, tmp_path, with_new=False)
    national.assistant.export_bundle(tmp_path / "v1.neockb", key=key)
    v1 = national.manifest.kb_version()
    laptop = make_laptop(trust=(pub(key),))  # no model installed: quoted answers
    laptop.assistant.import_bundle(tmp_path / "v1.neockb")
    assert _status(laptop) == {"boats-2019.md": ""}

    kb = national.settings.paths.kb_dir
    (kb / "boats-2024.md").write_text(NEW)
    (kb / "boats-2024.md.meta.toml").write_text(SIDECAR)
    assert national.assistant.ingest([kb]).ok
    delta = national.assistant.export_bundle(tmp_path / "v2.neockb", key=key, since=v1)
    assert delta.documents == 1
    laptop.assistant.import_bundle(tmp_path / "v2.neockb")
    _assert_superseded_on(laptop)


def test_a_laptop_that_ingests_its_own_files_keeps_the_links_the_bundle_carried(
        make_container, make_laptop, tmp_path):
    national, key = _national(make_container, tmp_path)
    national.assistant.export_bundle(tmp_path / "full.neockb", key=key)
    laptop = make_laptop(trust=(pub(key),))  # no model installed: quoted answers
    laptop.assistant.import_bundle(tmp_path / "full.neockb")
    local = tmp_path / "laptop-kb"
    local.mkdir(exist_ok=True)
    (local / "generator.md").write_text("# Generator Checklist\n\nThe generator oil is changed every 250 hours.\n")
    assert laptop.assistant.ingest([local / "generator.md"]).ok  # relinks every file
    assert _status(laptop)["boats-2019.md"] == STATUS


def test_a_sidecar_added_alone_reaches_the_laptop_in_a_delta_without_documents(
        make_container, make_laptop, tmp_path):
    national, key = _national(make_container, tmp_path)
    kb = national.settings.paths.kb_dir
    (kb / "boats-2024.md.meta.toml").unlink()
    assert national.assistant.ingest([kb]).ok
    national.assistant.export_bundle(tmp_path / "v1.neockb", key=key)
    v1 = national.manifest.kb_version()
    laptop = make_laptop(trust=(pub(key),))  # no model installed: quoted answers
    laptop.assistant.import_bundle(tmp_path / "v1.neockb")
    assert _status(laptop) == {"boats-2019.md": "", "boats-2024.md": ""}

    (kb / "boats-2024.md.meta.toml").write_text(SIDECAR)  # no document changes: the same version
    assert national.assistant.ingest([kb]).ok and national.manifest.kb_version() == v1
    delta = national.assistant.export_bundle(tmp_path / "v1-links.neockb", key=key, since=v1)
    assert delta.documents == 0 and delta.base_version == delta.kb_version == v1
    summary = laptop.assistant.import_bundle(tmp_path / "v1-links.neockb")
    assert "relinked" in summary.notes[0]
    _assert_superseded_on(laptop)
    with pytest.raises(InputError, match="nothing changed since version"):  # recorded with the new facts
        national.assistant.export_bundle(tmp_path / "again.neockb", key=key, since=v1)


def _resigned(src: Path, dst: Path, key: Path, change) -> None:
    """The bundle with ``change(file entry)`` applied to every file of its manifest, signed again."""
    with zipfile.ZipFile(src) as zin:
        members = {info.filename: zin.read(info) for info in zin.infolist()}
    manifest = json.loads(members[MANIFEST])
    assert all("version" in f for f in manifest["files"])
    for f in manifest["files"]:
        change(f)
    raw = json.dumps(manifest, ensure_ascii=False, sort_keys=True, indent=1).encode("utf-8")
    members[MANIFEST], members[SIGNATURE] = raw, signing.sign(raw, signing.load_private(key))
    with zipfile.ZipFile(dst, "w") as zout:
        for name, data in members.items():
            zout.writestr(name, data)


def test_a_bundle_without_version_facts_still_imports_and_links_by_text(make_container, make_laptop, tmp_path):
    national, key = _national(make_container, tmp_path)
    national.assistant.export_bundle(tmp_path / "full.neockb", key=key)
    _resigned(tmp_path / "full.neockb", tmp_path / "old.neockb", key, lambda f: f.pop("version"))  # as before
    laptop = make_laptop(trust=(pub(key),))  # no model installed: quoted answers
    summary = laptop.assistant.import_bundle(tmp_path / "old.neockb")
    assert sorted(summary.added) == ["boats-2019.md", "boats-2024.md"]
    assert _status(laptop) == {"boats-2019.md": "", "boats-2024.md": ""}  # no sidecar, titles differ: no link
    assert "superseded" not in laptop.assistant.ask(JACKETS_Q, use_cache=False).notice.lower()


@pytest.mark.parametrize("bad, message", [({"revision": 2}, "revision as 2, not text"),
                                          ({"revision": "B"}, "revision 'B', not a number"),
                                          ({"supersedes": "boats-2019.md"}, "not what `kb export` writes")])
def test_version_facts_a_linker_cannot_use_are_refused_before_anything_changes(
        make_container, make_laptop, tmp_path, bad, message):
    national, key = _national(make_container, tmp_path)
    national.assistant.export_bundle(tmp_path / "full.neockb", key=key)
    _resigned(tmp_path / "full.neockb", tmp_path / "bad.neockb", key, lambda f: f["version"].update(bad))
    laptop = make_laptop(trust=(pub(key),))
    with pytest.raises(InputError, match=message):
        laptop.assistant.import_bundle(tmp_path / "bad.neockb")
    assert laptop.manifest.counts()["files"] == 0 and laptop.vectors.count() == 0
