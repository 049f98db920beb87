"""Facial regions of interest as sets of MediaPipe FaceMesh landmark indices.

MicroEmo's local branch looks at small facial regions where micro-expressions show
(brows, lids, nose wings, mouth). The paper does not list them; we place them on the
478-point FaceMesh topology (Kartynnik et al., 2019, "Real-time Facial Surface Geometry from
Monocular Video on Mobile GPUs"; the refined model adds 10 iris points). The indices below are
the ones commonly used for these parts of the MediaPipe FaceMesh topology; the grouping into
regions is our choice.

Sides: ``l`` and ``r`` are the *image* left and right (the person's right and left when they
face the camera). FaceMesh itself names them from the person's point of view.

The same region names are used by the sample generator (to plant motion) and by the spotter
(to measure it), so that ground truth and predictions speak one vocabulary.
"""
from __future__ import annotations

import numpy as np

#: Region name -> FaceMesh landmark indices.
REGIONS: dict[str, tuple[int, ...]] = {
    # Outer and middle brow points (AU2 raises them, AU4 lowers them).
    "brows": (63, 105, 66, 296, 334, 293),
    # Inner brow heads (AU1 lifts them, AU4 pulls them down and together).
    "inner_brows": (107, 55, 336, 285),
    # Upper and lower eyelids (blinks, AU5 lid raise, AU6/AU7 cheek raise and lid tighten).
    "lids": (159, 158, 160, 145, 144, 153, 386, 385, 387, 374, 373, 380),
    # Nose wings (AU9 nose wrinkle).
    "nose": (98, 327, 129, 358),
    # Mouth corners (AU12 pull, AU14 dimple, AU15 depress, AU20 stretch).
    "mouth_corners": (61, 291),
    # Lip centre line, outer and inner (AU23/24 press, AU25/26 part and drop).
    "lips": (0, 13, 14, 17),
}

#: Points that barely move with expressions: the nose bridge (reference for head motion).
NOSE_BRIDGE: tuple[int, ...] = (6, 197, 5)
#: Points that expressions, blinks and speech hardly move (nose, inner eye corners, temples,
#: forehead): anchors for removing head motion from landmark tracks.
STABLE_POINTS: tuple[int, ...] = (6, 197, 5, 4, 1, 133, 362, 234, 454, 10, 127, 356, 168)
#: Inner eye corners (a face-scale measure that expressions hardly change).
INNER_EYE_CORNERS: tuple[int, int] = (133, 362)
#: Cheek points at the widest part of the face: their distance is our face size.
FACE_WIDTH_POINTS: tuple[int, int] = (234, 454)
#: Upper / lower eyelid centres, image-left eye then image-right eye (eye opening, blinks).
UPPER_LIDS: tuple[int, ...] = (159, 158, 160, 386, 385, 387)
LOWER_LIDS: tuple[int, ...] = (145, 144, 153, 374, 373, 380)

#: Reference face size. Amplitudes "in px at a 256-px face" are relative to this width.
REFERENCE_FACE_PX: float = 256.0


def face_size_px(landmarks: np.ndarray) -> float:
    """Face width in pixels: the distance between the two cheek points (234, 454).

    ``landmarks`` is (478, 2) or (478, 3) in pixels.
    """
    a, b = FACE_WIDTH_POINTS
    return float(np.linalg.norm(landmarks[a, :2] - landmarks[b, :2]))


def eye_opening_px(landmarks: np.ndarray) -> float:
    """Mean vertical gap between the upper and lower lid centres of both eyes, in pixels."""
    upper = landmarks[[159, 386], :2]
    lower = landmarks[[145, 374], :2]
    return float(np.linalg.norm(upper - lower, axis=1).mean())


def region_centres(landmarks: np.ndarray) -> dict[str, np.ndarray]:
    """Mean (x, y) of each region's landmarks, in pixels."""
    return {name: landmarks[list(idx), :2].mean(axis=0) for name, idx in REGIONS.items()}
