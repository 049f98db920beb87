"""A small task that can only be solved by finding the micro-expression, to train and watch
MicroEmo's global-local attention (notebook 04).

The task: which hidden emotion flashed (angry, sad, disgusted or contemptuous)? Inputs are
per-region dynamics (regions x steps x 3, as the local branch measures them) holding one brief
bump in the regions of that emotion (160-400 ms, the micro-expression) and one long plateau in
the lids (a smile held for 1.6 s, a distractor), plus noise. The global tokens are learned
queries stamped with their frame's time and nothing else, so everything the classifier knows
about the emotion must come through global-local attention from the local tokens. After a
short training, the attention of the frame nearest the apex concentrates on the steps around
the apex, which is the behaviour MicroEmo's abstract describes.

Planted data, our design: a teaching device, not a result about real faces (notebook 04 also
applies the trained model to dynamics measured on generated clips).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from microemo_ref.face.regions import REGIONS
from microemo_ref.model.global_local import GlobalLocalAttention, GlobalLocalConfig, GlobalLocalOutput, attention_mass_near
from microemo_ref.model.local_encoder import LocalEncoder, LocalEncoderConfig, time_embedding

CLASSES: tuple[str, ...] = ("angry", "sad", "disgust", "contempt")
#: Regions each hidden emotion moves (EMFACS prototypes, as the sample generator plants them;
#: kept here so the model layer does not import the generator; a test checks they agree).
CLASS_REGIONS: dict[str, tuple[str, ...]] = {
    "angry": ("brows", "inner_brows", "lips"), "sad": ("inner_brows", "mouth_corners"),
    "disgust": ("mouth_corners", "nose"), "contempt": ("mouth_corners",),
}


@dataclass(frozen=True)
class PlantedConfig:
    steps: int = 100                          # 4 s at 25 fps
    fps: float = 25.0
    noise: float = 0.05                       # px
    amplitude: tuple[float, float] = (0.3, 1.0)   # measured micro peaks are 0.3-1 px (notebook 01)
    length: tuple[int, int] = (4, 10)         # frames: 160-400 ms
    distractor: tuple[float, float] = (0.5, 1.5)  # the lids' plateau, px


def planted_dynamics(n: int, rng: np.random.Generator, cfg: PlantedConfig = PlantedConfig()) -> tuple[Tensor, Tensor, np.ndarray]:
    """``n`` planted examples: dynamics (n, R, S, 3), labels (n,) indexing CLASSES, apex steps (n,)."""
    names = list(REGIONS)
    x = rng.normal(0, cfg.noise, (n, len(names), cfg.steps, 3)).astype(np.float32)   # (n, R, S, F)
    labels = rng.integers(0, len(CLASSES), n)
    apex = rng.integers(15, cfg.steps - 15, n)
    for i in range(n):
        regions = CLASS_REGIONS[CLASSES[labels[i]]]
        length = int(rng.integers(cfg.length[0], cfg.length[1] + 1))
        bump = np.sin(np.linspace(0, np.pi, length)) * rng.uniform(*cfg.amplitude)
        onset = apex[i] - length // 2
        for r in regions:
            x[i, names.index(r), onset:onset + length, 0] += bump
        start = int(rng.integers(0, cfg.steps - 40))
        x[i, names.index("lids"), start:start + 40, 0] += rng.uniform(*cfg.distractor)
    return torch.from_numpy(x), torch.from_numpy(labels), apex


@dataclass(frozen=True)
class MicroCueConfig:
    hidden: int = 64
    queries: int = 4
    frame_every_s: float = 0.5        # sparse global frames, as a video LLM samples them
    window_s: float = 1.0             # each frame attends to local steps within +/- this


class MicroCueModel(nn.Module):
    """Local encoder -> global-local attention from time-stamped queries -> emotion logits."""

    def __init__(self, cfg: MicroCueConfig = MicroCueConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        self.local = LocalEncoder(LocalEncoderConfig(hidden=cfg.hidden))
        self.fuse = GlobalLocalAttention(GlobalLocalConfig(hidden=cfg.hidden, window_s=cfg.window_s))
        self.queries = nn.Parameter(torch.randn(cfg.queries, cfg.hidden) * 0.02)
        self.head = nn.Linear(cfg.hidden, len(CLASSES))

    def forward(self, dynamics: Tensor, fps: float) -> tuple[Tensor, GlobalLocalOutput, Tensor, Tensor]:
        """dynamics (B, R, S, F) -> logits (B, classes), attention output, frame times (B, T), step times (B, S)."""
        batch, steps = dynamics.shape[0], dynamics.shape[2]
        local_times = (torch.arange(steps) / fps).expand(batch, steps)                         # (B, S)
        tokens, local_times = self.local(dynamics, local_times)                                 # (B, S, D)
        frame_times = torch.arange(0, steps / fps, self.cfg.frame_every_s).expand(batch, -1)    # (B, T)
        stamps = 0.1 * time_embedding(frame_times, self.cfg.hidden)                             # (B, T, D)
        global_tokens = self.queries[None, None] + stamps[:, :, None]                           # (B, T, Q, D)
        out = self.fuse(global_tokens, frame_times, tokens, local_times)
        return self.head(out.fused.mean(dim=(1, 2))), out, frame_times, local_times


def train_micro_cue(model: MicroCueModel, steps: int, rng: np.random.Generator, *, batch: int = 32,
                    lr: float = 3e-3, data: PlantedConfig = PlantedConfig()) -> list[float]:
    """Adam on freshly planted batches; returns the loss per step."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    model.train()
    for _ in range(steps):
        x, y, _ = planted_dynamics(batch, rng, data)
        logits, *_ = model(x, data.fps)
        loss = nn.functional.cross_entropy(logits, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    model.eval()
    return losses


def apex_attention(out: GlobalLocalOutput, frame_times: Tensor, local_times: Tensor, apex_s: float,
                   index: int = 0, radius_s: float = 0.2) -> tuple[float, float]:
    """(attention mass within +/- radius of the apex, chance) for the frame nearest the apex of
    example ``index``; chance is the share of that frame's window lying within the radius."""
    f = int(torch.argmin((frame_times[index] - apex_s).abs()))
    weights = out.weights[index:index + 1, f:f + 1]                      # (1, 1, Q, S)
    mass = attention_mass_near(weights, local_times[index:index + 1], apex_s, radius_s)
    window = out.window_mask[index, f]                                   # (S,)
    near = (local_times[index] - apex_s).abs() <= radius_s
    return mass, float((near & window).sum() / window.sum())
