"""Vocabulary the guard learns from the centre's own knowledge base.

Built once per knowledge-base version (from the manifest's chunk texts, or from
a folder of documents) and cached, this supplies what a hand list cannot know
about *this* centre's documents:

* ``vocab`` / ``doc_freq`` - every word in the KB and in how many documents it
  occurs (IDF). Typos are corrected only *towards* KB words, and a KB word is
  never "corrected" into another KB word (``Humla`` and ``Jumla`` both stay).
* ``names`` - tokens the KB always capitalises mid-sentence (places, agencies,
  people: ``Pokhara``, ``Chisapani``, ``Koshi``, ``Nepal``...).
* ``acronyms`` - ``Department of Hydrology and Meteorology (DHM)``-style
  definitions, verified letter by letter, so ``DHM`` and its expansion are
  interchangeable; ``aliases`` - ``Level 2 - Partial Activation``-style
  equivalences, so ``partial activation`` is ``level 2``.
* ``hazards`` - from document titles (``Flood Response SOP``) and the sitrep
  hazard codes, plus a generic seed; ``roles`` - title-case phrases ending in
  Officer/Chief/Unit/Leader/...; ``forms`` - ``ICS 201``/``NEOC-F03`` codes.
  These label *why* the guard refused (statistics, debugging); the refusal
  itself does not depend on them (see ``guard.py``).
* ``common`` - whole words of the embedding model's WordPiece vocabulary: a
  proxy for "an ordinary English word", used to decide what is a typo.
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from neoc_assistant.language import wordnet
from neoc_assistant.language.normalize import damerau_levenshtein, is_substitution, light_stem, tokenize
from neoc_assistant.language.words import ACRONYM_JOINERS, HAZARD_SEED

log = logging.getLogger(__name__)

_WORD = re.compile(r"[A-Za-z][A-Za-z]*")


@dataclass
class KBLexicon:
    vocab: Counter = field(default_factory=Counter)
    doc_freq: Counter = field(default_factory=Counter)
    n_docs: int = 0
    names: set[str] = field(default_factory=set)
    acronyms: dict[str, tuple[str, ...]] = field(default_factory=dict)  # "dhm" -> ("department", ...)
    aliases: list[tuple[tuple[str, ...], tuple[str, ...]]] = field(default_factory=list)
    hazards: set[str] = field(default_factory=set)
    roles: set[str] = field(default_factory=set)
    role_phrases: set[tuple[str, ...]] = field(default_factory=set)
    forms: set[str] = field(default_factory=set)
    common: frozenset[str] = frozenset()
    _deletes: dict[str, set[str]] = field(default_factory=dict, repr=False)

    # -- pickling (stored in L2 per kb version): the typo index is rebuilt, not stored ---------------
    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_deletes"] = {}
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._build_deletes()

    # -- building -----------------------------------------------------------------------------
    @classmethod
    def from_documents(cls, documents: Iterable[str], common: Iterable[str] = ()) -> "KBLexicon":
        """``documents``: one string per document (title and headings included)."""
        lex = cls(common=frozenset(common))
        cap, low, initial = Counter(), Counter(), Counter()
        texts = list(documents)
        lex.n_docs = len(texts)
        for text in texts:
            words = [w.lower() for w in _WORD.findall(text)]
            lex.vocab.update(words)
            lex.doc_freq.update(set(words))
            lex._scan_case(text, cap, low, initial)
            lex._scan_acronyms(text)
            lex._scan_aliases(text)
            lex._scan_labels(text)
        lex.names = {w for w, n in cap.items() if n >= 1 and low[w] == 0 and len(w) > 2}
        # table cells and list items start with the name itself ("| Chatara (Sunsari) |")
        lex.names |= {w for w in initial if low[w] == 0 and cap[w] == 0 and w not in lex.common and len(w) > 2}
        lex.names -= set(ACRONYM_JOINERS)
        lex.hazards |= HAZARD_SEED
        lex._build_deletes()
        return lex

    @classmethod
    def from_paths(cls, paths: Iterable[Path], common: Iterable[str] = ()) -> "KBLexicon":
        from neoc_assistant.ingest.loaders import SUPPORTED_SUFFIXES, load_document

        docs = []
        for root in paths:
            root = Path(root)
            files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
            for path in files:
                if path.suffix.lower() not in SUPPORTED_SUFFIXES:
                    continue
                try:
                    doc = load_document(path, path.read_bytes())
                except Exception as exc:  # noqa: BLE001 - a bad file only loses its words
                    log.debug("lexicon: skipped %s: %s", path, exc)
                    continue
                docs.append(doc.title + "\n" + "\n".join(p.text for p in doc.pages))
        return cls.from_documents(docs, common)

    # -- scanners -------------------------------------------------------------------------------
    @staticmethod
    def _scan_case(text: str, cap: Counter, low: Counter, initial: Counter) -> None:
        for line in text.splitlines():
            line = line.strip().lstrip("#|-*>0123456789. ").strip()
            sentences = re.split(r"(?<=[.!?:;|])\s+|\s+-\s+|\(|\)", line)
            for sentence in sentences:
                words = _WORD.findall(sentence)
                for i, w in enumerate(words):
                    if i == 0:
                        if w[0].isupper() and not w.isupper():
                            initial[w.lower()] += 1
                        else:
                            low[w] += 0 if w.isupper() else 1
                        continue  # sentence-initial capitals say little
                    if w.isupper():
                        continue
                    if w[0].isupper():
                        cap[w.lower()] += 1
                    else:
                        low[w] += 1

    _ACRONYM_PAREN = re.compile(r"\(([A-Z][A-Za-z]{1,7})\)")
    _WORDS_BEFORE = re.compile(r"[A-Za-z][\w']*")

    def _scan_acronyms(self, text: str) -> None:
        # find "(ACR)" first, then read the few words before it: linear in the text size
        for m in self._ACRONYM_PAREN.finditer(text):
            acr = m.group(1)
            if acr.endswith("s") and acr[:-1].isupper():
                acr = acr[:-1]
            # all capitals ("DHM"), or mixed case with at least two capitals ("MoHP", "HoD"): the
            # initials check below decides; "(Nepal)" has one capital and is a name, not an acronym
            if len(acr) < 2 or sum(c.isupper() for c in acr) < 2:
                continue
            before = text[max(0, m.start() - 120) : m.start()]
            if not before.endswith((" ", "\t")):
                continue
            before = re.split(r"[.;:!?\n|()]", before)[-1]  # same sentence / cell only
            words = self._WORDS_BEFORE.findall(before.replace("-", " ").replace("/", " "))[-10:]
            expansion = _match_initials(words, acr.lower())
            if expansion:
                self.acronyms.setdefault(acr.lower(), tuple(w.lower() for w in expansion))

    _LEVEL_ALIAS = re.compile(r"\b(Level|Tier|Phase|Category) (\d+) - ([A-Z][a-z]+(?: [A-Z][a-z]+){0,3})")

    def _scan_aliases(self, text: str) -> None:
        for m in self._LEVEL_ALIAS.finditer(text):
            name = tuple(tokenize(m.group(3)))
            target = (m.group(1).lower(), m.group(2))
            # single words ("Monitoring") are too common to be safe aliases
            if len(name) >= 2 and (name, target) not in self.aliases:
                self.aliases.append((name, target))

    _TITLE_HAZARD = re.compile(r"(?m)^#?\s*([A-Z][A-Za-z ]{2,40}?) Response SOP")
    _ROLE = re.compile(
        r"\b((?:[A-Z][a-z]+(?:/[A-Z][a-z]+)?[ -]){0,3}"
        r"(?:Officer|Chief|Commander|Leader|Lead|Manager|Assistant|Recorder|Unit|Section|Coordinator|Liaison|Focal Point))\b"
    )
    _FORM = re.compile(r"\b(ICS \d{3}[A-Z]?|NEOC-F\d{2})\b")

    def _scan_labels(self, text: str) -> None:
        for m in self._TITLE_HAZARD.finditer(text):
            self.hazards.update(w.lower() for w in _WORD.findall(m.group(1)))
        for m in re.finditer(r"\b[A-Z]{2} ([a-z]+(?: wave)?)[,.]", text):  # "FL flood, EQ earthquake, ..."
            if m.group(1) in HAZARD_SEED:
                self.hazards.update(m.group(1).split())
        for m in self._ROLE.finditer(text):
            phrase = tuple(w.lower() for w in re.split(r"[ /-]+", m.group(1)) if w)
            if len(phrase) >= 2:
                self.role_phrases.add(phrase)
                self.roles.update(phrase)
        for m in self._FORM.finditer(text):
            self.forms.add(m.group(1).lower())

    # -- typo correction ---------------------------------------------------------------------------
    def _build_deletes(self) -> None:
        deletes: dict[str, set[str]] = defaultdict(set)
        for word in self.vocab:
            if len(word) < 3:
                continue
            for d in _deletes1(word):
                deletes[d].add(word)
            deletes[word].add(word)
        self._deletes = dict(deletes)

    def known(self, word: str) -> bool:
        return word in self.vocab or word in self.common

    def in_kb(self, word: str) -> bool:
        return word in self.vocab

    def common_or_english(self, word: str) -> bool:
        """An ordinary word: in the embedding model's whole-word vocabulary or in WordNet."""
        return word in self.common or wordnet.common_word(word)

    def correct(self, word: str) -> str:
        """Fix an out-of-vocabulary token to the unique nearest KB word, else return it unchanged.

        Distance 1 (a transposition counts as 1) for words up to 7 letters, 2 above. A name
        is never reached by changing a letter (``Humla`` is not a typo of ``Jumla``: many
        place names differ by one letter); a missing, extra or swapped letter is allowed
        (``Katmandu``, ``Pokhra``, ``Kosi``).
        """
        if len(word) < 3 or not word.isalpha() or self.known(word) or not self._deletes:
            return word
        limit = 2 if len(word) >= 8 else 1
        candidates: set[str] = set()
        variants = {word} | _deletes1(word)
        for v in variants:
            candidates |= self._deletes.get(v, set())
        if limit == 2:
            for v in list(_deletes1(word)):
                for v2 in _deletes1(v):
                    candidates |= self._deletes.get(v2, set())
        best: list[tuple[int, str]] = []
        for cand in candidates:
            d = damerau_levenshtein(word, cand, limit)
            if d <= limit and not (cand in self.names and is_substitution(word, cand)):
                best.append((d, cand))
        if not best:
            return word
        best.sort()
        top = [c for d, c in best if d == best[0][0]]
        if len(top) == 1:
            return top[0]
        stems = {light_stem(c) for c in top}
        if len(stems) == 1:  # "activaton" -> activation/activations: same word
            return min(top, key=lambda c: (-self.vocab[c], c))
        return word

    def idf(self, word: str) -> float:
        return math.log((1 + self.n_docs) / (1 + self.doc_freq.get(word, 0))) + 1.0

    def summary(self) -> dict:
        return {
            "words": len(self.vocab),
            "documents": self.n_docs,
            "names": len(self.names),
            "acronyms": len(self.acronyms),
            "aliases": len(self.aliases),
            "hazards": len(self.hazards),
            "roles": len(self.roles),
            "forms": len(self.forms),
        }


def _deletes1(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


def _match_initials(words: list[str], acr: str) -> list[str] | None:
    """The shortest tail of ``words`` whose initials spell ``acr`` (function words may be skipped or used)."""
    n = len(words)
    for start in range(n - 1, -1, -1):
        tail = words[start:]
        if tail[0].lower() in ACRONYM_JOINERS and tail[0][0].lower() != acr[0]:
            continue
        if _spells(tail, acr):
            return tail
    return None


def _spells(words: list[str], acr: str) -> bool:
    """Can the words' initials (each used at most once, in order) spell acr exactly, using all content words?"""
    memo: dict[tuple[int, int], bool] = {}

    def go(i: int, j: int) -> bool:
        if (i, j) in memo:
            return memo[(i, j)]
        if i == len(words):
            res = j == len(acr)
        else:
            w = words[i].lower()
            res = False
            if j < len(acr) and w[0] == acr[j]:
                res = go(i + 1, j + 1)
                # "On-Site" style: a second letter of the same word may also count (OSOCC, ORP)
            if not res and w in ACRONYM_JOINERS:
                res = go(i + 1, j)
        memo[(i, j)] = res
        return res

    return go(0, 0)


def wordpiece_common_words(embedder) -> frozenset[str]:
    """Whole-word entries of the embedding model's tokenizer vocabulary (no model load if possible)."""
    vocab = None
    try:
        path = Path(getattr(embedder, "_path", "")) if embedder is not None else None
        if path and path.is_dir():
            for cand in [path / "vocab.txt", *path.rglob("vocab.txt")]:
                if cand.is_file():
                    vocab = cand.read_text(encoding="utf-8", errors="ignore").split("\n")
                    break
        if vocab is None and embedder is not None:
            vocab = list(embedder.tokenizer.vocab)
    except Exception as exc:  # noqa: BLE001 - the guard then just trusts the KB vocabulary
        log.debug("no tokenizer vocabulary: %s", exc)
        return frozenset()
    return frozenset(w for w in vocab if w.isalpha() and w.islower() and len(w) > 1)
