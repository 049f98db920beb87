"""Open-vocabulary emotion-set metrics (MER2024's OV track), with the project's own lexicon.

MER2024 (Lian et al., 2024) scores a predicted set of free emotion words against a gold set
after mapping every word to a group, so that "glad" and "happy" count as one. Per sample i,
with G_i the gold heads and P_i the predicted heads (words outside the lexicon are dropped
from both and counted):

    precision_i = |G_i & P_i| / |P_i|        recall_i = |G_i & P_i| / |G_i|      (both 0 if P_i or G_i is empty)
    P = mean_i precision_i,  R = mean_i recall_i,  F = 2 P R / (P + R)         (the emotion-wheel variant)

Beside every score we report **coverage**: the share of predicted words the lexicon could map
(out-of-vocabulary rate = 1 - coverage). A model that answers with words we cannot map would
otherwise look merely imprecise. For single-label gold sets, **hit rate** is the share of
samples whose gold head is among the predicted heads.

The grouping is :mod:`microemo_ref.lexicon` (ours; the public wheel files are research-only).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from microemo_ref.lexicon import head_of


@dataclass
class SetScores:
    precision: float
    recall: float
    f: float
    coverage: float  # predicted words that mapped to a head / all predicted words (1.0 when none)
    samples: int

    def to_json(self) -> dict:
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(self).items()}


def heads(words: Sequence[str]) -> tuple[set[str], int]:
    """The set of heads of ``words`` and how many words mapped."""
    mapped = [h for h in (head_of(w) for w in words) if h is not None]
    return set(mapped), len(mapped)


def sample_scores(gold: Sequence[str], predicted: Sequence[str]) -> tuple[float, float]:
    """(precision, recall) of one sample, after mapping to heads."""
    g, _ = heads(gold)
    p, _ = heads(predicted)
    if not p or not g:
        return 0.0, 0.0
    both = len(g & p)
    return both / len(p), both / len(g)


def ov_scores(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> SetScores:
    """Averaged precision and recall, F from the averages, and coverage (module docstring)."""
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold sets but {len(predicted)} predicted sets")
    if not gold:
        raise ValueError("no samples to score")
    pairs = [sample_scores(g, p) for g, p in zip(gold, predicted)]
    precision = sum(p for p, _ in pairs) / len(pairs)
    recall = sum(r for _, r in pairs) / len(pairs)
    f = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    words = sum(len(p) for p in predicted)
    mapped = sum(heads(p)[1] for p in predicted)
    return SetScores(precision, recall, f, mapped / words if words else 1.0, len(gold))


def hit_rate(gold: Sequence[str], predicted: Sequence[Sequence[str]]) -> float:
    """Share of samples whose single gold label's head is among the predicted heads."""
    if len(gold) != len(predicted) or not gold:
        raise ValueError("need one predicted set per gold label, and at least one sample")
    return sum(head_of(g) in heads(p)[0] for g, p in zip(gold, predicted)) / len(gold)


__all__ = ["SetScores", "heads", "hit_rate", "ov_scores", "sample_scores"]
