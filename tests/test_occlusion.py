"""Hands over the face (microemo_ref.face.occlusion): covered regions produce no events."""
import numpy as np

from microemo_ref.face.occlusion import OcclusionConfig, covered_in_frame, covered_regions
from microemo_ref.face.regions import REGIONS, region_centres
from microemo_ref.face.spotting import RegionSignal, spot_events
from microemo_ref.face.tracking import FaceTrack


def _face(width: float = 200.0) -> np.ndarray:
    """A stand-in landmark set: each region's points at its own place on a 2-D grid; the
    cheek points (234, 454) set the face width."""
    pts = np.zeros((478, 2), np.float32)
    for k, idx in enumerate(REGIONS.values()):
        pts[list(idx)] = (100 + 40 * k, 300)
    pts[234], pts[454] = (0, 300), (width, 300)
    return pts


def test_a_region_is_covered_when_its_centre_is_inside_a_hand_box():
    face = _face()
    centres = region_centres(face)
    x, y = centres["lips"]
    assert covered_in_frame(face, [(x - 5, y - 5, x + 5, y + 5)], margin=0.0) >= {"lips"}
    assert "lips" not in covered_in_frame(face, [(x + 25, y - 5, x + 35, y + 5)], margin=0.0)
    # the margin is a fraction of the face width: 0.15 x 200 px reaches 30 px out
    assert "lips" in covered_in_frame(face, [(x + 25, y - 5, x + 35, y + 5)], margin=0.15)
    assert covered_in_frame(face, [], margin=0.1) == set()


def test_covered_frames_are_widened_and_skipped_frames_bridged():
    n = 40
    track = FaceTrack(np.repeat(_face()[None], n, axis=0), np.ones(n, bool), np.ones(n, bool), 25.0, (480, 640))
    x, y = region_centres(_face())["lips"]
    seen = []

    def find(frame):  # a hand over the lips in frames 10-19
        seen.append(int(frame[0, 0, 0]))
        return [(x - 5, y - 5, x + 5, y + 5)] if 10 <= frame[0, 0, 0] < 20 else []

    frames = [np.full((4, 4, 3), t, np.uint8) for t in range(n)]
    covered = covered_regions(frames, track, OcclusionConfig(every=2, widen=2), find=find)
    assert seen == list(range(0, n, 2))  # the hand model ran on every 2nd frame only
    lips = np.flatnonzero(covered["lips"])
    assert lips[0] == 10 - 3 and lips[-1] == 18 + 3  # frames 10..18 seen covered, widened by 2 + 1
    assert not covered["brows"].any()


def test_the_spotter_drops_runs_that_touch_a_covered_frame():
    rng = np.random.default_rng(0)
    brief = 0.05 + 0.005 * rng.standard_normal(100)
    brief[50:53] = 1.0
    signals = {"lips": RegionSignal(np.full(100, 0.1), brief, np.zeros((100, 2, 2)), np.array([-1.0, 1.0]))}
    assert len(spot_events(signals, 25.0)) == 1
    hand = np.zeros(100, bool)
    hand[45:49] = True          # ends before the run's onset
    assert len(spot_events(signals, 25.0, covered={"lips": hand})) == 1
    hand[49:52] = True          # now it touches it
    assert spot_events(signals, 25.0, covered={"lips": hand}) == []
    assert len(spot_events(signals, 25.0, covered={"brows": hand})) == 1  # another region's hand does not matter


def test_near_the_candidate_runs_the_cover_is_what_looking_everywhere_gives():
    n = 120
    track = FaceTrack(np.repeat(_face()[None], n, axis=0), np.ones(n, bool), np.ones(n, bool), 25.0, (480, 640))
    x, y = region_centres(_face())["lips"]
    seen = []

    def find(frame):  # a hand over the lips in frames 20-29 and 70-99
        t = int(frame[0, 0, 0])
        seen.append(t)
        return [(x - 5, y - 5, x + 5, y + 5)] if 20 <= t < 30 or 70 <= t < 100 else []

    frames = [np.full((4, 4, 3), t, np.uint8) for t in range(n)]
    cfg = OcclusionConfig(every=2, coarse=8, widen=2)
    everywhere = covered_regions(frames, track, cfg, find=find)
    where = np.zeros(n, bool)
    where[30:34] = True  # a candidate run starting just after the first hand leaves
    seen.clear()
    asked = covered_regions(frames, track, cfg, find=find, where=where)
    assert len(seen) < n // 4  # 120 frames, the hand model ran on 20
    near = np.arange(30 - cfg.reach * 2, 34 + cfg.reach * 2)
    assert np.array_equal(asked["lips"][near], everywhere["lips"][near])  # the run is dropped alike
    assert asked["lips"][30:34].any()
    assert asked["lips"][72:96].all() and not asked["lips"][110:].any()  # the later hand is still reported


def test_run_frames_cover_every_candidate_run():
    from microemo_ref.face.spotting import run_frames

    rng = np.random.default_rng(0)
    brief = 0.05 + 0.005 * rng.standard_normal(100)
    brief[50:53] = 1.0
    signals = {"lips": RegionSignal(np.full(100, 0.1), brief, np.zeros((100, 2, 2)), np.array([-1.0, 1.0]))}
    (event,) = spot_events(signals, 25.0)
    mask = run_frames(signals)
    assert mask[50:53].all() and mask.sum() < 10
