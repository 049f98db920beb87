"""The audio branch: frame features -> audio steps -> audio tokens per span.

Video-LLaMA (Zhang et al., 2023, "Video-LLaMA: An Instruction-tuned Audio-Visual Language
Model for Video Understanding") hears a clip as 8 segments of 2 s: each segment's log-mel
spectrogram goes through the frozen ImageBind audio encoder to one vector, a learned
position embedding marks which segment it is, and a 2-layer audio Q-Former with 8 queries
reads the 8 vectors; its query states, projected, are the audio tokens. AffectGPT keeps that
branch for EMER.

**Our choice** differs in two places, both because MicroEmo's utterance-aware design needs
audio tokens *per utterance*, and utterances last 1-3 s:

1. Keys are short **steps** (80 ms), not 2-s segments, so that a span of any length selects
   its own keys. A small encoder makes them from the 20-ms features of
   :mod:`microemo_ref.audio.features` (log-mel + prosody): a per-frame linear map, then two
   strided 1-D convolutions (kernel 5, stride 2 each: 20 ms -> 80 ms, receptive field
   about 260 ms, enough for a syllable's pitch movement). No pretrained audio encoder loads
   offline here; one plugs in by replacing this module.
2. A sinusoidal embedding of the step's time in seconds (shared with the local encoder)
   replaces the segment-index embedding, so times mean the same in every branch.

The audio Q-Former itself is the utterance-aware Q-Former of
:mod:`microemo_ref.model.utterance_qformer` with its own weights (2 layers, 8 queries,
Video-LLaMA's sizes), run over the whole clip and over each utterance.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from einops import rearrange
from torch import Tensor, nn

from microemo_ref.model.local_encoder import time_embedding

#: Frame hop of the audio features (s); see microemo_ref.audio.features.
FEATURE_HOP_S: float = 0.020


@dataclass(frozen=True)
class AudioEncoderConfig:
    features: int = 68  # F: 64 log-mel bands + 4 prosody channels
    hidden: int = 64  # D: step width (even, for the time embedding)
    kernel: int = 5
    stages: int = 2  # stride-2 convolutions: step = FEATURE_HOP_S * 2**stages (80 ms)

    @property
    def step_s(self) -> float:
        return FEATURE_HOP_S * 2 ** self.stages


class AudioEncoder(nn.Module):
    """(S, F) features at 20 ms -> (S', D) steps at 80 ms, with their centre times (S',)."""

    def __init__(self, cfg: AudioEncoderConfig = AudioEncoderConfig()) -> None:
        super().__init__()
        if cfg.hidden % 2:
            raise ValueError(f"hidden must be even (sinusoidal time embedding), got {cfg.hidden}")
        self.cfg = cfg
        self.inp = nn.Linear(cfg.features, cfg.hidden)
        self.convs = nn.ModuleList(
            nn.Conv1d(cfg.hidden, cfg.hidden, cfg.kernel, stride=2, padding=cfg.kernel // 2)
            for _ in range(cfg.stages))
        self.norm = nn.LayerNorm(cfg.hidden)
        self.act = nn.GELU()

    def forward(self, features: Tensor, times: Tensor) -> tuple[Tensor, Tensor]:
        """features (S, F) and their frame times (S,) seconds -> steps (S', D), times (S',)."""
        if features.ndim != 2 or features.shape[1] != self.cfg.features:
            raise ValueError(f"features must be (S, {self.cfg.features}), got {tuple(features.shape)}")
        x = rearrange(self.act(self.inp(features)), "s d -> 1 d s")  # (1, D, S)
        for conv in self.convs:
            x = self.act(conv(x))  # (1, D, ceil(S / 2))
        steps = rearrange(x, "1 d s -> s d")  # (S', D)
        # Step j of the last stage is centred where input frame j * 2**stages sits.
        stride = 2 ** self.cfg.stages
        idx = torch.clamp(torch.arange(steps.shape[0], device=times.device) * stride, max=times.shape[0] - 1)
        step_times = times[idx]  # (S',)
        steps = self.norm(steps + time_embedding(step_times, self.cfg.hidden).to(steps.dtype))
        return steps, step_times


__all__ = ["AudioEncoder", "AudioEncoderConfig", "FEATURE_HOP_S"]
