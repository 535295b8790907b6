"""What a document may be called, when two names count as the same, and how a name is shown.

Why: a name is what a duty officer reads next to a quoted figure, so two names
must never look alike while meaning two documents. ``café-plan.md`` written
with a composed ``é`` (NFC, what most systems type) and with ``e`` + a combining
accent (NFD, what macOS file systems hand out) were two sources whose
contradicting figures were quoted side by side under names no one can tell
apart. So every source name is stored in NFC, and names that differ only in
normalisation or in invisible characters are look-alikes: an ingest keeps one
and refuses the other with a message naming both (``sources.py``).

A file name is bytes on Linux; Python hands undecodable bytes over as lone
surrogates, which neither SQLite nor a UTF-8 terminal accepts (an ingest used
to fail with ``UnicodeEncodeError`` and a traceback). Such names, and names
with control characters or text-direction overrides (which make a terminal or
a page show something else than the name: ``ESC[2J`` clears the screen,
U+202E shows ``report‮fdp.md`` as ``reportdm.pdf``), are refused with a message
that shows the name escaped and says to rename the file.

Every name printed to a terminal goes through ``printable``: names stored
before these rules, and names of refused files, may still hold such characters.
"""

from __future__ import annotations

import unicodedata

# Embedding, override and isolate controls: they reorder how the rest of a line is displayed.
DIRECTION_OVERRIDES = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# Invisible format characters that scripts need to be written correctly (Devanagari conjuncts,
# Persian, emoji sequences): shown as they are, though they never make two names distinct.
SHAPING_JOINERS = frozenset("\u200c\u200d")
_SURROGATES = range(0xD800, 0xE000)
_ESCAPED_BYTES = range(0xDC80, 0xDD00)  # how os.fsdecode carries an undecodable byte


def normalize(name: str) -> str:
    """The stored form of a name (NFC). A name holding undecodable bytes is returned unchanged:
    ``name_problem`` refuses it before it is stored."""
    if _has_surrogate(name):
        return name
    return unicodedata.normalize("NFC", name)


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a document (a sentence ending in what to do), or None."""
    if _has_surrogate(name):
        return ("its name is not valid UTF-8 (the undecodable bytes are shown as \\xNN); rename the file "
                "with a UTF-8 name, e.g. `convmv -f latin1 -t utf-8 --notest FILE`, and ingest again")
    if any(unicodedata.category(ch) in ("Cc", "Zl", "Zp") for ch in name):
        return ("its name holds control characters or line breaks (shown as \\xNN or \\uNNNN), which a "
                "terminal would act on instead of showing; rename the file and ingest again")
    if any(ch in DIRECTION_OVERRIDES for ch in name):
        return ("its name holds characters that reverse how the rest of it is displayed (shown as \\uNNNN), "
                "so it would not read as what it is; rename the file and ingest again")
    return None


def lookalike_key(name: str) -> str:
    """Equal for names a reader cannot tell apart: the same text once compatibility forms are folded
    (NFKC: a no-break space is a space, a full-width ``Ａ`` an ``A``, the ligature ``ﬁ`` is ``fi``) and
    invisible format characters (zero-width spaces and joiners, soft hyphens, direction marks) are
    removed. Case is kept: ``Plan.md`` and ``plan.md`` are told apart at a glance."""
    if _has_surrogate(name):
        return name
    text = unicodedata.normalize("NFKC", name)
    return "".join(ch for ch in text if unicodedata.category(ch) != "Cf")


def printable(name: str) -> str:
    """``name`` safe to print to a terminal or a log: control characters, text-direction and other
    invisible format characters, line separators and undecodable bytes are escaped; the rest
    (every script, accents, emoji) is shown as it is."""
    if all(ch.isprintable() for ch in name):
        return name
    return "".join(_shown(ch) for ch in name)


def spelled(name: str) -> str:
    """``name`` with the characters that make look-alikes differ written as code points (combining
    accents, invisible format characters, compatibility forms), so that a message can say which of
    two identical-looking files is which: NFD ``café`` is ``cafe\\u0301``, NFC ``café`` stays ``café``."""
    marks = ("Mn", "Me", "Cf") if normalize(name) != name else ("Cf",)  # an NFC name's accents are its own
    return "".join(_code(ord(ch)) if unicodedata.category(ch) in marks or
                   unicodedata.normalize("NFKC", ch) != ch else _shown(ch) for ch in name)


def _code(code: int) -> str:
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _shown(ch: str) -> str:
    code = ord(ch)
    if code in _ESCAPED_BYTES:
        return f"\\x{code - 0xDC00:02x}"
    if ch.isprintable() or ch in SHAPING_JOINERS or unicodedata.category(ch) in ("Co", "Cn"):
        return ch
    return _code(code)


def _has_surrogate(text: str) -> bool:
    return any(ord(ch) in _SURROGATES for ch in text)
