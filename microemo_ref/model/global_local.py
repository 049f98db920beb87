"""Global-local attention: each frame's global tokens read the local face tokens near its time.

MicroEmo (Zhang et al., 2024, arXiv 2407.16552) names a "global-local attention visual
encoder": global, frame-level image features bound to each frame's timestamp are fused by
attention with local facial features that carry the temporal dynamics of micro-expressions.
The paper gives no equations and no code, so the exact form below is **our choice**.

For frame t (time tau_t, seconds) with global tokens g[t] (Q, D), and local tokens l[s]
(time sigma_s) from :class:`~microemo_ref.model.local_encoder.LocalEncoder`:

    W[t, s]  = |sigma_s - tau_t| <= window_s  (and local step s valid)       window mask
    A[t]     = softmax_s over W[t] of (g[t] Wq)(l[s] Wk)^T / sqrt(d), per head
    fused[t] = LayerNorm(g[t] + any_s(W[t, s]) * Dropout(concat_heads(A[t] l Wv) Wo))

A short window (0.5 s by default: a micro-expression lasts under 0.5 s) keeps the fusion
*local in time*: a frame reads the face motion around its own moment, so a brief event
changes the frames it happened in, not the whole clip.

**Empty windows.** A frame with no local token inside its window (the face was lost, or the
local branch is shorter than the video) passes through as ``LayerNorm(g[t])`` exactly: the
attention update is multiplied by ``any_s W[t, s] = 0``, so not even the output projection's
bias gets in, and its weights row is all zeros. Masked scores are filled with the dtype's
most negative *finite* value (never -inf: a fully masked row would give NaN) and the
probabilities are multiplied by the mask, which zeroes those rows explicitly.

**The ablation, ``mode="concat"``.** Plain concatenation in place of the attention: each
frame's global tokens are concatenated with the *mean* of the local tokens in the same window
and projected back, ``fused[t] = LayerNorm(g[t] + any_s(W[t, s]) * [g[t] ; mean_{W[t]} l] Wc)``.
The same window, the same residual, no selection: a 160-ms flash is averaged over a 1-s window,
and every query of a frame receives the same local summary. Its "weights" are the uniform
averaging weights.

The attention weights (head-averaged) are returned for visualisation: where in time each
frame looked. :func:`attention_mass_near` measures how much of it falls near a moment, e.g.
the apex of a spotted micro-expression.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from einops import rearrange, reduce
from torch import Tensor, nn


@dataclass(frozen=True)
class GlobalLocalConfig:
    hidden: int = 64  # D: width of global and local tokens
    heads: int = 4  # H
    window_s: float = 0.5  # a frame attends to local steps within +- window_s seconds
    dropout: float = 0.0  # on the attention update, before the residual
    mode: str = "attention"  # "attention" (ours, MicroEmo's idea) | "concat" (the ablation: window mean, concatenated)


@dataclass
class GlobalLocalOutput:
    fused: Tensor  # (B, T, Q, D) LayerNorm(global + windowed attention update)
    weights: Tensor  # (B, T, Q, S) head-averaged attention; 0 outside the window, rows sum to 1 or 0
    window_mask: Tensor  # (B, T, S) bool: local step s lies in frame t's window (and is valid)


def window_mask(frame_times: Tensor, local_times: Tensor, window_s: float,
                local_mask: Tensor | None = None) -> Tensor:
    """(B, T) and (B, S) seconds -> (B, T, S) bool: |local - frame| <= window_s, valid steps only."""
    gap = rearrange(local_times, "b s -> b 1 s") - rearrange(frame_times, "b t -> b t 1")  # (B, T, S)
    inside = gap.abs() <= window_s
    if local_mask is not None:
        inside = inside & rearrange(local_mask.bool(), "b s -> b 1 s")
    return inside


class GlobalLocalAttention(nn.Module):
    """Windowed multi-head cross-attention from per-frame global tokens to local tokens."""

    def __init__(self, cfg: GlobalLocalConfig = GlobalLocalConfig()) -> None:
        super().__init__()
        if cfg.hidden % cfg.heads:
            raise ValueError(f"hidden {cfg.hidden} is not a multiple of heads {cfg.heads}")
        if cfg.mode not in ("attention", "concat"):
            raise ValueError(f'fusion mode must be "attention" or "concat", got {cfg.mode!r}')
        self.cfg = cfg
        self.q = nn.Linear(cfg.hidden, cfg.hidden)
        self.k = nn.Linear(cfg.hidden, cfg.hidden)
        self.v = nn.Linear(cfg.hidden, cfg.hidden)
        self.out = nn.Linear(cfg.hidden, cfg.hidden)
        self.norm = nn.LayerNorm(cfg.hidden)
        self.dropout = nn.Dropout(cfg.dropout)
        if cfg.mode == "concat":  # [g ; window mean of l] (2D) -> D
            self.concat = nn.Linear(2 * cfg.hidden, cfg.hidden)

    def forward(self, global_tokens: Tensor, frame_times: Tensor, local_tokens: Tensor,
                local_times: Tensor, local_mask: Tensor | None = None) -> GlobalLocalOutput:
        """global_tokens (B, T, Q, D); frame_times (B, T) s; local_tokens (B, S, D);
        local_times (B, S) s; local_mask (B, S), True = valid step."""
        batch, frames, _, _ = global_tokens.shape
        if frame_times.shape != (batch, frames):
            raise ValueError(f"frame_times must be (B, T) = {(batch, frames)}, got {tuple(frame_times.shape)}")
        if local_times.shape != local_tokens.shape[:2]:
            raise ValueError(f"local_times {tuple(local_times.shape)} does not match local_tokens "
                             f"{tuple(local_tokens.shape)}")
        inside = window_mask(frame_times, local_times, self.cfg.window_s, local_mask)  # (B, T, S)
        has_local = rearrange(inside.any(dim=-1), "b t -> b t 1 1").to(global_tokens.dtype)  # (B, T, 1, 1)
        if self.cfg.mode == "concat":
            return self._concat(global_tokens, local_tokens, inside, has_local)

        h = self.cfg.heads
        q = rearrange(self.q(global_tokens), "b t q (h d) -> b h t q d", h=h)  # (B, H, T, Q, d)
        k = rearrange(self.k(local_tokens), "b s (h d) -> b h s d", h=h)  # (B, H, S, d)
        v = rearrange(self.v(local_tokens), "b s (h d) -> b h s d", h=h)  # (B, H, S, d)
        scores = torch.einsum("bhtqd,bhsd->bhtqs", q, k) * q.shape[-1] ** -0.5  # (B, H, T, Q, S)

        keep = rearrange(inside, "b t s -> b 1 t 1 s")  # broadcast over heads and queries
        scores = scores.masked_fill(~keep, torch.finfo(scores.dtype).min)  # finite: no NaN rows
        probs = scores.softmax(dim=-1) * keep  # (B, H, T, Q, S); fully masked rows -> exactly 0

        mixed = torch.einsum("bhtqs,bhsd->bhtqd", probs, v)  # (B, H, T, Q, d)
        update = self.out(rearrange(mixed, "b h t q d -> b t q (h d)"))  # (B, T, Q, D)
        fused = self.norm(global_tokens + has_local * self.dropout(update))  # (B, T, Q, D)

        weights = reduce(probs, "b h t q s -> b t q s", "mean")  # (B, T, Q, S)
        return GlobalLocalOutput(fused=fused, weights=weights, window_mask=inside)

    def _concat(self, global_tokens: Tensor, local_tokens: Tensor, inside: Tensor, has_local: Tensor) -> GlobalLocalOutput:
        """The ablation: the window's mean local token, concatenated to every global token."""
        uniform = inside.to(local_tokens.dtype)
        uniform = uniform / uniform.sum(dim=-1, keepdim=True).clamp(min=1)  # (B, T, S), rows sum to 1 or 0
        pooled = torch.einsum("bts,bsd->btd", uniform, local_tokens)  # (B, T, D)
        pooled = pooled[:, :, None].expand_as(global_tokens)  # (B, T, Q, D): the same for every query
        update = self.concat(torch.cat([global_tokens, pooled], dim=-1))  # (B, T, Q, D)
        fused = self.norm(global_tokens + has_local * self.dropout(update))
        weights = uniform[:, :, None].expand(-1, -1, global_tokens.shape[2], -1)  # (B, T, Q, S)
        return GlobalLocalOutput(fused=fused, weights=weights, window_mask=inside)


def attention_mass_near(weights: Tensor, local_times: Tensor, centre_s: float, radius_s: float) -> float:
    """Share of attention mass on local steps within ``radius_s`` seconds of ``centre_s``.

    weights (B, T, Q, S) from :class:`GlobalLocalOutput`; local_times (B, S). For every
    (frame, query) row that has any local token in its window (row sum > 0), the mass is the
    sum of its weights on steps with ``|time - centre_s| <= radius_s``; the result is the mean
    over those rows (in [0, 1]), NaN when no row has a local token. Used to check that
    attention concentrates at a micro-expression's apex.
    """
    near = (local_times - centre_s).abs() <= radius_s  # (B, S)
    mass = (weights * rearrange(near, "b s -> b 1 1 s")).sum(dim=-1)  # (B, T, Q)
    live = weights.sum(dim=-1) > 0  # (B, T, Q) rows that saw any local token
    if not live.any():
        return float("nan")
    return float(mass[live].mean())


__all__ = ["GlobalLocalAttention", "GlobalLocalConfig", "GlobalLocalOutput", "attention_mass_near", "window_mask"]
