"""Hands over the face: which facial regions are covered, frame by frame.

FaceMesh goes on placing its 478 points when a hand covers the mouth, and the optical flow in
a covered region is then the hand's motion, not the face's. The generated faces are never
covered; the first real video run through the pipeline (``data_samples/real/``, a hand over
the mouth and nose for about 4 s) gave four "micro-expressions" that were the hand moving.

This module finds hands with MediaPipe Hands (palm detection, then 21 hand landmarks; Zhang
et al., 2020, "MediaPipe Hands: On-device Real-time Hand Tracking"), through the legacy
``solutions`` API of mediapipe 0.10.21, whose wheel ships the model files. **Our rule**: a
facial region is *covered* in a frame when its centre lies inside a hand's box (the extent of
its 21 points, widened by ``margin`` of the face width). The spotter drops a region's runs that
touch a covered frame (:func:`microemo_ref.face.spotting.spot_events`, ``covered=``), so the
hand model (about 13-20 ms a frame on a 2-core CPU) is needed only around the spotter's
candidate runs (``where``, from :func:`~microemo_ref.face.spotting.run_frames`): there it runs
on every ``every``-th frame, and covered runs are widened to bridge the frames between; the
events are then what running it everywhere would give. Elsewhere it runs on every
``coarse``-th frame only, enough to report where a hand is over the face. The region signals, their rest
shape and thresholds, and the model's dynamics are left as they are: a hand held still over the
mouth for most of a clip could still shift the rest shape (not handled).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from microemo_ref.face.landmarks import NativeLogs
from microemo_ref.face.regions import REGIONS, face_size_px, region_centres
from microemo_ref.face.tracking import FaceTrack, dilate, mask_spans

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels


@dataclass(frozen=True)
class OcclusionConfig:
    every: int = 2              # run the hand model on every n-th frame where the spotter asks
    coarse: int = 8             # and on every n-th frame elsewhere (the hand_over_face note)
    margin: float = 0.1         # widen each hand box by this fraction of the face width
    widen: int = 2              # frames added on each side of a covered run (besides the skipped ones)
    min_confidence: float = 0.5

    def __post_init__(self):
        if self.every < 1 or self.coarse < 1 or self.widen < 0:
            raise ValueError(f"need every >= 1, coarse >= 1 and widen >= 0, got every={self.every}, "
                             f"coarse={self.coarse}, widen={self.widen}")

    @property
    def reach(self) -> int:
        """Frames a covered frame is widened by, where the hand model runs on every ``every``-th."""
        return self.widen + self.every - 1


class HandFinder:
    """A thin wrapper around ``mediapipe.solutions.hands.Hands`` (video mode, two hands,
    the light model) returning each hand's box in pixels."""

    def __init__(self, min_confidence: float = 0.5):
        import mediapipe as mp  # imported lazily, as in face.landmarks

        NativeLogs.enter()  # until close(), as FaceMesh
        self._hands = mp.solutions.hands.Hands(static_image_mode=False, max_num_hands=2, model_complexity=0,
                                               min_detection_confidence=min_confidence)
        self._open = True

    def __call__(self, rgb: np.ndarray) -> list[Box]:
        result = self._hands.process(np.ascontiguousarray(rgb))
        h, w = rgb.shape[:2]
        boxes = []
        for hand in result.multi_hand_landmarks or []:
            xy = np.array([(p.x * w, p.y * h) for p in hand.landmark])  # (21, 2)
            boxes.append((*xy.min(axis=0), *xy.max(axis=0)))
        return boxes

    def close(self) -> None:
        if self._open:
            self._hands.close()
            self._open = False
            NativeLogs.exit()

    def __enter__(self) -> HandFinder:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def covered_in_frame(landmarks: np.ndarray, boxes: list[Box], margin: float) -> set[str]:
    """The regions whose centre lies inside one of ``boxes`` (widened by ``margin`` x face width)."""
    m = margin * face_size_px(landmarks)
    return {region for region, (x, y) in region_centres(landmarks).items()
            for x0, y0, x1, y1 in boxes if x0 - m <= x <= x1 + m and y0 - m <= y <= y1 + m}


def covered_regions(frames: Iterable[np.ndarray], track: FaceTrack, cfg: OcclusionConfig = OcclusionConfig(),
                    find: Callable[[np.ndarray], list[Box]] | None = None,
                    where: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """(T,) bool per region: frames where a hand covers it. ``frames``: the track's RGB frames
    again; ``find``: a hand finder (default :class:`HandFinder`; tests pass their own);
    ``where``: (T,) bool frames whose cover decides something (the spotter's candidate runs),
    looked at closely; None: every frame is."""
    n = track.n_frames
    near = np.ones(n, bool) if where is None else dilate(where[:n], cfg.reach)  # hands here reach `where`
    close = {region: np.zeros(n, bool) for region in REGIONS}  # found on every `every`-th frame near
    sparse = {region: np.zeros(n, bool) for region in REGIONS}  # on every `coarse`-th frame elsewhere
    finder = find or HandFinder(cfg.min_confidence)
    try:
        for t, frame in enumerate(frames):
            if t >= n:      # a decoder that yields one frame more the second time
                break
            if not track.valid[t] or (t % cfg.every if near[t] else t % cfg.coarse):
                continue
            boxes = finder(frame)
            for region in covered_in_frame(track.landmarks[t], boxes, cfg.margin) if boxes else ():
                (close if near[t] else sparse)[region][t] = True
    finally:
        if find is None:
            finder.close()
    return {region: dilate(close[region], cfg.reach) | (dilate(sparse[region], cfg.widen + cfg.coarse - 1) & ~near)
            for region in REGIONS}


def covered_spans(covered: dict[str, np.ndarray], fps: float) -> list[tuple[float, float]]:
    """Spans (seconds) where a hand covers any region."""
    anywhere = np.any(list(covered.values()), axis=0) if covered else np.zeros(0, bool)
    return mask_spans(anywhere, fps)


__all__ = ["HandFinder", "OcclusionConfig", "covered_in_frame", "covered_regions", "covered_spans"]
