"""The local encoder: measured micro-expression dynamics in, one timestamped token per step out.

MicroEmo (Zhang et al., 2024, arXiv 2407.16552) builds a "global-local attention visual
encoder": global frame-level features bound to timestamps, fused by attention with *local*
facial features that carry the temporal dynamics of micro-expressions. The paper gives no
equations and no code, so the exact form below is **our choice**, not the paper's.

Input is the per-region dynamics tensor of the local branch
(:func:`microemo_ref.face.spotting.dynamics_tensor`, ``LocalEvidence.tensor()``): for each of
R facial regions and S time steps, the features of ``spotting.DYNAMICS_FEATURES``
(magnitude, outward and downward displacement, left-right asymmetry, px at a 256-px face), of
which the encoder reads the first F: 3 by default, 4 with the asymmetry channel (our addition,
for one-sided flashes such as contempt). One token per step is made in four moves:

1. **Region embedding.** Each region has its own small linear map of its F features, plus a
   learned region vector: ``e[r, s] = x[r, s] @ W_r + b_r``, (R, E) per step. The lips and
   the brows move for different reasons, so they get different weights. (No nonlinearity
   yet: magnitudes are never negative, and a GELU here would silence whole regions at
   initialisation; the convolution's GELU follows.)
2. **Temporal convolution.** The R x E region channels are flattened and a 1-D convolution
   (kernel ``k`` steps, zero padding, same length) runs along the steps. A token then sees
   the motion *around* it: a 160-ms micro-expression is a rise-and-fall over a few steps, a
   shape the convolution can recognise, not a single value. Receptive field: k // 2 steps
   on each side, no further (tested).
3. **Projection** to the model width D, plus an optional projection of face-crop
   appearance features (B, S, A).
4. **Time.** A fixed sinusoidal embedding of the step's time in *seconds* is added, so each
   token knows when it happened; the global-local attention then uses the same seconds to
   pick the tokens near each frame.

Steps marked invalid by ``mask`` (face lost, padding) are zeroed before the convolution, so
they leak nothing into their neighbours, and their tokens are zeroed afterwards; pass the
same mask to :class:`~microemo_ref.model.global_local.GlobalLocalAttention`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from einops import rearrange
from torch import Tensor, nn

#: Shortest and longest period (seconds) of the sinusoidal time embedding. 0.1 s resolves
#: steps of a micro-expression (TimeChat rounds times to 0.1 s too); 1000 s keeps times of
#: clips up to many minutes distinct. Our choice.
MIN_PERIOD_S: float = 0.1
MAX_PERIOD_S: float = 1000.0


@dataclass(frozen=True)
class LocalEncoderConfig:
    regions: int = 6  # R: regions of the local branch (face.regions.REGIONS)
    features: int = 3  # F: the first F of magnitude, outward, downward, asymmetry (px at a 256-px face)
    hidden: int = 64  # D: token width (even: half sines, half cosines)
    kernel: int = 5  # temporal convolution width in steps (odd: centred)
    appearance_width: int | None = None  # A: face-crop feature width, None = no appearance
    region_width: int = 8  # E: per-region embedding width (our addition to the brief)


def time_embedding(times: Tensor, dim: int, min_period_s: float = MIN_PERIOD_S,
                   max_period_s: float = MAX_PERIOD_S) -> Tensor:
    """Sinusoidal embedding of times in seconds: (...,) -> (..., dim).

    Half the channels are ``sin(2 pi t / p_i)``, half ``cos``, with periods ``p_i`` spaced
    geometrically from ``min_period_s`` to ``max_period_s`` (Vaswani et al.'s position
    embedding, with seconds instead of positions).
    """
    if dim % 2:
        raise ValueError(f"time embedding width must be even, got {dim}")
    half = dim // 2
    ratio = torch.arange(half, dtype=torch.float32, device=times.device) / max(half - 1, 1)
    periods = min_period_s * (max_period_s / min_period_s) ** ratio  # (dim/2,)
    angles = 2 * math.pi * times.float().unsqueeze(-1) / periods  # (..., dim/2)
    return torch.cat([angles.sin(), angles.cos()], dim=-1)  # (..., dim)


def step_times(n_frames: int, fps: float, n_steps: int) -> Tensor:
    """(n_steps,) seconds at the centre of each step of ``dynamics_tensor(signals, n_steps)``.

    Mirrors its binning: step i averages frames ``edges[i] .. edges[i+1] - 1`` with
    ``edges = round(linspace(0, n_frames, n_steps + 1))`` (at least one frame per step).
    """
    edges = torch.linspace(0, n_frames, n_steps + 1).round()  # (S+1,)
    first = edges[:-1]
    last = torch.maximum(edges[1:], first + 1) - 1  # inclusive last frame of each step
    return (first + last) / 2 / fps  # (S,)


class LocalEncoder(nn.Module):
    """Per-region dynamics (B, R, S, F) -> local tokens (B, S, D) and their times (B, S)."""

    def __init__(self, cfg: LocalEncoderConfig = LocalEncoderConfig()) -> None:
        super().__init__()
        if cfg.kernel % 2 == 0:
            raise ValueError(f"kernel must be odd (centred on its step), got {cfg.kernel}")
        if cfg.hidden % 2:
            raise ValueError(f"hidden must be even (sinusoidal time embedding), got {cfg.hidden}")
        self.cfg = cfg
        # 1. region embedding: one (F -> E) map and one bias vector per region
        self.region_weight = nn.Parameter(torch.randn(cfg.regions, cfg.features, cfg.region_width)
                                          / math.sqrt(cfg.features))
        self.region_bias = nn.Parameter(torch.randn(cfg.regions, cfg.region_width) * 0.02)
        # 2. temporal convolution over the flattened (region x embedding) channels
        self.conv = nn.Conv1d(cfg.regions * cfg.region_width, cfg.hidden, cfg.kernel,
                              padding=cfg.kernel // 2)
        # 3. projection to D (+ appearance)
        self.proj = nn.Linear(cfg.hidden, cfg.hidden)
        self.appearance = (nn.Linear(cfg.appearance_width, cfg.hidden)
                           if cfg.appearance_width is not None else None)
        self.act = nn.GELU()

    def forward(self, dynamics: Tensor, times: Tensor, appearance: Tensor | None = None,
                mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """dynamics (B, R, S, F') with F' >= F (the first F are read); times (B, S) seconds;
        appearance (B, S, A); mask (B, S), True = valid step. Returns tokens (B, S, D) and their
        times (B, S)."""
        cfg = self.cfg
        _, regions, steps, features = dynamics.shape
        if regions != cfg.regions or features < cfg.features:
            raise ValueError(f"dynamics has {regions} regions x {features} features, "
                             f"config expects {cfg.regions} x {cfg.features}")
        dynamics = dynamics[..., :cfg.features]  # (B, R, S, F)
        if times.shape != (dynamics.shape[0], steps):
            raise ValueError(f"times must be (B, S) = {(dynamics.shape[0], steps)}, got {tuple(times.shape)}")
        valid = None if mask is None else mask.bool()  # (B, S)
        if valid is not None:  # invalid steps carry no motion into the convolution
            dynamics = dynamics * rearrange(valid, "b s -> b 1 s 1")
        # 1. region embedding (the region bias is masked too: an invalid step is all zeros)
        emb = torch.einsum("brsf,rfe->brse", dynamics, self.region_weight)  # (B, R, S, E)
        bias = rearrange(self.region_bias, "r e -> 1 r 1 e")
        if valid is not None:
            bias = bias * rearrange(valid, "b s -> b 1 s 1")
        emb = emb + bias  # (B, R, S, E)
        # 2. temporal convolution along the steps
        channels = rearrange(emb, "b r s e -> b (r e) s")  # (B, R*E, S)
        motion = self.act(self.conv(channels))  # (B, D, S)
        # 3. projection (+ appearance)
        tokens = self.proj(rearrange(motion, "b d s -> b s d"))  # (B, S, D)
        if appearance is not None:
            if self.appearance is None:
                raise ValueError("appearance given, but the config has appearance_width=None")
            tokens = tokens + self.appearance(appearance)  # (B, S, D)
        # 4. when: seconds, not step indices
        tokens = tokens + time_embedding(times, cfg.hidden).to(tokens.dtype)  # (B, S, D)
        if valid is not None:
            tokens = tokens * rearrange(valid, "b s -> b s 1")
        return tokens, times


__all__ = ["LocalEncoder", "LocalEncoderConfig", "MAX_PERIOD_S", "MIN_PERIOD_S", "step_times", "time_embedding"]
