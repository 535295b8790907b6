"""Spreadsheets (XLSX, ODS) and slides (PPTX): a row is one statement with its column names, a slide
one page under its title; zip parts are measured before parsing; a contact is found by what it is."""

from __future__ import annotations

import io
import time
import zipfile

import pytest

from neoc_assistant.errors import InputError
from neoc_assistant.ingest.loaders import load_document
from neoc_assistant.ingest.packages import PackageLimits

from ingest.documents import briefing_pptx, contacts_ods, contacts_xlsx

CHIEF = "Name: Hari Prasad Thapa · Role: Logistics Chief · Phone: 9841234567 · Office: District EOC, Banepa"
NEPALI = "Name: राम बहादुर श्रेष्ठ · Role: Liaison Officer · Phone: 9812003004 · Office: नगरपालिका कार्यालय"


def test_an_xlsx_row_is_one_statement_with_its_column_names(tmp_path):
    path = contacts_xlsx(tmp_path / "contacts.xlsx")
    doc = load_document(path, path.read_bytes())
    assert doc.doc_type == "xlsx" and [p.text.splitlines()[0] for p in doc.pages] == ["# Contacts", "# Relief stock"]
    contacts = doc.pages[0].text
    assert "District EOC contact list (updated 5 May)" in contacts  # the line above the header is kept
    assert f"\n\n{CHIEF}\n\n" in contacts and NEPALI in contacts  # rows blank-separated: the splitter cuts between
    assert "Item: Rice · Quantity: 1200 · Unit: kg · Store: Dhulikhel" in doc.pages[1].text  # 1200.0 shown as 1200
    assert "Name: Name" not in contacts  # the header is not a row
    assert doc.notes == ["6 row(s) read as statements, each with its column names"]


def test_an_ods_reads_the_same_and_its_repeated_empty_tail_is_not_expanded(tmp_path):
    path = contacts_ods(tmp_path / "contacts.ods")
    started = time.perf_counter()
    doc = load_document(path, path.read_bytes())
    assert time.perf_counter() - started < 5  # 1,048,000 repeated empty rows and 16,000 empty cells a row
    assert doc.doc_type == "ods" and CHIEF in doc.pages[0].text and NEPALI in doc.pages[0].text


def test_a_pptx_slide_is_a_numbered_page_under_its_title(tmp_path):
    path = briefing_pptx(tmp_path / "briefing.pptx")
    doc = load_document(path, path.read_bytes())
    assert doc.doc_type == "pptx" and doc.title == "Monsoon preparedness briefing"
    assert [p.number for p in doc.pages] == [1, 2, 3]
    boats = doc.pages[1].text
    assert boats.startswith("# Boat deployment\n\n- Six rescue boats are pre-positioned at Chatara")
    assert "\n  - Each boat carries eight life jackets" in boats  # a level-1 bullet stays nested
    assert "Notes: Confirm fuel for the boats with the logistics chief." in boats
    assert "Shift: Night · Duty officer: Bikash Gurung" in doc.pages[2].text


@pytest.mark.parametrize("make, kind", [(contacts_xlsx, "XLSX"), (briefing_pptx, "PPTX"), (contacts_ods, "ODS")])
def test_zip_parts_are_measured_before_a_spreadsheet_or_deck_is_parsed(tmp_path, make, kind):
    path = make(tmp_path / f"file.{kind.lower()}")
    data = io.BytesIO(path.read_bytes())
    with zipfile.ZipFile(data, "a", compression=zipfile.ZIP_DEFLATED) as package:
        package.writestr("docProps/padding.xml", b"<a>" + b" " * 3 * 1024 * 1024 + b"</a>")
    with pytest.raises(InputError, match=rf"the {kind} is .* its part docProps/padding.xml unpacks to 3 MB"):
        load_document(path, data.getvalue(), package=PackageLimits(member_mb=2, total_mb=250, ratio=100))


@pytest.mark.parametrize("suffix, said", [(".xlsx", "not a readable XLSX"), (".pptx", "not a readable PPTX"),
                                          (".ods", "not a readable ODS")])
def test_a_damaged_file_says_what_it_is_not(tmp_path, suffix, said):
    with pytest.raises(InputError, match=said):
        load_document(tmp_path / f"bad{suffix}", b"PK\x03\x04 not really a zip")


def test_the_logistics_chief_is_found_by_role_through_ingest_search_and_ask(container, tmp_path):
    kb = container.settings.paths.kb_dir
    kb.mkdir(parents=True, exist_ok=True)
    contacts_xlsx(kb / "contacts.xlsx")
    briefing_pptx(kb / "briefing.pptx")
    (kb / "flood.md").write_text("# Flood SOP\n\nThe duty officer alerts the ward chairs when the Chisapani gauge "
                                 "crosses the warning level.\n", encoding="utf-8")
    summary = container.assistant.ingest([kb])
    assert summary.ok and summary.count("added") == 3, summary.to_dict()["failures"]

    hit = container.assistant.search("who is the logistics chief phone", k=1)[0]
    assert hit.source == "contacts.xlsx" and "Role: Logistics Chief · Phone: 9841234567" in hit.text
    answer = container.assistant.ask("What is the logistics chief's phone number?", use_cache=False)
    assert "9841234567" in answer.answer and answer.sources[0]["source"] == "contacts.xlsx", answer.answer

    slide = container.assistant.search("how many life jackets does each boat carry", k=1)[0]
    assert slide.source == "briefing.pptx" and slide.page == 2 and slide.section == "Boat deployment"
    nepali = container.assistant.search("राम बहादुर श्रेष्ठ", k=3)
    assert any("Liaison Officer" in h.text for h in nepali), [h.text[:80] for h in nepali]
