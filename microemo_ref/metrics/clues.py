"""Clue recall: does an explanation cite a known cue, at the right time and in the right utterance?

EMER (Lian et al., 2023) scores explanations by their overlap with the gold clues, with an
LLM as judge. For the generated samples every cue is known exactly, so part of that can be
checked without a judge. **Our rule** for a facial cue (e.g. a micro-expression with apex
t_a in utterance k): the explanation recalls it when one of its sentences

* mentions a time within ``tolerance_s`` of t_a: a single time ("5.2 s", "at 5.2 seconds")
  within the tolerance, or a range ("5.0-5.4 s") that comes within the tolerance of t_a and
  is at most twice the tolerance long (0.6 s; a micro-expression lasts at most 0.5 s), so
  that an utterance's span ("utterance 3 (4.1-6.0 s)") does not pass for the cue's time; and
* names "utterance k" (when the cue lies in an utterance).

It is a proxy: it checks where and when, not whether the cue was described correctly.
"""
from __future__ import annotations

import re
from collections.abc import Sequence

TIME = re.compile(r"(\d+(?:\.\d+)?)\s*(?:-|–|to)\s*(\d+(?:\.\d+)?)\s*(?:s\b|sec|seconds?)"
                  r"|(\d+(?:\.\d+)?)\s*(?:s\b|sec|seconds?)")
SENTENCE = re.compile(r"(?<=[.!?])\s+|\n")


def mentioned_times(text: str) -> list[tuple[float, float]]:
    """Every time or time range in ``text`` as (start, end) seconds ("5.2 s" -> (5.2, 5.2))."""
    out = []
    for m in TIME.finditer(text):
        if m.group(3) is not None:
            t = float(m.group(3))
            out.append((t, t))
        else:
            out.append((float(m.group(1)), float(m.group(2))))
    return out


def cites(sentence: str, time_s: float, utterance: int | None, tolerance_s: float) -> bool:
    near = any(a - tolerance_s <= time_s <= b + tolerance_s and b - a <= 2 * tolerance_s + 1e-9
               for a, b in mentioned_times(sentence))
    names = utterance is None or re.search(rf"\butterance\s+{utterance + 1}\b", sentence, re.IGNORECASE)
    return bool(near and names)


def clue_recalled(explanation: str, time_s: float, utterance: int | None, tolerance_s: float = 0.3) -> bool:
    """True when a sentence of ``explanation`` cites the cue (module docstring); ``utterance`` is 0-based."""
    return any(cites(s, time_s, utterance, tolerance_s) for s in SENTENCE.split(explanation))


def clue_recall(explanations: Sequence[str], cues: Sequence[Sequence[dict]], tolerance_s: float = 0.3) -> float:
    """Share of cues recalled; ``cues[i]`` lists dicts with ``apex_s`` and ``utterance`` (0-based or None)."""
    total = sum(len(c) for c in cues)
    if total == 0:
        raise ValueError("no cues to recall")
    hits = sum(clue_recalled(e, c["apex_s"], c.get("utterance"), tolerance_s)
               for e, cs in zip(explanations, cues) for c in cs)
    return hits / total


FLASH_WORDS = re.compile(r"\b(?:flash\w*|micro-expressions?)\b", re.IGNORECASE)


def flash_claim(explanation: str, tolerance_s: float = 0.3) -> tuple[int | None, float | None]:
    """Where and when the explanation's first sentence about a flash places it: the utterance it
    names (0-based) and the first single time it gives (the middle of a range no longer than
    :func:`cites` allows, ``2 * tolerance_s``), each None
    where the sentence gives none, both None where no sentence speaks of a flash or a
    micro-expression. It splits :func:`clue_recalled`'s test in two: the right utterance, the
    right time."""
    for sentence in SENTENCE.split(explanation):
        if FLASH_WORDS.search(sentence):
            named = re.search(r"\butterance\s+(\d+)\b", sentence, re.IGNORECASE)
            times = [(a + b) / 2 for a, b in mentioned_times(sentence) if b - a <= 2 * tolerance_s + 1e-9]
            return (int(named.group(1)) - 1 if named else None), (times[0] if times else None)
    return None, None


def measured_spans(events: Sequence[dict], utterances: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """What the evidence supports: spotted events (dicts with onset_s, offset_s) and utterance spans."""
    return [(e["onset_s"], e["offset_s"]) for e in events] + [(float(a), float(b)) for a, b in utterances]


def sentences_citing(explanation: str, start: float, end: float, tolerance_s: float = 0.3) -> list[str]:
    """The sentences of ``explanation`` that mention a time within [start, end] (+- tolerance)."""
    return [s.strip() for s in SENTENCE.split(explanation)
            if any(start - tolerance_s <= a <= end + tolerance_s for a, _ in mentioned_times(s))]


def ungrounded_times(explanation: str, measured: Sequence[tuple[float, float]],
                     tolerance_s: float = 0.3) -> list[tuple[float, float]]:
    """Times the explanation cites that match nothing measured.

    ``measured`` lists (start, end) spans the evidence supports: spotted facial events and
    utterances. A cited time or range is grounded when it lies within ``tolerance_s`` of one
    of them (a range: both ends). An empty result means every cited time is backed by a
    measurement; anything else is a claim the evidence lacks.
    """
    def near(t: float) -> bool:
        return any(a - tolerance_s <= t <= b + tolerance_s for a, b in measured)

    return [(a, b) for a, b in mentioned_times(explanation) if not (near(a) and near(b))]


#: Words that describe a brief facial event: a sentence with one claims a micro-expression.
FLASH = re.compile(r"\b(?:flash(?:es|ed)?|flicker\w*|micro-?expressions?)\b", re.IGNORECASE)


def unsupported_flashes(explanation: str, micro_apexes: Sequence[float], tolerance_s: float = 0.3) -> list[str]:
    """Sentences that claim a flash (a micro-expression) that no spotted micro event backs.

    :func:`ungrounded_times` passes a flash placed at the time of *any* measured event (a
    smile's apex, say). Here a flash sentence needs a spotted micro event: it is unsupported
    when none was spotted, or when it cites times and none lies within ``tolerance_s`` of a
    spotted apex. A flash sentence without a time cannot be placed; it passes when any micro
    event was spotted.
    """
    out = []
    for sentence in SENTENCE.split(explanation):
        if not FLASH.search(sentence):
            continue
        times = mentioned_times(sentence)
        if times:
            backed = any(a - tolerance_s <= t <= b + tolerance_s for t in micro_apexes for a, b in times)
        else:
            backed = bool(micro_apexes)
        if not backed:
            out.append(sentence.strip())
    return out


__all__ = ["clue_recall", "clue_recalled", "flash_claim", "measured_spans", "mentioned_times", "sentences_citing", "ungrounded_times",
           "unsupported_flashes"]
