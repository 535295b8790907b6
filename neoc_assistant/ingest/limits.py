"""What one file may cost an ingest: caps on extracted text and chunks, and junk lines dropped.

Why: an ingest holds the one-writer lock, so a single broken or hostile file
held every other writer for minutes to hours (a 660 KB DOCX inflating to
199 MB of XML, a 30 MB log file, a base64 image pasted into an HTML paragraph
that became 2,397 chunks nobody can ask about). A file over a cap fails with a
reason that names the setting allowing more, and the run moves on to the next
file; the cap is hit before any vector or manifest row of that file is
written, so nothing of it is half-stored.

Loaders count characters as they extract them (``TextBudget``) and stop at the
cap instead of parsing everything first; markup that is far larger than any
text it could hold is refused before it is parsed at all.

Every threshold lives here, so what counts as junk is decided in one place.
"""

from __future__ import annotations

import io
import re
import zipfile

from neoc_assistant.errors import InputError

# Markup bytes allowed per character of the text cap before parsing is refused. Real DOCX XML and
# HTML run at 2-10 bytes of markup per character of text; 20 leaves room for heavy styling.
MARKUP_PER_CHAR = 20
# UTF-8 and UTF-16 spend at most 4 bytes on a character: a text file this many times over the cap
# in bytes is over it in characters too, and is refused without decoding.
BYTES_PER_CHAR_MAX = 4

# Junk: text that is data, not language. A token counts as encoded when it is this long, made only
# of base64/hex characters and holds a digit or one of + / = (real words of that length - compounds,
# chemical names - have no digits); any whitespace-free run this long counts whatever it holds (no
# language has such words; long URLs stay well under it).
ENCODED_TOKEN_CHARS = 40
UNBROKEN_TOKEN_CHARS = 200
# A line is dropped when more than this share of its non-space characters is junk tokens, so a
# sentence quoting one checksum or URL is kept. Lines, not blank-line paragraphs, are the unit: the
# HTML loader ends each block with one newline, DOCX paragraphs are lines, and MIME-style base64
# comes in 76-character lines that are each junk on their own.
JUNK_SHARE = 0.5
_ENCODED = re.compile(r"[A-Za-z0-9+/=_-]+")
# Tables are not filtered: a row of a CSV is its values, and an ID column may well be hex.
UNFILTERED_TYPES = frozenset({"csv"})


def over_cap(what: str, limit: int, setting: str, unit: str) -> InputError:
    """The failure of one file over a cap, naming the setting (TOML and env var) that allows more."""
    env = "NEOC_STORE__" + setting.upper()
    return InputError(f"{what} more than {limit:,} {unit} (the limit store.{setting}, env {env}); "
                      "split the file, or raise the limit if it really is one document")


class TextBudget:
    """Characters extracted so far from one file; the moment they pass ``max_chars`` the file fails."""

    def __init__(self, max_chars: int | None = None):
        self.max_chars = max_chars
        self.used = 0

    def take(self, text: str) -> str:
        self.used += len(text)
        if self.max_chars is not None and self.used > self.max_chars:
            raise over_cap("the file yields", self.max_chars, "max_chars_per_file", "characters of text")
        return text

    def check_member(self, data: bytes, member: str) -> None:
        """An Office file's main XML part (``word/document.xml``, ``content.xml``) can inflate to
        hundreds of MB that its parser reads whole: look at the unpacked size first. A file that is
        no zip, or lacks the part, is left to its parser to explain."""
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as package:
                size = package.getinfo(member).file_size
        except (zipfile.BadZipFile, KeyError, OSError, ValueError):
            return
        self.check_raw(size, f"its {member}", MARKUP_PER_CHAR)

    def check_raw(self, size: int, what: str, per_char: int) -> None:
        """Refuse ``size`` bytes of ``what`` before parsing when it cannot hold less text than the cap."""
        if self.max_chars is not None and size > self.max_chars * per_char:
            raise over_cap(f"{what} is {size / 1e6:.0f} MB, too large to hold", self.max_chars,
                           "max_chars_per_file", f"characters of text ({per_char} bytes each at most)")


def check_chunk_count(count: int, max_chunks: int | None) -> None:
    if max_chunks is not None and count > max_chunks:
        raise over_cap("the file splits into", max_chunks, "max_chunks_per_file", "chunks")


def is_junk(line: str) -> bool:
    """Mostly base64, hex or other unbroken runs, by share of non-space characters."""
    tokens = line.split()
    total = sum(len(t) for t in tokens)
    if not total:
        return False
    junk = sum(len(t) for t in tokens if _junk_token(t))
    return junk > JUNK_SHARE * total


def _junk_token(token: str) -> bool:
    if len(token) >= UNBROKEN_TOKEN_CHARS:
        return True
    return (len(token) >= ENCODED_TOKEN_CHARS and _ENCODED.fullmatch(token) is not None
            and any(c.isdigit() or c in "+/=" for c in token))


def drop_junk(text: str) -> tuple[str, int]:
    """``text`` without its junk lines, and how many were dropped (text unchanged when none)."""
    lines = text.split("\n")
    kept = [line for line in lines if not is_junk(line)]
    if len(kept) == len(lines):
        return text, 0
    return "\n".join(kept), len(lines) - len(kept)
