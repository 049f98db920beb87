"""The global-local visual encoder, composed: frames and face dynamics in, fused frame tokens out.

MicroEmo's first contribution (Zhang et al., 2024, arXiv 2407.16552), wired from the parts
that notebooks 02-04 build one at a time:

1. **Sample frames** uniformly in time (``sample_fps`` per second, at most ``max_frames``;
   TimeChat samples 96 frames per video).
2. **Frame encoder** (:mod:`~microemo_ref.model.frame_encoder`): each frame -> patch
   features (N, C). BLIP-2 and TimeChat use a frozen EVA-CLIP ViT-g; ours defaults to a
   small CNN that trains on a CPU.
3. **Time-aware frame Q-Former** (:mod:`~microemo_ref.model.time_encoder`, TimeChat): queries
   + "This frame is sampled at t second." read the patches -> global tokens (T, Q, D).
4. **Local encoder** (:mod:`~microemo_ref.model.local_encoder`): the face dynamics of the local
   branch at the full frame rate -> local tokens (S, D), each stamped with its time.
5. **Global-local attention** (:mod:`~microemo_ref.model.global_local`): each frame's global
   tokens read the local tokens within +-0.5 s of it -> fused tokens (T, Q, D).

Sampled frames miss most 160-400 ms micro-expressions (at 4 frames per second, one sample
falls inside a 200-ms event at most); the local tokens, at the full frame rate, do not,
and step 5 carries them into the frames nearby. Without a face (no local evidence) step 5
passes each global token through its LayerNorm unchanged.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

from microemo_ref.model.frame_encoder import FrameEncoderConfig, build_frame_encoder
from microemo_ref.model.global_local import GlobalLocalAttention, GlobalLocalConfig
from microemo_ref.model.local_encoder import LocalEncoder, LocalEncoderConfig
from microemo_ref.model.qformer import QFormerConfig
from microemo_ref.model.time_encoder import TimeAwareFrameEncoder, TimeEncoderConfig


def _tiny_time() -> TimeEncoderConfig:
    # The time text needs the MiniLM tokenizer's vocabulary (30522) and 13 positions.
    return TimeEncoderConfig(QFormerConfig.tiny(vocab_size=30522), max_frames=96)


@dataclass(frozen=True)
class VisualEncoderConfig:
    frame: FrameEncoderConfig = field(default_factory=FrameEncoderConfig)
    time: TimeEncoderConfig = field(default_factory=_tiny_time)
    local: LocalEncoderConfig = field(default_factory=LocalEncoderConfig)
    fusion: GlobalLocalConfig = field(default_factory=GlobalLocalConfig)
    sample_fps: float = 4.0  # frames sampled per second of video (capped at time.max_frames)

    @property
    def hidden(self) -> int:
        return self.time.qformer.hidden

    @property
    def n_queries(self) -> int:
        return self.time.qformer.n_queries

    def check(self) -> None:
        """Raise ValueError when the parts' widths do not fit together."""
        q = self.time.qformer
        if self.frame.kind == "cnn" and q.encoder_width != self.frame.width:
            raise ValueError(f"frame encoder width {self.frame.width} != Q-Former encoder_width "
                             f"{q.encoder_width}")
        if not (q.hidden == self.local.hidden == self.fusion.hidden):
            raise ValueError(f"widths differ: time Q-Former {q.hidden}, local encoder "
                             f"{self.local.hidden}, fusion {self.fusion.hidden}")


def sample_frames(n_frames: int, fps: float, sample_fps: float, max_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and times (s) of frames sampled uniformly: the middle frame of equal bins.

    ``min(max_frames, ceil(duration * sample_fps))`` bins over the clip, at least one.
    """
    duration = n_frames / fps
    count = int(min(max_frames, n_frames, max(1, math.ceil(duration * sample_fps - 1e-9))))
    edges = np.linspace(0, n_frames, count + 1)
    idx = np.floor((edges[:-1] + edges[1:]) / 2).astype(int)
    return idx, idx / fps


@dataclass
class VisualTokens:
    tokens: Tensor  # (T, Q, D) fused frame tokens
    times: Tensor  # (T,) seconds, rounded to 0.1 s as the time text states them
    local_weights: Tensor | None  # (T, Q, S) global-local attention, None without local tokens
    local_times: Tensor | None  # (S,) seconds


class VisualEncoder(nn.Module):
    """Frames (T, 3, H, W) + dynamics (R, S, F) -> fused frame tokens (T, Q, D); one clip."""

    def __init__(self, cfg: VisualEncoderConfig = VisualEncoderConfig(), tokenizer=None) -> None:
        super().__init__()
        cfg.check()
        self.cfg = cfg
        self.frames = build_frame_encoder(cfg.frame)
        self.time = TimeAwareFrameEncoder(cfg.time, tokenizer)
        self.local = LocalEncoder(cfg.local)
        self.fusion = GlobalLocalAttention(cfg.fusion)

    def forward(self, images: Tensor, frame_times: Tensor, dynamics: Tensor | None = None,
                local_times: Tensor | None = None, local_mask: Tensor | None = None) -> VisualTokens:
        """images (T, 3, H, W) in [0, 1]; frame_times (T,) s; dynamics (R, S, F), local_times
        and local_mask (S,) from the local branch (None: no face found)."""
        patches = self.frames(images)  # (T, N, C)
        glob, times = self.time(patches[None], frame_times[None])  # (1, T, Q, D), (1, T)
        if dynamics is None:
            fused = self.fusion.norm(glob)  # the empty-window rule of global_local, stated
            return VisualTokens(fused[0], times[0], None, None)
        if local_times is None:
            raise ValueError("dynamics given without local_times")
        mask = None if local_mask is None else local_mask[None]
        local, _ = self.local(dynamics[None], local_times[None], mask=mask)  # (1, S, D)
        out = self.fusion(glob, times, local, local_times[None], mask)
        return VisualTokens(out.fused[0], times[0], out.weights[0], local_times)


__all__ = ["VisualEncoder", "VisualEncoderConfig", "VisualTokens", "sample_frames"]
