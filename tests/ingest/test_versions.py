"""What a file says about its version, and how files are linked into series (``ingest/versions.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from neoc_assistant.ingest.versions import VersionFacts, file_facts, find_date, find_revision, link, title_key


@pytest.mark.parametrize("text, revision", [
    ("Flood Response SOP (Rev. 3)", "3"), ("Revision 4", "4"), ("SOP Version 2.1", "2.1"),
    ("ver. 7", "7"), ("The river reached level 3", None), ("Review the plan", None),
])
def test_revision_numbers_in_the_first_lines(text, revision):
    assert find_revision(text) == revision


@pytest.mark.parametrize("text, iso", [
    ("Revised March 2024", "2024-03"), ("Updated: 15 March 2024", "2024-03-15"),
    ("Effective 2024-03-15", "2024-03-15"), ("Last updated June 3, 2021", "2021-06-03"),
    ("water-sop-2024-03-15", "2024-03-15"), ("Revised 31 February 2024", None),
])
def test_dates_labelled_or_iso(text, iso):
    assert find_date(text) == iso


def test_a_title_loses_its_revision_and_a_generic_title_links_nothing():
    assert title_key("Water Supply SOP (Rev. 3)") == title_key("Water Supply SOP, revised March 2024") == "water supply sop"
    assert title_key("Introduction") == "" and title_key("SOP v2") == ""


def test_file_facts_from_a_sidecar_override_the_text(tmp_path: Path):
    doc = tmp_path / "sop.md"
    doc.write_text("# x")
    (tmp_path / "sop.md.meta.toml").write_text('document_id = "sop-w"\nrevision = 5\ndate = 2024-01-02\n'
                                               'supersedes = "old.md"\n')
    facts = file_facts("sop.md", str(doc), "Water SOP Rev. 2", "Revised March 2020")
    assert (facts.document_id, facts.revision, facts.revised, facts.supersedes, facts.origin) == (
        "sop-w", "5", "2024-01-02", ("old.md",), "sidecar")
    (tmp_path / "sop.md.meta.toml").write_text("this is [not toml")  # unreadable: the text's facts instead
    assert file_facts("sop.md", str(doc), "Water SOP Rev. 2", "").revision == "2"


def _f(source, key="water supply sop", **kw):
    return VersionFacts(source, key, **kw)


def test_the_newest_of_a_series_is_current_dates_first_then_revisions():
    records, _ = link([_f("a.md", revision="2"), _f("b.md", revision="10"), _f("c.md", revised="2023-01")], {})
    by = {r.source: r.superseded_by for r in records}
    assert by == {"a.md": "c.md", "b.md": "c.md", "c.md": None}  # a dated file is newer than undated ones
    records, _ = link([_f("a.md", revision="2.9"), _f("b.md", revision="2.10")], {})
    assert {r.source: r.superseded_by for r in records} == {"a.md": "b.md", "b.md": None}


def test_files_without_a_version_or_with_equal_ones_are_not_linked():
    assert link([_f("a.md"), _f("b.md")], {})[0] == []
    assert link([_f("a.md", revision="2"), _f("b.md", revision="2")], {})[0] == []
    assert link([_f("a.md", key="", revision="1"), _f("b.md", key="", revision="2")], {})[0] == []


def test_supersedes_wins_over_the_order_and_chains_end_at_the_current_version():
    facts = [_f("old.md", revised="2025-01-01"), _f("mid.md", key="other title", supersedes=("old.md",), origin="sidecar"),
             _f("new.md", key="third title", document_id="sop", supersedes=("mid.md",), origin="sidecar")]
    paths = {"old.md": "/kb/old.md", "mid.md": "/kb/mid.md", "new.md": "/kb/new.md"}
    by = {r.source: r.superseded_by for r in link(facts, paths)[0]}
    assert by == {"old.md": "new.md", "mid.md": "new.md", "new.md": None}


def test_a_circle_of_supersedes_links_nothing_and_is_reported():
    facts = [_f("a.md", key="", supersedes=("b.md",), origin="sidecar"),
             _f("b.md", key="", supersedes=("a.md",), origin="sidecar")]
    records, notes = link(facts, {"a.md": "/kb/a.md", "b.md": "/kb/b.md"})
    assert all(r.superseded_by is None for r in records) and len(notes) == 2


def test_supersedes_may_name_a_document_id_or_a_source_in_another_folder():
    facts = [_f("plans/old.md", key="", document_id="sop-1"), _f("x/new.md", key="", supersedes=("sop-1",), origin="sidecar"),
             _f("y/newer.md", key="", supersedes=("x/new.md",), origin="sidecar")]
    paths = {"plans/old.md": "/kb/plans/old.md", "x/new.md": "/kb/x/new.md", "y/newer.md": "/kb/y/newer.md"}
    by = {r.source: r.superseded_by for r in link(facts, paths)[0]}
    assert by["plans/old.md"] == "y/newer.md" and by["x/new.md"] == "y/newer.md"
