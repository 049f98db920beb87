"""Render an animated face: a smooth displacement field driven by FaceMesh points.

Each facial action (see :mod:`microemo_ref.samples.expressions`) moves a few landmarks by a
unit vector. Around each landmark ``p_i`` with direction ``d_i`` we spread the motion with a
Gaussian kernel ``k_i(x) = exp(-|x - p_i|^2 / 2 sigma^2)`` and normalise where kernels pile up:

    F_a(x) = sum_i d_i k_i(x) / max(1, sum_i k_i(x))          (one *basis field* per action)

so the field equals ``d_i`` at an isolated landmark and fades to zero a few sigma away. A
frame's field is a weighted sum of basis fields, ``D(x) = sum_a amplitude_a * F_a(x)``, and
the head then moves rigidly (a small translation and rotation). The frame is rendered by
*backward* warping, sampling the photo at ``H^-1(x) - D(H^-1(x))``: for the small, smooth
displacements used here that is the forward motion to within a small fraction of a pixel.
Mild Gaussian pixel noise is added last (H.264 compression is added when the clip is written).

This is our design (the sample generator is not part of MicroEmo); the point is motion whose
ground truth is known to the frame and to the pixel.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from microemo_ref.face.regions import REFERENCE_FACE_PX, eye_opening_px
from microemo_ref.samples.expressions import ACTIONS, ExpressionEvent, action_amplitudes, event_profile
from microemo_ref.samples.faces import FaceCanvas


@dataclass(frozen=True)
class RenderConfig:
    """Knobs of the renderer (defaults used for every committed sample)."""

    kernel_sigma: float = 0.045      # Gaussian kernel width, as a fraction of the face width
    noise_std: float = 1.5           # pixel noise, in 8-bit grey levels
    head_shift_px: float = 2.5       # peak head translation (px)
    head_rot_deg: float = 1.2        # peak head rotation (degrees)
    head_freqs_hz: tuple[float, float] = (0.08, 0.35)   # head motion is slow
    talk_px: float = 1.5             # peak jaw motion while speaking (px at a 256-px face)


def basis_field(points: np.ndarray, directions: np.ndarray, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Displacement field (H, W, 2) moving ``points`` (N, 2) by ``directions`` (N, 2)."""
    h, w = shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    num = np.zeros((h, w, 2), np.float32)
    den = np.zeros((h, w), np.float32)
    for (px, py), d in zip(points, directions):
        k = np.exp(-((xs - px) ** 2 + (ys - py) ** 2) / (2 * sigma**2))
        num += k[..., None] * d.astype(np.float32)
        den += k
    return num / np.maximum(den, 1.0)[..., None]


def head_trajectory(n_frames: int, fps: float, rng: np.random.Generator, cfg: RenderConfig) -> np.ndarray:
    """Smooth head motion per frame, (n_frames, 3): dx px, dy px, rotation degrees.

    Each component is a sum of two sinusoids with random frequency (within
    ``cfg.head_freqs_hz``) and phase, scaled to its peak value.
    """
    t = np.arange(n_frames) / fps
    out = np.zeros((n_frames, 3))
    for j, peak in enumerate((cfg.head_shift_px, cfg.head_shift_px, cfg.head_rot_deg)):
        f = rng.uniform(*cfg.head_freqs_hz, size=2)
        phase = rng.uniform(0, 2 * np.pi, size=2)
        wave = np.sin(2 * np.pi * f[0] * t + phase[0]) + 0.5 * np.sin(2 * np.pi * f[1] * t + phase[1])
        out[:, j] = peak * wave / 1.5
    return out


class FaceAnimator:
    """Renders frames of one face canvas for given action amplitudes and head pose."""

    def __init__(self, canvas: FaceCanvas, cfg: RenderConfig = RenderConfig()):
        self.canvas = canvas
        self.cfg = cfg
        h, w = canvas.image.shape[:2]
        self.shape = (h, w)
        face_px = canvas.face_px
        px_per_unit = face_px / REFERENCE_FACE_PX       # amplitude units are px at a 256-px face
        sigma = cfg.kernel_sigma * face_px
        self.basis: dict[str, np.ndarray] = {}
        for name, moves in ACTIONS.items():
            idx = list(moves)
            dirs = np.array([moves[i] for i in idx], np.float32)
            # Blink amplitudes are fractions of the eye opening, the rest px at a 256-px face.
            unit = eye_opening_px(canvas.landmarks) if name == "blink" else px_per_unit
            self.basis[name] = basis_field(canvas.landmarks[idx, :2], dirs * unit, self.shape, sigma)
        self._grid = np.stack(np.meshgrid(np.arange(w, dtype=np.float32),
                                          np.arange(h, dtype=np.float32)), axis=-1)  # (H, W, 2)
        self._centre = np.array([w / 2, h / 2], np.float32)
        self._image = canvas.image

    def field(self, amplitudes: dict[str, float]) -> np.ndarray:
        """The expression displacement field D (H, W, 2) for action amplitudes."""
        d = np.zeros(self.shape + (2,), np.float32)
        for name, a in amplitudes.items():
            if a != 0.0:
                d += np.float32(a) * self.basis[name]
        return d

    def render(self, amplitudes: dict[str, float], head: np.ndarray | None = None,
               rng: np.random.Generator | None = None) -> np.ndarray:
        """One RGB uint8 frame. ``head`` = (dx, dy, degrees), still if None; ``rng`` adds pixel noise."""
        dx, dy, deg = (0.0, 0.0, 0.0) if head is None else (float(v) for v in head)
        # y = H^-1(x): undo the head's rotation about the frame centre, then its translation.
        theta = np.deg2rad(deg)
        rot_inv = np.array([[np.cos(theta), np.sin(theta)], [-np.sin(theta), np.cos(theta)]], np.float32)
        y = (self._grid - self._centre - np.array([dx, dy], np.float32)) @ rot_inv.T + self._centre
        d = self.field(amplitudes)
        if np.any(d):
            d_at_y = cv2.remap(d, y[..., 0], y[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
            y = y - d_at_y
        frame = cv2.remap(self._image, y[..., 0], y[..., 1], cv2.INTER_CUBIC,
                          borderMode=cv2.BORDER_REPLICATE)
        if rng is not None and self.cfg.noise_std > 0:
            noisy = frame.astype(np.float32) + rng.normal(0, self.cfg.noise_std, frame.shape).astype(np.float32)
            frame = np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
        return frame


def render_sequence(animator: FaceAnimator, events: list[ExpressionEvent], n_frames: int, fps: float,
                    rng: np.random.Generator, *, blinks: list[ExpressionEvent] = (),
                    talk: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Frames (T, H, W, 3) of planted ``events`` and ``blinks`` with head motion and pixel noise
    drawn from ``rng``; ``talk`` (T,) in [0, 1] opens the jaw with speech. Returns (frames, head)."""
    curves = action_amplitudes(list(events), n_frames)
    curves["blink"] = sum((event_profile(b, n_frames) for b in blinks), np.zeros(n_frames))
    if talk is not None:
        curves["jaw_drop"] = curves.get("jaw_drop", np.zeros(n_frames)) + animator.cfg.talk_px * talk
    head = head_trajectory(n_frames, fps, rng, animator.cfg)
    noise_rng = np.random.default_rng(rng.integers(2**32))
    frames = np.stack([animator.render({a: float(c[t]) for a, c in curves.items()}, head[t], noise_rng)
                       for t in range(n_frames)])
    return frames, head
