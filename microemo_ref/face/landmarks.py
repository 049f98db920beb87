"""MediaPipe FaceMesh landmarks: 478 points per face, in pixels.

FaceMesh (Kartynnik et al., 2019) regresses a 468-point 3-D face mesh from a face crop; the
"refined" model adds 10 iris points (478 in all). We use the legacy ``solutions.face_mesh``
API of mediapipe 0.10.21, whose wheel ships the model files, so nothing is downloaded.

Two modes, as in MediaPipe itself:

* ``static=True``: every image is detected from scratch (photos, single frames);
* ``static=False``: video mode, where the mesh of the previous frame seeds the next one
  (faster and less jittery; frames must then be fed in order).

Several faces: we keep the largest (widest landmark box); ties go to the one nearest the
image centre. This keeps the choice deterministic.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

N_LANDMARKS: int = 478


class NativeLogs:
    """Process-wide silencer of what MediaPipe's C++ and TFLite write straight to file
    descriptor 2 ("Created TensorFlow Lite XNNPACK delegate", "Feedback manager requires ...",
    written from the graphs' own threads while they run). While any graph is open, fd 2 goes
    to /dev/null and Python's ``sys.stderr`` is pointed at the real stderr, so Python warnings
    and errors still show. Reference-counted: graphs may be opened inside one another.
    ``MICROEMO_NATIVE_LOGS=1`` keeps the native lines."""

    depth = 0
    saved: int | None = None
    python_stderr = None

    @classmethod
    def enter(cls) -> None:
        if os.environ.get("MICROEMO_NATIVE_LOGS") == "1":
            return
        if cls.depth == 0:
            sys.stderr.flush()
            cls.saved = os.dup(2)
            cls.python_stderr = None
            if _writes_to_fd2(sys.stderr):  # a terminal or file, not a notebook's stream
                cls.python_stderr = sys.stderr
                sys.stderr = os.fdopen(os.dup(cls.saved), "w", buffering=1, closefd=True)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.close(devnull)
        cls.depth += 1

    @classmethod
    def exit(cls) -> None:
        if os.environ.get("MICROEMO_NATIVE_LOGS") == "1" or cls.depth == 0:
            return
        cls.depth -= 1
        if cls.depth == 0:
            if cls.python_stderr is not None:
                sys.stderr.flush()
                sys.stderr.close()
                sys.stderr = cls.python_stderr
            os.dup2(cls.saved, 2)
            os.close(cls.saved)
            cls.saved = None


def _writes_to_fd2(stream) -> bool:
    try:
        return stream.fileno() == 2
    except (AttributeError, OSError, ValueError):
        return False


class NoFaceError(ValueError):
    """Raised when no face is found where one is required."""


class FaceMesh:
    """A thin, deterministic wrapper around ``mediapipe.solutions.face_mesh.FaceMesh``.

    Use as a context manager, or call :meth:`close` when done::

        with FaceMesh(static=True) as fm:
            pts = fm.landmarks(image)        # (478, 3): x, y in px, z in px-like units
    """

    def __init__(self, *, static: bool = True, max_faces: int = 3, min_confidence: float = 0.5):
        import mediapipe as mp  # imported lazily: it is slow to import and logs to stderr

        self.static = static
        NativeLogs.enter()  # until close(): the graph's threads log while it runs
        self._mesh = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=static,
            max_num_faces=max_faces,
            refine_landmarks=True,
            min_detection_confidence=min_confidence,
            min_tracking_confidence=min_confidence,
        )
        self._open = True

    def landmarks(self, image: np.ndarray) -> np.ndarray | None:
        """Landmarks of the chosen face in an RGB uint8 image, (478, 3), or None if no face."""
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an RGB uint8 image (H, W, 3), got {image.dtype} {image.shape}")
        h, w = image.shape[:2]
        result = self._mesh.process(np.ascontiguousarray(image))
        if not result.multi_face_landmarks:
            return None
        faces = [
            np.array([(p.x * w, p.y * h, p.z * w) for p in face.landmark], dtype=np.float32)
            for face in result.multi_face_landmarks
        ]
        return choose_face(faces, (h, w))

    def close(self) -> None:
        if self._open:
            self._mesh.close()
            self._open = False
            NativeLogs.exit()

    def __enter__(self) -> "FaceMesh":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def turn_scores(images: list[np.ndarray]) -> np.ndarray:
    """(4,) how face-like each quarter turn of the images looks: for k = 0..3, the median over
    ``images`` of the best face score of MediaPipe's face detector (BlazeFace, Bazarevsky et al.,
    2019, short-range model) on the image turned ``k`` quarter turns counter-clockwise.

    FaceMesh alone cannot tell an upside-down face: it fits an upright mesh to it (on the
    generated samples the "mouth" lands on the forehead), and the mesh's eye line is level. The
    detector, trained on upright faces, scores the upright turn highest: on the bundled samples
    and real clips 0.87-0.95 upright against at most 0.86 for any other turn, and an upside-down
    face the other way round (0.59-0.66 as it is, 0.88-0.93 turned upright)."""
    import mediapipe as mp

    if not images:
        return np.zeros(4)
    scores = np.zeros((len(images), 4))
    NativeLogs.enter()
    try:
        with mp.solutions.face_detection.FaceDetection(model_selection=0, min_detection_confidence=0.05) as fd:
            for i, image in enumerate(images):
                for k in range(4):
                    found = fd.process(np.ascontiguousarray(np.rot90(image, k))).detections or []
                    scores[i, k] = max((d.score[0] for d in found), default=0.0)
    finally:
        NativeLogs.exit()
    return np.median(scores, axis=0)


def choose_face(faces: list[np.ndarray], image_hw: tuple[int, int]) -> np.ndarray:
    """The largest face (landmark-box width); ties broken by distance to the image centre."""
    centre = np.array([image_hw[1] / 2, image_hw[0] / 2])

    def key(f: np.ndarray) -> tuple[float, float]:
        width = float(np.ptp(f[:, 0]))
        dist = float(np.linalg.norm(f[:, :2].mean(axis=0) - centre))
        return (-round(width, 1), dist)

    return sorted(faces, key=key)[0]


def detect_landmarks(image: np.ndarray, *, source: str | Path = "image") -> np.ndarray:
    """Landmarks (478, 3) of the main face in one RGB image; :class:`NoFaceError` if none.

    ``source`` only names the image in the error message.
    """
    with FaceMesh(static=True) as fm:
        pts = fm.landmarks(image)
    if pts is None:
        raise NoFaceError(f"{source}: no face found by MediaPipe FaceMesh")
    return pts


def similarity_matrix(points: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """The 2x3 similarity transform (scale, rotation, translation) that maps ``points`` (N, 2)
    onto ``reference`` (N, 2) with the least squared error (Procrustes / Umeyama, 1991)."""
    p_mean, q_mean = points.mean(axis=0), reference.mean(axis=0)
    pc, qc = points - p_mean, reference - q_mean
    u, s, vt = np.linalg.svd(pc.T @ qc)
    flip = np.diag([1.0, np.sign(np.linalg.det(vt.T @ u.T))])   # no reflections
    rot = vt.T @ flip @ u.T
    scale = (s * np.diag(flip)).sum() / (pc**2).sum()
    a = scale * rot
    return np.hstack([a, (q_mean - a @ p_mean)[:, None]])


def similarity_align(points: np.ndarray, reference: np.ndarray, anchors: list[int] | tuple[int, ...]) -> np.ndarray:
    """Map ``points`` (N, 2+) onto ``reference`` with the similarity transform fitted on the
    ``anchors`` only. Removes rigid head motion before looking at facial motion."""
    m = similarity_matrix(points[list(anchors), :2], reference[list(anchors), :2])
    return points[:, :2] @ m[:, :2].T + m[:, 2]
