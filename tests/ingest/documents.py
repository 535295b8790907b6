"""Documents the ingest tests make for themselves: scanned pages from real text PDFs, a contact list
as XLSX and ODS, a briefing deck as PPTX (nothing is downloaded)."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

CONTACTS = [
    ("Name", "Role", "Phone", "Office"),
    ("Hari Prasad Thapa", "Logistics Chief", 9841234567, "District EOC, Banepa"),
    ("Sita Kumari Rai", "Operations Section Chief", 9851098765, "District EOC, Banepa"),
    ("Bikash Gurung", "Planning Section Chief", 9803456789, "Ward 5 office"),
    ("राम बहादुर श्रेष्ठ", "Liaison Officer", 9812003004, "नगरपालिका कार्यालय"),
]

FLOOD_PAGE = ("Flood response standard operating procedure. When the river gauge at Chisapani crosses "
              "the warning level, the duty officer alerts the ward chairs. Sandbags are released from the "
              "Banepa store within two hours of a red alert.")
SHELTER_PAGE = ("Shelter management. Every family arriving at an evacuation shelter is registered within "
                "24 hours, and the shelter manager reports arrivals to the EOC every six hours.")


def text_pdf(pages: list[str]) -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 7, text)
    return bytes(pdf.output())


def rasterise(pdf: bytes, page: int, dpi: int = 200) -> bytes:
    """One page of a real text PDF as a PNG, the way a scanner sees it."""
    done = subprocess.run(["pdftoppm", "-f", str(page), "-l", str(page), "-r", str(dpi), "-gray", "-png", "-"],
                          input=pdf, capture_output=True, check=True)
    return done.stdout


def image_pdf(pngs: list[bytes], dpi: int = 200) -> bytes:
    """Image-only pages (a scan): each PNG wrapped as one PDF page, no text layer."""
    from PIL import Image

    images = [Image.open(io.BytesIO(p)).convert("L") for p in pngs]
    out = io.BytesIO()
    images[0].save(out, "PDF", save_all=True, append_images=images[1:], resolution=dpi)
    return out.getvalue()


def join_pdfs(*parts: tuple[bytes, int]) -> bytes:
    """Page ``n`` (1-based) of each PDF, in order, as one PDF."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for data, number in parts:
        writer.add_page(PdfReader(io.BytesIO(data)).pages[number - 1])
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def contacts_xlsx(path: Path) -> Path:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Contacts"
    sheet.append(["District EOC contact list (updated 5 May)"])
    sheet.append([])
    for row in CONTACTS:
        sheet.append(list(row))
    stock = book.create_sheet("Relief stock")
    stock.append(["Item", "Quantity", "Unit", "Store"])
    stock.append(["Tarpaulin", 450, "pieces", "Banepa"])
    stock.append(["Rice", 1200.0, "kg", "Dhulikhel"])
    book.save(path)
    return path


def contacts_ods(path: Path) -> Path:
    from odf.opendocument import OpenDocumentSpreadsheet
    from odf.table import Table, TableCell, TableRow
    from odf.text import P

    doc = OpenDocumentSpreadsheet()
    table = Table(name="Contacts")
    for row in CONTACTS:
        tr = TableRow()
        for value in row:
            if isinstance(value, int):
                cell = TableCell(valuetype="float", value=value)
            else:
                cell = TableCell(valuetype="string")
            cell.addElement(P(text=str(value)))
            tr.addElement(cell)
        tr.addElement(TableCell(numbercolumnsrepeated=16000))  # the empty tail every ODS writes
        table.addElement(tr)
    table.addElement(TableRow(numberrowsrepeated=1_048_000))  # an empty tail of rows, never expanded
    doc.spreadsheet.addElement(table)
    doc.save(str(path))
    return path


def briefing_pptx(path: Path) -> Path:
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[0])
    slide.shapes.title.text = "Monsoon preparedness briefing"
    slide.placeholders[1].text = "District EOC, 1 June"
    slide = deck.slides.add_slide(deck.slide_layouts[1])
    slide.shapes.title.text = "Boat deployment"
    body = slide.placeholders[1].text_frame
    body.text = "Six rescue boats are pre-positioned at Chatara"
    para = body.add_paragraph()
    para.text = "Each boat carries eight life jackets"
    para.level = 1
    slide.notes_slide.notes_text_frame.text = "Confirm fuel for the boats with the logistics chief."
    slide = deck.slides.add_slide(deck.slide_layouts[5])
    slide.shapes.title.text = "Duty roster"
    table = slide.shapes.add_table(3, 2, Inches(1), Inches(2), Inches(6), Inches(2)).table
    for r, (a, b) in enumerate([("Shift", "Duty officer"), ("Night", "Bikash Gurung"), ("Day", "Sita Kumari Rai")]):
        table.cell(r, 0).text, table.cell(r, 1).text = a, b
    deck.save(path)
    return path
