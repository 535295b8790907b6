"""Revised documents: the current revision answers, a superseded one only with a warning, and two
current documents that disagree are both shown. Real Chroma, the real default embedder, the real
manifest and response cache; no model (the reader's quotes) unless the cache needs a model run."""

from __future__ import annotations

from pathlib import Path

import json

import pytest
from generate_fixtures import ScriptedEngine

from neoc_assistant.answering.conflicts import CONFLICT_NOTICE
from neoc_assistant.serve import render

# worded as the OLD revision is: without leaving it out, it would be the best passage
WATER_Q = "How many litres of safe water does each person in a shelter receive per day?"
NO_MODEL = {"model_path": Path("/nonexistent/none.gguf")}

OLD_SOP = """# Shelter Water Supply SOP

Revised March 2023

## Water ration

Each person in a shelter receives 15 litres of safe water per person per day.

## Chlorination

After adding chlorine bleach to stored water, wait 30 minutes before anyone drinks it.
"""

NEW_SOP = """# Shelter Water Supply SOP

Revised March 2024

## Water ration

Shelter residents are given 20 litres of water per person per day.

## Distribution

Water is handed out at the tap stand twice a day, morning and evening.
"""

SIDECAR = 'document_id = "sop-water"\nrevision = "2"\ndate = 2024-03-15\nsupersedes = ["water-sop-2023.md"]\n'

UNRELATED = """# Generator Maintenance Checklist

The generator oil is changed every 250 hours of running. Fuel is stored 10 metres from the building.
"""


def _kb(root: Path, with_new: bool = True, sidecar: bool = True) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "water-sop-2023.md").write_text(OLD_SOP)
    (root / "generator.md").write_text(UNRELATED)
    if with_new:
        (root / "water-sop-2024.md").write_text(NEW_SOP)
        if sidecar:
            (root / "water-sop-2024.md.meta.toml").write_text(SIDECAR)
    return root


def _cited(answer) -> set[str]:
    return {s["source"] for s in answer.sources}


def test_the_new_revision_answers_and_deleting_it_makes_the_old_one_current(make_container, tmp_path):
    kb = _kb(tmp_path / "kb")
    container = make_container(kb_dir=kb, **NO_MODEL)
    summary = container.assistant.ingest([kb])
    assert not any(o.source.endswith(".meta.toml") for o in summary.outcomes)  # a sidecar is not a document
    answer = container.assistant.ask(WATER_Q, use_cache=False)
    assert answer.mode == "extractive"
    assert _cited(answer) == {"water-sop-2024.md"}, answer.sources
    assert "20 litres" in answer.answer and "15 litres" not in answer.answer
    assert "Superseded" not in answer.answer and "superseded" not in answer.notice

    rows = {r[0]: r[-1] for r in render.document_rows(container.assistant.documents())}  # the UI's table
    assert rows["water-sop-2023.md"] == "superseded by water-sop-2024.md (Rev. 2, 2024-03-15)"
    assert rows["water-sop-2024.md"] == "current (Rev. 2, 2024-03-15)" and rows["generator.md"] == ""

    container.assistant.delete_documents(["water-sop-2024.md"])
    again = container.assistant.ask(WATER_Q, use_cache=False)
    assert _cited(again) == {"water-sop-2023.md"}
    assert "15 litres" in again.answer and "superseded" not in again.notice.lower()  # current again: no warning


def test_a_fact_only_the_old_revision_holds_comes_with_the_superseded_warning(make_container, tmp_path):
    kb = _kb(tmp_path / "kb")
    container = make_container(kb_dir=kb, **NO_MODEL)
    container.assistant.ingest([kb])
    answer = container.assistant.ask("How long must you wait after adding chlorine bleach to stored water?",
                                     use_cache=False)
    assert answer.mode == "extractive", answer.answer
    assert "30 minutes" in answer.answer
    assert _cited(answer) == {"water-sop-2023.md"}
    warning = "water-sop-2023.md, superseded by water-sop-2024.md (Rev. 2, 2024-03-15)"
    assert warning in answer.answer and warning in answer.notice
    assert answer.sources[0]["superseded_by"] == {"source": "water-sop-2024.md", "version": "Rev. 2, 2024-03-15"}
    assert answer.to_json()["sources"][0]["superseded_by"]["source"] == "water-sop-2024.md"


def test_same_title_and_a_later_date_link_revisions_without_a_sidecar(make_container, tmp_path):
    kb = _kb(tmp_path / "kb", sidecar=False)
    container = make_container(kb_dir=kb, **NO_MODEL)
    container.assistant.ingest([kb])
    answer = container.assistant.ask(WATER_Q, use_cache=False)
    assert _cited(answer) == {"water-sop-2024.md"} and "20 litres" in answer.answer


def test_two_current_documents_with_different_figures_are_both_shown(make_container, tmp_path):
    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "district-wash-plan.md").write_text(
        "# Kailali District WASH Plan\n\n## Shelters\n\nWater ration: 20 litres per person per day.\n\n"
        "Latrines are cleaned every morning by the shelter committee.\n")
    (kb / "shelter-standards.md").write_text(
        "# National Shelter Standards\n\n## Water\n\nWater ration: 15 litres per person per day.\n\n"
        "Each shelter keeps a register of residents at the entrance.\n")
    (kb / "generator.md").write_text(UNRELATED)
    container = make_container(kb_dir=kb, **NO_MODEL)
    container.assistant.ingest([kb])
    answer = container.assistant.ask("What is the water ration per person per day?", use_cache=False)
    assert answer.mode == "extractive", answer.answer
    assert "20 litres per person per day" in answer.answer and "15 litres per person per day" in answer.answer
    assert CONFLICT_NOTICE in answer.notice
    assert _cited(answer) == {"district-wash-plan.md", "shelter-standards.md"}
    assert "The documents differ" in answer.answer


def test_no_conflict_for_different_things_measured_in_the_same_unit(make_container, tmp_path):
    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "a.md").write_text("# Camp Water Guide\n\nDrinking water: 3 litres per person per day.\n")
    (kb / "b.md").write_text("# Kitchen Water Guide\n\nWater for cooking: 5 litres per person per day.\n")
    container = make_container(kb_dir=kb, **NO_MODEL)
    container.assistant.ingest([kb])
    answer = container.assistant.ask("How much drinking water per person per day?", use_cache=False)
    assert "3 litres" in answer.answer and CONFLICT_NOTICE not in answer.notice


@pytest.fixture
def nonsense_engine():
    # nothing this says is verified, so the answer is the reader's quotes, and those are cached
    return ScriptedEngine("The moon is made of 2,100 kcal of cheese per person per day.")


def test_the_cache_does_not_serve_the_old_revisions_answer_after_the_new_one_is_ingested(
        make_container, tmp_path, nonsense_engine):
    kb = _kb(tmp_path / "kb", with_new=False)
    container = make_container(kb_dir=kb, engine=nonsense_engine)
    container.assistant.ingest([kb])
    first = container.assistant.ask(WATER_Q)
    assert _cited(first) == {"water-sop-2023.md"} and "15 litres" in first.answer
    assert container.assistant.ask(WATER_Q).cached  # the quotes are cached

    _kb(kb)  # the revision and its sidecar arrive
    container.assistant.ingest([kb])
    after = container.assistant.ask(WATER_Q)
    assert not after.cached
    assert _cited(after) == {"water-sop-2024.md"} and "20 litres" in after.answer and "15 litres" not in after.answer
    assert container.assistant.ask(WATER_Q).cached  # and the new answer is what is cached now


def test_a_sidecar_added_alone_retires_cached_answers(make_container, tmp_path, nonsense_engine):
    # no document changes (the knowledge-base version stays), only the links: the cache key has them
    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "ration-old.md").write_text("# Ration card A\n\nEach person in a shelter receives 15 litres of safe "
                                      "water per person per day.\n")
    (kb / "ration-new.md").write_text("# Ration card B\n\nEach person in a shelter receives 18 litres of safe "
                                      "water per person per day.\n")
    container = make_container(kb_dir=kb, engine=nonsense_engine)
    container.assistant.ingest([kb])
    before = container.assistant.kb_version()
    container.assistant.ask(WATER_Q)
    assert container.assistant.ask(WATER_Q).cached
    (kb / "ration-new.md.meta.toml").write_text('supersedes = "ration-old.md"\n')
    container.assistant.ingest([kb])
    assert container.assistant.kb_version() == before
    after = container.assistant.ask(WATER_Q)
    assert not after.cached and _cited(after) == {"ration-new.md"}


def test_the_documents_command_lists_versions(make_container, tmp_path, capsys, monkeypatch):
    from neoc_assistant.cli import common, main

    kb = _kb(tmp_path / "kb")
    container = make_container(kb_dir=kb, **NO_MODEL)
    container.assistant.ingest([kb])
    monkeypatch.setattr(common, "container", lambda: container)
    with pytest.raises(SystemExit) as exit_info:
        main(["documents", "--json"])
    assert exit_info.value.code == 0
    listed = {row["sources"][0]: row["version"] for row in json.loads(capsys.readouterr().out)}
    assert listed == {"water-sop-2023.md": "superseded by water-sop-2024.md (Rev. 2, 2024-03-15)",
                      "water-sop-2024.md": "current (Rev. 2, 2024-03-15)", "generator.md": ""}
