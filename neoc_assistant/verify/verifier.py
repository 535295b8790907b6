"""Verify a model answer claim by claim, while it is being written.

Nothing the model writes reaches the officer unchecked: the stream is cut into
claims (sentences, list items) as they complete, each claim is checked against
every passage the model was given (``support.py``), and only supported claims
are passed on - with their citations re-written to the passages that actually
support them (the cited ones first when several do). Unsupported claims are
kept aside with the reason (a figure not in any passage, or content not
found, or a figure the passage gives for something else), repeated claims are
dropped (a looping model repeats itself), the model's own "the documents do not
contain this" is not shown as a fact, and a claim that states nothing ("Any
details about the shift handover briefing", ``vacuity.py``) is not shown - so
an answer with nothing else is replaced by the documents' sentences and never
cached as the model's.

A claim is only decided once it is complete - at a line break, or when the
next sentence has begun (so a citation marker written after the full stop is
still read with its sentence). A lead-in line ending in ":" ("The steps
are:") is shown only if an item after it survives.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from neoc_assistant.answer import NOT_A_FACT

from neoc_assistant.language.facts import extract_facts
from neoc_assistant.verify.sentences import Claim, complete_prefix, render_claim, split_claims
from neoc_assistant.language.words import content_stems
from neoc_assistant.verify.support import PassageView, SupportChecker, claim_core
from neoc_assistant.verify.vacuity import heading_words, vacuous

# "The documents provided do not contain this information." and its variants.
_REFUSAL = re.compile(
    r"\b(?:documents?|passages?|context|information provided)\b.{0,40}\b(?:do(?:es)? not|don't|doesn't|no)\b"
    r".{0,30}\b(?:contain|include|mention|say|provide|have|cover|information|answer)",
    re.IGNORECASE,
)
_NO_INFO = re.compile(r"^(?:i (?:do not|don't) know|there is no information|no information (?:is|was) (?:found|given))",
                      re.IGNORECASE)

_PROMPT_TAG = re.compile(r"</?\s*passage\b", re.IGNORECASE)

STATUSES = ("verified", "partial", "extractive", "not-found", "unchecked")


@dataclass
class ClaimResult:
    text: str
    supported: bool
    sources: list[int] = field(default_factory=list)  # citation numbers (see ClaimStream._number) that support it
    cited: list[int] = field(default_factory=list)  # what the model wrote
    reason: str = ""  # why it was not shown: "figures not in the passages: 2.1 l", "repeated", ...
    shown: bool = False

    def to_json(self) -> dict:
        out = {"text": self.text, "supported": self.supported, "sources": self.sources}
        if self.reason:
            out["reason"] = self.reason
        return out


@dataclass
class Verification:
    status: str
    claims: list[ClaimResult] = field(default_factory=list)

    @property
    def unsupported(self) -> list[ClaimResult]:
        """Claims removed because the passages do not support them (not repeats or framing)."""
        return [c for c in self.claims if not c.supported and c.reason not in NOT_A_FACT]

    def to_json(self) -> dict:
        return {"status": self.status, "claims": [c.to_json() for c in self.claims]}


class ClaimStream:
    """Feed model text in; get back the verified text to show, piece by piece."""

    def __init__(self, checker: SupportChecker, views: list[PassageView], question: str):
        self.checker = checker
        self.views = views
        self.question = question
        self.allowed_numbers = _numbers(question)
        self._headings = heading_words(v.text for v in views)
        self.results: list[ClaimResult] = []
        self._buffer = ""
        self._seen: set[tuple[str, ...]] = set()
        self._pending_lead: tuple[Claim, ClaimResult] | None = None
        self._shown = 0
        self._display: dict[int, int] = {}
        self.shown_claims: list[tuple[str, np.ndarray]] = []  # (text, vector) of what was shown

    # -- feeding -------------------------------------------------------------------------------------
    def feed(self, text: str) -> str:
        """Add model text; return the verified text that became ready (may be "")."""
        self._buffer += text
        cut = complete_prefix(self._buffer)
        if cut <= 0:
            return ""
        ready, self._buffer = self._buffer[:cut], self._buffer[cut:]
        return self._decide(split_claims(ready))

    def finish(self, cut_off: bool = False) -> str:
        """The stream ended: decide what is left. ``cut_off``: it ended at the length limit, so
        a last sentence without its full stop is unfinished and is not shown."""
        claims = split_claims(self._buffer)
        if cut_off and claims and not claims[-1].text.rstrip().endswith((".", "!", "?", ":")):
            self.results.append(ClaimResult(text=claims[-1].text, supported=False, reason="cut off"))
            claims = claims[:-1]
        out = self._decide(claims)
        self._buffer = ""
        self._pending_lead = None  # a lead-in with nothing verified after it stays hidden
        return out

    # -- deciding -------------------------------------------------------------------------------------
    def _decide(self, claims: list[Claim]) -> str:
        if not claims:
            return ""
        vectors = self.checker.encoder.encode([claim_core(c.text) for c in claims])
        out = []
        for claim, vector in zip(claims, vectors):
            if claim.lead_in and not _numbers(claim.text):
                # framing, not a fact: shown only if a verified item follows
                result = ClaimResult(text=claim.text, supported=False, reason="lead-in")
                self.results.append(result)
                self._pending_lead = (claim, result)
                continue
            result = self._check(claim, vector)
            self.results.append(result)
            if result.supported:
                self.shown_claims.append((claim.text, vector))
                if self._pending_lead is not None:
                    lead, lead_result = self._pending_lead
                    lead_result.supported, lead_result.reason, lead_result.shown = True, "", True
                    out.append(render_claim(lead, [], self._shown == 0))
                    self._shown += 1
                    self._pending_lead = None
                out.append(render_claim(claim, result.sources, self._shown == 0))
                result.shown = True
                self._shown += 1
        return "".join(out)

    def _check(self, claim: Claim, vector: np.ndarray) -> ClaimResult:
        result = ClaimResult(text=claim.text, supported=False, cited=list(claim.cited))
        if _REFUSAL.search(claim.text) or _NO_INFO.search(claim.text):
            result.reason = "refusal"
            return result
        if " > " in claim.text or _PROMPT_TAG.search(claim.text):  # the prompt's section path or fences copied
            result.reason = "heading"
            return result
        key = tuple(content_stems(claim.text))
        if key in self._seen:
            result.reason = "repeated"
            return result
        if vacuous(claim_core(claim.text), self.question, self._headings):
            result.reason = "states nothing"  # "Any details about the shift handover briefing"
            return result
        supports = [self.checker.check(claim.text, vector, v, self.allowed_numbers) for v in self.views]
        good = [i for i, s in enumerate(supports) if s.supported]
        if not good:
            missing = sorted({m for s in supports for m in s.missing})
            all_missing = all(s.missing for s in supports)
            conflicts = [s.conflict for s in supports if not s.missing and s.conflict]
            result.reason = (f"figures not in the passages: {', '.join(missing[:4])}" if all_missing
                             else conflicts[0] if conflicts else "not supported by the passages")
            return result
        self._seen.add(key)
        # Cited passages that support it first, then the best other support; at most two.
        cited_ok = [k - 1 for k in claim.cited if 0 < k <= len(self.views) and (k - 1) in good]
        others = sorted((i for i in good if i not in cited_ok), key=lambda i: -supports[i].score)
        result.sources = [self._number(i) for i in (cited_ok + others)[:2]]
        result.supported = True
        return result

    def _number(self, passage: int) -> int:
        """Citations are renumbered 1, 2, ... in order of first use, so [n] is the n-th source listed."""
        return self._display.setdefault(passage, len(self._display) + 1)

    def cited_passages(self) -> list[int]:
        """0-based indices of the passages the shown text cites, in citation-number order."""
        return sorted(self._display, key=self._display.__getitem__)

    # -- summary -------------------------------------------------------------------------------------
    def verification(self) -> Verification:
        shown = [r for r in self.results if r.shown]
        if not shown:
            status = "extractive"
        elif any(not r.supported and r.reason not in NOT_A_FACT for r in self.results):
            status = "partial"
        else:
            status = "verified"
        return Verification(status=status, claims=list(self.results))


def _numbers(text: str) -> set[str]:
    return extract_facts(text).all_numbers()


class AnswerVerifier:
    """Builds a ``ClaimStream`` for one answer (passages prepared once)."""

    def __init__(self, checker: SupportChecker):
        self.checker = checker

    def stream(self, question: str, passages: list[str]) -> ClaimStream:
        return ClaimStream(self.checker, self.checker.prepare(passages), question)

    def verify(self, question: str, passages: list[str], answer: str) -> tuple[str, Verification]:
        """Whole-answer convenience (evaluation, tests): (shown text, verification)."""
        claims = self.stream(question, passages)
        text = claims.feed(answer) + claims.finish()
        return text, claims.verification()
