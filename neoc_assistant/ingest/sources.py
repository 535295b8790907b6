"""Which files an ingest covers, and the name (source) each is stored under.

**Names.** A file inside the knowledge-base folder (``paths.kb_dir``) is named by
its path relative to that folder (``plans/flood.md``, ``uploads/report.pdf``),
whatever folder was given to ``ingest``; a file outside it by its absolute path.
Two different files can therefore never share a name (before, names were
relative to the folder given, so ``coll/X/notes.md`` and ``coll/Y/notes.md``
were both ``notes.md`` and one replaced the other). Manifests written with the
old names are renamed by the next ingest (``Manifest.rename_sources``).

**Links.** Walking a folder, a symbolic link to a file is followed only when
its target is inside that folder (it is then one more name for a file the
walk reaches anyway); a link whose target is elsewhere is skipped and
reported, unless ``store.follow_external_symlinks`` is set, because a link
dropped into a shared folder must not pull any file of the machine into the
knowledge base. Links to folders are never followed. A file named explicitly
on the command line is taken as given.

**Unicode.** Names are stored in NFC; a name that cannot be stored or shown
(not UTF-8, control characters, direction overrides) is refused, and of two
files whose names look the same (``names.lookalike_key``) one is kept - the one
already ingested, else the one whose name has no other form - and the other is
refused with a message naming both (``names.py`` says why).
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

from neoc_assistant.ingest.loaders import SUPPORTED_SUFFIXES
from neoc_assistant.ingest.names import lookalike_key, name_problem, normalize, printable, spelled


@dataclass(frozen=True)
class PlannedFile:
    path: Path  # as found (a link keeps its own path)
    root: Path  # the folder given (or the file's parent)
    source: str  # NFC
    raw: str = ""  # the name as the file system spells it, when that is not NFC


@dataclass
class SourcePlan:
    files: list[PlannedFile] = field(default_factory=list)
    roots: list[Path] = field(default_factory=list)  # folders walked: the truth for what is under them
    refused: list[tuple[str, str, str]] = field(default_factory=list)  # (printable source, status, reason)


def source_name(path: Path, kb_dir: Path) -> str:
    """``path`` relative to the knowledge-base folder when inside it, else its absolute path; NFC."""
    return normalize(_raw_name(path, kb_dir))


def _raw_name(path: Path, kb_dir: Path) -> str:
    absolute = Path(os.path.abspath(path))
    try:
        return absolute.relative_to(kb_dir).as_posix()
    except ValueError:
        return absolute.as_posix()


def plan_sources(paths: Iterable[Path], kb_dir: Path, *, follow_external_symlinks: bool = False,
                 ingested: Mapping[str, str] | None = None) -> SourcePlan:
    """``ingested``: source -> file path of what the knowledge base holds (to keep what is ingested
    when a look-alike of it turns up)."""
    kb_dir = Path(kb_dir).expanduser().resolve()
    plan = SourcePlan()
    for given in paths:
        path = Path(given).expanduser()
        if not path.exists():
            plan.refused.append((printable(str(given)), "failed", "path does not exist"))
            continue
        path = path.resolve()
        if path.is_dir():
            plan.roots.append(path)
            _walk(path, kb_dir, follow_external_symlinks, plan)
        elif _supported(path, source_name(path, kb_dir), plan):
            _add(plan, path, path.parent, kb_dir)
    _refuse_lookalikes(plan, ingested or {})
    return plan


def _walk(root: Path, kb_dir: Path, follow_external: bool, plan: SourcePlan) -> None:
    found: list[Path] = []
    for folder, dirs, files in os.walk(root):  # never descends into linked folders
        here = Path(folder)
        dirs[:] = [d for d in dirs if not _hidden(d)]
        for name in dirs:
            if (here / name).is_symlink():
                plan.refused.append((printable(source_name(here / name, kb_dir)), "skipped",
                                     "link to a folder: not followed (ingest the folder itself)"))
        found.extend(here / name for name in files if not _hidden(name))
    for file in sorted(found):
        source = source_name(file, kb_dir)
        if file.is_symlink():
            target = file.resolve()
            if not target.is_file():
                plan.refused.append((printable(source), "skipped", "broken link or not a regular file"))
                continue
            if not target.is_relative_to(root) and not follow_external:
                plan.refused.append((printable(source), "skipped",
                                     f"link to {printable(str(target))}, outside {printable(str(root))}: not "
                                     "followed (set NEOC_STORE__FOLLOW_EXTERNAL_SYMLINKS=true to allow)"))
                continue
        elif not file.is_file():
            continue
        if _supported(file, source, plan):
            _add(plan, file, root, kb_dir)


def _add(plan: SourcePlan, path: Path, root: Path, kb_dir: Path) -> None:
    raw = _raw_name(path, kb_dir)
    problem = name_problem(raw)
    if problem:
        plan.refused.append((printable(raw), "failed", f"cannot be ingested: {problem}"))
        return
    source = normalize(raw)
    plan.files.append(PlannedFile(path, root, source, raw if raw != source else ""))


def _refuse_lookalikes(plan: SourcePlan, ingested: Mapping[str, str]) -> None:
    """Of files whose names look the same, keep one; refuse the others, naming the one kept."""
    groups: dict[str, list[PlannedFile]] = defaultdict(list)
    for planned in plan.files:
        groups[lookalike_key(planned.source)].append(planned)
    stored: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for source, abs_path in ingested.items():
        key = lookalike_key(source)
        if key in groups:
            stored[key].append((source, abs_path))
    refused: set[int] = set()
    for key, members in groups.items():
        paths = {str(m.path) for m in members}
        elsewhere = [(s, p) for s, p in stored[key] if p not in paths and os.path.lexists(p)]
        if elsewhere:  # an ingested file, still there, that this run does not cover: it stays
            kept_name, losers = elsewhere[0][0], members
        elif len(members) > 1:
            kept = min(members, key=lambda m: (ingested.get(m.source) != str(m.path),
                                               lookalike_key(m.raw or m.source) != (m.raw or m.source),
                                               bool(m.raw), m.raw or m.source))
            kept_name, losers = kept.source, [m for m in members if m is not kept]
        else:
            continue
        for loser in losers:
            refused.add(id(loser))
            name = loser.raw or loser.source
            plan.refused.append((printable(name), "failed",
                                 f"its name ({spelled(name)}) looks the same as that of {spelled(kept_name)}, "
                                 "which is kept: the two differ only in how accented letters are encoded "
                                 "(Unicode NFC/NFD) or in invisible characters, and two documents must not "
                                 "be quoted under names no one can tell apart. Rename or remove one of them"))
    if refused:
        plan.files = [f for f in plan.files if id(f) not in refused]


def _supported(path: Path, source: str, plan: SourcePlan) -> bool:
    if path.suffix.lower() in SUPPORTED_SUFFIXES:
        return True
    if path.name.lower().endswith(".meta.toml"):  # a version sidecar: read by versions.py, not a document
        return False
    plan.refused.append((printable(source), "skipped", f"unsupported file type '{printable(path.suffix) or '(none)'}'"))
    return False


def _hidden(name: str) -> bool:
    return name.startswith((".", "~$"))
