"""Measure OCR: pages/s and character accuracy of pytesseract + pdftoppm against ocrmypdf.

Pages of real text PDFs are rendered to images (pdftoppm), read back, and the
text compared with the PDF's own text layer: character accuracy is
1 - (edit distance / reference length), whitespace collapsed, case kept.

    .venv/bin/python scripts/bench_ocr.py PDF --pages 21,31,41 --dpi 300 [--ocrmypdf /path/to/ocrmypdf]

``--ocrmypdf`` runs the same pages as one image-only PDF through ocrmypdf
(``--jobs 1``, the same Tesseract) and scores its text layer the same way.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from neoc_assistant.ingest.ocr import OcrOptions, read_image, render_pdf_page  # noqa: E402


def collapse(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def edit_distance(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def accuracy(reference: str, got: str) -> float:
    reference, got = collapse(reference), collapse(got)
    return 1 - edit_distance(reference, got) / max(len(reference), 1)


def word_recall(reference: str, got: str) -> float:
    """Share of the reference's words OCR gave back, in any order (reading order aside: a two-column
    page read column by column scores low on character accuracy with every word right)."""
    from collections import Counter

    want, have = Counter(reference.split()), Counter(got.split())
    return sum(min(n, have[w]) for w, n in want.items()) / max(sum(want.values()), 1)


def text_layer(data: bytes, numbers: list[int]) -> dict[int, str]:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data))
    return {n: reader.pages[n - 1].extract_text() or "" for n in numbers}


def run_pytesseract(data: bytes, numbers: list[int], options: OcrOptions) -> tuple[dict[int, str], dict, float]:
    texts, confidences = {}, {}
    started = time.perf_counter()
    for n in numbers:
        page = read_image(render_pdf_page(data, n, options), options, n)
        texts[n], confidences[n] = page.text, page.confidence
    return texts, confidences, time.perf_counter() - started


def run_ocrmypdf(tool: str, data: bytes, numbers: list[int], options: OcrOptions) -> tuple[dict[int, str], float]:
    """The same pages as an image-only PDF (rendered outside the timing), through ocrmypdf."""
    from pypdf import PdfReader

    images = [render_pdf_page(data, n, options).convert("L") for n in numbers]
    with tempfile.TemporaryDirectory() as tmp:
        scanned, out = Path(tmp) / "scan.pdf", Path(tmp) / "out.pdf"
        images[0].save(scanned, save_all=True, append_images=images[1:], resolution=options.dpi)
        started = time.perf_counter()
        subprocess.run([tool, "-l", options.languages, "--jobs", "1", "--output-type", "pdf", "--optimize", "0",
                        "--quiet", str(scanned), str(out)], check=True)
        seconds = time.perf_counter() - started
        reader = PdfReader(str(out))
        return {n: reader.pages[i].extract_text() or "" for i, n in enumerate(numbers)}, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pdf", type=Path)
    parser.add_argument("--pages", default="1,2,3")
    parser.add_argument("--dpi", type=int, default=300)
    parser.add_argument("--languages", default="eng")
    parser.add_argument("--ocrmypdf", default="")
    args = parser.parse_args()
    data = args.pdf.read_bytes()
    numbers = [int(n) for n in args.pages.split(",")]
    options = OcrOptions(languages=args.languages, dpi=args.dpi)
    reference = text_layer(data, numbers)
    texts, confidences, seconds = run_pytesseract(data, numbers, options)
    report = {"pdf": args.pdf.name, "pages": numbers, "dpi": args.dpi, "languages": args.languages,
              "pytesseract": {"pages_per_s": round(len(numbers) / seconds, 2),
                              "accuracy": {n: round(accuracy(reference[n], texts[n]), 4) for n in numbers},
                              "word_recall": {n: round(word_recall(reference[n], texts[n]), 4) for n in numbers},
                              "confidence": confidences}}
    if args.ocrmypdf:
        got, seconds = run_ocrmypdf(args.ocrmypdf, data, numbers, options)
        report["ocrmypdf"] = {"pages_per_s": round(len(numbers) / seconds, 2),
                              "accuracy": {n: round(accuracy(reference[n], got[n]), 4) for n in numbers},
                              "word_recall": {n: round(word_recall(reference[n], got[n]), 4) for n in numbers}}
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
