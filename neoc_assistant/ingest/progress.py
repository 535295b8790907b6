"""What an ingest shows while it runs: a bar of files, and for a file read by OCR its pages and pages/s."""

from __future__ import annotations

import logging
import sys
import time
from typing import Callable

from neoc_assistant.ingest.names import printable

log = logging.getLogger("neoc_assistant.ingest.pipeline")


def short(source: str, width: int = 40) -> str:
    return source if len(source) <= width else "…" + source[-(width - 1) :]


def page_progress(bar, source: str) -> Callable[[int, int], None]:
    """What a file's OCR shows while it runs (it takes about a second a page): pages done and pages/s,
    on the progress bar and in the log."""
    started = [time.perf_counter()]
    name = short(printable(source), 30)

    def report(done: int, total: int) -> None:
        if done == 0:
            started[0] = time.perf_counter()  # OCR starts now (the PDF's text pages were read before)
        rate = done / max(time.perf_counter() - started[0], 1e-6)
        said = f"{name} OCR {done}/{total} pages" + (f", {rate:.2f} pages/s" if done else "")
        if bar is not None:
            bar.set_postfix_str(said)
        if done == total or done % 10 == 0:
            log.info("%s", said)

    return report


def progress_bar(total: int, enabled: bool):
    if not enabled or total == 0:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="file", desc="ingest", file=sys.stderr, dynamic_ncols=True)
