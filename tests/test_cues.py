"""The measured-cue line: how a region moved, in FACS-style words, from hand-built dynamics."""
import numpy as np
import pytest

from microemo_ref.face.regions import REGIONS
from microemo_ref.face.spotting import SpottedEvent
from microemo_ref.io.clip import Utterance
from microemo_ref.pipeline.cues import cue_text, direction_words, move_phrase, region_moves
from microemo_ref.pipeline.train import stage_examples

FPS = 25.0
NAMES = list(REGIONS)


def _dynamics(n: int = 100) -> np.ndarray:
    return np.zeros((len(NAMES), n, 3), np.float32)  # (regions, frames, [distance, outward, downward])


def _event(kind: str, onset: int, apex: int, offset: int, regions: tuple[str, ...]) -> SpottedEvent:
    return SpottedEvent(onset, apex, offset, kind, regions, 1.0, (0.0, -1.0), 2.0)


def test_direction_words():
    assert direction_words(0.0, -1.0) == "up"
    assert direction_words(1.0, 0.9) == "down and out"
    assert direction_words(1.0, 0.1) == "out"        # a component under a third of the larger is dropped
    assert direction_words(0.0, 0.0) == ""


def test_micro_on_a_held_smile_is_measured_against_its_surroundings():
    d = _dynamics()
    i, c = NAMES.index("inner_brows"), NAMES.index("mouth_corners")
    d[c, 20:80] = (4.0, 2.0, -3.0)            # a smile held through the clip: corners up and out
    d[c, 48:53] = (3.6, 2.0, -2.2)            # the flash pulls them 0.8 px down against the smile
    d[i, 48:53] = (1.2, 0.0, -1.2)            # and raises the inner brows 1.2 px
    moves = region_moves(_event("micro", 47, 50, 53, ("inner_brows", "mouth_corners")), d, FPS)
    assert [m[0] for m in moves] == ["inner_brows", "mouth_corners"]
    assert moves[1][1:3] == pytest.approx((0.0, 0.8), abs=1e-6)
    assert [move_phrase(*m) for m in moves] == ["inner brows raised 1.2 px", "lip corners pulled down 0.8 px"]


def test_macro_is_measured_against_rest_and_small_regions_are_not_named():
    d = _dynamics()
    c, n = NAMES.index("mouth_corners"), NAMES.index("nose")
    d[c, 30:60] = (4.0, 2.0, -3.0)
    d[n, 30:60] = (0.2, 0.0, -0.2)            # under the 0.25-px floor
    moves = region_moves(_event("macro", 30, 45, 60, ("mouth_corners",)), d, FPS)
    assert [move_phrase(*m) for m in moves] == ["lip corners pulled up 4.0 px"]  # the larger of net shift and distance


def test_pressed_lips_have_no_net_direction():
    assert move_phrase("lips", 0.05, 0.1, 0.9) == "lips pressed 0.9 px"
    assert move_phrase("lips", 0.0, 0.9, 0.9) == "jaw dropped 0.9 px"


def test_cue_line_names_times_and_utterance():
    d = _dynamics()
    d[NAMES.index("nose"), 48:53] = (0.7, 0.1, -0.7)
    utts = [Utterance(0.5, 1.5, "Fine.", "subtitles"), Utterance(1.8, 3.0, "Really.", "subtitles")]
    voice = [{"f0_st": 1.2, "energy_db": -27.0, "rate": 4.1}, {"f0_st": float("nan"), "energy_db": -40.0, "rate": 0.0}]
    line = cue_text([_event("micro", 47, 50, 53, ("nose",))], FPS, utts, voice, d)
    assert line == ("face: micro-expression 1.9-2.1 s, apex 2.0 s (utterance 2): nose wrinkled 0.7 px. "
                    "voice: utterance 1 pitch +1 st, -27 dB, 4.1 syllables/s; utterance 2 unvoiced.")
    # a readout sees the micro event's displacement and its answer is appended (macro events get none)
    seen = []
    readout = lambda disp: seen.append(disp) or "disgust"  # noqa: E731
    macro = _event("macro", 10, 15, 30, ("nose",))
    line = cue_text([macro, _event("micro", 47, 50, 53, ("nose",))], FPS, utts, voice, d, readout)
    assert "nose wrinkled 0.7 px, reads as disgust. voice:" in line and line.count("reads as") == 1
    assert len(seen) == 1 and seen[0].shape == (len(NAMES), 3) and round(float(seen[0][NAMES.index("nose"), 2]), 3) == -0.7
    assert cue_text(None, FPS, [], None) == "face: no face found. voice: no audio."
    assert cue_text([], FPS, [], []) == "face: no facial movement spotted. voice: no speech."


class _Ex:
    def __init__(self, scenario, felt="sad"):
        self.truth = {"scenario": scenario, "emotions": {"felt": [felt], "shown": "neutral"}}


def test_concealed_clips_are_repeated_in_the_emer_stage_only():
    exs = [_Ex("concealed"), _Ex("shift"), _Ex("neutral")]
    assert len(stage_examples(exs, "emer", 3)) == 5
    assert len(stage_examples(exs, "align", 3)) == 3
    assert len(stage_examples(exs, "emer", 1)) == 3


def test_balance_evens_out_the_hidden_emotions():
    from collections import Counter

    exs = [_Ex("concealed", "angry")] * 6 + [_Ex("concealed", "sad")] * 2 + [_Ex("shift")]
    seen = Counter(ex.truth["emotions"]["felt"][0] for ex in stage_examples(exs, "emer", 2, balance=True)
                   if ex.truth["scenario"] == "concealed")
    # 4 clips per hidden emotion on average: angry round(2 * 4 / 6) = 1 time each, sad round(2 * 4 / 2) = 4 times
    assert seen == {"angry": 6, "sad": 8}
    assert len(stage_examples(exs, "emer", 2)) == 17  # without balance every concealed clip twice
    assert len(stage_examples(exs, "align", 2, balance=True)) == 9
