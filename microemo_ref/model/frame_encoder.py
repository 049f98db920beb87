"""The frozen image encoder of BLIP-2 / TimeChat, and a small stand-in that trains on a CPU.

BLIP-2 (Li et al., 2023) reads each image through a frozen ViT (EVA-CLIP ViT-g/14, width
1408) and hands its patch tokens to the Q-Former's cross-attention. TimeChat (Ren et al.,
CVPR 2024, "TimeChat: A Time-sensitive Multimodal LLM for Long Video Understanding") does the
same per video frame. This module supplies that first stage:

- ``SmallFrameEncoder``: a few strided convolutions that turn a frame into a grid of patch
  features, like a ViT's output (one token per ``patch x patch`` cell, with a learned position
  embedding so the Q-Former knows where each token sits). Our choice, for teaching: it trains
  in minutes on a CPU, where a real ViT would not.
- ``HFVisionEncoder``: any local Hugging Face vision model (CLIP, SigLIP, ViT, ...), loaded
  offline by path and kept frozen, as in the papers. It returns the patch tokens of the last
  layer. (BLIP-2 takes the second-to-last ViT layer; the difference does not matter here.)

Both map frames ``(B, 3, H, W)`` with values in ``[0, 1]`` to patch features ``(B, N, width)``.
``frames_to_tensor`` turns decoded video frames (uint8, channels last) into that input.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

# CLIP's normalisation, used when a model folder ships no preprocessor_config.json.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class FrameEncoderConfig:
    image_size: int = 112  # frames are resized to image_size x image_size
    patch: int = 16  # one output token per patch x patch cell: N = (image_size // patch) ** 2
    width: int = 48  # C, the width of each patch feature (the Q-Former's encoder_width)
    channels: tuple[int, ...] = (16, 32)  # one stride-2 conv stage per entry (cnn only)
    kind: str = "cnn"  # "cnn" (SmallFrameEncoder) | "hf" (HFVisionEncoder)
    hf_path: str | None = None  # the local model folder, for kind="hf"

    @property
    def grid(self) -> int:
        return self.image_size // self.patch


class SmallFrameEncoder(nn.Module):
    """Strided conv stages, pooled to a (grid x grid) map, projected to `width`: a tiny 'ViT'."""

    def __init__(self, cfg: FrameEncoderConfig) -> None:
        super().__init__()
        if cfg.grid < 1:
            raise ValueError(f"patch {cfg.patch} is larger than image_size {cfg.image_size}")
        self.cfg = cfg
        self.width = cfg.width
        self.n_patches = cfg.grid**2  # N
        stages: list[nn.Module] = []
        c_in = 3
        for c_out in cfg.channels:  # each stage halves H and W
            stages += [nn.Conv2d(c_in, c_out, kernel_size=3, stride=2, padding=1),
                       nn.GroupNorm(1, c_out), nn.GELU()]
            c_in = c_out
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(cfg.grid)  # whatever remains -> one cell per patch
        self.proj = nn.Conv2d(c_in, cfg.width, kernel_size=1)  # a per-patch linear projection
        # A ViT's tokens carry its position embedding; ours must too, since the Q-Former's
        # cross-attention is blind to token order.
        self.position = nn.Parameter(torch.randn(1, self.n_patches, cfg.width) * 0.02)

    def forward(self, images: Tensor) -> Tensor:
        """images (B, 3, H, W) in [0, 1] -> patch features (B, N, width)."""
        x = self.stages(images * 2.0 - 1.0)  # centred input; (B, C', H', W')
        x = self.proj(self.pool(x))  # (B, width, grid, grid)
        return rearrange(x, "b c h w -> b (h w) c") + self.position  # (B, N, width)


class HFVisionEncoder(nn.Module):
    """A local Hugging Face vision model, frozen, returning its last layer's patch tokens.

    Loaded with ``AutoModel.from_pretrained(path, local_files_only=True)``: nothing is ever
    downloaded. A full CLIP/SigLIP model (text + vision) is accepted; its ``vision_model`` is
    kept. Input frames in [0, 1] are resized to the model's ``image_size`` and normalised with
    the mean/std of the folder's ``preprocessor_config.json`` (CLIP's when there is none).

    ``last_hidden_state`` of a ViT holds ``[CLS] + patches`` (CLIP, ViT), patches only
    (SigLIP), or ``[CLS] + registers + patches`` (DINOv2 with registers). We keep the last
    ``N = (image_size // patch_size) ** 2`` tokens, i.e. the patch grid, and drop the rest.
    """

    def __init__(self, path: str | Path, trainable: bool = False) -> None:
        super().__init__()
        from transformers import AutoModel  # imported here: the CNN path does not need it

        path = Path(path)
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"no Hugging Face model folder (with a config.json) at "
                                    f"{path}; give the path of a model saved locally")
        model = AutoModel.from_pretrained(path, local_files_only=True)
        self.model = getattr(model, "vision_model", model)  # CLIPModel -> its vision tower
        vision_cfg = getattr(model.config, "vision_config", model.config)
        self.image_size: int = vision_cfg.image_size
        self.width: int = vision_cfg.hidden_size
        self.n_patches: int = (vision_cfg.image_size // vision_cfg.patch_size) ** 2
        mean, std = _normalisation(path)
        for name, values in [("mean", mean), ("std", std)]:  # (1, 3, 1, 1) each
            self.register_buffer(name, rearrange(torch.tensor(values), "c -> 1 c 1 1"),
                                 persistent=False)
        self.trainable = trainable
        self.model.requires_grad_(trainable)
        if not trainable:
            self.model.eval()

    def train(self, mode: bool = True) -> "HFVisionEncoder":
        super().train(mode)
        if not self.trainable:
            self.model.eval()  # frozen means no dropout either
        return self

    def forward(self, images: Tensor) -> Tensor:
        """images (B, 3, H, W) in [0, 1] -> patch features (B, N, width)."""
        if images.shape[-2:] != (self.image_size, self.image_size):
            images = F.interpolate(images, size=(self.image_size, self.image_size),
                                   mode="bilinear", antialias=True, align_corners=False)
        pixels = (images - self.mean) / self.std
        with torch.set_grad_enabled(self.trainable and torch.is_grad_enabled()):
            hidden = self.model(pixel_values=pixels).last_hidden_state  # (B, extra + N, width)
        return hidden[:, -self.n_patches:]  # (B, N, width): the patch grid only


def _normalisation(path: Path) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """image_mean / image_std from the folder's preprocessor_config.json, else CLIP's."""
    config = path / "preprocessor_config.json"
    if config.is_file():
        data = json.loads(config.read_text())
        if "image_mean" in data and "image_std" in data:
            return tuple(data["image_mean"]), tuple(data["image_std"])
    return CLIP_MEAN, CLIP_STD


def build_frame_encoder(cfg: FrameEncoderConfig) -> nn.Module:
    """SmallFrameEncoder for kind="cnn", HFVisionEncoder(cfg.hf_path) for kind="hf".

    Both modules expose ``width`` (C) and ``n_patches`` (N). For "hf" the width is the model's
    hidden size, whatever ``cfg.width`` says: size the Q-Former's encoder_width from it.
    """
    if cfg.kind == "cnn":
        return SmallFrameEncoder(cfg)
    if cfg.kind == "hf":
        if cfg.hf_path is None:
            raise ValueError('FrameEncoderConfig(kind="hf") needs hf_path, a local model folder')
        return HFVisionEncoder(cfg.hf_path)
    raise ValueError(f'unknown frame encoder kind {cfg.kind!r}; expected "cnn" or "hf"')


def frames_to_tensor(frames: np.ndarray, size: int) -> Tensor:
    """Decoded frames (T, H, W, 3) uint8 -> (T, 3, size, size) float32 in [0, 1].

    Resized with antialiased bilinear interpolation, straight to a square: a non-square frame
    is squashed, so crop first (e.g. to the face) if the aspect ratio matters.
    """
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected frames of shape (T, H, W, 3), got {frames.shape}")
    if frames.dtype != np.uint8:
        raise ValueError(f"expected uint8 frames, got {frames.dtype}")
    x = torch.from_numpy(np.ascontiguousarray(frames)).float() / 255.0  # (T, H, W, 3)
    x = rearrange(x, "t h w c -> t c h w")  # (T, 3, H, W)
    x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x.clamp_(0.0, 1.0)  # (T, 3, size, size)


__all__ = ["FrameEncoderConfig", "SmallFrameEncoder", "HFVisionEncoder", "build_frame_encoder",
           "frames_to_tensor"]
