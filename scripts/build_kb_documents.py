#!/usr/bin/env python3
"""Build the binary documents of the default NEOC knowledge base.

Produces, from the text held in ``_kb_documents_text.py``:

* ``knowledge_base/13-ics-forms-guide.pdf``  (fpdf2, Helvetica core font)
* ``knowledge_base/16-situation-reports.docx`` (python-docx, Heading 1/2 styles)

The text is restricted to Latin-1 characters because the PDF uses the fpdf2
core fonts. Run with an interpreter that has ``fpdf2`` and ``python-docx``:

    python scripts/build_kb_documents.py [--out-dir knowledge_base]
"""

from __future__ import annotations

import argparse
import datetime as _dt
from pathlib import Path

from _kb_documents_text import ICS_FORMS, SITREPS  # the documents' text, held beside this script

FIXED_DATE = _dt.datetime(2024, 6, 1, 9, 0, 0, tzinfo=_dt.timezone.utc)


def _check_latin1(doc: dict) -> None:
    def texts():
        yield doc["title"]
        yield doc["applies"]
        for heading, blocks in doc["sections"]:
            yield heading
            for block in blocks:
                if isinstance(block, str):
                    yield block
                else:
                    yield from block

    for text in texts():
        text.encode("latin-1")  # raises UnicodeEncodeError if not Latin-1


def build_pdf(doc: dict, path: Path) -> None:
    from fpdf import FPDF
    from fpdf.enums import XPos, YPos

    class _PDF(FPDF):
        def footer(self) -> None:  # noqa: D401 - fpdf hook
            self.set_y(-15)
            self.set_font("Helvetica", "I", 8)
            self.cell(0, 10, f"NEOC knowledge base - {doc['title']} - page {self.page_no()}",
                      align="C")

    pdf = _PDF(format="A4")
    pdf.set_title(doc["title"])
    pdf.set_author("NEOC Planning Section (example)")
    pdf.set_creation_date(FIXED_DATE)
    pdf.set_auto_page_break(auto=True, margin=20)
    pdf.set_margins(20, 20, 20)
    pdf.add_page()

    def para(text: str, size: float = 11, style: str = "", h: float = 6) -> None:
        pdf.set_font("Helvetica", style, size)
        pdf.multi_cell(0, h, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    para(doc["title"], size=17, style="B", h=9)
    pdf.ln(1)
    para(doc["applies"], size=9, style="I", h=5)
    pdf.ln(3)
    for heading, blocks in doc["sections"]:
        if pdf.get_y() > pdf.h - 60:  # keep headings with their text
            pdf.add_page()
        pdf.ln(2)
        para(heading, size=13, style="B", h=8)
        for block in blocks:
            if isinstance(block, str):
                para(block)
                pdf.ln(1.5)
            else:
                for item in block:
                    pdf.set_font("Helvetica", "", 11)
                    pdf.set_x(pdf.l_margin + 4)
                    pdf.multi_cell(0, 6, "- " + item, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
                pdf.ln(1.5)
    pdf.output(str(path))


def build_docx(doc: dict, path: Path) -> None:
    import docx
    from docx.shared import Pt

    d = docx.Document()
    d.core_properties.title = doc["title"]
    d.core_properties.author = "NEOC Planning Section (example)"
    d.core_properties.created = FIXED_DATE.replace(tzinfo=None)
    d.core_properties.modified = FIXED_DATE.replace(tzinfo=None)
    d.core_properties.last_modified_by = "NEOC Planning Section (example)"
    d.add_heading(doc["title"], level=1)
    p = d.add_paragraph(doc["applies"])
    for run in p.runs:
        run.italic = True
        run.font.size = Pt(9)
    for heading, blocks in doc["sections"]:
        d.add_heading(heading, level=2)
        for block in blocks:
            if isinstance(block, str):
                d.add_paragraph(block)
            else:
                for item in block:
                    d.add_paragraph(item, style="List Bullet")
    d.save(str(path))


def main() -> None:
    repo = Path(__file__).resolve().parent.parent
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out-dir", type=Path, default=repo / "knowledge_base")
    args = ap.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for doc in (ICS_FORMS, SITREPS):
        _check_latin1(doc)
    pdf_path = args.out_dir / "13-ics-forms-guide.pdf"
    docx_path = args.out_dir / "16-situation-reports.docx"
    build_pdf(ICS_FORMS, pdf_path)
    build_docx(SITREPS, docx_path)
    for p in (pdf_path, docx_path):
        print(f"wrote {p} ({p.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
