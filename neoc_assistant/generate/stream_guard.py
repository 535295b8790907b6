"""What the token stream must never pass on: chat-template markers and endless loops.

``StopScanner`` - small models sometimes write an end-of-turn marker as plain
text pieces (``<|im`` ``_end`` ``|>``) instead of the control token, and then
carry on as the next speaker. The scanner holds back any tail that could be
the start of a stop text, so a marker is never shown even in part, and reports
the stop when one completes.

``LoopDetector`` - a 135M model asked for "activation levels" listed
"Level 1: 1.0 ... Level 46:" until the token limit. The sampler's repetition
and DRY penalties make loops rarer; this catches the ones that remain, on the
text: the same line or sentence three times, the same line *shape* (digits
masked, so "Level 7: 7.0" = "Level 8: 8.0") three times, or the text's tail
being one stretch repeated three times over. The stream then ends with
``finish_reason = "loop"``.
"""

from __future__ import annotations

import re
from collections import Counter

_SEGMENT_END = re.compile(r"(?<=[.!?;])\s+|\n+")
_DIGITS = re.compile(r"\d+")


class StopScanner:
    def __init__(self, stop_texts: tuple[str, ...] | list[str]):
        self.stops = tuple(s for s in dict.fromkeys(stop_texts) if s)
        self._held = ""
        self.stopped_on: str | None = None

    def feed(self, text: str) -> tuple[str, bool]:
        """(text safe to show now, whether a stop text was reached)."""
        if self.stopped_on is not None:
            return "", True
        buf = self._held + text
        first = None
        for stop in self.stops:
            at = buf.find(stop)
            if at >= 0 and (first is None or at < first[0]):
                first = (at, stop)
        if first is not None:
            self.stopped_on = first[1]
            self._held = ""
            return buf[: first[0]], True
        hold = 0
        for stop in self.stops:  # longest suffix of buf that is a prefix of a stop text
            for n in range(min(len(stop) - 1, len(buf)), 0, -1):
                if buf.endswith(stop[:n]):
                    hold = max(hold, n)
                    break
        self._held = buf[len(buf) - hold:] if hold else ""
        return buf[: len(buf) - hold], False

    def flush(self) -> str:
        held, self._held = self._held, ""
        return "" if self.stopped_on is not None else held


class LoopDetector:
    def __init__(self, exact_repeats: int = 3, shape_repeats: int = 3, min_segment: int = 8,
                 tail_repeats: int = 3, min_tail: int = 30, max_period: int = 200):
        self.exact_repeats = exact_repeats
        self.shape_repeats = shape_repeats
        self.min_segment = min_segment
        self.tail_repeats = tail_repeats
        self.min_tail = min_tail
        self.max_period = max_period
        self.text = ""
        self._done = 0  # text[:_done] is cut into segments already
        self._exact: Counter = Counter()
        self._shape: Counter = Counter()
        self._checked_tail = 0
        self.reason = ""

    def feed(self, piece: str) -> bool:
        """Add generated text; True once the text is looping."""
        self.text += piece
        for m in _SEGMENT_END.finditer(self.text, self._done):
            segment = " ".join(self.text[self._done:m.start()].lower().split())
            self._done = m.end()
            if len(segment) < self.min_segment:
                continue
            self._exact[segment] += 1
            shape = _DIGITS.sub("#", segment)
            self._shape[shape] += 1
            if self._exact[segment] >= self.exact_repeats:
                self.reason = f"the same sentence {self._exact[segment]} times"
                return True
            if self._shape[shape] >= self.shape_repeats and shape != segment:
                self.reason = f"the same line pattern {self._shape[shape]} times"
                return True
        if len(self.text) - self._checked_tail >= 16:
            self._checked_tail = len(self.text)
            if self._tail_repeats():
                self.reason = "a repeating stretch of text"
                return True
        return False

    def _tail_repeats(self) -> bool:
        text = self.text
        n = len(text)
        for period in range(1, min(self.max_period, n // self.tail_repeats) + 1):
            if period * self.tail_repeats < self.min_tail:
                continue
            unit = text[n - period:]
            if all(text[n - (k + 1) * period: n - k * period] == unit for k in range(1, self.tail_repeats)):
                return True
        return False


class TextScreen:
    """Token bytes in, text safe to show out: UTF-8 decoding across token boundaries, chat
    markers held back, loops detected. One per answer; used by every stream kind.

    ``feed`` returns the text to show now; after it, ``end_reason`` is "stop" (a chat
    marker), "loop", or None. ``flush`` gives what was held back once the answer ends.
    """

    def __init__(self, stop_texts: tuple[str, ...], loop_guard: bool):
        import codecs

        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.stops = StopScanner(stop_texts)
        self.loop = LoopDetector() if loop_guard else None
        self.end_reason: str | None = None

    def feed(self, data: bytes) -> str:
        text = self._decoder.decode(data)
        if not text or self.end_reason:
            return ""
        shown, stopped = self.stops.feed(text)
        if stopped:
            self.end_reason = "stop"
        elif self.loop is not None and self.loop.feed(text):
            self.end_reason = "loop"
        return shown

    def flush(self) -> str:
        text = self._decoder.decode(b"", final=True)
        shown = self.stops.feed(text)[0] if text and not self.end_reason else ""
        return shown + self.stops.flush()

    def describe(self, stats: dict) -> None:
        """Put what ended the text into a stream's stats."""
        if self.end_reason == "stop":
            stats["stopped_on"] = self.stops.stopped_on
        elif self.end_reason == "loop":
            stats["loop"] = self.loop.reason  # type: ignore[union-attr]  # "loop" only when there is a detector
