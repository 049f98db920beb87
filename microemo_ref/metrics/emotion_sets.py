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

The grouping is :mod:`microemo_ref.lexicon` (ours; the public wheel files are research-only) unless
a user-supplied emotion wheel is passed as ``grouping=`` (a :class:`~microemo_ref.metrics.grouping.Grouping`,
read by :func:`~microemo_ref.metrics.grouping.load_grouping` from MERTools' wheel layout). MERTools'
EW-based metric (MER2025/MER2026) differs in two ways, both available to :func:`ov_scores`:

* ``groupings=[w1, ..., w5]`` scores once per wheel and reports the mean over wheels of each of
  precision, recall, F and coverage, each wheel's F being 2PR/(P+R) of that wheel's averages;
* ``skip_unmapped_gold=True`` leaves out (rather than scores 0) a sample whose gold words have no
  head; ``samples`` then counts the samples scored, and P = R = 0 when none is left.

With the defaults (no grouping, ``skip_unmapped_gold=False``) the scores are exactly those above.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

from microemo_ref.lexicon import head_of
from microemo_ref.metrics.grouping import Grouping


@dataclass
class SetScores:
    precision: float
    recall: float
    f: float
    coverage: float  # predicted words that mapped to a head / all predicted words (1.0 when none)
    samples: int

    def to_json(self) -> dict:
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(self).items()}


def _lookup(grouping: Grouping | None) -> Callable[[str], str | None]:
    return head_of if grouping is None else grouping.head_of


def heads(words: Sequence[str], grouping: Grouping | None = None) -> tuple[set[str], int]:
    """The set of heads of ``words`` (lexicon, or ``grouping``) and how many words mapped."""
    lookup = _lookup(grouping)
    mapped = [h for h in (lookup(w) for w in words) if h is not None]
    return set(mapped), len(mapped)


def sample_scores(gold: Sequence[str], predicted: Sequence[str],
                  grouping: Grouping | None = None) -> tuple[float, float]:
    """(precision, recall) of one sample, after mapping to heads."""
    g, _ = heads(gold, grouping)
    p, _ = heads(predicted, grouping)
    if not p or not g:
        return 0.0, 0.0
    both = len(g & p)
    return both / len(p), both / len(g)


def _one_wheel(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]],
               grouping: Grouping | None, skip_unmapped_gold: bool) -> SetScores:
    kept = [(g, p) for g, p in zip(gold, predicted) if not skip_unmapped_gold or heads(g, grouping)[0]]
    pairs = [sample_scores(g, p, grouping) for g, p in kept]
    precision = sum(p for p, _ in pairs) / len(pairs) if pairs else 0.0
    recall = sum(r for _, r in pairs) / len(pairs) if pairs else 0.0
    f = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    words = sum(len(p) for p in predicted)
    mapped = sum(heads(p, grouping)[1] for p in predicted)
    return SetScores(precision, recall, f, mapped / words if words else 1.0, len(kept))


def ov_scores(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]],
              grouping: Grouping | None = None, *, groupings: Sequence[Grouping] | None = None,
              skip_unmapped_gold: bool = False) -> SetScores:
    """Averaged precision and recall, F from the averages, and coverage (module docstring).

    ``groupings`` (not with ``grouping``): the mean over those wheels of each score, MERTools'
    way (``samples`` is then the most samples any wheel scored; call with ``grouping=w`` for one
    wheel's scores). Coverage is over all predicted words, also those of skipped samples.
    """
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold sets but {len(predicted)} predicted sets")
    if not gold:
        raise ValueError("no samples to score")
    if groupings is None:
        return _one_wheel(gold, predicted, grouping, skip_unmapped_gold)
    if grouping is not None:
        raise ValueError("give grouping or groupings, not both")
    if not groupings:
        raise ValueError("groupings is empty")
    per = [_one_wheel(gold, predicted, w, skip_unmapped_gold) for w in groupings]
    n = len(per)
    return SetScores(sum(s.precision for s in per) / n, sum(s.recall for s in per) / n,
                     sum(s.f for s in per) / n, sum(s.coverage for s in per) / n,
                     max(s.samples for s in per))


def hit_rate(gold: Sequence[str], predicted: Sequence[Sequence[str]], grouping: Grouping | None = None) -> float:
    """Share of samples whose single gold label's head is among the predicted heads."""
    if len(gold) != len(predicted) or not gold:
        raise ValueError("need one predicted set per gold label, and at least one sample")
    lookup = _lookup(grouping)
    return sum(lookup(g) in heads(p, grouping)[0] for g, p in zip(gold, predicted)) / len(gold)


__all__ = ["SetScores", "heads", "hit_rate", "ov_scores", "sample_scores"]
