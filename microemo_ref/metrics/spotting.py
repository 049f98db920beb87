"""Expression spotting scores: interval IoU, one-to-one matching, pooled P/R/F1 (MEGC protocol).

A spotter outputs intervals ``(onset, offset)`` of frames where it believes an expression
happened; the ground truth is the annotated intervals of the same clip.  The scoring follows
the Micro-Expression Grand Challenge spotting protocol (Li et al., "MEGC2019: the second
facial micro-expressions grand challenge", and "MEGC2020 - the third facial
micro-expressions grand challenge" (spotting tasks on CAS(ME)^2 and SAMM long videos), used
unchanged through MEGC 2022):

* frames are counted **inclusively**: ``(onset, offset)`` covers ``offset - onset + 1``
  frames, and ``IoU(a, b) = |a ∩ b| / |a ∪ b|`` in frames;
* a predicted interval is a true positive (TP) when its IoU with a ground-truth interval is at
  least 0.5, and each interval is matched **at most once** (one-to-one); every other
  prediction is a false positive, every unmatched ground-truth interval a false negative;
* ``P = TP / #pred``, ``R = TP / #gt``, ``F1 = 2PR / (P + R) = 2 TP / (#pred + #gt)``;
* micro- and macro-expressions are scored **separately** (a prediction labelled micro is only
  compared with ground-truth micro intervals), and the counts are **summed over all clips**
  before P/R/F1 are computed (pooled, not an average of per-clip scores).  The overall score
  pools the micro and macro counts: ``TP = TP_micro + TP_macro`` and likewise for #pred, #gt.

Check against a published vector: TP 130, #pred 6558, #gt 357 gives P 0.0198, R 0.3641,
F1 0.0376.  Any ratio with a zero denominator is reported as 0.

The protocol says "one-to-one" without fixing the assignment; `match_intervals` is greedy by
descending IoU (see its docstring).  When ground-truth intervals do not overlap and the
threshold is above 0.5, a prediction can reach it with at most one ground-truth interval
(each would need more than half of the prediction's frames), so greedy is then a maximum
matching.  At exactly 0.5, contrived ties (a prediction at IoU 0.5 with two neighbours) can
make greedy find one TP fewer than the best assignment.
"""
from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

#: ``(onset, offset)`` in frames, both ends included.
Interval = tuple[int, int]

#: The two event types, scored separately.
TYPES: tuple[str, ...] = ("micro", "macro")

#: Default thresholds of `iou_sweep`: 0.1, 0.2, ..., 0.9 (exact decimals, not 0.1 * k).
SWEEP_THRESHOLDS: tuple[float, ...] = tuple(k / 10 for k in range(1, 10))

#: Slack when comparing an IoU with a threshold, so that 3/10 counts as ">= 0.3" however the
#: threshold was computed.
_EPS = 1e-9


def _check(iv: Interval) -> Interval:
    onset, offset = int(iv[0]), int(iv[1])
    if offset < onset:
        raise ValueError(f"interval {tuple(iv)} ends before it starts")
    return onset, offset


def interval_iou(a: Interval, b: Interval) -> float:
    """Intersection over union of two inclusive frame intervals (0.0 when disjoint).

    >>> interval_iou((0, 4), (2, 6))   # overlap 2..4 = 3 frames, union 0..6 = 7 frames
    0.42857142857142855
    """
    (a0, a1), (b0, b1) = _check(a), _check(b)
    inter = min(a1, b1) - max(a0, b0) + 1
    if inter <= 0:
        return 0.0
    union = (a1 - a0 + 1) + (b1 - b0 + 1) - inter
    return inter / union


def _overlapping_pairs(pred: Sequence[Interval],
                       gt: Sequence[Interval]) -> Iterable[tuple[int, int]]:
    """Yield the (pred index, gt index) pairs that share at least one frame.

    Only these can have IoU > 0.  Ground truth is sorted by onset; a gt interval overlapping
    ``p`` must start in ``[p.onset - L + 1, p.offset]`` where ``L`` is the longest gt interval,
    so two binary searches bound the candidates instead of trying every pair.
    """
    if not pred or not gt:
        return
    order = sorted(range(len(gt)), key=lambda j: gt[j][0])
    onsets = [gt[j][0] for j in order]
    longest = max(g1 - g0 + 1 for g0, g1 in gt)
    for i, (p0, p1) in enumerate(pred):
        lo = bisect_left(onsets, p0 - longest + 1)
        hi = bisect_right(onsets, p1)
        for j in order[lo:hi]:
            if gt[j][1] >= p0:
                yield i, j


def match_intervals(pred: Sequence[Interval], gt: Sequence[Interval],
                    iou: float = 0.5) -> list[tuple[int, int]]:
    """One-to-one matches ``(pred index, gt index)`` whose IoU is at least `iou`.

    Greedy: all qualifying pairs are sorted by descending IoU and taken in that order when
    neither side is already matched.  Ties (equal IoU) go to the lower prediction index, then
    the lower ground-truth index, so the result is deterministic and independent of dict or
    set order.  The matches are returned sorted by prediction index.
    """
    if not 0.0 < iou <= 1.0:
        raise ValueError(f"IoU threshold must be in (0, 1], got {iou}")
    pred = [_check(p) for p in pred]
    gt = [_check(g) for g in gt]
    candidates = []
    for i, j in _overlapping_pairs(pred, gt):
        value = interval_iou(pred[i], gt[j])
        if value >= iou - _EPS:
            candidates.append((-value, i, j))
    candidates.sort()
    used_pred: set[int] = set()
    used_gt: set[int] = set()
    matches = []
    for _, i, j in candidates:
        if i not in used_pred and j not in used_gt:
            used_pred.add(i)
            used_gt.add(j)
            matches.append((i, j))
    return sorted(matches)


@dataclass(frozen=True)
class SpotCounts:
    """The three counts that every spotting score is made from.  Add them to pool clips."""

    tp: int
    n_pred: int
    n_gt: int

    def __post_init__(self) -> None:
        if min(self.tp, self.n_pred, self.n_gt) < 0:
            raise ValueError(f"counts must be non-negative: {self}")
        if self.tp > min(self.n_pred, self.n_gt):
            raise ValueError(f"more true positives than predictions or ground truth: {self}")

    @property
    def precision(self) -> float:
        """TP / #pred, 0 when nothing was predicted."""
        return self.tp / self.n_pred if self.n_pred else 0.0

    @property
    def recall(self) -> float:
        """TP / #gt, 0 when there is no ground truth."""
        return self.tp / self.n_gt if self.n_gt else 0.0

    @property
    def f1(self) -> float:
        """2PR / (P + R), written as 2 TP / (#pred + #gt); 0 when TP is 0."""
        total = self.n_pred + self.n_gt
        return 2 * self.tp / total if total else 0.0

    def __add__(self, other: SpotCounts) -> SpotCounts:
        if not isinstance(other, SpotCounts):
            return NotImplemented
        return SpotCounts(self.tp + other.tp, self.n_pred + other.n_pred, self.n_gt + other.n_gt)

    def to_dict(self) -> dict:
        """``{"precision", "recall", "f1", "tp", "n_pred", "n_gt"}``, ratios to 4 decimals."""
        return {"precision": round(self.precision, 4), "recall": round(self.recall, 4),
                "f1": round(self.f1, 4), "tp": self.tp, "n_pred": self.n_pred, "n_gt": self.n_gt}


def count_clip(pred: Sequence[Interval], gt: Sequence[Interval], iou: float = 0.5) -> SpotCounts:
    """TP, #pred and #gt for one clip and one event type."""
    return SpotCounts(len(match_intervals(pred, gt, iou)), len(pred), len(gt))


def event_type(event: dict) -> str:
    """``"micro"`` or ``"macro"`` from an event's ``"type"`` key (or its alias ``"kind"``)."""
    value = event.get("type", event.get("kind"))
    if value is None:
        raise ValueError(f"event {event} has neither 'type' nor 'kind'")
    value = str(value).strip().lower()
    if value not in TYPES:
        raise ValueError(f"event type must be 'micro' or 'macro', got {value!r}")
    return value


def _intervals(events: Iterable[dict], kind: str) -> list[Interval]:
    return [_check((ev["onset"], ev["offset"])) for ev in events if event_type(ev) == kind]


def score_spotting(clips: Iterable[tuple[list[dict], list[dict]]], iou: float = 0.5) -> dict:
    """Pooled MEGC spotting scores over clips given as ``(predicted events, gt events)``.

    An event is a dict with ``"onset"``, ``"offset"`` (inclusive frames) and ``"type"``
    (``"micro"`` | ``"macro"``; ``"kind"`` is accepted instead); other keys are ignored.
    Returns ``{"micro": {...}, "macro": {...}, "overall": {...}, "clips": N}`` where each inner
    dict is `SpotCounts.to_dict` of the counts summed over clips.
    """
    totals = {kind: SpotCounts(0, 0, 0) for kind in TYPES}
    n_clips = 0
    for pred_events, gt_events in clips:
        n_clips += 1
        for kind in TYPES:
            pred, gt = _intervals(pred_events, kind), _intervals(gt_events, kind)
            totals[kind] += count_clip(pred, gt, iou)
    overall = totals["micro"] + totals["macro"]
    return {"micro": totals["micro"].to_dict(), "macro": totals["macro"].to_dict(),
            "overall": overall.to_dict(), "clips": n_clips}


def iou_sweep(clips: Iterable[tuple[list[dict], list[dict]]],
              thresholds: Sequence[float] = SWEEP_THRESHOLDS) -> dict[float, dict]:
    """`score_spotting` at each IoU threshold (default 0.1 ... 0.9): ``{threshold: scores}``.

    Shows how much of a score depends on loose boundaries: a spotter whose F1 collapses
    between 0.3 and 0.5 finds the events but places their onsets and offsets badly.
    """
    clips = list(clips)  # iterated once per threshold
    return {float(t): score_spotting(clips, t) for t in thresholds}
