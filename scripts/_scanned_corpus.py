"""Scanned copies of FEMA PDFs, for ``eval_scanned.py``: the original PDFs, the same pages as pictures.

Each page is rendered with ``pdftoppm`` (grayscale, as an office scanner
delivers it) and the pictures are written back as an image-only PDF with
Pillow (no text layer, no title; Pillow stores grayscale pages
JPEG-compressed, as scanners do). A fixed, spread-out share of the pages is scanned at 150 dpi
instead of 300, and some are turned 90 or 180 degrees (a sheet fed sideways
or upside down); the pages of ``AS_PNG`` documents become one PNG file each
(a phone photo of each sheet). Which page gets what depends only on its
position in the whole set, so every run builds the same scans.

Built under /tmp: the corpus is read where it lies and never copied into the
repository.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

# The files: the single ICS forms (each 2-6 pages: a form and its instructions), the five ready.gov hazard
# sheets, ICS for Schools and the NIMS incident complexity guide -- 97 pages, the questions' answering
# PDFs that are small enough to OCR in a few minutes here (the NIMS doctrine's 133 pages are not).
FILES = [
    *(f"pdf/ics_forms/ics_form_{name}.pdf" for name in (
        "201_incident_briefing_v3", "202_incident_objectives_v3.1", "203_organization_assignment_list_v3",
        "204_assignment_list_v3.1", "205_incident_radio_communications_plan_v3.1", "205a_communications_list_v3",
        "206_medical_plan_v3", "207_incident_organization_chart_v3", "208_safety_message-plan_v3.1",
        "210_resource_status_change_v3", "211_incident_check-in_list_v3.1", "213_general_message_v3",
        "214_activity_log_v3.1", "215_operational_planning_worksheet_v3",
        "215a_incident_action_plan_safety_analysis_v3", "218_support_vehicle-equipment_inventory_v3",
        "220_air_operations_summary_v3", "221_demobilization_check-out_v3.1")),
    *(f"pdf/ready_gov/{name}.pdf" for name in ("earthquake_hazard_guide", "floood_guide", "tornado_guide",
                                               "wildfire_guide")),
    "pdf/planning/ready-gov_tsunami_info-sheet.pdf",
    "pdf/fema_other/is-0100c_complete-course/06 Handouts/ICS_for_Schools.pdf",
    "pdf/fema_other/nims-incident-complexity-guide.pdf",
]
AS_PNG = {"pdf/ready_gov/tornado_guide.pdf", "pdf/planning/ready-gov_tsunami_info-sheet.pdf"}
SCAN_DPI, LOW_DPI = 300, 150


@dataclass(frozen=True)
class ScannedPage:
    """One page of the scanned copy: where it came from and how it was scanned."""

    source: str  # the original's name, relative to the corpus
    number: int  # its page in the original, from 1
    target: str  # the scanned copy's name (a PNG page has a file of its own)
    dpi: int
    rotated: int  # degrees turned clockwise


def plan(corpus: Path) -> list[ScannedPage]:
    """Every page of ``FILES``, with the resolution and turn it is scanned with."""
    from pypdf import PdfReader

    pages: list[ScannedPage] = []
    for source in FILES:
        count = len(PdfReader(str(corpus / source)).pages)
        for number in range(1, count + 1):
            g = len(pages)
            target = f"{source[:-4]}-p{number}.png" if source in AS_PNG else source
            pages.append(ScannedPage(source, number, target, LOW_DPI if g % 3 == 2 else SCAN_DPI,
                                     {4: 90, 8: 180}.get(g % 10, 0)))
    return pages


def build(corpus: Path, root: Path, pages: list[ScannedPage]) -> tuple[Path, Path]:
    """``root/original`` (copies of the PDFs) and ``root/scanned`` (their image-only copies), made anew."""
    original, scanned = root / "original", root / "scanned"
    for folder in (original, scanned):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    for source in FILES:
        (original / source).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(corpus / source, original / source)
    images: dict[str, list] = {}
    for page in pages:
        image = _render(corpus / page.source, page.number, page.dpi)
        if page.rotated:
            image = image.rotate(-page.rotated, expand=True)  # PIL turns anticlockwise
        images.setdefault(page.target, []).append((image, page.dpi))
    for target, shots in images.items():
        out = scanned / target
        out.parent.mkdir(parents=True, exist_ok=True)
        if target.endswith(".png"):
            image, dpi = shots[0]
            image.save(out, dpi=(dpi, dpi))
        else:  # Pillow gives a PDF one resolution: a 150-dpi page is enlarged to it and keeps its size
            scaled = [_at(image, dpi, SCAN_DPI) for image, dpi in shots]
            # title="": Pillow would write the file's name as the title; a scan carries pictures only
            scaled[0].save(out, save_all=True, append_images=scaled[1:], resolution=SCAN_DPI, title="")
    return original, scanned


def _at(image, dpi: int, file_dpi: int):
    """A page scanned at ``dpi`` placed in a PDF whose pages are ``file_dpi``: scaled so the sheet keeps
    its size (its detail stays that of ``dpi``: downsampled first, then enlarged)."""
    if dpi == file_dpi:
        return image
    from PIL import Image

    factor = file_dpi / dpi
    return image.resize((round(image.width * factor), round(image.height * factor)), Image.Resampling.BILINEAR)


def _render(pdf: Path, number: int, dpi: int):
    from PIL import Image

    done = subprocess.run(["pdftoppm", "-f", str(number), "-l", str(number), "-r", str(dpi), "-gray", str(pdf)],
                          capture_output=True, check=True, timeout=120)
    return Image.open(io.BytesIO(done.stdout)).copy()


def text_layer(corpus: Path) -> dict[tuple[str, int], str]:
    """Each original page's own text layer (pypdf), the reference OCR is scored against."""
    from pypdf import PdfReader

    out = {}
    for source in FILES:
        for number, page in enumerate(PdfReader(str(corpus / source)).pages, start=1):
            out[(source, number)] = page.extract_text() or ""
    return out
