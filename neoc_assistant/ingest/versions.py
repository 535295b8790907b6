"""Which files are revisions of one another, and which revision is current (run after every ingest
and delete: ``link_versions``).

**What a file says about its version**, first source that has it:

1. a sidecar ``<file name>.meta.toml`` beside it (``sop-water.md.meta.toml``)::

       document_id = "sop-water"          # files with the same id are revisions of one document
       revision = "3"                     # compared as numbers: 2.10 is newer than 2.9
       date = 2024-03-15                  # a TOML date or "2024-03-15" / "2024-03"
       supersedes = ["sop-water-2023.md"] # files (beside it, or source names) or document ids

2. the first lines of the document (its title and first chunk) and its file name: a revision
   number ("Rev. 3", "Revision 3", "Version 2.1", ``_v2``) and a labelled date ("Revised March
   2024", "Updated: 15 March 2024", "Effective 2024-03-15") or an ISO date ("2024-03-15") in the
   first few lines or in the file name.

**Series.** Files are revisions of one another when they declare the same ``document_id``, or -
without one - have the same title (the first heading, or the file name when there is none) once
the revision and date are taken out of it, and each has a revision or a date. A title too short to
name one document (under two words or eight letters) links nothing: two reports called
"Introduction" are not revisions of each other.

**Current.** Within a series the newest is current: dates are compared first (a file with none is
older than one with), then revisions. An explicit ``supersedes`` wins over that order. Every
superseded file points at the current version at the end of its chain; a cycle of ``supersedes``
links nothing and is reported. The links live in the manifest (``store/versions.py``).

**Files imported from a bundle** (``abs_path`` ``bundle:<source>``) have no sidecar beside them:
the bundle carried each file's facts as the national store read them (``facts_to_dict``), and they
are used instead of re-reading the text; a file a bundle from before carried nothing for is read
by its text. ``bundle:<source>`` keeps the source's folders, so a ``supersedes`` naming a file
beside the sidecar resolves on the laptop as it did at the national EOC.
"""

from __future__ import annotations

import logging
import re
import tomllib
from dataclasses import dataclass
from datetime import date
from pathlib import Path, PurePosixPath

from neoc_assistant.store.manifest import Manifest
from neoc_assistant.store.versions import VersionRecord

log = logging.getLogger(__name__)

SIDECAR_SUFFIX = ".meta.toml"
FIRST_LINES = 8
_MONTHS = {m: i for i, m in enumerate(
    ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
     "november", "december"), start=1)}
_MONTH = r"(january|february|march|april|may|june|july|august|september|october|november|december|" \
         r"jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec)\.?"
_REVISION = re.compile(r"\b(?:rev(?:ision)?\.?|version|ver\.)\s*(?:no\.?\s*)?(\d+(?:\.\d+)*)\b", re.IGNORECASE)
_NAME_REVISION = re.compile(r"(?:^|[^a-z])(?:v|rev|r|version)[ ._-]?(\d+(?:[._]\d+)*)(?![a-z\d])", re.IGNORECASE)
_ISO = re.compile(r"(?<!\d)((?:19|20)\d\d)[-_.](0[1-9]|1[0-2])(?:[-_.](0[1-9]|[12]\d|3[01]))?(?!\d)")
_LABEL = r"(?:revised|updated|effective|issued|dated|date|last\s+updated|revision\s+date)\s*(?:on|:)?\s*"
_LABELLED_DAY_MONTH = re.compile(_LABEL + r"(\d{1,2})\s+" + _MONTH + r",?\s+((?:19|20)\d\d)\b", re.IGNORECASE)
_LABELLED_MONTH_DAY = re.compile(_LABEL + _MONTH + r"\s+(\d{1,2}),?\s+((?:19|20)\d\d)\b", re.IGNORECASE)
_LABELLED_MONTH = re.compile(_LABEL + _MONTH + r",?\s+((?:19|20)\d\d)\b", re.IGNORECASE)
_LABELLED_ISO = re.compile(_LABEL + _ISO.pattern, re.IGNORECASE)


@dataclass(frozen=True)
class VersionFacts:
    source: str
    title_key: str
    document_id: str | None = None
    revision: str | None = None
    revised: str | None = None
    supersedes: tuple[str, ...] = ()
    origin: str = "text"

    @property
    def series(self) -> str:
        return f"id:{self.document_id}" if self.document_id else f"title:{self.title_key}"

    @property
    def order(self) -> tuple:
        rev = tuple(int(p) for p in self.revision.split(".")) if self.revision else ()
        return (self.revised or "", rev)


def find_revision(text: str) -> str | None:
    m = _REVISION.search(text)
    return m.group(1) if m else None


def find_date(text: str, *, labelled_only: bool = False) -> str | None:
    """The first labelled date of ``text`` as ISO (YYYY-MM-DD, or YYYY-MM when no day is given); an
    unlabelled ISO date too unless ``labelled_only``."""
    for pattern, parts in ((_LABELLED_ISO, "iso"), (_LABELLED_DAY_MONTH, "dmy"), (_LABELLED_MONTH_DAY, "mdy"),
                           (_LABELLED_MONTH, "my")):
        m = pattern.search(text)
        if m:
            return _iso(m, parts)
    if not labelled_only and (m := _ISO.search(text)):
        return _iso(m, "iso")
    return None


def _iso(m: re.Match, parts: str) -> str | None:
    g = m.groups()
    try:
        if parts == "iso":
            year, month, day = int(g[0]), int(g[1]), int(g[2]) if g[2] else None
        elif parts == "dmy":
            day, month, year = int(g[0]), _month(g[1]), int(g[2])
        elif parts == "mdy":
            month, day, year = _month(g[0]), int(g[1]), int(g[2])
        else:
            month, year, day = _month(g[0]), int(g[1]), None
        return date(year, month, day).isoformat() if day else f"{year:04d}-{month:02d}"
    except ValueError:
        return None


def _month(word: str) -> int:
    word = word.lower().rstrip(".")
    return next(n for name, n in _MONTHS.items() if name.startswith(word))


def title_key(title: str) -> str:
    """The title without its revision and date: what revisions of one document share."""
    text = _REVISION.sub(" ", title)
    text = _NAME_REVISION.sub(" ", text)
    for pattern in (_LABELLED_ISO, _LABELLED_DAY_MONTH, _LABELLED_MONTH_DAY, _LABELLED_MONTH, _ISO):
        text = pattern.sub(" ", text)
    text = re.sub(rf"\b{_MONTH}\s+(?:19|20)\d\d\b", " ", text, flags=re.IGNORECASE)
    words = re.findall(r"[^\W_]+", text.lower())
    key = " ".join(words)
    return key if len(words) >= 2 and len(key.replace(" ", "")) >= 8 else ""


def read_sidecar(path: Path) -> dict | None:
    """The sidecar's table, or None when there is none; a sidecar that cannot be read is logged and
    ignored (the file is then linked by its text, as without one)."""
    sidecar = path.with_name(path.name + SIDECAR_SUFFIX)
    if not sidecar.is_file():
        return None
    try:
        return tomllib.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        log.warning("version sidecar %s ignored: %s", sidecar, exc)
        return None


def file_facts(source: str, abs_path: str, title: str, first_text: str) -> VersionFacts:
    """What one file says about its version (module docstring)."""
    name = PurePosixPath(source).name
    stem = name.rsplit(".", 1)[0]
    head = "\n".join([title, *first_text.splitlines()[:FIRST_LINES]])
    revision = find_revision(head) or _name_revision(stem)
    revised = find_date(head, labelled_only=True) or find_date(stem) or find_date(head)
    sidecar = read_sidecar(Path(abs_path)) if not abs_path.startswith("bundle:") else None
    key = title_key(title) or title_key(stem)
    if not sidecar:
        return VersionFacts(source, key, revision=revision, revised=revised)
    raw_date = sidecar.get("date") or sidecar.get("revised")
    supersedes = sidecar.get("supersedes") or ()
    return VersionFacts(
        source, key,
        document_id=str(sidecar["document_id"]).strip() if sidecar.get("document_id") else None,
        revision=str(sidecar["revision"]).strip() if sidecar.get("revision") is not None else revision,
        revised=_sidecar_date(raw_date) or revised,
        supersedes=tuple(str(s) for s in ([supersedes] if isinstance(supersedes, str) else supersedes)),
        origin="sidecar",
    )


def facts_to_dict(facts: VersionFacts) -> dict:
    """What a bundle carries for a file (its source is the file record's)."""
    return {"title_key": facts.title_key, "document_id": facts.document_id, "revision": facts.revision,
            "revised": facts.revised, "supersedes": list(facts.supersedes), "origin": facts.origin}


def facts_from_dict(source: str, data: object) -> VersionFacts:
    """The facts a bundle carried for ``source``; ``ValueError`` when they are not what
    ``facts_to_dict`` writes (the importer refuses such a bundle)."""
    if not isinstance(data, dict):
        raise ValueError(f"the version facts of {source!r} are not a table")
    optional = {}
    for name in ("document_id", "revision", "revised"):
        value = data.get(name)
        if value is not None and not isinstance(value, str):
            raise ValueError(f"the version facts of {source!r} give {name} as {value!r}, not text")
        optional[name] = value
    title, origin, supersedes = data.get("title_key", ""), data.get("origin", "text"), data.get("supersedes", [])
    if not isinstance(title, str) or not isinstance(origin, str) or not isinstance(supersedes, list) \
            or not all(isinstance(s, str) for s in supersedes):
        raise ValueError(f"the version facts of {source!r} are not what `kb export` writes")
    if optional["revision"] is not None and not re.fullmatch(r"\d+(?:\.\d+)*", optional["revision"]):
        raise ValueError(f"the version facts of {source!r} give revision {optional['revision']!r}, not a number")
    return VersionFacts(source, title, supersedes=tuple(supersedes), origin=origin, **optional)


def knowledge_base_facts(manifest: Manifest) -> tuple[list[VersionFacts], dict[str, str]]:
    """Every file's version facts, and source -> its path: read from the file's sidecar and text, or
    for a file imported from a bundle the facts the bundle carried (module docstring)."""
    texts = manifest.first_texts()
    carried = manifest.carried_versions()
    facts, path_of = [], {}
    for record in manifest.file_records():
        if record.abs_path.startswith("bundle:") and record.source in carried:
            facts.append(facts_from_dict(record.source, carried[record.source]))
        else:
            title, first = texts.get(record.doc_hash, ("", ""))
            facts.append(file_facts(record.source, record.abs_path, title, first))
        path_of[record.source] = record.abs_path
    return facts, path_of


def _name_revision(stem: str) -> str | None:
    m = _NAME_REVISION.search(stem)
    return m.group(1).replace("_", ".") if m else None


def _sidecar_date(value: object) -> str | None:
    if isinstance(value, date):
        return value.isoformat()[:10]
    return find_date(str(value)) if value else None


def link(facts: list[VersionFacts], path_of: dict[str, str]) -> tuple[list[VersionRecord], list[str]]:
    """Series, current versions and supersede links of every file; notes for what could not be linked.
    ``path_of``: source -> its file's path (a sidecar's ``supersedes`` names files beside it)."""
    by_source = {f.source: f for f in facts}
    successor: dict[str, str] = {}  # old source -> the source that supersedes it
    notes: list[str] = []
    for f in facts:
        for name in f.supersedes:
            for old in _resolve(name, f, by_source, path_of):
                if old != f.source:
                    successor.setdefault(old, f.source)
    series: dict[str, list[VersionFacts]] = {}
    for f in facts:
        if f.document_id or (f.title_key and (f.revision or f.revised)):
            series.setdefault(f.series, []).append(f)
    for members in series.values():
        free = sorted((m for m in members if m.source not in successor), key=lambda m: m.order)
        if len(free) < 2 or free[-1].order == free[-2].order:
            continue  # one file, or two newest that cannot be told apart: nothing to say
        newest = free[-1].source
        for m in free[:-1]:
            if not _reaches(newest, m.source, successor):
                successor[m.source] = newest
    current_of: dict[str, str] = {}
    for source in successor:
        seen, at = {source}, successor[source]
        while at in successor and at not in seen:
            seen.add(at)
            at = successor[at]
        if at in seen:
            notes.append(f"'supersedes' links of {source} go round in a circle; they were ignored")
            continue
        current_of[source] = at
    linked = set(current_of) | set(current_of.values())
    records = [VersionRecord(f.source, f.series, f.document_id, f.revision, f.revised, f.supersedes, f.origin,
                             current_of.get(f.source))
               for f in facts if f.source in linked or f.origin == "sidecar"]
    return records, notes


def _resolve(name: str, f: VersionFacts, by_source: dict[str, VersionFacts], path_of: dict[str, str]) -> list[str]:
    """What a ``supersedes`` entry names: a file beside the sidecar, else a source name, else a document id."""
    beside = str(Path(path_of.get(f.source, "")).parent / name)
    for matches in ([s for s in by_source if path_of.get(s) == beside], [s for s in by_source if s == name]):
        if matches:
            return matches
    return [s for s, other in by_source.items() if other.document_id == name]


def _reaches(start: str, target: str, successor: dict[str, str]) -> bool:
    seen = set()
    while start in successor and start not in seen:
        seen.add(start)
        start = successor[start]
        if start == target:
            return True
    return False


def link_versions(manifest: Manifest) -> list[str]:
    """Recompute every link from the files the knowledge base holds (after an ingest or a delete);
    notes for the ingest summary."""
    facts, path_of = knowledge_base_facts(manifest)
    records, notes = link(facts, path_of)
    if manifest.replace_versions(records):
        superseded = sum(1 for r in records if r.superseded_by)
        notes.append(f"document versions relinked: {superseded} file(s) superseded by a newer revision")
    return notes
