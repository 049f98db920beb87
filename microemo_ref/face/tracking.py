"""Track one face through a video: FaceMesh landmarks per frame, gaps, scale, blinks.

MediaPipe FaceMesh runs in video mode (each frame's mesh seeds the next), one face is kept
(the largest, see :func:`landmarks.choose_face`). Frames where no face is found are *gaps*:
gaps of at most ``max_gap`` frames (0.2 s at 25 fps) are filled by linear interpolation of
the landmarks on both sides; longer gaps are reported and their frames marked invalid, so
that nothing downstream measures motion there.

A face partly outside the picture is lost too: FaceMesh still returns a whole mesh while the
face slides out of the frame, but the points past the border are guesses, and the motion
measured on them reads as a 30-px expression just before the face is gone. A detected
frame counts only while every point the motion is measured on (the regions and the stable
points, :data:`MEASURED_POINTS`) lies inside the picture; other frames are gaps like any
other (our rule).

A face on its side or upside down in the picture is refused (the regions and the flow are
measured in an upright face's frame): on its side by the mesh's eye line
(:func:`check_upright`), upside down by the face detector (:func:`check_turn`), since FaceMesh
fits an upright mesh to an upside-down face and its eye line is then level.

Besides the 478 points, a track gives per frame the face box, a scale (distance of the inner
eye corners, which expressions hardly change) and a blink flag from the eye opening. It keeps
FaceMesh's relative depth of each point too, from which :mod:`.head_pose` measures head turns.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from microemo_ref.face.landmarks import N_LANDMARKS, FaceMesh, NoFaceError, turn_scores
from microemo_ref.face.regions import INNER_EYE_CORNERS, LOWER_LIDS, REGIONS, STABLE_POINTS, UPPER_LIDS

#: The landmarks the motion is measured on: every region's and the stable points (head motion).
MEASURED_POINTS: tuple[int, ...] = tuple(sorted({i for ids in REGIONS.values() for i in ids} | set(STABLE_POINTS)))


@dataclass
class FaceTrack:
    """Landmarks of one face through a clip. Invalid frames hold NaN landmarks."""

    landmarks: np.ndarray      # (T, 478, 2) float32, pixels
    detected: np.ndarray       # (T,) bool: FaceMesh found the face in this frame
    valid: np.ndarray          # (T,) bool: detected and inside the picture, or inside a short interpolated gap
    fps: float
    size: tuple[int, int]      # frame (H, W)
    depth: np.ndarray | None = None   # (T, 478) FaceMesh's relative depth z, px-like units (face.head_pose)
    outside: np.ndarray | None = None  # (T,) bool: detected, but measured points lay outside the picture

    @property
    def n_frames(self) -> int:
        return len(self.valid)

    @property
    def boxes(self) -> np.ndarray:
        """(T, 4) face boxes x0, y0, x1, y1 from the landmark extent; NaN where the face is lost."""
        boxes = np.full((self.n_frames, 4), np.nan, np.float32)
        seen = ~np.isnan(self.landmarks).all(axis=(1, 2))
        boxes[seen] = np.concatenate([np.nanmin(self.landmarks[seen], axis=1),
                                      np.nanmax(self.landmarks[seen], axis=1)], axis=1)
        return boxes

    @property
    def scale(self) -> np.ndarray:
        """(T,) distance between the inner eye corners, pixels."""
        a, b = INNER_EYE_CORNERS
        return np.linalg.norm(self.landmarks[:, a] - self.landmarks[:, b], axis=-1)

    def roll_deg(self) -> float:
        """Median angle of the line from the right to the left inner eye corner, degrees from
        level (positive: turned clockwise in the picture; about 90 for a face on its side)."""
        a, b = INNER_EYE_CORNERS
        d = self.landmarks[self.valid, b] - self.landmarks[self.valid, a]  # (T, 2) x right, y down
        return float(np.degrees(np.arctan2(np.median(d[:, 1]), np.median(d[:, 0]))))

    def gaps(self) -> list[tuple[int, int]]:
        """Runs of invalid frames (first, last), inclusive: where the face is lost."""
        return _runs(~self.valid)

    def blinks(self, closed_fraction: float = 0.6, widen: int = 2) -> np.ndarray:
        """(T,) bool: frames where the eyes are less than ``closed_fraction`` as open as usual
        (the median opening over valid frames), widened by ``widen`` frames on each side."""
        opening = np.linalg.norm(self.landmarks[:, list(UPPER_LIDS)] - self.landmarks[:, list(LOWER_LIDS)],
                                 axis=-1).mean(axis=1) / self.scale
        usual = np.nanmedian(opening[self.valid])
        closed = np.zeros(self.n_frames, bool)
        closed[self.valid] = opening[self.valid] < closed_fraction * usual
        return dilate(closed, widen)


def dilate(mask: np.ndarray, frames: int) -> np.ndarray:
    """Widen the True runs of a boolean array by ``frames`` on each side."""
    out = mask.copy()
    for shift in range(1, frames + 1):
        out[shift:] |= mask[:-shift]
        out[:-shift] |= mask[shift:]
    return out


def mask_spans(mask: np.ndarray, fps: float) -> list[tuple[float, float]]:
    """The True runs of a per-frame boolean array as (start, end) seconds, end exclusive."""
    return [(a / fps, (b + 1) / fps) for a, b in _runs(mask)]


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Runs of True in a boolean array as (first, last) inclusive."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1))


def track_face(frames: Iterable[np.ndarray], fps: float, *, max_gap: int = 5,
               source: str | Path = "video") -> FaceTrack:
    """Run FaceMesh (video mode) over RGB frames; :class:`NoFaceError` if no frame has a face."""
    points, size, seen, last_seen = [], None, [], -np.inf
    every = max(1, int(round(fps)))
    with FaceMesh(static=False) as fm:
        for frame in frames:
            size = frame.shape[:2]
            pts = fm.landmarks(frame)
            points.append(pts if pts is not None else np.full((N_LANDMARKS, 3), np.nan, np.float32))
            if pts is not None and len(seen) < TURN_FRAMES and len(points) - last_seen > every:
                seen.append(frame.copy())                  # at most one frame a second, for check_turn
                last_seen = len(points)
    if not points:
        raise NoFaceError(f"{source}: no frames to track")
    landmarks = np.stack(points).astype(np.float32, copy=False)   # (T, 478, 3): x, y, z
    points.clear()  # the stacked copy is all that is needed from here (memory: one copy, not two)
    detected = ~np.isnan(landmarks[:, 0, 0])
    if not detected.any():
        raise NoFaceError(f"{source}: no face found in any of {len(landmarks)} frames")
    outside = detected & ~inside_picture(landmarks, size)
    if not (detected & ~outside).any():
        raise NoFaceError(f"{source}: the face is never wholly inside the picture (in {int(detected.sum())} "
                          f"frames with a face, its brows, eyes, nose or mouth cross the frame's border)")
    landmarks[outside] = np.nan
    valid = detected & ~outside
    for first, last in _runs(~valid):
        inner = first > 0 and last < len(valid) - 1          # bounded on both sides
        if inner and last - first + 1 <= max_gap:
            w = (np.arange(first, last + 1) - (first - 1)) / (last - first + 2)
            landmarks[first:last + 1] = ((1 - w)[:, None, None] * landmarks[first - 1]
                                         + w[:, None, None] * landmarks[last + 1])
            valid[first:last + 1] = True
    track = FaceTrack(landmarks[..., :2].copy(), detected, valid, float(fps), tuple(size), landmarks[..., 2].copy(),
                      outside)
    check_upright(track, source)
    check_turn(seen, source)
    return track


def inside_picture(landmarks: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(T,) bool: every :data:`MEASURED_POINTS` landmark of the frame lies inside an (H, W) picture
    (False where no face was found)."""
    h, w = size
    pts = landmarks[:, list(MEASURED_POINTS), :2]                       # (T, n, 2) x, y in pixels
    with np.errstate(invalid="ignore"):
        ok = (pts[..., 0] >= 0) & (pts[..., 0] <= w - 1) & (pts[..., 1] >= 0) & (pts[..., 1] <= h - 1)
    return ok.all(axis=1)


#: A face whose eye line is further than this from level lies on its side or upside down in the
#: picture; the face regions and the flow are measured in an upright face's frame, so it is refused.
MAX_ROLL_DEG: float = 45.0


#: Frames (one a second, with a face) on which :func:`check_turn` asks the face detector, and
#: the margin by which another quarter turn must look more face-like than the picture as it is.
TURN_FRAMES: int = 5
TURN_MARGIN: float = 0.05


def check_turn(images: list[np.ndarray], source: str | Path = "video") -> None:
    """:class:`NoFaceError` if the face detector finds the face more face-like turned a quarter
    or a half turn than as it is (:func:`~microemo_ref.face.landmarks.turn_scores`): a face
    upside down in the picture, which FaceMesh fits as if it were upright."""
    if not images:
        return
    scores = turn_scores(images)
    best = int(np.argmax(scores))
    if best and scores[best] - scores[0] >= TURN_MARGIN:
        how = "upside down" if best == 2 else "on its side"
        raise NoFaceError(f"{source}: the face is {how} in the picture (the face detector scores it "
                          f"{scores[0]:.2f} as it is, {scores[best]:.2f} turned {90 * best} degrees); "
                          "turn the video upright first")


def check_upright(track: FaceTrack, source: str | Path = "video") -> None:
    """:class:`NoFaceError` if the tracked face is not upright in the picture (see :data:`MAX_ROLL_DEG`)."""
    roll = track.roll_deg()
    if abs(roll) > MAX_ROLL_DEG:
        raise NoFaceError(f"{source}: the face lies on its side or upside down in the picture (eye line "
                          f"{roll:.0f} degrees from level, at most {MAX_ROLL_DEG:g}); turn the video upright first")
