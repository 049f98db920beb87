"""Head turns (microemo_ref.face.head_pose): the rotation fit, the motion a turn fakes, the gate."""
import numpy as np
import pytest

from microemo_ref.face.head_pose import (artefact_change, euler_deg, head_rotations, kabsch, rotation_artefact,
                                         turn_deg, turned_spans)
from microemo_ref.face.landmarks import detect_landmarks
from microemo_ref.face.spotting import RegionSignal, spot_events
from microemo_ref.face.tracking import FaceTrack
from microemo_ref.samples.faces import bundled_photo


def _rot(yaw=0.0, pitch=0.0, roll=0.0) -> np.ndarray:
    """R = Rz(roll) @ Rx(pitch) @ Ry(yaw), degrees (the convention euler_deg reads back)."""
    y, p, r = np.radians([yaw, pitch, roll])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return rz @ rx @ ry


@pytest.fixture(scope="module")
def mesh() -> np.ndarray:
    """A real FaceMesh mesh (478, 3) of a bundled photo, centred."""
    pts = detect_landmarks(bundled_photo("astronaut")).astype(np.float64)
    return pts - pts.mean(axis=0)


def _track(mesh: np.ndarray, rotations: list[np.ndarray], shift=(320.0, 240.0), scale=1.0) -> FaceTrack:
    """A track of the rigid mesh seen under each rotation (orthographic camera); ``shift``
    (2,) or (T, 2) and ``scale`` () or (T,) move and zoom it in the image."""
    n = len(rotations)
    scale = np.broadcast_to(np.asarray(scale, float), (n,))
    seen = np.stack([k * mesh @ r.T for k, r in zip(scale, rotations)])          # (T, 478, 3)
    shift = np.broadcast_to(np.asarray(shift, float), (n, 2))
    return FaceTrack((seen[..., :2] + shift[:, None]).astype(np.float32), np.ones(n, bool), np.ones(n, bool), 25.0,
                     (480, 640), seen[..., 2].astype(np.float32))


def test_kabsch_recovers_a_rotation_and_euler_reads_its_angles():
    rng = np.random.default_rng(0)
    p = rng.standard_normal((20, 3))
    p -= p.mean(axis=0)
    r = _rot(yaw=12.0, pitch=-7.0, roll=25.0)
    np.testing.assert_allclose(kabsch(p, p @ r.T), r, atol=1e-9)
    np.testing.assert_allclose(euler_deg(r[None])[0], [12.0, -7.0, 25.0], atol=1e-6)
    assert np.linalg.det(kabsch(p, -p)) > 0          # a reflection is never returned


def _artefact(track: FaceTrack) -> dict[str, np.ndarray]:
    return rotation_artefact(*head_rotations(track, smooth_frames=1))


def test_a_turn_fakes_motion_but_a_roll_a_shift_or_a_zoom_do_not(mesh):
    still = [_rot()] * 10
    turn = [_rot(yaw=a) for a in np.linspace(0, 12, 10)]
    roll = [_rot(roll=a) for a in np.linspace(0, 20, 10)]
    for rotations in (still, roll):
        art = _artefact(_track(mesh, rotations))
        assert max(artefact_change(a, 0, 9) for a in art.values()) < 1e-3, "the 2-D alignment undoes in-plane motion"
    moving = np.stack([np.linspace(100, 180, 10), np.linspace(50, 20, 10)], axis=1)   # slides and comes closer
    art = _artefact(_track(mesh, still, shift=moving, scale=np.linspace(1.0, 1.3, 10)))
    assert max(artefact_change(a, 0, 9) for a in art.values()) < 1e-3
    # A 12-degree turn: FaceMesh's depth gives the face relief, so the regions move apart by
    # several pixels at a 256-px face (micro-expressions move them by 1-3 px).
    art = _artefact(_track(mesh, turn))
    assert artefact_change(art["nose"], 0, 9) > 2.0
    _, rot = head_rotations(_track(mesh, turn), smooth_frames=1)
    yaw = euler_deg(rot)[:, 0]
    np.testing.assert_allclose(yaw - yaw[0], np.linspace(0, 12, 10), atol=0.1)
    # the rest pose is the median mesh (6 degrees here): the turn is measured from it, roll aside
    _, rot = head_rotations(_track(mesh, [_rot(yaw=a, roll=15) for a in np.linspace(0, 12, 10)]), smooth_frames=1)
    np.testing.assert_allclose(turn_deg(rot), np.abs(np.linspace(0, 12, 10) - 6.0), atol=0.2)
    assert turned_spans(rot, 25.0, min_deg=5.0) == [(0.0, 0.04), (0.36, 0.4)]


def test_smoothing_never_crosses_a_lost_face(mesh):
    track = _track(mesh, [_rot()] * 5 + [_rot(yaw=15)] * 5)
    track.valid[5] = False
    _, rot = head_rotations(track, smooth_frames=5)
    np.testing.assert_allclose(euler_deg(rot[[4, 6]])[:, 0] - euler_deg(rot[[0]])[0, 0], [0.0, 15.0], atol=1e-3)


def test_the_spotter_drops_a_run_that_a_head_turn_explains():
    rng = np.random.default_rng(0)
    brief = 0.05 + 0.005 * rng.standard_normal(100)
    brief[50:53] = 3.0                                  # a run rising by about 2.95 px
    signals = {"nose": RegionSignal(np.full(100, 0.1), brief, np.zeros((100, 4, 2)), np.ones(4))}
    assert len(spot_events(signals, 25.0)) == 1
    art = np.zeros((100, 4, 2))
    art[50:53, :, 0] = 1.2                              # it fakes 1.2 px: less than half the rise
    assert len(spot_events(signals, 25.0, head={"nose": art})) == 1
    art[50:53, :, 0] = 2.0                              # 2 px: more than half
    assert spot_events(signals, 25.0, head={"nose": art}) == []
    assert len(spot_events(signals, 25.0, head={"lips": art})) == 1   # another region's artefact does not matter
    # Below the floor a turn is not trusted, however small the run: expressions alone move
    # FaceMesh's rotation estimate that much.
    brief[50:53] = 1.0
    art[50:53, :, 0] = 0.8
    assert len(spot_events(signals, 25.0, head={"nose": art})) == 1


def test_a_run_starting_after_a_lost_face_is_still_gated():
    rng = np.random.default_rng(0)
    level = 0.05 + 0.005 * rng.standard_normal(100)
    level[:45] = np.nan                                 # the face is lost up to frame 44
    brief = level.copy()
    brief[45:48] = 3.0                                  # a flash as the face comes back: its start is unseen
    signals = {"nose": RegionSignal(np.full(100, 0.1), brief, np.zeros((100, 4, 2)), np.ones(4))}
    assert spot_events(signals, 25.0) == []             # cut short by the lost face: not called micro
    level[45:65] = 3.0                                  # 0.8 s held as the face comes back: a macro event
    signals = {"nose": RegionSignal(level, np.full(100, 0.05), np.zeros((100, 4, 2)), np.ones(4))}
    assert [e.type for e in spot_events(signals, 25.0)] == ["macro"]
    art = np.full((100, 4, 2), np.nan)
    art[45:] = 0.0
    assert len(spot_events(signals, 25.0, head={"nose": art})) == 1   # a still head explains nothing
    art[46:66, :, 0] = 3.0                              # the head is turned as the face comes back
    assert spot_events(signals, 25.0, head={"nose": art}) == []       # (the run's onset is a lost frame)
