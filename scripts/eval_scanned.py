#!/usr/bin/env python3
"""Retrieval on scanned copies of FEMA PDFs against the originals, on the same questions (issue 22).

    .venv/bin/python scripts/eval_scanned.py [--corpus /work/shared/corpora/fema] [--root /tmp/neoc-scanned]

Why: OCR's character accuracy alone does not say whether a scanned binder
answers as well as its PDF; this measures both on real pages. The pages of
``_scanned_corpus.FILES`` (97 pages: the single ICS forms, the ready.gov
hazard sheets, ICS for Schools, the NIMS complexity guide) are rasterised
into image-only PDFs, some pages at 150 dpi, some turned 90/180 degrees, two
documents as one PNG per page (``_scanned_corpus.py``). Both folders are
ingested by the product's ``Ingestor`` into fresh stores under ``--root``.

Reported:

- OCR per document: character accuracy against the PDF's own text layer
  (``bench_ocr.py``'s measure: 1 - edit distance / reference length,
  whitespace collapsed, case kept; pages with under 20 characters of text
  layer left out), word recall, pages refused by the confidence floor, pages
  turned upright, and pages/s (the parse worker's own figure; the machine is
  shared, so it is noisy);
- retrieval (``eval_retrieval.py``'s questions mode, its judge and metrics):
  file@5 and evidence@5 (its ``passage@5``: the evidence sentence in a top-5
  chunk, exact or 80 % of its words in order) for each stage configuration,
  original vs scanned. The questions are those of
  ``tests/data/fema_questions.jsonl`` and ``fema_officer_questions.jsonl``
  with an answering file in the set whose evidence is in that file's text
  layer; ``answer_files`` keep only the files of the set, and a document
  scanned as PNG pages is answered by any of its pages.

The last line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from argparse import Namespace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import eval_retrieval  # noqa: E402  (configures the process first: offline, quiet)
from _retrieval_metrics import evidence_in, read_jsonl  # noqa: E402
from _scanned_corpus import FILES, ScannedPage, build, plan, text_layer  # noqa: E402
from bench_ocr import collapse, word_recall  # noqa: E402

QUESTIONS = ["tests/data/fema_questions.jsonl", "tests/data/fema_officer_questions.jsonl"]
MIN_REFERENCE_CHARS = 20
TURNED = re.compile(r"(\d+|the image) \((\d+)°\)")


def accuracy_parts(reference: str, got: str) -> tuple[int, int]:
    """(edit distance, reference length) of bench_ocr.py's accuracy, with rapidfuzz's Levenshtein (the
    same number as bench_ocr.edit_distance, in C: a page's 3,000 characters cost seconds in Python)."""
    from rapidfuzz.distance import Levenshtein

    reference, got = collapse(reference), collapse(got)
    return Levenshtein.distance(reference, got), len(reference)


def select_questions(root: Path, pages: list[ScannedPage], reference: dict) -> tuple[Path, Path, int]:
    """The questions answerable from the set, written twice: for the originals and for the scanned names."""
    targets: dict[str, list[str]] = {}
    for page in pages:
        if page.target not in targets.setdefault(page.source, []):
            targets[page.source].append(page.target)
    kept = []
    for name in QUESTIONS:
        for q in read_jsonl(Path(name)):
            files = [f for f in q["answer_files"] if f in targets]
            if files and any(evidence_in(q["evidence"], text) for (src, _), text in reference.items() if src in files):
                kept.append({**q, "answer_files": files})
    original, scanned = root / "questions-original.jsonl", root / "questions-scanned.jsonl"
    with open(original, "w", encoding="utf-8") as a, open(scanned, "w", encoding="utf-8") as b:
        for q in kept:
            a.write(json.dumps(q) + "\n")
            b.write(json.dumps({**q, "answer_files": [t for f in q["answer_files"] for t in targets[f]]}) + "\n")
    return original, scanned, len(kept)


def ingest(folder: Path, data_dir: Path) -> tuple[dict[str, object], float]:
    """A fresh store of ``folder`` by the product's ingest; the documents its parser made, by source name."""
    import shutil

    shutil.rmtree(data_dir, ignore_errors=True)
    container = eval_retrieval.build_container(data_dir, folder, {})
    parser, docs = container.parser, {}
    load = parser.load

    def recording(path, data, progress=None):
        doc = load(path, data, progress)
        docs[Path(path).resolve().relative_to(folder.resolve()).as_posix()] = doc
        return doc

    parser.load = recording  # type: ignore[method-assign]  # the Ingestor asks its parser at each file
    started = time.perf_counter()
    eval_retrieval.ingest(container, folder)
    return docs, time.perf_counter() - started


def ocr_report(pages: list[ScannedPage], docs: dict, reference: dict, details: Path) -> dict:
    """Per original document: accuracy, word recall, pages refused / turned, pages/s of the OCR; one line
    per page in ``details`` (how it was scanned, its confidence and accuracy)."""
    out: dict[str, dict] = {}
    lines = []
    for page in pages:
        row = out.setdefault(page.source, {"pages": 0, "dist": 0, "chars": 0, "recall": [], "refused": 0,
                                           "rotated_pages": 0, "turned": 0, "turned_right": 0,
                                           "low_dpi_pages": 0, "seconds": 0.0, "confidence": []})
        row["pages"] += 1
        row["rotated_pages"] += bool(page.rotated)
        row["low_dpi_pages"] += page.dpi < 200
        doc = docs.get(page.target)
        got = None
        if doc is not None:
            got = doc.pages[0] if page.target.endswith(".png") else doc.pages[page.number - 1]
        line = {"source": page.source, "page": page.number, "target": page.target, "dpi": page.dpi,
                "rotated": page.rotated, "confidence": None, "turned": None, "accuracy": None}
        lines.append(line)
        if got is None or got.ocr_confidence is None:
            row["refused"] += 1
            continue
        line["confidence"] = got.ocr_confidence
        row["confidence"].append(got.ocr_confidence)
        turned = _turned(doc.notes).get(None if page.target.endswith(".png") else page.number)
        line["turned"] = turned
        if turned is not None:
            row["turned"] += 1
            row["turned_right"] += turned == page.rotated
        ref = reference[(page.source, page.number)]
        if len(collapse(ref)) >= MIN_REFERENCE_CHARS:
            dist, chars = accuracy_parts(ref, got.text)
            row["dist"] += dist
            row["chars"] += chars
            row["recall"].append(word_recall(ref, got.text))
            line["accuracy"] = round(1 - dist / max(chars, 1), 4)
            line["word_recall"] = round(row["recall"][-1], 4)
    for target in {p.target for p in pages}:
        doc = docs.get(target)
        source = next(p.source for p in pages if p.target == target)
        for note in doc.notes if doc is not None else []:
            m = re.search(r"(?:the image|(\d+) page\(s\)) read by OCR at ([\d.]+) pages/s", note)
            if m:
                read = int(m.group(1) or 1)
                out[source]["seconds"] += read / max(float(m.group(2)), 1e-6)
    for row in out.values():
        row["accuracy"] = round(1 - row.pop("dist") / max(row.pop("chars"), 1), 4)
        recall = row.pop("recall")
        row["word_recall"] = round(sum(recall) / len(recall), 4) if recall else 0.0
        confidence = row.pop("confidence")
        row["confidence_mean"] = round(sum(confidence) / len(confidence), 1) if confidence else 0.0
        seconds = row.pop("seconds")
        row["pages_per_s"] = round((row["pages"] - row["refused"]) / seconds, 2) if seconds else 0.0
    with open(details, "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(line) + "\n" for line in lines)
    return {"documents": out, "by_scan": by_scan(lines)}


def by_scan(lines: list[dict]) -> dict:
    """Pages grouped by how they were scanned: how many, refused, mean accuracy of the rest."""
    groups: dict[str, list[dict]] = {}
    for line in lines:
        kind = "png" if line["target"].endswith(".png") else "pdf"
        key = f"{kind} {line['dpi']} dpi, {'turned ' + str(line['rotated']) if line['rotated'] else 'upright'}"
        groups.setdefault(key, []).append(line)
    out = {}
    for key, group in sorted(groups.items()):
        scored = [g["accuracy"] for g in group if g["accuracy"] is not None]
        out[key] = {"pages": len(group), "refused": sum(g["confidence"] is None for g in group),
                    "turned_by_osd": sum(g["turned"] is not None for g in group),
                    "accuracy_mean": round(sum(scored) / len(scored), 4) if scored else None}
    return out


def _turned(notes: list[str]) -> dict[int | None, int]:
    """Pages the OCR turned upright (from the file's notes): page number (None: the image) -> degrees."""
    out: dict[int | None, int] = {}
    for note in notes:
        if note.startswith("turned upright before reading:"):
            for label, degrees in TURNED.findall(note):
                out[None if label == "the image" else int(label)] = int(degrees)
    return out


def retrieval(questions: Path, folder: Path, data_dir: Path, configs: list[str], per_query: Path) -> dict:
    args = Namespace(questions=str(questions), corpus=str(folder), data_dir=str(data_dir), no_ingest=True,
                     split="all", limit=0, configs=configs, k_questions=10, per_query=str(per_query))
    return eval_retrieval.eval_questions(args, {})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=Path("/work/shared/corpora/fema"))
    parser.add_argument("--root", type=Path, default=Path("/tmp/neoc-scanned"), help="where the copies and stores go")
    parser.add_argument("--configs", default=",".join(eval_retrieval.STAGE_CONFIGS))
    parser.add_argument("--no-ingest", action="store_true", help="reuse the stores in --root (retrieval only)")
    args = parser.parse_args(argv)
    configs = [c for c in args.configs.split(",") if c]
    root = args.root
    root.mkdir(parents=True, exist_ok=True)
    pages = plan(args.corpus)
    reference = text_layer(args.corpus)
    q_original, q_scanned, n = select_questions(root, pages, reference)
    print(f"# {len(FILES)} PDFs, {len(pages)} pages; {n} questions", file=sys.stderr)
    original, scanned = root / "original", root / "scanned"
    ocr: dict = {}
    timing: dict = {}
    if not args.no_ingest:
        started = time.perf_counter()
        build(args.corpus, root, pages)
        print(f"# scanned copies built in {time.perf_counter() - started:.0f}s under {root}", file=sys.stderr)
        _, timing["original_ingest_s"] = ingest(original, root / "store-original")
        docs, timing["scanned_ingest_s"] = ingest(scanned, root / "store-scanned")
        ocr = ocr_report(pages, docs, reference, root / "pages.jsonl")
        print_ocr(ocr)
    results = {name: retrieval(q, folder, root / f"store-{name}", configs, root / f"per-query-{name}.jsonl")
               for name, q, folder in (("original", q_original, original), ("scanned", q_scanned, scanned))}
    comparison = print_comparison(results, configs)
    print(json.dumps({"pages": len(pages), "files": len(FILES), "questions": n,
                      "rotated_pages": sum(bool(p.rotated) for p in pages),
                      "low_dpi_pages": sum(p.dpi < 200 for p in pages),
                      "png_pages": sum(p.target.endswith(".png") for p in pages),
                      "ocr": ocr, "timing_s": {k: round(v, 1) for k, v in timing.items()},
                      "retrieval": comparison}))
    return 0


def print_ocr(ocr: dict) -> None:
    print(f"{'document':<48}{'pages':>6}{'acc.':>8}{'recall':>8}{'conf':>6}{'refused':>8}{'turned':>8}{'p/s':>6}")
    for source, row in ocr["documents"].items():
        print(f"{Path(source).name[:47]:<48}{row['pages']:>6}{row['accuracy']:>8.3f}{row['word_recall']:>8.3f}"
              f"{row['confidence_mean']:>6.0f}{row['refused']:>8}{row['turned']:>4}/{row['rotated_pages']:<3}"
              f"{row['pages_per_s']:>6.2f}")
    print(f"\n{'pages scanned as':<32}{'pages':>6}{'refused':>8}{'turned':>7}{'acc.':>8}")
    for key, row in ocr["by_scan"].items():
        acc = f"{row['accuracy_mean']:>8.3f}" if row["accuracy_mean"] is not None else f"{'-':>8}"
        print(f"{key:<32}{row['pages']:>6}{row['refused']:>8}{row['turned_by_osd']:>7}{acc}")


def print_comparison(results: dict, configs: list[str]) -> dict:
    """file@5 and evidence@5, original vs scanned, in points."""
    out = {}
    print(f"\n{'configuration':<20}{'file@5 orig':>12}{'scanned':>9}{'diff':>7}{'evid@5 orig':>13}{'scanned':>9}"
          f"{'diff':>7}")
    for name in configs:
        a, b = results["original"]["configs"][name], results["scanned"]["configs"][name]
        row = {"file@5": [a["file@5"], b["file@5"]], "evidence@5": [a["passage@5"], b["passage@5"]],
               "hit@1": [a["hit@1"], b["hit@1"]], "mrr@10": [a["mrr@10"], b["mrr@10"]]}
        out[name] = row
        print(f"{name:<20}{a['file@5']:>12.3f}{b['file@5']:>9.3f}{100 * (b['file@5'] - a['file@5']):>+7.1f}"
              f"{a['passage@5']:>13.3f}{b['passage@5']:>9.3f}{100 * (b['passage@5'] - a['passage@5']):>+7.1f}")
    return out


if __name__ == "__main__":
    sys.exit(main())
