"""WordNet 3.0 (Debian's ``wordnet-base``) through NLTK's reader: is this ordinary English?

Used where the knowledge base's own vocabulary is not enough to tell a rare
English word ("wading", "ration") from a name or a specialist term the
documents never mention ("Mainachuli", "temephos"). Nothing is downloaded:
the dictionary files come from the Debian package (``/usr/share/wordnet`` or
``NEOC_WORDNET_DIR``). Debian ships every file NLTK reads except
``lexnames`` (the fixed list of WordNet's 45 lexicographer files), so a copy
of the dictionary files (~25 MB) plus that list is made once under the cache
directory. If
WordNet is not installed, ``english()`` answers False for every word and the
callers fall back to the knowledge base's vocabulary alone (logged once).

Thread safety: NLTK's reader reads a synset by ``seek()`` + ``readline()`` on one
shared file object per part of speech, so two request threads reading at once
get each other's lines (``WordNetError: line '...'``, or a ``None`` synset: 8
threads x 30 new words raised 8-27 such errors per run, 500s under load). Here
each data file is memory-mapped once and a synset's line is sliced at its
offset: no shared file position, no lock. Measured against a lock around every
lookup and a lock around the reader's file access (``scripts/bench_wordnet.py``):
the slice is also the fastest of the three (NLTK's own read goes through a
decoding stream reader).
"""

from __future__ import annotations

import logging
import mmap
import os
import shutil
import threading
from functools import lru_cache
from pathlib import Path

log = logging.getLogger(__name__)

DEFAULT_DIRS = (Path("/usr/share/wordnet"),)
_LEXNAMES = (
    "adj.all adj.pert adv.all noun.Tops noun.act noun.animal noun.artifact noun.attribute noun.body "
    "noun.cognition noun.communication noun.event noun.feeling noun.food noun.group noun.location "
    "noun.motive noun.object noun.person noun.phenomenon noun.plant noun.possession noun.process "
    "noun.quantity noun.relation noun.shape noun.state noun.substance noun.time verb.body verb.change "
    "verb.cognition verb.communication verb.competition verb.consumption verb.contact verb.creation "
    "verb.emotion verb.motion verb.perception verb.possession verb.social verb.stative verb.weather adj.ppl"
).split()
_POS_NUMBER = {"adj": 3, "adv": 4, "noun": 1, "verb": 2}
_lock = threading.Lock()


def _source_dir() -> Path | None:
    env = os.environ.get("NEOC_WORDNET_DIR")
    for folder in ([Path(env)] if env else []) + list(DEFAULT_DIRS):
        if (folder / "index.noun").is_file() and (folder / "data.noun").is_file():
            return folder
    return None


def _reader_dir(source: Path, shim_root: Path) -> Path:
    if (source / "lexnames").is_file():
        return source
    shim = shim_root / "wordnet"
    if not (shim / "lexnames").is_file():
        shim.mkdir(parents=True, exist_ok=True)
        for item in source.iterdir():  # copies, not links: NLTK refuses files outside its root
            if item.is_file() and item.name.split(".")[0] in ("index", "data") or item.suffix == ".exc":
                if not (shim / item.name).exists():
                    shutil.copyfile(item, shim / item.name)
        lines = [f"{i:02d}\t{name}\t{_POS_NUMBER[name.split('.')[0]]}" for i, name in enumerate(_LEXNAMES)]
        tmp = shim / "lexnames.tmp"
        tmp.write_text("\n".join(lines) + "\n")
        os.replace(tmp, shim / "lexnames")
    return shim


_opened: dict[str, object] = {}


@lru_cache(maxsize=1)
def wordnet(shim_root: str = ""):
    """NLTK's WordNet reader, or None when WordNet is not installed. Opened once even when the
    first questions arrive together (each would otherwise read the index files again)."""
    with _lock:
        if shim_root not in _opened:
            _opened[shim_root] = _open(shim_root)
        return _opened[shim_root]


def _open(shim_root: str):
    source = _source_dir()
    if source is None:
        log.info("WordNet not found (apt install wordnet-base, or set NEOC_WORDNET_DIR): ordinary-English "
                 "checks use the knowledge base's vocabulary only")
        return None
    try:
        import warnings

        import nltk
        from nltk.corpus.reader.wordnet import WordNetCorpusReader

        root = _reader_dir(source, Path(shim_root or Path.home() / ".cache/neoc-assistant"))
        if str(root) not in nltk.data.path:
            nltk.data.path.append(str(root))  # NLTK only opens corpora under its data path
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "multilingual functions are not available": not used
            return _reader_class(WordNetCorpusReader)(str(root), None)
    except Exception as exc:  # noqa: BLE001 - a broken install must not stop answering
        log.warning("WordNet at %s could not be read (%s); ordinary-English checks are off", source, exc)
        return None


_DATA_FILES = {"n": "noun", "v": "verb", "a": "adj", "s": "adj", "r": "adv"}


def _reader_class(base):
    """NLTK's reader with the shared-file reads replaced by slices of memory-mapped data files."""

    class _Reader(base):
        def __init__(self, root, omw_reader):
            super().__init__(root, omw_reader)  # reads the index files, single-threaded (under _lock)
            self._version = super().get_version()
            self._maps = {}
            for pos, name in _DATA_FILES.items():
                if name not in self._maps:
                    with open(Path(str(root)) / f"data.{name}", "rb") as fh:
                        self._maps[name] = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)

        def map_wn(self, version="wordnet"):
            return None  # a mapping for other languages' wordnets (OMW), which we do not use

        def get_version(self):
            return self._version  # NLTK's version check seeks in the shared adjective file

        def synset_from_pos_and_offset(self, pos, offset):
            cache = self._synset_offset_cache[pos]
            synset = cache.get(offset)
            if synset is not None:
                return synset
            data = self._maps[_DATA_FILES[pos]]
            end = data.find(b"\n", offset)
            line = data[offset:end + 1 if end >= 0 else len(data)].decode("utf-8")
            if not line[:8].isdigit() or int(line[:8]) != offset:
                return None  # as NLTK: an offset that starts no synset line
            synset = self._synset_from_pos_and_line(pos, line)
            cache[offset] = synset  # a dict write: atomic; two threads may both parse, both get equal synsets
            return synset

    return _Reader


def available() -> bool:
    return wordnet() is not None


@lru_cache(maxsize=50_000)
def common_word(word: str) -> bool:
    """True when WordNet knows the word as an ordinary (lower-case) word in any inflection:
    "wading", "ration", "measles" - but not "Texas" or "Kathmandu", which it lists only as names."""
    wn = wordnet()
    if wn is None or not word.isalpha():
        return False
    word = word.lower()
    for synset in wn.synsets(word):
        for lemma in synset.lemmas():
            name = lemma.name()
            if name.islower() and "_" not in name:
                return True
    return False


@lru_cache(maxsize=50_000)
def predicate_word(word: str) -> bool:
    """True when WordNet knows the word (any inflection) as a verb or an adjective - a word that
    says what something does or is ("report", "working", "closed"), as opposed to only a thing."""
    wn = wordnet()
    if wn is None or not word.isalpha():
        return False
    return any(wn.morphy(word.lower(), pos) for pos in ("v", "a"))


# How many of a word's senses (WordNet orders them by frequency) a relation may use: the
# common readings only. 3, not 2: "strike" is the third verb sense of "hit" (tune split of
# cache_pairs_v2.jsonl); rare senses still do not count.
TOP_SENSES = 3


@lru_cache(maxsize=50_000)
def relation(a: str, b: str) -> str:
    """How two different words relate in WordNet, through their common senses only:

    * ``"synonym"`` - they share a synset among the first ``TOP_SENSES`` senses of each, in one
      part of speech ("procedure"/"process", "hits"/"strikes");
    * ``"broader"`` - the first sense of one is a direct hypernym of the first sense of the other
      ("warn"/"alert", "staff"/"personnel");
    * ``"antonym"`` - a lemma of one lists the other as its antonym ("safe"/"unsafe");
    * ``""`` - none of these, or WordNet is not installed.
    """
    wn = wordnet()
    if wn is None or a == b or not (a.isalpha() and b.isalpha()):
        return ""
    a, b = a.lower(), b.lower()
    found = ""
    for pos in ("n", "v", "a", "r"):
        sa, sb = wn.synsets(a, pos), wn.synsets(b, pos)
        if not sa or not sb:
            continue
        if _antonyms(sa, sb) or _antonyms(sb, sa):
            return "antonym"
        if set(sa[:TOP_SENSES]) & set(sb[:TOP_SENSES]):
            found = "synonym"
        elif not found and (sa[0] in sb[0].hypernyms() or sb[0] in sa[0].hypernyms()):
            found = "broader"
    return found


def _antonyms(synsets_a, synsets_b) -> bool:
    names_b = {lemma.name() for s in synsets_b for lemma in s.lemmas()}
    return any(ant.name() in names_b for s in synsets_a for lemma in s.lemmas() for ant in lemma.antonyms())
