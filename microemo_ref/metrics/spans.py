"""How well a set of time spans respects the label changes of a clip: span purity.

Used to compare MicroEmo's utterance spans with TimeChat's fixed sliding windows (notebook
05). A span whose frames carry two different ground-truth emotions mixes them into one token
sequence; the LLM can then no longer say which emotion belongs to which moment.

For span j with labelled frames L_j (frames with no label are ignored):

    purity_j = max_c |{t in L_j : label_t = c}| / |L_j|        (1.0 = one emotion only)
    mixed    = number of spans with purity < 1

The definition is ours (the clustering literature's "purity", applied per span).
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Sequence


def span_purity(spans: Sequence[tuple[float, float]], frame_times: Sequence[float],
                frame_labels: Sequence[str | None]) -> list[float | None]:
    """Purity of each (start, end) span over the labelled frames inside it (None: no such frame)."""
    if len(frame_times) != len(frame_labels):
        raise ValueError(f"{len(frame_times)} frame times but {len(frame_labels)} labels")
    out: list[float | None] = []
    for start, end in spans:
        labels = [lab for t, lab in zip(frame_times, frame_labels)
                  if start - 1e-6 <= t <= end + 1e-6 and lab is not None]
        out.append(max(Counter(labels).values()) / len(labels) if labels else None)
    return out


def labels_at(events: Sequence[dict], times: Sequence[float], kind: str = "macro") -> list[str | None]:
    """The emotion of the ``kind`` event (ground-truth dicts with onset_s, offset_s, emotion) at each time, or None."""
    chosen = [e for e in events if e["kind"] == kind]
    return [next((e["emotion"] for e in chosen if e["onset_s"] <= t <= e["offset_s"]), None) for t in times]


def mixed_spans(purities: Sequence[float | None]) -> int:
    """Spans that hold frames of more than one label."""
    return sum(1 for p in purities if p is not None and p < 1.0)


__all__ = ["labels_at", "mixed_spans", "span_purity"]
