"""Per-utterance mood: does an explanation name each utterance's mood *for that utterance*?

A shift clip changes emotion between utterances ("happy at first, angry by the end"). The OV
label set can be right while the explanation places the moods wrongly, or not at all; the
utterance-aware Q-Former exists to tie a cue to its utterance. **Our rule** (a proxy that reads
words, not meaning): utterance k's mood m is named when a sentence that names utterance k
("utterance 2", "utterances 1-3", "utterances 2 and 3") also names m, by

* one of the lexicon's words for m (``sad``, ``gloomy``, ...), or
* cue words given for m (evaluation passes the facial and vocal cue words of the sample
  generator's explanations: ``smile``, ``loud and clipped``).

:func:`mood_recall` is the share of utterances whose mood is named so, over a set of clips.
"""
from __future__ import annotations

import re
from collections.abc import Sequence

from microemo_ref.lexicon import LEXICON, NOUNS
from microemo_ref.metrics.clues import SENTENCE

UTTERANCES = re.compile(r"\butterances?\s+(\d+)(?:\s*(?:-|–|to|and)\s*(\d+))?", re.IGNORECASE)


def mood_phrases(cue_words: dict[str, Sequence[str]] | None = None) -> dict[str, list[str]]:
    """Head emotion -> the phrases that name it: the lexicon's words and nouns, plus ``cue_words``
    (head -> phrases, e.g. the sample generator's facial and vocal cue words)."""
    out: dict[str, list[str]] = {head: list(words) for head, words in LEXICON.items()}
    for noun, head in NOUNS.items():
        out[head].append(noun)
    for head, phrases in (cue_words or {}).items():
        out.setdefault(head, []).extend(phrases)
    return out


def named_utterances(sentence: str) -> set[int]:
    """0-based utterances a sentence names ("utterances 1-3" -> {0, 1, 2})."""
    out: set[int] = set()
    for m in UTTERANCES.finditer(sentence):
        a = int(m.group(1))
        b = int(m.group(2)) if m.group(2) else a
        out.update(range(min(a, b) - 1, max(a, b)))
    return out


def named_moods(sentence: str, phrases: dict[str, list[str]]) -> set[str]:
    """Head emotions a sentence names by one of their ``phrases`` (see :func:`mood_phrases`)."""
    low = sentence.lower()
    return {head for head, phrases in phrases.items()
            if any(re.search(rf"\b{re.escape(p)}\b", low) for p in phrases)}


def moods_by_utterance(explanation: str, n_utterances: int, phrases: dict[str, list[str]]) -> list[set[str]]:
    """For each utterance, the moods named in the sentences that name it."""
    out: list[set[str]] = [set() for _ in range(n_utterances)]
    for sentence in SENTENCE.split(explanation):
        moods = named_moods(sentence, phrases)
        for k in named_utterances(sentence):
            if 0 <= k < n_utterances:
                out[k] |= moods
    return out


def mood_hits(explanation: str, moods: Sequence[str], phrases: dict[str, list[str]]) -> list[bool]:
    """Per utterance: is its mood (a head emotion) named for it?"""
    named = moods_by_utterance(explanation, len(moods), phrases)
    return [m in n for m, n in zip(moods, named)]


def mood_recall(explanations: Sequence[str], moods: Sequence[Sequence[str]], phrases: dict[str, list[str]]) -> float:
    """Share of utterances whose mood is named for them, over clips (``moods[i]``: clip i's, per utterance)."""
    hits = [h for e, m in zip(explanations, moods) for h in mood_hits(e, m, phrases)]
    if not hits:
        raise ValueError("no utterances to score")
    return sum(hits) / len(hits)


__all__ = ["mood_hits", "mood_phrases", "mood_recall", "moods_by_utterance", "named_moods", "named_utterances"]
