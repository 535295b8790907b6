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
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from neoc_assistant.ingest.loaders import SUPPORTED_SUFFIXES


@dataclass(frozen=True)
class PlannedFile:
    path: Path  # as found (a link keeps its own path)
    root: Path  # the folder given (or the file's parent)
    source: str


@dataclass
class SourcePlan:
    files: list[PlannedFile] = field(default_factory=list)
    roots: list[Path] = field(default_factory=list)  # folders walked: the truth for what is under them
    refused: list[tuple[str, str, str]] = field(default_factory=list)  # (source, status, reason)


def source_name(path: Path, kb_dir: Path) -> str:
    """``path`` relative to the knowledge-base folder when inside it, else its absolute path."""
    absolute = Path(os.path.abspath(path))
    try:
        return absolute.relative_to(kb_dir).as_posix()
    except ValueError:
        return absolute.as_posix()


def plan_sources(paths: Iterable[Path], kb_dir: Path, *, follow_external_symlinks: bool = False) -> SourcePlan:
    kb_dir = Path(kb_dir).expanduser().resolve()
    plan = SourcePlan()
    for given in paths:
        path = Path(given).expanduser()
        if not path.exists():
            plan.refused.append((str(given), "failed", "path does not exist"))
            continue
        path = path.resolve()
        if path.is_dir():
            plan.roots.append(path)
            _walk(path, kb_dir, follow_external_symlinks, plan)
        elif _supported(path, source_name(path, kb_dir), plan):
            plan.files.append(PlannedFile(path, path.parent, source_name(path, kb_dir)))
    return plan


def _walk(root: Path, kb_dir: Path, follow_external: bool, plan: SourcePlan) -> None:
    found: list[Path] = []
    for folder, dirs, files in os.walk(root):  # never descends into linked folders
        here = Path(folder)
        dirs[:] = [d for d in dirs if not _hidden(d)]
        for name in dirs:
            if (here / name).is_symlink():
                plan.refused.append((source_name(here / name, kb_dir), "skipped",
                                     "link to a folder: not followed (ingest the folder itself)"))
        found.extend(here / name for name in files if not _hidden(name))
    for file in sorted(found):
        source = source_name(file, kb_dir)
        if file.is_symlink():
            target = file.resolve()
            if not target.is_file():
                plan.refused.append((source, "skipped", "broken link or not a regular file"))
                continue
            if not target.is_relative_to(root) and not follow_external:
                plan.refused.append((source, "skipped", f"link to {target}, outside {root}: not followed "
                                     "(set NEOC_STORE__FOLLOW_EXTERNAL_SYMLINKS=true to allow)"))
                continue
        elif not file.is_file():
            continue
        if _supported(file, source, plan):
            plan.files.append(PlannedFile(file, root, source))


def _supported(path: Path, source: str, plan: SourcePlan) -> bool:
    if path.suffix.lower() in SUPPORTED_SUFFIXES:
        return True
    plan.refused.append((source, "skipped", f"unsupported file type '{path.suffix or '(none)'}'"))
    return False


def _hidden(name: str) -> bool:
    return name.startswith((".", "~$"))
