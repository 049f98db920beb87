"""The local facial branch: planted events are found where they are, and nothing else is."""
from __future__ import annotations

import json

import numpy as np
import pytest

from microemo_ref.cli import main
from microemo_ref.config import DATA_SAMPLES
from microemo_ref.face.landmarks import NoFaceError
from microemo_ref.face.local_branch import extract_local, extract_local_frames
from microemo_ref.face.spotting import dynamics_tensor
from microemo_ref.io.video import write_video
from microemo_ref.samples.expressions import ExpressionEvent
from microemo_ref.samples.faces import bundled_canvas
from microemo_ref.samples.warp import FaceAnimator, RenderConfig, render_sequence

N = 90


def _render(identity: str, events, *, blinks=(), seed: int = 3, cfg: RenderConfig = RenderConfig()):
    animator = FaceAnimator(bundled_canvas(identity), cfg)
    frames, _ = render_sequence(animator, list(events), N, 25, np.random.default_rng(seed), blinks=list(blinks))
    return frames


@pytest.mark.slow
@pytest.mark.parametrize("identity,emotion,region", [
    ("astronaut", "angry", "inner_brows"),
    ("grace_hopper", "sad", "inner_brows"),
    ("grace_hopper", "contempt", "mouth_corners"),
])
def test_planted_micro_expression_is_spotted_at_its_frames(identity, emotion, region):
    # A 2-px micro-expression with onset 37, apex 40, offset 44 (0.32 s), head motion, noise
    # and a blink elsewhere in the clip.
    planted = ExpressionEvent("micro", emotion, onset=37, apex=40, offset=44, amplitude=2.0)
    blink = ExpressionEvent("blink", "neutral", 70, 71, 73, 0.95)
    ev = extract_local_frames(_render(identity, [planted], blinks=[blink]), 25.0)
    assert len(ev.events) == 1, [e.to_json(25) for e in ev.events]
    found = ev.events[0]
    assert found.type == "micro"
    assert abs(found.apex - 40) <= 2 and abs(found.onset - 37) <= 2 and abs(found.offset - 44) <= 2
    assert region in found.regions


@pytest.mark.slow
def test_planted_macro_expression_is_spotted():
    planted = ExpressionEvent("macro", "happy", onset=20, apex=28, offset=65, amplitude=5.0, hold_end=56)
    ev = extract_local_frames(_render("astronaut", [planted]), 25.0)
    assert len(ev.events) == 1
    found = ev.events[0]
    assert found.type == "macro" and abs(found.onset - 20) <= 3 and abs(found.offset - 65) <= 3
    assert {"lids", "mouth_corners"} & set(found.regions)


@pytest.mark.slow
@pytest.mark.parametrize("identity", ["astronaut", "grace_hopper"])
def test_no_events_under_pure_global_motion(identity):
    """Twice the generator's head motion, pixel noise and two blinks: no event at all."""
    cfg = RenderConfig(head_shift_px=5.0, head_rot_deg=2.5)
    blinks = [ExpressionEvent("blink", "neutral", 25, 26, 28, 1.0), ExpressionEvent("blink", "neutral", 60, 62, 64, 0.9)]
    ev = extract_local_frames(_render(identity, [], blinks=blinks, cfg=cfg), 25.0)
    assert ev.events == []
    assert ev.motion.blink[26] and ev.motion.blink[62]


def test_no_face_anywhere_is_a_clear_error(tmp_path):
    path = write_video(tmp_path / "wall.mp4", np.full((10, 64, 64, 3), 128, np.uint8), 25)
    with pytest.raises(NoFaceError, match="wall.mp4.*no face"):
        extract_local(path)


@pytest.mark.slow
def test_lost_face_spans_are_flagged_and_silent():
    planted = ExpressionEvent("micro", "angry", onset=47, apex=50, offset=54, amplitude=2.5)
    frames = _render("astronaut", [planted])
    frames[40:62] = 128                    # the face is gone while the micro-expression plays
    ev = extract_local_frames(frames, 25.0)
    assert not ev.track.valid[45:58].any()
    lost = ev.lost_spans()
    assert len(lost) == 1 and lost[0][0] <= 41 / 25 and lost[0][1] >= 60 / 25
    assert all(e.offset < 40 or e.onset > 61 for e in ev.events)


def test_dynamics_tensor_is_fixed_size():
    from microemo_ref.face.spotting import RegionSignal

    t = 137
    sig = RegionSignal(np.linspace(0, 1, t), np.zeros(t), np.zeros((t, 2, 2)), np.array([-1.0, 1.0]))
    out = dynamics_tensor({"a": sig, "b": sig}, 32)
    assert out.shape == (2, 32, 4) and out.dtype == np.float32
    assert out[0, 0, 0] < 0.05 and out[0, -1, 0] > 0.95      # time order kept


def test_asymmetry_tells_one_corner_from_both():
    """The 4th dynamics feature: a pull of the image-right corner alone (contempt) gives its full
    offset, the same pull on both corners (a smile) gives 0, and so does a centre-line region."""
    from microemo_ref.face.spotting import DYNAMICS_FEATURES, RegionSignal, side_asymmetry

    t = 10
    one = np.zeros((t, 2, 2))
    one[5:, 1] = (0.6, -0.8)                                   # 1 px, image-right corner only
    both = one.copy()
    both[5:, 0] = (-0.6, -0.8)
    side = np.array([-1.0, 1.0])
    assert DYNAMICS_FEATURES[3] == "asymmetry"
    np.testing.assert_allclose(side_asymmetry(RegionSignal(np.zeros(t), np.zeros(t), one, side)), [0] * 5 + [1] * 5)
    np.testing.assert_allclose(side_asymmetry(RegionSignal(np.zeros(t), np.zeros(t), both, side)), np.zeros(t))
    centre = RegionSignal(np.zeros(t), np.zeros(t), one, np.zeros(2))
    np.testing.assert_allclose(side_asymmetry(centre), np.zeros(t))
    out = dynamics_tensor({"mouth_corners": RegionSignal(np.zeros(t), np.zeros(t), one, side)}, t)
    np.testing.assert_allclose(out[0, :, 3], [0] * 5 + [1] * 5, atol=1e-6)


@pytest.mark.slow
def test_spot_and_spot_eval_commands(tmp_path, capsys):
    name = "concealed_astronaut_s0002"
    for suffix in (".mp4", ".srt", ".json"):
        (tmp_path / "sub").mkdir(exist_ok=True)
        (tmp_path / "sub" / f"{name}{suffix}").write_bytes((DATA_SAMPLES / f"{name}{suffix}").read_bytes())
    assert main(["spot", str(tmp_path / "sub" / f"{name}.mp4"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["fps"] == 25 and out["speech_source"] == "subtitles"
    assert {"onset", "apex", "offset", "type", "regions"} <= set(out["events"][0])
    truth = json.loads((DATA_SAMPLES / f"{name}.json").read_text())
    micro = next(e for e in truth["events"] if e["kind"] == "micro")
    assert any(e["type"] == "micro" and abs(e["apex"] - micro["apex"]) <= 2 for e in out["events"])
    assert main(["spot-eval", str(tmp_path), "--json"]) == 0
    score = json.loads(capsys.readouterr().out)
    assert score["clips"] == 1 and set(score) >= {"micro", "macro", "overall"}
    assert score["overall"]["f1"] >= 0.8


@pytest.mark.slow
def test_face_crops_are_aligned():
    from microemo_ref.face.motion import face_crops
    from microemo_ref.face.landmarks import FaceMesh

    frames = _render("astronaut", [], cfg=RenderConfig(head_shift_px=6.0, head_rot_deg=3.0))[:40]
    from microemo_ref.face.tracking import track_face

    track = track_face(frames, 25.0)
    crops = face_crops(frames, track, size=112)
    assert crops.shape == (40, 112, 112, 3) and crops.dtype == np.uint8
    with FaceMesh(static=True) as fm:
        noses = np.array([fm.landmarks(np.ascontiguousarray(c))[6, :2] for c in crops[::8]])
    # The head moves by up to 6 px and 3 degrees in the frames; in the crops the nose bridge stays put.
    assert np.ptp(noses, axis=0).max() < 1.5


def _signal(transient: np.ndarray) -> "RegionSignal":
    from microemo_ref.face.spotting import RegionSignal

    n = len(transient)
    return RegionSignal(np.full(n, 0.1), transient, np.zeros((n, 2, 2)), np.array([-1.0, 1.0]))


def test_transient_runs_of_two_frames_count():
    """A flash that clears the transient threshold for 2 frames is a micro event by default
    (``min_frames_brief=2``) and noise with ``min_frames_brief=3``."""
    from dataclasses import replace

    from microemo_ref.face.spotting import SpotConfig, spot_events

    rng = np.random.default_rng(0)
    brief = 0.05 + 0.005 * rng.standard_normal(100)
    brief[50:52] = 1.0                                      # 2 frames, far above the noise
    signals = {"inner_brows": _signal(brief)}
    (event,) = spot_events(signals, 25.0)
    assert event.type == "micro" and event.apex in (50, 51) and event.regions == ("inner_brows",)
    assert spot_events(signals, 25.0, cfg=replace(SpotConfig(), min_frames_brief=3)) == []


def test_sided_mouth_corners_keep_a_one_sided_pull_whole():
    """Contempt pulls one corner. Averaged over both corners its transient signal is d / sqrt(2);
    measured per side, the larger side keeps d."""
    from dataclasses import replace

    from microemo_ref.face.motion import RegionMotion
    from microemo_ref.face.regions import NOSE_BRIDGE
    from microemo_ref.face.spotting import SpotConfig, region_signals

    n = 60
    template = np.zeros((478, 2))
    template[NOSE_BRIDGE[0]] = (128, 100)
    template[61], template[291] = (100, 170), (156, 170)    # image-left and image-right corner
    points = np.zeros((n, 2, 2))
    points[28:34, 0, 0] = -1.5                              # the left corner pulls out for 6 frames
    motion = RegionMotion({"mouth_corners": points}, np.ones(n, bool), np.zeros(n, bool), np.zeros(n), 25.0,
                          template, [0])
    both = region_signals(motion, replace(SpotConfig(), sided=()))["mouth_corners"].transient
    sided = region_signals(motion, SpotConfig())["mouth_corners"].transient
    assert both.max() > 0.5
    np.testing.assert_allclose(sided, np.sqrt(2) * both, atol=1e-9)


def test_region_signals_at_a_low_frame_rate():
    # At 8 fps the spotter's 5-Hz low-pass would lie above Nyquist (4 Hz), which scipy refuses;
    # it filters at 0.9 of Nyquist instead, and a 0.5-s pull still shows.
    from microemo_ref.face.motion import RegionMotion
    from microemo_ref.face.regions import NOSE_BRIDGE
    from microemo_ref.face.spotting import region_signals

    n = 40
    template = np.zeros((478, 2))
    template[NOSE_BRIDGE[0]] = (128, 100)
    template[61], template[291] = (100, 170), (156, 170)
    points = np.zeros((n, 2, 2))
    points[20:24, :, 1] = 2.0
    motion = RegionMotion({"mouth_corners": points}, np.ones(n, bool), np.zeros(n, bool), np.zeros(n), 8.0,
                          template, [0])
    m = region_signals(motion)["mouth_corners"].magnitude
    assert np.isfinite(m).all() and 19 <= int(np.argmax(m)) <= 24 and m.max() > 1.0


def test_net_change_tells_a_flash_from_half_a_transition():
    """Out and back (a flash) is about 0; from one shape to another (the edge of a macro
    expression) about 1; for a sided region, the side the transient channel measured decides;
    a run that begins or ends on a lost frame is not judged (0)."""
    from microemo_ref.face.spotting import RegionSignal

    t = np.arange(11)
    bump = np.sin(np.pi * t / 10)[:, None, None] * np.array([1.0, -2.0])     # out and back, (11, 1, 2)
    ramp = (t / 10)[:, None, None] * np.array([1.0, -2.0])                  # from rest to a new shape
    pad = np.zeros((2, 2, 2))                                               # the run sits inside the clip
    sig = RegionSignal(np.zeros(15), np.zeros(15), np.concatenate([pad, np.repeat(bump, 2, axis=1), pad]),
                       np.array([-1.0, 1.0]))
    assert sig.net_change(2, 12, 7) < 0.01
    sig.offsets = np.concatenate([pad, np.repeat(ramp, 2, axis=1), pad + ramp[-1]])
    assert sig.net_change(2, 12, 7) > 0.99
    sig.offsets[6] = np.nan                                                  # a lost frame inside is skipped
    assert sig.net_change(2, 12, 7) > 0.99
    assert sig.net_change(0, 12, 7) > 0.99 and sig.net_change(2, 14, 7) > 0.99   # judged up to the clip's edges
    sig.offsets[2] = np.nan
    assert sig.net_change(2, 12, 7) == 0.0                                   # cut by a lost face
    # Left corner (outward -1) flashes, right corner drifts further: the side measured decides.
    sig.offsets = np.concatenate([pad, np.concatenate([bump, 3 * ramp], axis=1), pad + 3 * ramp[-1]])
    assert sig.net_change(2, 12, 7) > 0.5                                    # both sides together: the drift
    sig.side = np.full(15, -1.0)
    assert sig.net_change(2, 12, 7) < 0.01
    sig.side = np.full(15, 1.0)
    assert sig.net_change(2, 12, 7) > 0.99


@pytest.mark.slow
def test_the_end_of_a_held_smile_is_not_a_second_flash():
    """A 0.4-s disgust flash (apex 40) on a smile held until frame 50: one micro event. Without
    ``max_net`` the spotter also takes the start of the smile's release (apex at the hold's end,
    50) for a flash, as it does on held-out clip concealed_grace_hopper_s0100_005."""
    from dataclasses import replace

    from microemo_ref.face.spotting import SpotConfig, spot_events

    smile = ExpressionEvent("macro", "happy", onset=8, apex=16, offset=60, amplitude=5.5, hold_end=50)
    flash = ExpressionEvent("micro", "disgust", onset=36, apex=40, offset=46, amplitude=2.2)
    ev = extract_local_frames(_render("grace_hopper", [smile, flash]), 25.0)
    micro = [e for e in ev.events if e.type == "micro"]
    assert len(micro) == 1 and abs(micro[0].apex - 40) <= 2 and {"nose", "mouth_corners"} <= set(micro[0].regions)
    no_comeback = spot_events(ev.signals, 25.0, cfg=replace(SpotConfig(), max_net=np.inf), head=ev.head)
    assert [abs(e.apex - 50) <= 2 for e in no_comeback if e.type == "micro"] == [False, True]


def test_rest_shape_in_blocks_is_the_all_pairs_densest_point(monkeypatch) -> None:
    """The rest shape is the mean of the frames near the densest frame; computed a block of rows
    at a time (bounded memory on long clips), it is exactly the all-pairs answer."""
    from microemo_ref.face import spotting

    rng = np.random.default_rng(0)
    points = np.cumsum(rng.normal(size=(400, 5, 2)), axis=0) * 0.1  # (T, n, 2) a wandering region
    points[150:260] = points[150] + rng.normal(scale=0.01, size=(110, 5, 2))  # a long still stretch: the rest
    valid = rng.random(400) > 0.1
    x = points[valid].reshape(int(valid.sum()), -1)
    radius = 2.0 * max(1.4826 * float(np.median(np.abs(np.diff(x, axis=0)))) * np.sqrt(5), 1e-3)
    near = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).mean(axis=-1) * 2) < radius  # (T, T) all pairs
    by_hand = x[near[int(np.argmax(near.sum(axis=1)))]].mean(axis=0).reshape(5, 2)
    monkeypatch.setattr(spotting, "REST_BLOCK_BYTES", 3000)  # a few rows per block
    np.testing.assert_array_equal(spotting.rest_shape(points, valid), by_hand)
    np.testing.assert_allclose(by_hand, points[150], atol=0.1)  # the still stretch, not the wandering
