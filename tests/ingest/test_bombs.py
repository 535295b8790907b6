"""Hostile files cannot take the machine's memory: zip parts measured first, parsing in a capped child.

Adversarial findings: a 1 MB DOCX whose ``word/styles.xml`` unpacks to 300 MB
took 48 s and 4.6 GB before it ingested (a 300 MB ``docProps/core.xml``:
3.3 GB), and the server kept most of it afterwards; PDFs whose content hit
pypdf's limits were reported as scans. Real files, real loaders, the real
worker process, real manifest, Chroma and embedder.
"""

from __future__ import annotations

import io
import os
import signal
import threading
import time
import zipfile

import psutil
import pytest

from neoc_assistant.errors import InputError
from neoc_assistant.ingest.loaders import load_document
from neoc_assistant.settings import Settings

from ingest_fixtures import write_docx

STYLE = '<w:style w:type="paragraph" w:customStyle="1" w:styleId="x"><w:name w:val="x"/></w:style>\n'
SUBJECT = "<dc:subject>flood</dc:subject>\n"


def bomb_docx(path, member: str, mb: int):
    """A real DOCX whose ``member`` is padded with ``mb`` MB of valid, endlessly repeated XML."""
    plain = write_docx(path.with_name("plain-" + path.name), "Sandbags", ["Sandbags are at gate 3."])
    unit = STYLE if "styles" in member else SUBJECT
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == member:
                text = data.decode()
                close = text.rindex("</")
                data = (text[:close] + unit * (mb * 1_000_000 // len(unit)) + text[close:]).encode()
            out.writestr(info.filename, data)
    plain.unlink()
    return path


def pdf_with_content(*contents: bytes, flate: bool = False) -> bytes:
    """A PDF with one page per item of ``contents``, each its page's content stream (deflated when ``flate``)."""
    import zlib

    n = len(contents)
    kids = b" ".join(b"%d 0 R" % (3 + 2 * i) for i in range(n))
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, n)]
    for i, content in enumerate(contents):
        stream = zlib.compress(content, 9) if flate else content
        objects.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R "
                       b"/Resources << /Font << /F1 %d 0 R >> >> >>" % (4 + 2 * i, 3 + 2 * n))
        objects.append(b"<< /Length %d%s >>\nstream\n" % (len(stream), b" /Filter /FlateDecode" if flate else b"")
                       + stream + b"\nendstream")
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


TEXT = b"BT /F1 12 Tf 72 720 Td (Sandbags are stacked at gate 3) Tj ET\n"


def _kb(container, **files):
    kb = container.settings.paths.kb_dir
    kb.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (kb / name).write_text(text)
    return kb


def _store_is_consistent(container) -> None:
    manifest = container.manifest
    assert container.vectors.ids() == set(manifest.chunk_ids_of([d.doc_hash for d in manifest.documents()]))


# -- zip parts measured before parsing -------------------------------------------------------------
@pytest.mark.parametrize("member", ["word/styles.xml", "docProps/core.xml"])
def test_a_docx_whose_side_part_unpacks_to_120_mb_fails_at_once_and_the_rest_is_ingested(container, member):
    """The old check looked at word/document.xml only; python-docx parses every XML part."""
    kb = _kb(container, **{"boats.md": "# Boats\n\nFourteen rescue boats are at Sunsari depot.\n"})
    bomb_docx(kb / "bomb.docx", member, 120)
    assert (kb / "bomb.docx").stat().st_size < 2_000_000
    started = time.perf_counter()
    summary = container.assistant.ingest()
    assert time.perf_counter() - started < 30
    assert [o.source for o in summary.failed] == ["bomb.docx"] and summary.count("added") == 1
    reason = summary.failed[0].reason
    assert member in reason and "max_unpacked_mb_per_member" in reason and "NEOC_STORE__MAX_UNPACKED_MB_PER_MEMBER" in reason
    _store_is_consistent(container)


def test_a_part_that_packs_far_tighter_than_any_document_is_refused(tmp_path):
    path = bomb_docx(tmp_path / "tight.docx", "word/styles.xml", 40)  # under the 100 MB part limit
    with pytest.raises(InputError, match=r"word/styles\.xml.*times.*max_compression_ratio"):
        load_document(path, path.read_bytes())


def test_all_parts_together_are_limited_too(tmp_path):
    path = tmp_path / "many.docx"
    write_docx(path, "Parts", ["Ten parts of 3 MB each, each under the part limit."])
    with zipfile.ZipFile(path, "a") as package:
        for n in range(10):
            package.writestr(f"word/media/blob{n}.bin", os.urandom(3 * 1024 * 1024))
    from neoc_assistant.ingest.packages import PackageLimits

    limits = PackageLimits(member_mb=5, total_mb=20, ratio=100)
    with pytest.raises(InputError, match="parts together unpack to more than 20 MB.*max_unpacked_mb_per_file"):
        load_document(path, path.read_bytes(), package=limits)
    assert load_document(path, path.read_bytes()).title == "Parts"  # the default limits let it through


def test_the_default_package_limits_are_the_settings_defaults():
    from neoc_assistant.ingest.isolation import ParseLimits
    from neoc_assistant.ingest.packages import DEFAULT_LIMITS

    store = Settings().store
    assert DEFAULT_LIMITS == ParseLimits.from_settings(store).package


# -- parsing in a child process ---------------------------------------------------------------------
def test_a_file_needing_more_memory_than_the_cap_fails_and_the_server_stays_flat(make_container):
    """With the zip checks opened wide, a 30 MB styles part (about 400 MB to parse) meets the child's
    memory cap: it fails with the reason, the other files ingest, the parent's memory does not move."""
    container = make_container(store={"max_compression_ratio": 100_000, "parse_memory_mb": 64})
    kb = _kb(container, **{"boats.md": "# Boats\n\nFourteen rescue boats are at Sunsari depot.\n"})
    container.assistant.ingest()  # the store and the embedder are warm: what grows next is the file's
    (kb / "radio.md").write_text("# Radio\n\nDistrict EOCs check in by VHF radio at 07:30.\n")
    bomb_docx(kb / "heavy.docx", "word/styles.xml", 30)
    with _peak_rss_growth() as growth:
        summary = container.assistant.ingest()
    assert [o.source for o in summary.failed] == ["heavy.docx"] and summary.count("added") == 1
    assert "parse_memory_mb" in summary.failed[0].reason and "64 MB" in summary.failed[0].reason
    print("parent RSS growth", growth)
    assert growth["mb"] < 150, growth
    _store_is_consistent(container)


def test_a_large_file_is_parsed_in_the_child_and_its_memory_is_not_kept(make_container):
    """The same 30 MB part within the cap ingests; the parent never holds the parsed XML (the UI
    server went from 2.2 to 5.4 GB and stayed at 5.1), and no parser process outlives the run."""
    container = make_container(store={"max_compression_ratio": 100_000})
    kb = _kb(container, **{"boats.md": "# Boats\n\nFourteen rescue boats are at Sunsari depot.\n"})
    container.assistant.ingest()
    bomb_docx(kb / "heavy.docx", "word/styles.xml", 30)
    with _peak_rss_growth() as growth:
        summary = container.assistant.ingest()
    assert summary.ok and summary.count("added") == 1 and summary.count("unchanged") == 1, summary.to_dict()
    print("parent RSS growth", growth)
    assert growth["mb"] < 150, growth
    assert container.parser.worker_pid is None
    assert container.assistant.search("where are the sandbags", k=1)[0].source == "heavy.docx"


def test_a_file_that_takes_too_long_is_stopped_and_the_ingest_goes_on(make_container):
    # The limit leaves a fresh worker time to start on a loaded machine (0.5 s once failed the small
    # file after it); the part is large enough to take far longer than the limit to parse.
    container = make_container(store={"max_compression_ratio": 100_000, "parse_timeout_seconds": 3,
                                      "parse_memory_mb": 4096})
    kb = _kb(container, **{"z-boats.md": "# Boats\n\nFourteen rescue boats are at Sunsari depot.\n"})
    bomb_docx(kb / "a-slow.docx", "word/styles.xml", 90)  # 3x the 30 MB part above (under the 100 MB cap)
    summary = container.assistant.ingest()
    assert [o.source for o in summary.failed] == ["a-slow.docx"] and summary.count("added") == 1
    assert "longer than 3 s" in summary.failed[0].reason and "parse_timeout_seconds" in summary.failed[0].reason
    assert container.parser.started == 2  # the stopped worker was replaced for the next file


@pytest.mark.parametrize("sig, said", [(signal.SIGKILL, "was killed (SIGKILL"), (signal.SIGSEGV, "crashed (SIGSEGV)")])
def test_a_worker_that_dies_fails_its_file_alone(tmp_path, sig, said):
    """As the kernel's OOM killer (SIGKILL) or a parser crash (SIGSEGV) would end it, mid-file."""
    from neoc_assistant.ingest.isolation import IsolatedParser, ParseLimits
    from neoc_assistant.ingest.packages import PackageLimits

    parser = IsolatedParser(ParseLimits(None, PackageLimits(1000, 1000, 100_000), None, 60.0))
    slow = bomb_docx(tmp_path / "slow.docx", "word/styles.xml", 30)
    good = write_docx(tmp_path / "good.docx", "Radio", ["District EOCs check in by VHF radio at 07:30."])
    outcome = {}

    def load_slow():
        try:
            parser.load(slow, slow.read_bytes())
        except InputError as exc:
            outcome["error"] = str(exc)

    thread = threading.Thread(target=load_slow)
    thread.start()
    deadline = time.monotonic() + 20
    while parser.worker_pid is None and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.5)  # the worker has the file by now: a 30 MB part takes seconds
    os.kill(parser.worker_pid, sig)
    thread.join(30)
    assert said in outcome.get("error", ""), outcome
    assert parser.load(good, good.read_bytes()).title == "Radio"
    assert parser.started == 2
    parser.close()
    assert parser.worker_pid is None


def test_a_file_whose_bytes_alone_exceed_the_cap_fails_with_that_reason(tmp_path):
    from neoc_assistant.ingest.isolation import IsolatedParser, ParseLimits
    from neoc_assistant.ingest.packages import DEFAULT_LIMITS

    parser = IsolatedParser(ParseLimits(5_000_000, DEFAULT_LIMITS, 64, 60.0))
    with pytest.raises(InputError, match="more than 64 MB of memory.*parse_memory_mb"):
        parser.load(tmp_path / "log.txt", b"sandbags at gate 3\n" * 5_000_000)  # 95 MB
    assert parser.load(tmp_path / "ok.md", b"# Radio\n\nVHF check-in at 07:30.\n").title == "Radio"
    parser.close()


def _serve_without_vmpeak(conn, memory_mb):
    """The worker where ``/proc/self/status`` gives VmSize but no VmPeak (runs in the spawned child)."""
    from neoc_assistant.ingest import isolation

    real = isolation._vm_kb
    isolation._vm_kb = lambda field: None if field == "VmPeak" else real(field)
    isolation.serve(conn, memory_mb)


def test_a_capped_worker_that_cannot_read_its_peak_still_reports_a_files_failure(tmp_path, monkeypatch):
    """Regression: the memory-blame check compared ``peak >= ...`` with peak None, a TypeError that killed
    the worker, so a broken file was reported as "the process reading it stopped unexpectedly"."""
    from neoc_assistant.ingest import isolation
    from neoc_assistant.ingest.packages import DEFAULT_LIMITS

    monkeypatch.setattr(isolation, "serve", _serve_without_vmpeak)
    parser = isolation.IsolatedParser(isolation.ParseLimits(5_000_000, DEFAULT_LIMITS, 512, 60.0))
    with pytest.raises(InputError, match="not a readable PDF"):
        parser.load(tmp_path / "broken.pdf", b"%PDF-1.4\nthis is no PDF body\n")
    assert parser.load(tmp_path / "ok.md", b"# Radio\n\nVHF check-in at 07:30.\n").title == "Radio"
    assert parser.started == 1  # the worker survived the failed file
    parser.close()


@pytest.mark.parametrize("message, peak, base, cap, short", [
    ("not a readable DOCX: unknown error", None, 1000, 5000, False),  # no VmPeak: only the message can tell
    ("Unable to allocate output buffer", None, 1000, 5000, True),
    ("not a readable DOCX: unknown error", 4500, None, 5000, False),
    ("not a readable DOCX: unknown error", 4500, 1000, 5000, True),  # 0.8 of the way to the cap
    ("not a readable DOCX: unknown error", 2000, 1000, 5000, False),
    ("Unable to allocate output buffer", 2000, 1000, None, False),  # no cap: nothing to blame
])
def test_memory_is_blamed_only_on_evidence(message, peak, base, cap, short):
    from neoc_assistant.ingest.isolation import _short_of_memory

    assert _short_of_memory(message, peak, base, cap) is short


# -- PDFs at pypdf's limits ------------------------------------------------------------------------
@pytest.mark.parametrize("content, flate, said", [
    (b"[" * 100_000 + b"]" * 100_000 + b"\n" + TEXT, False, "nests arrays or dictionaries too deeply"),
    (TEXT + b" " * 100_000_000, True, "pypdf's safety limit was reached"),
])
def test_a_pdf_at_the_readers_limits_says_so_instead_of_calling_it_a_scan(container, content, flate, said):
    kb = _kb(container)
    (kb / "hostile.pdf").write_bytes(pdf_with_content(content, flate=flate))
    summary = container.assistant.ingest()
    message = summary.failed[0].reason
    assert said in message and "every page" in message and "not a scan" in message
    assert "OCR" not in message


def test_a_readable_pdf_still_says_scan_when_it_has_no_text(tmp_path):
    path = tmp_path / "blank.pdf"
    path.write_bytes(pdf_with_content(b"0 0 m 10 10 l S\n"))
    with pytest.raises(InputError, match="a scan"):
        load_document(path, path.read_bytes())


def test_a_pdf_with_one_unreadable_page_keeps_the_others_and_notes_it(tmp_path):
    path = tmp_path / "both.pdf"
    path.write_bytes(pdf_with_content(TEXT, b"[" * 100_000 + b"]" * 100_000 + b"\n" + TEXT))
    doc = load_document(path, path.read_bytes())
    assert "Sandbags" in doc.pages[0].text and doc.pages[1].text == ""
    assert any("gave up on 1 of 2 pages (page 2" in note for note in doc.notes), doc.notes


class _peak_rss_growth:
    """Samples this process's resident memory while the block runs: {"mb": highest growth}."""

    def __enter__(self):
        self.process = psutil.Process()
        self.base = self.process.memory_info().rss
        self.result = {"mb": 0.0}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self.result

    def _sample(self):
        while not self.stop.is_set():
            growth = (self.process.memory_info().rss - self.base) / 1e6
            self.result["mb"] = max(self.result["mb"], growth)
            time.sleep(0.01)

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
