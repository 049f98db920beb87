"""Word error rate: how far recognised words are from a reference transcript.

The standard measure of speech recognition (as reported for Whisper, Radford et al., 2022,
arXiv 2212.04356): align the two word sequences with the fewest edits (Levenshtein distance
over words) and count substitutions S, deletions D and insertions I:

    WER = (S + D + I) / N,    N = number of reference words.

It can exceed 1 (many insertions). Both texts are normalised first, **our choice**, simpler
than Whisper's English normaliser: lower case, punctuation dropped (apostrophes inside a word
kept, a hyphen splits), so "Today," and "today" agree. Numbers are not spelled out, so "10"
against "ten" counts as one substitution.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z0-9]+)*")


def normalise(text: str) -> list[str]:
    """The words of ``text`` as WER compares them (see the module docstring)."""
    return _WORD.findall(text.lower().replace("\u2019", "'"))


@dataclass(frozen=True)
class WordErrors:
    """The edit counts of one alignment and the rate they give."""

    substitutions: int
    deletions: int
    insertions: int
    reference_words: int

    @property
    def wer(self) -> float:
        edits = self.substitutions + self.deletions + self.insertions
        return edits / self.reference_words if self.reference_words else float(edits > 0)


def word_errors(reference: str, hypothesis: str) -> WordErrors:
    """Align ``hypothesis`` to ``reference`` word by word with the fewest edits and count them.

    Dynamic programming over a (N+1) x (M+1) table of (edits, S, D, I); ties prefer a
    substitution, then a deletion, so the counts are the same on every run.
    """
    ref, hyp = normalise(reference), normalise(hypothesis)
    # row[j] = (edits, S, D, I) to turn ref[:i] into hyp[:j]
    row = [(j, 0, 0, j) for j in range(len(hyp) + 1)]
    for i in range(1, len(ref) + 1):
        new = [(i, 0, i, 0)]
        for j in range(1, len(hyp) + 1):
            e, s, d, n = row[j - 1]
            same = ref[i - 1] == hyp[j - 1]
            options = [(e + (not same), s + (not same), d, n)]       # match or substitute
            e, s, d, n = row[j]
            options.append((e + 1, s, d + 1, n))                      # delete ref[i-1]
            e, s, d, n = new[j - 1]
            options.append((e + 1, s, d, n + 1))                      # insert hyp[j-1]
            new.append(min(options, key=lambda t: t[0]))
        row = new
    _, s, d, n = row[-1]
    return WordErrors(s, d, n, len(ref))


def word_error_rate(reference: str, hypothesis: str) -> float:
    """(S + D + I) / N after normalising both texts."""
    return word_errors(reference, hypothesis).wer


__all__ = ["WordErrors", "normalise", "word_error_rate", "word_errors"]
