"""The edges of a face track and of a clip: a face sliding out of the picture is lost, not
measured, and an expression cut off by the clip's end or a lost face is not a micro event."""
from __future__ import annotations

import numpy as np
import pytest

from microemo_ref.config import DATA_SAMPLES
from microemo_ref.face.landmarks import N_LANDMARKS
from microemo_ref.face.local_branch import extract_local_frames
from microemo_ref.face.spotting import RegionSignal, SpotConfig, spot_events
from microemo_ref.face.tracking import MEASURED_POINTS, inside_picture
from microemo_ref.io.clip import load_clip

FPS = 25.0


def _signals(bump_at: int, n: int = 200, width: int = 6) -> dict[str, RegionSignal]:
    """One region at rest (small noise) with a 6-frame bump of 3 px whose first frame is ``bump_at``."""
    rng = np.random.default_rng(0)
    m = 0.05 * rng.random(n)
    bump = 3.0 * np.hanning(width + 2)[1:-1]
    m[bump_at:bump_at + width] += bump[:n - bump_at]
    return {"brows": RegionSignal(m, 0.05 * rng.random(n), np.zeros((n, 6, 2)), np.ones(6))}


def test_a_brief_run_is_micro_inside_the_clip_and_dropped_at_its_edges():
    inside = spot_events(_signals(100), FPS)
    assert [e.type for e in inside] == ["micro"]
    assert spot_events(_signals(197), FPS) == []          # cut by the last frame, before it falls
    assert spot_events(_signals(0), FPS) == []            # starts on the first frame
    lost = _signals(100)
    lost["brows"].magnitude[106:120] = np.nan              # the face is lost as it peaks
    assert spot_events(lost, FPS) == []
    assert SpotConfig().micro_max_s == 0.5


def test_a_long_run_cut_by_the_clip_end_stays_macro():
    sig = _signals(170, width=50)                          # 2 s of expression, cut after 1.2 s
    assert [e.type for e in spot_events(sig, FPS)] == ["macro"]


def test_points_outside_the_picture_are_found():
    pts = np.full((3, N_LANDMARKS, 2), 50.0, np.float32)
    pts[1, MEASURED_POINTS[0], 0] = 100.5                  # one measured point past the right border
    pts[2] = np.nan                                        # no face
    pts[0, [i for i in range(N_LANDMARKS) if i not in MEASURED_POINTS][0], 0] = 500.0  # an unmeasured point may
    assert inside_picture(pts, (100, 100)).tolist() == [True, False, False]


@pytest.fixture(scope="module")
def neutral():
    clip = load_clip(DATA_SAMPLES / "neutral_astronaut_s0008.mp4")
    return np.asarray(clip.frames[-100:])                # the last 4 s: no expression in them


def test_a_face_sliding_out_of_the_picture_is_lost_not_measured(neutral):
    """The face slides out to the right over the last 1.2 s. Measured on the points past the
    border, this made a 30-px "micro-expression" just before the face was lost."""
    frames = neutral.copy()
    w = frames.shape[2]
    n = int(1.2 * FPS)
    for i in range(n):
        k, dx = len(frames) - n + i, int((i + 1) / n * 0.9 * w)
        frames[k] = 0
        frames[k][:, dx:] = neutral[k][:, :w - dx]
    ev = extract_local_frames(frames, FPS)
    assert ev.events == []
    track = ev.track
    assert track.outside is not None and track.outside.any()
    first_out = int(np.argmax(track.outside))
    assert first_out >= len(frames) - n and not track.valid[first_out:].any()
    assert ev.lost_spans()[-1][0] == pytest.approx(first_out / FPS)


def test_an_expression_cut_off_by_the_clip_end_is_not_a_micro_event():
    """The sample's macro expression starts at 3.5 s; the clip is cut at 3.8 s, 0.2 s into it.
    Whole, the clip shows it as a macro event; cut, it used to read as a micro-expression."""
    clip = load_clip(DATA_SAMPLES / "congruent_astronaut_s0004.mp4", max_frames=int(3.8 * FPS))
    frames = np.asarray(clip.frames[int(2.0 * FPS):])
    assert extract_local_frames(frames, FPS).events == []


def test_the_evidence_notes_say_where_the_face_left_the_picture(neutral):
    from microemo_ref.pipeline.evidence import local_notes

    frames = neutral.copy()
    frames[-10:] = 0
    frames[-10:, :, 110:] = neutral[-10:, :, :-110]                       # the face steps a third out
    notes = local_notes(extract_local_frames(frames, FPS), "out.mp4")
    assert any(n.startswith("out.mp4: the face is partly outside the picture at 3.6-4.0 s") for n in notes), notes
