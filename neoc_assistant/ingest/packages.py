"""Zip-based files (DOCX now; XLSX, ODS, PPTX, ODT when they come): measured unpacked before parsing.

Why: python-docx reads every XML part of a package, not only the text, and
lxml keeps each whole in memory at about 14 times its size. A 1 MB DOCX
whose ``word/styles.xml`` unpacks to 300 MB took 31-48 s and 4.2-4.6 GB of
memory before it ingested; a 300 MB ``docProps/core.xml`` 3.3 GB. The sizes a
zip declares are read from its directory without unpacking anything, so every
part is checked - its unpacked size, its compression ratio, and all parts
together - before any parser sees the file.

The declared sizes can be trusted: Python's ``zipfile``, which python-docx
and openpyxl read through, never unpacks more than a part declares (it stops
there and the checksum fails), so a part cannot grow past what was checked.
A file that is no zip is left to its loader to explain.

A new zip-based format only lists its suffix in ``loaders.PACKAGE_SUFFIXES``.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass

from neoc_assistant.errors import InputError

MB = 1024 * 1024
# A part this small cannot cost much memory whatever its ratio (Word's own styles.xml packs 32:1).
RATIO_FROM_MB = 10
# Real packages have tens to a few hundred parts; a directory of millions costs memory by itself.
MAX_MEMBERS = 10_000


@dataclass(frozen=True)
class PackageLimits:
    member_mb: int
    total_mb: int
    ratio: int


# The defaults of the store.max_unpacked_mb_per_member, ..._per_file and max_compression_ratio settings.
DEFAULT_LIMITS = PackageLimits(member_mb=100, total_mb=250, ratio=100)


def check_package(data: bytes, limits: PackageLimits, kind: str) -> None:
    """Refuse ``data`` (a ``kind`` file, e.g. "DOCX") when a part or all parts unpack too large."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as package:
            members = package.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return
    check_members(members, limits, kind, len(data))


def check_members(members: list[zipfile.ZipInfo], limits: PackageLimits, kind: str, packed: int,
                  section: str = "store") -> None:
    """The checks of ``check_package`` on a zip directory already read (a knowledge-base bundle,
    ``bundles/format.py``, is checked this way without reading the whole file into memory, against
    the limits of its own settings ``section``)."""
    if len(members) > MAX_MEMBERS:
        raise InputError(f"the {kind} holds {len(members):,} parts (more than {MAX_MEMBERS:,}): it is damaged or "
                         "built to exhaust readers; re-save it from the program that made it")
    total = 0
    for member in members:
        size = member.file_size
        total += size
        if size > limits.member_mb * MB:
            raise _too_large(kind, f"its part {member.filename} unpacks to {size / MB:,.0f} MB", limits.member_mb,
                             "max_unpacked_mb_per_member", packed, section)
        if size > RATIO_FROM_MB * MB and size > limits.ratio * max(member.compress_size, 1):
            ratio = size / max(member.compress_size, 1)
            env = f"NEOC_{section.upper()}__MAX_COMPRESSION_RATIO"
            raise InputError(
                f"the {kind}'s part {member.filename} unpacks to {size / MB:,.0f} MB from "
                f"{member.compress_size / MB:,.2f} MB ({ratio:,.0f} times; the limit is {limits.ratio}, "
                f"{section}.max_compression_ratio, env {env}): a zip bomb or a damaged file; re-save it from "
                "the program that made it, or raise the limit if you trust it")
        if total > limits.total_mb * MB:
            raise _too_large(kind, f"its parts together unpack to more than {limits.total_mb:,} MB", limits.total_mb,
                             "max_unpacked_mb_per_file", packed, section)


def _too_large(kind: str, what: str, limit_mb: int, setting: str, packed: int, section: str) -> InputError:
    env = f"NEOC_{section.upper()}__" + setting.upper()
    return InputError(
        f"the {kind} is {packed / MB:,.1f} MB but {what} (the limit is {limit_mb:,} MB, {section}.{setting}, "
        f"env {env}): a zip bomb or a damaged file; re-save it from the program that made it, or raise "
        "the limit if it really is one document")
