"""Facial motion at the full frame rate: dense optical flow in FaceMesh regions, head motion removed.

This is the measuring half of MicroEmo's *local* branch as we reconstruct it (our choice; the
paper gives no details). Landmarks place the regions but are too jittery to be the signal
(1 px of FaceMesh jitter is as large as a micro-expression), so motion is measured with dense
optical flow, in four steps per frame:

1. **Align.** The frame is warped into a canonical face crop by the similarity transform that
   maps its stable landmarks (nose, inner eye corners, temples) onto a template. This removes
   most head motion.
2. **Flow against the window's reference.** Flow is computed from the window's reference crop
   to this crop (not between neighbouring frames: a 200-ms micro-expression moves less than
   a pixel per frame). A new reference is taken every ``window_s`` seconds, at a frame where
   the eyes are open; the displacement reached at that frame is carried over, so each
   landmark's trajectory is continuous through the whole clip.
3. **Per-landmark patches.** Around each region landmark (in template position) the flow is
   averaged over a small square patch.
4. **Minus the residual head motion.** Alignment uses landmarks smoothed over a few frames,
   so some head motion is left. A similarity motion (scale, rotation, shift) is fitted by
   least squares to the flow of the *anchor* patches (nose bridge and forehead, which
   expressions barely move) and subtracted from every patch; with only the nose bridge this
   reduces to subtracting its mean flow.

Displacements are expressed in pixels at a 256-px face, the unit of the ground truth.
Flow method: OpenCV's DIS (Kroeger et al., ECCV 2016) or Farneback (2003); DIS is the default,
chosen by measurement (see benchmarks/local_branch_fps.py and the notebook 01 comparison).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import cv2
import numpy as np

from microemo_ref.face.landmarks import similarity_matrix
from scipy.ndimage import uniform_filter1d

from microemo_ref.face.regions import (FACE_WIDTH_POINTS, LOWER_LIDS, NOSE_BRIDGE, REFERENCE_FACE_PX, REGIONS,
                                      STABLE_POINTS, UPPER_LIDS, eye_opening_px, face_size_px)
from microemo_ref.face.tracking import FaceTrack, dilate


@dataclass(frozen=True)
class MotionConfig:
    crop_size: int = 192            # side of the canonical face crop (px)
    crop_face_px: float = 144.0     # face width (cheek to cheek) inside the crop
    patch: float = 0.04             # half-side of a landmark's flow patch, as a fraction of face width
    window_s: float = 10.0          # a new reference frame every window_s seconds
    method: str = "dis"             # "dis" (DIS, medium preset) | "dis_fast" | "dis_ultrafast" | "farneback"
    smooth_frames: int = 7          # moving average of the alignment landmarks (frames)
    anchors: tuple[int, ...] = NOSE_BRIDGE + (168, 195, 4, 10, 151, 108, 337)   # head-motion patches
    blink_drop: float = 0.12        # a blink moves the lid patches down by this fraction of the eye opening


@dataclass
class RegionMotion:
    """Displacement of every region landmark through a clip (px at a 256-px face)."""

    points: dict[str, np.ndarray]   # region -> (T, n_landmarks, 2), NaN where the face is invalid
    valid: np.ndarray               # (T,) bool
    blink: np.ndarray               # (T,) bool: eyes closing (from the lids' flow or the landmarks)
    lid_drop: np.ndarray            # (T,) mean downward motion of the lid patches, px at 256
    fps: float
    template: np.ndarray            # (478, 2) landmark positions in the canonical crop
    references: list[int]           # frames used as references

    @property
    def regions(self) -> tuple[str, ...]:
        return tuple(self.points)

    @property
    def n_frames(self) -> int:
        return len(self.valid)


def canonical_template(landmarks: np.ndarray, cfg: MotionConfig) -> np.ndarray:
    """Landmarks of one frame scaled and centred into the canonical crop (478, 2)."""
    a, b = FACE_WIDTH_POINTS
    scale = cfg.crop_face_px / np.linalg.norm(landmarks[a] - landmarks[b])
    centre = landmarks[list(STABLE_POINTS)].mean(axis=0)
    return (landmarks - centre) * scale + cfg.crop_size / 2


def aligned_crop(frame: np.ndarray, stable_points: np.ndarray, template: np.ndarray,
                 cfg: MotionConfig = MotionConfig()) -> np.ndarray:
    """Grey canonical face crop (crop_size, crop_size) of an RGB (or grey) frame, warped by the similarity
    transform that maps the frame's STABLE_POINTS landmarks onto the template's."""
    m = similarity_matrix(stable_points, template[list(STABLE_POINTS)])
    grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) if frame.ndim == 3 else frame
    return cv2.warpAffine(grey, m, (cfg.crop_size, cfg.crop_size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


_DIS_PRESETS = {"dis": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM, "dis_fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
                "dis_ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST}


def make_flow(method: str):
    """A function (reference, frame) -> flow (H, W, 2) for 8-bit grey images.

    ``dis`` is DIS with OpenCV's MEDIUM preset; ``dis_fast`` / ``dis_ultrafast`` the faster presets
    (noisier: with them, blinks and strong head motion produce false events in our tests)."""
    if method in _DIS_PRESETS:
        dis = cv2.DISOpticalFlow_create(_DIS_PRESETS[method])
        return lambda ref, cur: dis.calc(ref, cur, None)
    if method == "farneback":
        return lambda ref, cur: cv2.calcOpticalFlowFarneback(ref, cur, None, 0.5, 3, 15, 3, 5, 1.2, 0)
    raise ValueError(f"unknown flow method {method!r}; use one of {sorted(_DIS_PRESETS) + ['farneback']}")


class _Patches:
    """Mean flow in a square patch around each tracked landmark, with an integral image.

    Flow is only computed inside ``roi`` (y0, y1, x0, x1): the box around all patches plus a
    margin for the flow's image pyramid; the crop's corners (hair, background) are skipped."""

    def __init__(self, centres: np.ndarray, half: int, size: int, margin: int = 16):
        c = np.clip(np.rint(centres).astype(int), half, size - half - 1)
        lo = np.maximum(c.min(axis=0) - half - margin, 0)
        hi = np.minimum(c.max(axis=0) + half + margin + 1, size)
        self.roi = (int(lo[1]), int(hi[1]), int(lo[0]), int(hi[0]))
        c = c - lo
        self.y0, self.y1 = c[:, 1] - half, c[:, 1] + half + 1
        self.x0, self.x1 = c[:, 0] - half, c[:, 0] + half + 1
        self.area = float((2 * half + 1) ** 2)

    def cut(self, image: np.ndarray) -> np.ndarray:
        y0, y1, x0, x1 = self.roi
        return np.ascontiguousarray(image[y0:y1, x0:x1])

    def means(self, flow: np.ndarray) -> np.ndarray:
        """(N, 2) mean flow per patch from a flow field over the ROI."""
        s = cv2.integral(flow)                     # (H+1, W+1, 2)
        total = s[self.y1, self.x1] - s[self.y0, self.x1] - s[self.y1, self.x0] + s[self.y0, self.x0]
        return total / self.area


def rigid_motion_fit(points: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Least-squares similarity motion (a, b, tx, ty) with flow ~ (a x - b y + tx, b x + a y + ty)."""
    x, y = points[:, 0], points[:, 1]
    one, zero = np.ones_like(x), np.zeros_like(x)
    design = np.concatenate([np.stack([x, -y, one, zero], 1), np.stack([y, x, zero, one], 1)])
    params, *_ = np.linalg.lstsq(design, np.concatenate([flow[:, 0], flow[:, 1]]), rcond=None)
    return params


def _rigid_field(params: np.ndarray, points: np.ndarray) -> np.ndarray:
    a, b, tx, ty = params
    return np.stack([a * points[:, 0] - b * points[:, 1] + tx, b * points[:, 0] + a * points[:, 1] + ty], 1)


def smoothed_landmarks(track: FaceTrack, idx: list[int], frames: int) -> np.ndarray:
    """Landmarks ``idx`` averaged over ``frames`` frames, within each run of valid frames."""
    out = track.landmarks[:, idx].copy()
    valid = np.concatenate([[False], track.valid, [False]]).astype(np.int8)
    starts, stops = np.flatnonzero(np.diff(valid) == 1), np.flatnonzero(np.diff(valid) == -1)
    for a, b in zip(starts, stops):
        out[a:b] = uniform_filter1d(out[a:b], size=min(frames, b - a), axis=0, mode="nearest")
    return out


def measure_motion(frames: Iterable[np.ndarray], track: FaceTrack, cfg: MotionConfig = MotionConfig()) -> RegionMotion:
    """Per-landmark displacement for every region (see the module docstring for the steps)."""
    if not track.valid.any():
        raise ValueError("no valid face frame to measure")
    first = int(np.flatnonzero(track.valid)[0])
    stable = list(STABLE_POINTS)
    aligned = smoothed_landmarks(track, stable, cfg.smooth_frames)
    template = canonical_template(track.landmarks[first], cfg)
    ids = sorted({i for idx in REGIONS.values() for i in idx})
    anchors = [i for i in cfg.anchors if i not in ids]
    centres = template[ids + anchors]
    patches = _Patches(centres, max(1, int(round(cfg.patch * cfg.crop_face_px))), cfg.crop_size)
    anchor_rows = slice(len(ids), len(ids) + len(anchors))
    to_256 = REFERENCE_FACE_PX / cfg.crop_face_px
    flow_fn = make_flow(cfg.method)
    window = max(1, int(round(cfg.window_s * track.fps)))
    # Blinks: the lid patches slide down together (the flow over a closing eye is dominated by
    # the upper lid), far more than any expression moves them; expressions raise the lids.
    lids = [ids.index(i) for i in UPPER_LIDS + LOWER_LIDS]
    lm = track.landmarks[first]
    blink_px = cfg.blink_drop * eye_opening_px(lm) * REFERENCE_FACE_PX / face_size_px(lm)
    lid_drop = np.full(track.n_frames, np.nan, np.float32)

    disp = np.full((track.n_frames, len(ids), 2), np.nan, np.float32)
    ref, base, ref_frame, references = None, np.zeros((len(ids), 2), np.float32), 0, []
    for t, frame in enumerate(frames):
        if t >= track.n_frames:
            break
        if not track.valid[t]:
            ref = None                              # lost face: start a fresh reference after the gap
            continue
        crop = patches.cut(aligned_crop(frame, aligned[t], template, cfg))
        if ref is None:
            ref, ref_frame, base = crop, t, np.zeros_like(base)
            references.append(t)
            disp[t], lid_drop[t] = 0.0, 0.0
            continue
        v = patches.means(flow_fn(ref, crop))                     # (N, 2) crop pixels
        v -= _rigid_field(rigid_motion_fit(centres[anchor_rows], v[anchor_rows]), centres)
        disp[t] = base + v[: len(ids)] * to_256
        lid_drop[t] = disp[t, lids, 1].mean()
        if t - ref_frame >= window and lid_drop[t] - np.nanmedian(lid_drop[: t + 1]) < blink_px / 2:
            ref, ref_frame, base = crop, t, disp[t].copy()
            references.append(t)
    points = {name: disp[:, [ids.index(i) for i in idx]] for name, idx in REGIONS.items()}
    closed = np.nan_to_num(lid_drop - np.nanmedian(lid_drop)) > blink_px
    blink = track.blinks() | dilate(closed, 2)
    return RegionMotion(points, track.valid.copy(), blink, lid_drop, track.fps, template, references)



def face_crops(frames: Iterable[np.ndarray], track: FaceTrack, size: int = 112, cfg: MotionConfig = MotionConfig()) -> np.ndarray:
    """Aligned, scale-normalised RGB face crops (T, size, size, 3) for an appearance encoder.

    Each frame is warped by the similarity that maps its (smoothed) stable landmarks onto the
    canonical template rescaled to ``size``; invalid frames stay black.
    """
    first = int(np.flatnonzero(track.valid)[0])
    template = canonical_template(track.landmarks[first], cfg) * (size / cfg.crop_size)
    stable = list(STABLE_POINTS)
    aligned = smoothed_landmarks(track, stable, cfg.smooth_frames)
    out = np.zeros((track.n_frames, size, size, 3), np.uint8)
    for t, frame in enumerate(frames):
        if t < track.n_frames and track.valid[t]:
            m = similarity_matrix(aligned[t], template[stable])
            out[t] = cv2.warpAffine(frame, m, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
    return out
