"""The flash time: when, inside an utterance, the flash peaks, read from the fused frame tokens.

**Our addition, not MicroEmo's** (``MicroEmoConfig.flash_time``, beside the flash pointer of
:mod:`~microemo_ref.model.flash_word`). MicroEmo's video Q-Former reads the fused frame tokens
of each utterance and hands the LLM a few tokens per span: the span's time is written beside
them as text, but where inside the span a micro-expression peaks is left for the LLM to find in
the tokens. The answer of a small LLM rarely gets it right (clue recall needs the apex within
0.3 s). The flash time reads it where the visual encoder still has one token set per sampled
frame, before the Q-Former pools them.

A straight line scores every sampled frame ``t`` from its fused tokens and those of its two
neighbours (the global-local attention output of
:class:`~microemo_ref.model.visual_encoder.VisualEncoder`, flattened):

.. math::

    z_t = [\\mathrm{flat}(v_{t-1}); \\mathrm{flat}(v_t); \\mathrm{flat}(v_{t+1})], \\qquad
    s_t = w^\\top (z_t - \\mu) / \\sigma + b

fitted by ridge regression on the training clips to a bump ``exp(-(t - a)^2 / 2 (0.1 s)^2)``
at each micro-expression's apex ``a`` (zero on frames far from any). The apex of utterance
``k`` is the best-scoring frame inside the utterance, moved to the vertex of the parabola
through it and its neighbours and kept inside the utterance (frames are 1 / ``sample_fps``
apart, 0.25 s by default).

The flash pointer then writes the time as two soft digits (seconds and tenths), weighted like
its utterance digit by each utterance's flash mass ``q_k``:

.. math::

    a = \\sum_k q_k\\, D[\\lfloor \\tau_k \\rfloor], \\qquad b = \\sum_k q_k\\, D[\\mathrm{tenths}(\\tau_k)]

where ``D[d]`` is the LLM's input embedding of the digit ``d`` and ``\\tau_k`` the apex,
rounded to 0.1 s and capped at 9.9 s (the digits 0-9 are one SmolLM2 token each; a later flash
is stated as 9.9 s). The ridge strength is chosen on a fifth of the training clips held out
from a first fit (the count of flashes placed within 0.3 s), then refitted on every clip.

What it is and is not: it reads the visual encoder's tokens and nothing else (no spotter, no
measured cue); knocking out the video tokens or the flash word removes it with the pointer.
It is fitted in closed form once the encoder is frozen, as the flash word is.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from microemo_ref.model.flash_word import RIDGES

CONTEXT = 1  # neighbouring frames on each side in a frame's row
BUMP_S = 0.1  # width of the fitted bump around an apex, seconds
NEAR_S = 0.3  # "placed right": within this of the apex (clue recall's tolerance)
LATEST_S = 9.9  # the latest time two digits can state


@dataclass(frozen=True)
class FlashTimeReader:
    """The fitted frame scorer: standardisation, ridge weights (bias last), neighbours per side."""

    mean: np.ndarray  # (F,) with F = (2 * context + 1) * Q * D
    std: np.ndarray  # (F,)
    weight: np.ndarray  # (F + 1,)
    context: int = CONTEXT

    def scores(self, frames: Tensor) -> Tensor:
        """(T, Q, D) fused frame tokens -> (T,) flash scores."""
        return self.score_rows(frame_rows(frames.reshape(len(frames), -1), self.context))

    def score_rows(self, z: Tensor) -> Tensor:
        """(T, F) frame rows (:func:`frame_rows`) -> (T,) flash scores."""
        mean, std, weight = (torch.as_tensor(a, dtype=z.dtype, device=z.device) for a in (self.mean, self.std, self.weight))
        return ((z - mean) / std) @ weight[:-1] + weight[-1]

    def to_json(self) -> dict:
        return {"mean": self.mean.tolist(), "std": self.std.tolist(), "weight": self.weight.tolist(),
                "context": self.context}

    @classmethod
    def from_json(cls, d: dict) -> FlashTimeReader:
        return cls(*(np.asarray(d[k], dtype=np.float64) for k in ("mean", "std", "weight")), int(d["context"]))


def frame_rows(flat: Tensor, context: int) -> Tensor:
    """(T, F) per-frame features -> (T, (2c+1) F): each frame beside its neighbours (edges repeated)."""
    n = len(flat)
    index = torch.arange(n, device=flat.device)
    return torch.cat([flat[(index + d).clamp(0, n - 1)] for d in range(-context, context + 1)], dim=1)


def span_apex(scores: Tensor, times: Tensor, start: float, end: float) -> float:
    """The apex inside [start, end]: the best frame, moved by the parabola through its neighbours
    (a choice of frame: no gradient flows through it)."""
    scores, times = scores.detach(), times.detach()
    inside = torch.nonzero((times >= start - 1e-6) & (times <= end + 1e-6)).flatten()
    if len(inside) == 0:  # a span shorter than the frame step: its nearest frame, kept inside the span
        apex = float(times[int(torch.argmin((times - (start + end) / 2).abs()))])
        return min(max(apex, start), end)
    k = int(inside[int(torch.argmax(scores[inside]))])
    apex = float(times[k])
    if 0 < k < len(times) - 1:
        left, mid, right = (float(scores[i]) for i in (k - 1, k, k + 1))
        curve = left - 2 * mid + right
        if curve < 0:  # the vertex of a parabola opening downwards (a neighbour outside the span may be
            # higher, and the vertex then beyond the span's edge: the clamp below keeps it inside)
            apex += 0.5 * (left - right) / curve * float(times[k + 1] - times[k - 1]) / 2
    return min(max(apex, start), end)


def time_digits(q: Tensor, apexes: Sequence[float], digits: Tensor) -> Tensor:
    """(U,) flash masses and each utterance's apex (s) -> (2, W) the soft seconds and tenths digits.
    ``digits`` (10, W) holds the embeddings of 0-9."""
    if not apexes:  # no utterance the pointer can name: blank digits
        return torch.zeros(2, digits.shape[1], dtype=digits.dtype, device=digits.device)
    tenths = [int(round(min(max(a, 0.0), LATEST_S) * 10)) for a in apexes]  # as "{:.1f}" writes it
    seconds = torch.tensor([t // 10 for t in tenths], dtype=torch.long, device=q.device)
    rest = torch.tensor([t % 10 for t in tenths], dtype=torch.long, device=q.device)
    return torch.stack([q @ digits[seconds], q @ digits[rest]])  # (U,) @ (U, W)


def _bump(times: np.ndarray, apexes: Sequence[float]) -> np.ndarray:
    y = np.zeros(len(times))
    for a in apexes:
        y = np.maximum(y, np.exp(-((times - a) ** 2) / (2 * BUMP_S**2)))
    return y


def _solve(z: np.ndarray, y: np.ndarray, lam: float) -> FlashTimeReader:
    mean, std = z.mean(0), z.std(0) + 1e-6
    zs = (z - mean) / std
    w = np.linalg.solve(zs.T @ zs + lam * np.eye(zs.shape[1]), zs.T @ (y - y.mean()))
    return FlashTimeReader(mean, std, np.append(w, y.mean()))


def fit_flash_time_reader(clips: Sequence[tuple[Tensor, Tensor, list[tuple[float, float, float]]]],
                          seed: int = 0) -> tuple[FlashTimeReader, dict]:
    """Fit the reader on clips given as (fused frame tokens (T, Q, D), frame times (T,), flashes),
    each flash (apex, utterance start, utterance end) in seconds; see the module docstring.
    Returns the reader and what the choice saw."""
    rows = [(frame_rows(f.reshape(len(f), -1).double(), CONTEXT).numpy(), t.double().numpy(), fl) for f, t, fl in clips]
    if not any(fl for _, _, fl in rows):
        raise ValueError("no training clip holds a micro-expression inside an utterance span: the flash time has "
                         "nothing to fit (it needs span_mode 'utterance')")
    held = set(np.random.default_rng(seed).permutation(len(rows))[: len(rows) // 5].tolist())
    fit = [r for i, r in enumerate(rows) if i not in held] if held else rows
    val = [r for i, r in enumerate(rows) if i in held] if held else rows  # under 5 clips: in-sample (a test)

    def placed(reader: FlashTimeReader, clips_: list) -> tuple[int, int]:
        hits = total = 0
        for z, t, flashes in clips_:
            s = reader.score_rows(torch.as_tensor(z))
            for apex, start, end in flashes:
                total += 1
                hits += abs(span_apex(s, torch.as_tensor(t), start, end) - apex) <= NEAR_S
        return hits, total

    def stacked(clips_: list) -> tuple[np.ndarray, np.ndarray]:
        return (np.concatenate([z for z, _, _ in clips_]),
                np.concatenate([_bump(t, [a for a, _, _ in fl]) for _, t, fl in clips_]))

    z, y = stacked(fit)
    scored = [(placed(_solve(z, y, lam), val), lam) for lam in RIDGES]
    (hits, total), lam = max(scored, key=lambda s: s[0][0])
    reader = _solve(*stacked(rows), lam)
    return reader, {"ridge": lam, "heldout_placed_within_0.3": hits, "heldout_flashes": total,
                    "in_sample": not held, "frames": int(sum(len(t) for _, t, _ in rows))}


__all__ = ["BUMP_S", "CONTEXT", "FlashTimeReader", "LATEST_S", "fit_flash_time_reader", "frame_rows", "span_apex",
           "time_digits"]
