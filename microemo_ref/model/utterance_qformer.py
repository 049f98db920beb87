"""The utterance-aware Q-Former: one token sequence for the whole clip and one per utterance.

MicroEmo (Zhang et al., 2024, arXiv 2407.16552) names an "utterance-aware video Q-Former":
it makes one visual token sequence per utterance segment and one for the whole video, and
combines them, so the LLM can tie a cue to the utterance in which it happened. The paper
gives no equations; the form below is **our choice**, built from TimeChat's video Q-Former
(Ren et al., CVPR 2024): a 2-layer Q-Former with cross-attention in every layer and learned
queries, reading the time-aware frame tokens.

A *span* is a time interval. For every span the **same** Q-Former (shared weights) reads
only the keys whose time lies inside it, through the cross-attention mask:

    keys        k_n (N, C) with times tau_n       (video: T frames x Q tokens, flattened)
    mask_j[n]   = start_j <= tau_n <= end_j         (and key n valid)
    tokens_j    = QFormer(queries, keys, mask_j)    (Q_v, D) for span j
    output      = [tokens_whole ; tokens_utt1 ; tokens_utt2 ; ...]   (K * Q_v, D)

- **Frames between utterances** (pauses, listening) are read by the whole-video sequence
  only: no utterance sequence covers them. A facial cue in a pause still reaches the LLM,
  tied to the clip rather than to an utterance.
- **An utterance shorter than a frame step** would select no key; it then gets the keys of
  the frame nearest its middle, so every span yields tokens.
- **TimeChat's sliding windows** (:func:`window_spans`: windows of ``window`` frames, moved
  by ``stride``; 96 frames in windows of 32 give 96 tokens) are the comparison: the same
  module, fixed spans instead of utterances.

The same class serves the audio Q-Former (Video-LLaMA's audio branch: 2 layers, 8 queries)
with its own weights: keys are then audio steps instead of frame tokens.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from einops import rearrange, reduce
from torch import Tensor, nn

from microemo_ref.model.qformer import QFormer, QFormerConfig


@dataclass(frozen=True)
class Span:
    """A time interval that gets its own token sequence."""

    start: float  # seconds
    end: float
    kind: str  # "video" (the whole clip), "utterance" or "window"
    index: int = 0  # utterance or window number (0-based); 0 for the whole clip


def utterance_spans(duration: float, utterances: list[tuple[float, float]]) -> list[Span]:
    """[whole clip, utterance 1, ...]: the spans of MicroEmo's utterance-aware sequence."""
    return [Span(0.0, duration, "video")] + [
        Span(float(s), float(e), "utterance", i) for i, (s, e) in enumerate(utterances)]


def window_spans(frame_times: list[float] | Tensor, window: int = 32, stride: int = 32) -> list[Span]:
    """TimeChat's fixed sliding windows over the sampled frames (times in seconds).

    Window ``i`` holds frames ``i*stride .. i*stride + window - 1``, cut at the last frame; a
    window starts only while the previous one has not reached the end. Its span runs from its
    first to its last frame time.
    """
    times = [float(t) for t in frame_times]
    spans: list[Span] = []
    for a in range(0, len(times), stride):
        if a and a - stride + window >= len(times):  # the previous window reached the end
            break
        spans.append(Span(times[a], times[min(a + window, len(times)) - 1], "window", len(spans)))
    return spans


def span_masks(key_times: Tensor, spans: list[Span], key_mask: Tensor | None = None) -> Tensor:
    """key_times (N,) seconds -> (K, N) bool: key n lies in span k (nearest key if none does)."""
    tau = rearrange(key_times, "n -> 1 n")
    start = torch.tensor([s.start for s in spans], dtype=key_times.dtype, device=key_times.device).reshape(-1, 1)
    end = torch.tensor([s.end for s in spans], dtype=key_times.dtype, device=key_times.device).reshape(-1, 1)
    inside = (tau >= start - 1e-6) & (tau <= end + 1e-6)  # (K, N)
    valid = torch.ones_like(key_times, dtype=torch.bool) if key_mask is None else key_mask.bool()
    inside &= valid
    for k in torch.nonzero(~inside.any(dim=1)).flatten().tolist():  # span between two keys
        middle = 0.5 * (spans[k].start + spans[k].end)
        gap = (key_times - middle).abs().masked_fill(~valid, float("inf"))
        inside[k] = valid & (gap == gap.min())  # all keys of the nearest time (a frame's Q tokens)
    return inside


@dataclass(frozen=True)
class UtteranceQFormerConfig:
    hidden: int = 64  # D: output width
    key_width: int = 64  # C: width of the keys (fused frame tokens, or audio steps)
    n_queries: int = 8  # Q_v per span (TimeChat's video Q-Former: 32; Video-LLaMA audio: 8)
    layers: int = 2  # TimeChat and Video-LLaMA: 2
    heads: int = 4
    ffn: int = 128

    def qformer(self) -> QFormerConfig:
        return QFormerConfig(hidden=self.hidden, layers=self.layers, heads=self.heads,
                             ffn=self.ffn, n_queries=self.n_queries, encoder_width=self.key_width,
                             cross_every=1, text_input=False)


@dataclass
class SpanTokens:
    tokens: Tensor  # (K * Q_v, D): [span 0 tokens; span 1 tokens; ...]
    spans: list[Span]  # K spans, in the order of `tokens`
    span_of_token: Tensor  # (K * Q_v,) long: which span each token belongs to
    key_attention: Tensor | None  # (K, N): last layer's cross-attention per key, mean over heads and queries


class UtteranceQFormer(nn.Module):
    """One shared Q-Former run once per span, each run seeing only the keys inside its span."""

    def __init__(self, cfg: UtteranceQFormerConfig = UtteranceQFormerConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        self.qformer = QFormer(cfg.qformer())

    def forward(self, keys: Tensor, key_times: Tensor, spans: list[Span],
                key_mask: Tensor | None = None, *, return_attention: bool = False) -> SpanTokens:
        """keys (N, C), key_times (N,) seconds, key_mask (N,) True = valid; one clip at a time.

        Clips in a batch have different utterances, hence different numbers of spans; running
        clip by clip keeps the code plain (all spans of a clip still run as one batch).
        """
        if keys.ndim != 2 or key_times.shape != keys.shape[:1]:
            raise ValueError(f"keys must be (N, C) with key_times (N,), got {tuple(keys.shape)} "
                             f"and {tuple(key_times.shape)}")
        if not spans:
            raise ValueError("no spans: pass at least the whole-clip span")
        masks = span_masks(key_times, spans, key_mask)  # (K, N)
        batch = keys.expand(len(spans), -1, -1)  # (K, N, C): the same keys for every span
        out = self.qformer(batch, image_mask=masks, return_attentions=return_attention)
        tokens = rearrange(out.queries, "k q d -> (k q) d")  # (K*Q_v, D)
        span_of_token = torch.arange(len(spans), device=keys.device).repeat_interleave(self.cfg.n_queries)
        attention = None
        if return_attention:  # (K, H, Q_v, N) -> (K, N): how much each key was read
            attention = reduce(out.cross_attentions[-1], "k h q n -> k n", "mean") * masks
        return SpanTokens(tokens, list(spans), span_of_token, attention)


def frame_keys(frame_tokens: Tensor, frame_times: Tensor) -> tuple[Tensor, Tensor]:
    """Fused frame tokens (T, Q, D) and times (T,) -> keys (T*Q, D) and key times (T*Q,)."""
    n_tokens = frame_tokens.shape[1]
    keys = rearrange(frame_tokens, "t q d -> (t q) d")
    return keys, frame_times.repeat_interleave(n_tokens)


def per_frame(attention: Tensor, n_tokens: int) -> Tensor:
    """Key attention (K, T*Q) of :func:`frame_keys` keys -> (K, T): summed over each frame's tokens."""
    return reduce(attention, "k (t q) -> k t", "sum", q=n_tokens)


__all__ = ["Span", "SpanTokens", "UtteranceQFormer", "UtteranceQFormerConfig", "frame_keys",
           "per_frame", "span_masks", "utterance_spans", "window_spans"]
