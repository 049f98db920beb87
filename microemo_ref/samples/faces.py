"""Public-domain face photographs that installed packages already ship, and identity splits.

Nothing is downloaded. Two real photographs come with the stack:

* ``astronaut``: Eileen Collins, NASA portrait, public domain; shipped by scikit-image as
  ``skimage.data.astronaut()``.
* ``grace_hopper``: Rear Admiral Grace Hopper, U.S. Navy portrait, public domain; shipped by
  matplotlib as ``mpl-data/sample_data/grace_hopper.jpg``.

Splits are identity-disjoint (our choice, as in EMER practice): the training identity is
never a test identity. With two bundled faces that means one each; users add identities with
``--face PHOTO`` (any frontal photo), which count as ``user`` split.

A photo becomes a *canvas*: a square crop, scaled so the face is :data:`FACE_PX` wide (the
cheek-to-cheek distance, landmarks 234-454) and centred in a :data:`FRAME_PX` frame. With the
face at 256 px, amplitudes "in px at a 256-px face" (the unit of docs/design.md) are literal pixels.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from microemo_ref.face.landmarks import NoFaceError, detect_landmarks
from microemo_ref.face.regions import REFERENCE_FACE_PX, face_size_px

#: Output frame side in pixels (frames are square).
FRAME_PX: int = 384
#: Face width on the canvas, in pixels.
FACE_PX: float = REFERENCE_FACE_PX
#: Smaller faces are refused (the bundled astronaut's face is 91 px wide in its photo, upscaled 2.8x)
MIN_PHOTO_FACE_PX: float = 64.0

#: identity -> split. Identity-disjoint: never put one identity in two splits.
SPLITS: dict[str, str] = {"astronaut": "train", "grace_hopper": "test"}


@dataclass(frozen=True)
class FaceCanvas:
    """A face photo prepared for animation."""

    identity: str
    split: str
    image: np.ndarray       # (FRAME_PX, FRAME_PX, 3) uint8 RGB
    landmarks: np.ndarray   # (478, 3) float32, pixels on `image`

    @property
    def face_px(self) -> float:
        return face_size_px(self.landmarks)


def bundled_photo(identity: str) -> np.ndarray:
    """One of the bundled photographs as an RGB uint8 array."""
    if identity == "astronaut":
        from skimage import data

        return data.astronaut()
    if identity == "grace_hopper":
        import matplotlib

        path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
        return read_photo(path)
    raise KeyError(f"unknown bundled face {identity!r}; choose from {sorted(SPLITS)}")


def read_photo(path: str | Path) -> np.ndarray:
    """Read a photo file as RGB uint8; a clear error if it is missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: face photo not found")
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"{path}: not an image OpenCV can read (corrupt or unsupported format)")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def make_canvas(photo: np.ndarray, identity: str, split: str, *, source: str | Path = "photo") -> FaceCanvas:
    """Crop and scale ``photo`` so the face is FACE_PX wide and centred in a FRAME_PX square.

    Landmarks are detected on the photo, the similarity transform is applied to the photo
    (borders replicated), and the landmarks are detected again on the canvas so they match
    what the renderer will warp.
    """
    pts = detect_landmarks(photo, source=source)
    width = face_size_px(pts)
    if width < MIN_PHOTO_FACE_PX:
        raise ValueError(f"{source}: the face is only {width:.0f} px wide (cheek to cheek); a face photo needs at "
                         f"least {MIN_PHOTO_FACE_PX:g} px, or its {FACE_PX / width:.0f}x upscaling to {FACE_PX:g} px "
                         "would invent the detail the expressions are drawn in")
    scale = FACE_PX / width
    # Centre the face a little above the frame centre (eyes sit above the middle of a face box).
    centre = (pts[:, :2].min(axis=0) + pts[:, :2].max(axis=0)) / 2
    target = np.array([FRAME_PX / 2, FRAME_PX / 2 + 0.04 * FRAME_PX])
    matrix = np.array([[scale, 0.0, target[0] - scale * centre[0]],
                       [0.0, scale, target[1] - scale * centre[1]]], dtype=np.float64)
    image = cv2.warpAffine(photo, matrix, (FRAME_PX, FRAME_PX), flags=cv2.INTER_CUBIC,
                           borderMode=cv2.BORDER_REPLICATE)
    try:
        landmarks = detect_landmarks(image, source=source)
    except NoFaceError as err:  # pragma: no cover - only for very unusual photos
        raise NoFaceError(f"{source}: face lost after cropping to {FRAME_PX}px") from err
    return FaceCanvas(identity=identity, split=split, image=image, landmarks=landmarks)


def bundled_canvas(identity: str) -> FaceCanvas:
    """Canvas of a bundled identity (cached per process: FaceMesh on a photo takes ~50 ms)."""
    if identity not in _CANVAS_CACHE:
        _CANVAS_CACHE[identity] = make_canvas(bundled_photo(identity), identity, SPLITS[identity],
                                              source=identity)
    return _CANVAS_CACHE[identity]


def user_canvas(path: str | Path) -> FaceCanvas:
    """Canvas from a user's frontal face photo; the identity is the file stem, split ``user``."""
    path = Path(path)
    return make_canvas(read_photo(path), path.stem, "user", source=path)


def identities(split: str) -> list[str]:
    """Bundled identities of a split (``train``, ``test`` or ``all``)."""
    if split == "all":
        return sorted(SPLITS)
    found = sorted(k for k, v in SPLITS.items() if v == split)
    if not found:
        raise ValueError(f"no bundled identity in split {split!r}; splits: {sorted(set(SPLITS.values()))}")
    return found


_CANVAS_CACHE: dict[str, FaceCanvas] = {}
