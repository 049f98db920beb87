"""Head turns: the head's 3-D rotation from the face mesh, and the motion it fakes in 2-D.

The local branch measures facial motion in 2-D, after a *similarity* alignment (shift, scale,
in-plane rotation; :mod:`.motion`). That removes a head that slides, nods towards a shoulder or
comes closer, but not one that turns (yaw) or tips (pitch): the face is not flat, so an
out-of-plane rotation moves the nose, brows and mouth by different amounts in the image
(parallax), and no similarity undoes that. On generated clips the head only moves in the image
plane, so this never mattered; on the first real video (``data_samples/real/``) a head swinging
away from its rest pose gave a 13-s brow "macro-expression", and a head tipping down at 18.6 s a
nose "micro-expression".

FaceMesh (Kartynnik et al., 2019) regresses each point's depth as well. This module:

1. brings every frame's 3-D mesh to a common frame (centred on the stable points, scaled to a
   256-px face) and takes the clip's *rest mesh*, the per-point median over valid frames;
2. fits the rotation R_t that maps the rest mesh's stable points onto frame t's (Kabsch, 1976;
   the reflection guard of Kabsch, 1978: the orthogonal Procrustes solution by SVD), smoothed
   over a few frames within each run of frames with a face;
3. predicts the *rotation artefact*: the rest mesh rotated by R_t, projected orthographically,
   aligned back onto the rest by a 2-D similarity on the stable points (the motion step's first
   alignment), minus the rest. It is how far each landmark would appear to move if the face
   were rigid and only the head turned (px at a 256-px face, the unit of the region signals).

   It is an index of how much a turn deforms the face, not an exact model of the measurement:
   the motion step's last correction is a similarity fitted to the flow of its anchor patches
   (nose bridge and forehead), which leaves 2-4x more in the mouth and lids and less in the inner
   brows. Modelled that way, FaceMesh's expression-driven rotation noise is amplified as much:
   the gate changed the events of 20 of the 48 generated held-out clips (real smiles and lid
   movements dropped) and kept the nose event at 18.6 s on the real clip.

**Our rule** (the gate; :func:`microemo_ref.face.spotting.spot_events`, ``head=``): a region's
run is dropped when, between its onset (the first frame with a face) and any frame up to its
offset, the rotation artefact of that region changes by at least ``head_ratio`` (0.5) of the
run's own rise *and* by at least ``head_min_px`` (1 px at a 256-px face). Roll (in-plane) is
removed by the alignment and produces no artefact. The rule is deliberately conservative: the
spotter's transient channel (distance from a running median) cannot see a steady turn, yet its
runs are gated by the artefact's whole change, so a brief movement during a turn is distrusted
too. Gated by the high-passed artefact instead, the nose "micro" at 18.6 s, which the frames
show is the head tipping, survives.

The floor is there because the mesh is an estimate that expressions move too: on generated
clips, where the head never leaves the image plane, brow raises shift the fitted rotation
enough to fake up to 0.86 px of brow motion in the runs inspected (without the floor, 10 of 48
held-out clips lost a brow region). The forehead top (point 10), which a brow raise drags, is
left out of the fit for the same reason (0.95 px with it). See notebook 11 and
``tests/test_head_pose.py``.
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import uniform_filter1d

from microemo_ref.face.landmarks import similarity_matrix
from microemo_ref.face.regions import REFERENCE_FACE_PX, REGIONS, STABLE_POINTS, face_size_px
from microemo_ref.face.tracking import FaceTrack, _runs, mask_spans

#: A head turned further than this from its rest pose is named in the notes (degrees).
TURN_DEG: float = 10.0
#: Points for the rotation fit: the stable points less the forehead top (10), which a brow raise drags.
POSE_POINTS: tuple[int, ...] = tuple(i for i in STABLE_POINTS if i != 10)


def kabsch(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The rotation R (3, 3) that best maps centred points ``source`` (N, 3) onto centred
    ``target`` (N, 3), R @ p ~ q, in the least-squares sense, without reflection."""
    u, _, vt = np.linalg.svd(source.T @ target)
    flip = np.diag([1.0, 1.0, np.sign(np.linalg.det(vt.T @ u.T))])
    return vt.T @ flip @ u.T


def normalised_mesh(track: FaceTrack) -> np.ndarray:
    """(T, 478, 3) the 3-D mesh per frame, centred on the stable points and scaled to a
    256-px face (the cheek-to-cheek width in the image); NaN where the face is invalid."""
    if track.depth is None:
        raise ValueError("this track has no depth: track it with face.tracking.track_face")
    mesh = np.full((track.n_frames, *track.landmarks.shape[1:2], 3), np.nan)
    stable = list(STABLE_POINTS)
    for t in np.flatnonzero(track.valid):
        p = np.concatenate([track.landmarks[t], track.depth[t][:, None]], axis=1).astype(np.float64)
        mesh[t] = (p - p[stable].mean(axis=0)) * (REFERENCE_FACE_PX / face_size_px(p))
    return mesh


def head_rotations(track: FaceTrack, smooth_frames: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """The rest mesh (478, 3) and each frame's rotation from it, (T, 3, 3) (NaN where invalid),
    averaged over ``smooth_frames`` frames and made orthogonal again (nearest rotation, by SVD)."""
    mesh = normalised_mesh(track)
    valid = track.valid
    rest = np.nanmedian(mesh[valid], axis=0)
    stable = list(POSE_POINTS)
    src = rest[stable] - rest[stable].mean(axis=0)
    rot = np.full((track.n_frames, 3, 3), np.nan)
    for t in np.flatnonzero(valid):
        dst = mesh[t, stable] - mesh[t, stable].mean(axis=0)
        rot[t] = kabsch(src, dst)
    for first, last in _runs(valid) if smooth_frames > 1 else ():   # never across a lost face
        run = slice(first, last + 1)
        rot[run] = uniform_filter1d(rot[run], size=min(smooth_frames, last - first + 1), axis=0, mode="nearest")
        for t in range(first, last + 1):
            u, _, vt = np.linalg.svd(rot[t])
            rot[t] = u @ vt
    return rest, rot


def euler_deg(rot: np.ndarray) -> np.ndarray:
    """(T, 3) yaw (about the image's vertical axis), pitch (about its horizontal axis) and roll
    (in the image plane), degrees, reading each rotation (T, 3, 3) as Rz(roll) Rx(pitch) Ry(yaw);
    for plots and notes."""
    yaw = np.degrees(np.arctan2(-rot[:, 2, 0], rot[:, 2, 2]))
    pitch = np.degrees(np.arcsin(np.clip(rot[:, 2, 1], -1, 1)))
    roll = np.degrees(np.arctan2(-rot[:, 0, 1], rot[:, 1, 1]))
    return np.stack([yaw, pitch, roll], axis=1)


def turn_deg(rot: np.ndarray) -> np.ndarray:
    """(T,) how far the face points away from its rest direction, degrees: the angle between
    the rest and the rotated forward (depth) axis. Yaw and pitch count, roll does not."""
    return np.degrees(np.arccos(np.clip(rot[:, 2, 2], -1, 1)))


def turned_spans(rot: np.ndarray, fps: float, min_deg: float = TURN_DEG) -> list[tuple[float, float]]:
    """Spans (seconds) where the head is turned more than ``min_deg`` from its rest direction."""
    return mask_spans(np.nan_to_num(turn_deg(rot)) > min_deg, fps)


def rotation_artefact(rest: np.ndarray, rot: np.ndarray) -> dict[str, np.ndarray]:
    """Per region, (T, n, 2): the apparent 2-D motion of its landmarks that the head's rotation
    alone causes after a similarity alignment on the stable points (module docstring, step 3),
    px at a 256-px face. ``rest``, ``rot``: from :func:`head_rotations`; frames with a NaN
    rotation stay NaN."""
    stable = list(STABLE_POINTS)
    flat = rest[:, :2]
    out = {region: np.full((len(rot), len(idx), 2), np.nan) for region, idx in REGIONS.items()}
    for t in np.flatnonzero(np.isfinite(rot[:, 0, 0])):
        seen = (rest @ rot[t].T)[:, :2]                     # rotate, then drop depth (orthographic)
        m = similarity_matrix(seen[stable], flat[stable])
        shift = seen @ m[:, :2].T + m[:, 2] - flat           # (478, 2) what the 2-D alignment leaves
        for region, idx in REGIONS.items():
            out[region][t] = shift[list(idx)]
    return out


def artefact_change(artefact: np.ndarray, onset: int, offset: int) -> float:
    """How far a region's rotation artefact (T, n, 2) moves between ``onset`` (or the first
    frame after it with a face) and any frame up to ``offset``: the largest RMS over its
    landmarks of the change, px at a 256-px face; 0 with no face in the span."""
    seg = artefact[onset:offset + 1]
    seen = seg[np.isfinite(seg).all(axis=(1, 2))]
    if len(seen) == 0:
        return 0.0
    return float(np.sqrt(((seen - seen[0]) ** 2).sum(axis=-1).mean(axis=-1)).max())


def explained_by_head(artefact: np.ndarray, onset: int, offset: int, rise: float, ratio: float,
                      min_px: float) -> bool:
    """The gate: True when a rigid head turn accounts for at least ``ratio`` of a run's ``rise``
    and fakes at least ``min_px`` (below that, expressions alone move the estimate as much)."""
    change = artefact_change(artefact, onset, offset)
    return change >= min_px and change >= ratio * rise


__all__ = ["POSE_POINTS", "TURN_DEG", "artefact_change", "euler_deg", "explained_by_head", "head_rotations",
           "kabsch", "normalised_mesh", "rotation_artefact", "turn_deg", "turned_spans"]
