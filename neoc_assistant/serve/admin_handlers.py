"""The Knowledge base and System tabs' behaviour: uploads, deletes, the document list, health and metrics.

Uploads are checked on the server (the browser's file filter is only a
convenience; only files Gradio itself received are accepted) and saved under
``<kb_dir>/uploads``, then the whole knowledge-base folder is re-scanned so an
upload gets the same source name as a later ``ingest`` from the CLI.

An upload never replaces anything: a name already taken by other bytes gets a
number (``report (2).md``), the same bytes again are not stored twice. An
upload that fails to ingest is removed again (kept, it would fail on every
later ingest), and files left in ``uploads/`` that are not in the knowledge
base are offered for deletion. Everything goes through the ``Assistant``.
"""

from __future__ import annotations

import filecmp
import logging
import os
import re
import shutil
import tempfile
import time
import unicodedata
from pathlib import Path

from neoc_assistant import runtime

runtime.configure_process()  # Gradio reads its environment when it is imported
import gradio as gr  # noqa: E402

from neoc_assistant.errors import NeocError  # noqa: E402
from neoc_assistant.ingest.loaders import SUPPORTED_SUFFIXES  # noqa: E402
from neoc_assistant.ingest.names import lookalike_key, normalize, printable  # noqa: E402
from neoc_assistant.language.texts import ui_text  # noqa: E402
from neoc_assistant.serve import render  # noqa: E402
from neoc_assistant.serve.chat_handlers import RecentRequests  # noqa: E402
from neoc_assistant.serve.render import error_kind  # noqa: E402

log = logging.getLogger(__name__)

UPLOADS_DIRNAME = "uploads"


_UNSAFE_RUN = re.compile("\x00+")  # marks the characters replaced below, runs of them become one "_"
_SAFE_PUNCTUATION = frozenset("._() -")
# UTF-8 bytes of an upload's name: file systems allow 255 a name; this leaves room for " (999)".
MAX_NAME_BYTES = 150


def received_by_gradio(path: Path) -> bool:
    """True when ``path`` (symlinks resolved) lies in Gradio's upload folder: only files Gradio itself
    received from a browser may become uploads, never an arbitrary path a client names."""
    from gradio.utils import get_upload_folder

    try:
        return path.resolve(strict=True).is_relative_to(Path(get_upload_folder()).resolve())
    except OSError:
        return False


def safe_filename(name: str) -> str:
    """The name an upload is stored under: no folders, NFC, letters, marks and digits of any script
    (``ünits.md`` and ``änits.md`` were both ``_nits.md``, "uploaded twice") and ``._() -``; invisible
    characters dropped, anything else one ``_``; at most ``MAX_NAME_BYTES``, cut in the stem so the
    extension stays (a 300-character name lost its ``.md`` and was refused as "file type (none)")."""
    base = Path(str(name).replace("\\", "/")).name
    base = "".join(ch for ch in normalize(base) if unicodedata.category(ch) != "Cf")
    kept = "".join(ch if ch in _SAFE_PUNCTUATION or unicodedata.category(ch)[0] in "LMN" else "\x00" for ch in base)
    base = _UNSAFE_RUN.sub("_", kept).strip(" .")
    stem, suffix = os.path.splitext(base)
    room = MAX_NAME_BYTES - len(suffix.encode("utf-8"))
    if room < 1:
        return _cut(base, MAX_NAME_BYTES)
    return _cut(stem, room).rstrip(" .") + suffix


def _cut(text: str, max_bytes: int) -> str:
    """``text`` cut to ``max_bytes`` of UTF-8 between characters (an accent stays with its letter)."""
    data = text.encode("utf-8")
    if len(data) <= max_bytes:
        return text
    text = data[:max_bytes].decode("utf-8", errors="ignore")
    while text and unicodedata.category(text[-1])[0] == "M":
        text = text[:-1]
    return text


class KnowledgeBaseHandlers:
    def __init__(self, assistant):
        self.assistant = assistant
        self.kb_dir = Path(assistant.paths.kb_dir).expanduser().resolve()  # as ingest names sources
        self.upload_max_mb = assistant.serve.upload_max_mb

    @property
    def uploads_dir(self) -> Path:
        return self.kb_dir / UPLOADS_DIRNAME

    def validate(self, paths: list[str]) -> tuple[list[tuple[Path, str]], list[tuple[str, str]]]:
        """Server-side checks (the browser's file filter is only a convenience)."""
        limit = self.upload_max_mb * 1024 * 1024
        accepted: list[tuple[Path, str]] = []
        rejected: list[tuple[str, str]] = []
        seen: set[str] = set()  # look-alike keys, caseless (a case-insensitive disk would merge them)
        for raw in paths or []:
            path = Path(raw if isinstance(raw, (str, os.PathLike)) else getattr(raw, "name", str(raw)))
            name = safe_filename(path.name)
            suffix = Path(name).suffix.lower()
            if not name or name.startswith("."):
                rejected.append((path.name or "?", "not a usable file name"))
            elif suffix not in SUPPORTED_SUFFIXES:
                allowed = ", ".join(sorted(SUPPORTED_SUFFIXES))
                rejected.append((path.name, f"file type '{suffix or '(none)'}' is not supported (allowed: {allowed})"))
            elif not path.is_file():
                rejected.append((path.name, "upload is missing on the server; try again"))
            elif not received_by_gradio(path):
                log.warning("refused an upload that Gradio did not receive: %s", printable(str(path)))
                rejected.append((path.name, "was not uploaded through this page; upload the file again"))
            elif path.stat().st_size > limit:
                size_mb = path.stat().st_size / 1024 / 1024
                rejected.append((path.name, f"{size_mb:.1f} MB is over the {self.upload_max_mb} MB limit"))
            elif path.stat().st_size == 0:
                rejected.append((path.name, "the file is empty"))
            elif lookalike_key(name).casefold() in seen:
                rejected.append((path.name, "uploaded twice in one batch (or with a name that looks the same)"))
            else:
                seen.add(lookalike_key(name).casefold())
                accepted.append((path, name))
        return accepted, rejected

    def store(self, accepted: list[tuple[Path, str]]) -> list[tuple[Path, str]]:
        """Copy uploads into ``kb_dir/uploads`` without ever replacing a file; returns (stored path, note)."""
        target_dir = self.uploads_dir
        target_dir.mkdir(parents=True, exist_ok=True)
        stored = []
        for src, name in accepted:
            fd, tmp = tempfile.mkstemp(prefix=".upload-", dir=target_dir)
            os.close(fd)
            try:
                shutil.copyfile(src, tmp)
                stored.append(_place(Path(tmp), target_dir, name))
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        return stored

    def upload(self, files, progress=gr.Progress()):
        paths = files if isinstance(files, list) else ([files] if files else [])
        if not paths:
            return ("Choose one or more files first.", *self.listing())
        accepted, rejected = self.validate(paths)
        if not accepted:
            md = render.ingest_summary_markdown({}, rejected, title="Nothing ingested")
            return (md, *self.listing())
        try:
            stored = self.store(accepted)
        except OSError as exc:
            return (render.error_markdown("StoreError", f"could not save the upload: {exc.strerror or exc}"), *self.listing())

        def on_progress(done: int, total: int, source: str) -> None:
            progress((done, max(total, 1)), desc=f"Ingesting {source}" if source else "Finishing", unit="files")

        progress(0, desc="Scanning the knowledge-base folder")
        try:
            # The whole KB folder, so an upload gets the same source name ("uploads/x.pdf")
            # as in a later `ingest` from the CLI; unchanged files cost one stat each.
            summary = self.assistant.ingest([self.kb_dir], prune=False, on_progress=on_progress)
        except NeocError as exc:
            return (render.error_markdown(error_kind(exc), str(exc)), *self.listing())
        except Exception:  # noqa: BLE001
            log.exception("ingest from the UI failed")
            return (render.error_markdown("Error", "Ingest failed (see the server log)."), *self.listing())
        data = summary.to_dict()
        data["notes"] = [note for _, note in stored if note] + data["notes"]
        data["notes"] += self._remove_failed([path for path, _ in stored], data["failures"])
        return (render.ingest_summary_markdown(data, rejected), *self.listing())

    def _source_of(self, path: Path) -> str:
        return normalize(path.relative_to(self.kb_dir).as_posix())  # as ingest names it (sources.py)

    def _remove_failed(self, stored: list[Path], failures: list[dict]) -> list[str]:
        """Uploads of this request that could not be ingested leave ``uploads/`` again."""
        failed = {item["source"] for item in failures}
        notes = []
        for path in stored:
            if self._source_of(path) in failed and path.is_file():
                path.unlink()
                notes.append(f"{self._source_of(path)} was removed again because it could not be ingested; "
                             "fix the file and upload it again")
        return notes

    def _stray_uploads(self, known: set[str]) -> list[str]:
        """Files in ``uploads/`` that are not in the knowledge base (e.g. failed uploads of older versions)."""
        if not self.uploads_dir.is_dir():
            return []
        return sorted(self._source_of(p) for p in self.uploads_dir.iterdir()
                      if p.is_file() and not p.name.startswith(".") and self._source_of(p) not in known)

    def delete(self, source: str | None):
        if not source:
            return ("Pick a document to delete.", *self.listing())
        try:
            summary = self.assistant.delete_documents([source])
        except NeocError as exc:
            return (render.error_markdown(error_kind(exc), str(exc)), *self.listing())
        data = summary.to_dict()
        note = ""
        uploads = self.uploads_dir.resolve()
        candidate = (self.kb_dir / source).resolve()
        if candidate.is_relative_to(uploads) and candidate.is_file():
            candidate.unlink()
            if not data.get("purged"):
                return (f"The file {render.code(source)} (not in the knowledge base) was deleted.", *self.listing())
            note = f"\n\nThe uploaded file {render.code(source)} was deleted too."
        elif data.get("purged"):
            note = ("\n\nThe file itself was not touched: a later full ingest of its folder adds it again "
                    "unless you remove it there.")
        if not data.get("purged"):
            return (f"{render.code(source)} was not in the knowledge base.", *self.listing())
        return (render.ingest_summary_markdown(data, title="Deleted") + note, *self.listing())

    def listing(self):
        """(documents table, delete dropdown, kb version line)."""
        try:
            docs = self.assistant.documents()
            version = self.assistant.kb_version()
        except NeocError as exc:
            return [], gr.update(choices=[], value=None), render.error_markdown(error_kind(exc), str(exc))
        rows = render.document_rows(docs)
        known = {s for d in docs for s in d.sources}
        sources = sorted(known, key=str.lower) + self._stray_uploads(known)
        n_chunks = sum(d.n_chunks for d in docs)
        info = f"**{len(docs)} documents**, {n_chunks} chunks · knowledge-base version `{version}`"
        superseded = sum(1 for d in docs if d.version.startswith("superseded"))
        if superseded:  # answered from only when no current version answers (answering/versions.py)
            info += f" · {superseded} superseded revision(s), see the version column"
        return rows, gr.update(choices=sources, value=None), info


def _place(tmp: Path, folder: Path, name: str) -> tuple[Path, str]:
    """Give the copied upload ``tmp`` its name in ``folder`` without replacing anything: the same bytes
    already there are reused, another file of that name makes this one ``name (2)``, ``name (3)``...
    ``os.link`` fails if the name was taken meanwhile, so two uploads at once cannot overwrite either."""
    stem, suffix = Path(name).stem, Path(name).suffix
    for n in range(1, 1000):
        candidate = folder / (name if n == 1 else f"{stem} ({n}){suffix}")
        if candidate.exists():
            if filecmp.cmp(tmp, candidate, shallow=False):
                return candidate, f"{name}: identical to uploads/{candidate.name} already in the folder; not stored twice"
            continue
        try:
            os.link(tmp, candidate)
        except FileExistsError:
            continue
        note = "" if n == 1 else (f"saved as uploads/{candidate.name}: uploads/{name} already exists "
                                  "with different content and was kept")
        return candidate, note
    raise OSError(f"too many files named like {name} in {folder}")


class SystemHandlers:
    def __init__(self, assistant, recent: RecentRequests, queue_info=None):
        self.assistant = assistant
        self.recent = recent
        self.queue_info = queue_info  # () -> {"waiting": int, "running": int}

    def _call(self, name: str) -> tuple[dict, str]:
        try:
            return getattr(self.assistant, name)(), ""
        except NeocError as exc:
            return {}, str(exc)
        except Exception as exc:  # noqa: BLE001 - e.g. a monitoring module missing on this build
            log.warning("%s() failed: %s", name, exc)
            return {}, f"{name} unavailable: {type(exc).__name__}"

    def latency_frame(self, stats: dict):
        """Recent answers (all channels, from the service's metrics; else this UI's own log)."""
        import pandas as pd

        points = [(ts, ms, outcome) for ts, ms, outcome in (stats.get("recent") or []) if ms is not None]
        if not points:
            points = [(ts, ms, f"{channel} {outcome}") for ts, ms, channel, outcome in self.recent.snapshot()]
        return pd.DataFrame({
            "request": list(range(1, len(points) + 1)),
            "seconds": [round(ms / 1000, 3) for _, ms, _ in points],
            "outcome": [str(outcome) for _, _, outcome in points],
        })

    def refresh(self):
        health, herr = self._call("health")
        stats, serr = self._call("stats")
        queue = None
        if self.queue_info is not None:
            try:
                queue = self.queue_info()
            except Exception:  # noqa: BLE001
                queue = None
        health_md = render.health_markdown(health) if health else render.error_markdown("Error", herr)
        stats_md = render.metrics_markdown(stats, queue) if stats else render.error_markdown("Error", serr)
        stamp = time.strftime("%H:%M:%S")
        return (health_md, stats_md, self.latency_frame(stats), {"health": health, "stats": stats},
                f"Updated {stamp} (every few seconds while this page is open)")


def status_line(assistant, generation_slots: int, mode: str, lang: str = "en") -> str:
    """The header's line: the model's state and the knowledge base's size (in the UI's language)."""
    try:
        docs = assistant.documents()
        version = assistant.kb_version()
        kb = ui_text("kb_line", lang, n=len(docs), version=version) if docs else ui_text("kb_empty", lang)
    except NeocError as exc:
        kb = f"⚠ {render.md_escape(str(exc))}"
    if mode == "llm":
        model = (ui_text("model_ready_one", lang) if generation_slots == 1
                 else ui_text("model_ready", lang, slots=generation_slots))
    else:
        problem = assistant.model_problem()
        model = ui_text("model_problem", lang, problem=render.md_escape(problem)) if problem else ui_text("no_model", lang)
    return f"{model} · {kb}"
