"""Awkward input handled, not answered wrongly: a still image, a face on its side, a clip too
short to judge, a prompt too long for the LLM, a face photo too small to animate, and `info`
reading metadata only."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from microemo_ref.cli import main
from microemo_ref.config import DATA_SAMPLES
from microemo_ref.face.landmarks import NoFaceError
from microemo_ref.face.tracking import MAX_ROLL_DEG, check_upright, track_face
from microemo_ref.io.clip import ClipError, load_clip
from microemo_ref.io.video import write_video
from microemo_ref.pipeline.emer import MIN_CLIP_S, run_emer

SAMPLE = DATA_SAMPLES / "concealed_astronaut_s0002.mp4"


@pytest.fixture(scope="module")
def frames():
    return load_clip(SAMPLE, max_frames=12).frames


def test_an_upright_face_has_a_level_eye_line(frames):
    track = track_face(frames, 25.0)
    assert abs(track.roll_deg()) < 10


def test_a_face_on_its_side_is_refused(frames):
    """The same landmarks turned 90 degrees in the picture read as a 90-degree eye line; and
    the sample's frames turned on their side are refused, whether FaceMesh finds the face or not."""
    track = track_face(frames, 25.0)
    h = track.size[0]
    turned = track.landmarks[..., ::-1].copy()  # (x, y) -> (y, x), then mirror: a 90-degree turn
    turned[..., 0] = h - turned[..., 0]
    track.landmarks = turned
    assert abs(abs(track.roll_deg()) - 90) < 10
    with pytest.raises(NoFaceError, match="on its side or upside down"):
        check_upright(track, "sideways.mp4")
    with pytest.raises(NoFaceError):
        track_face(np.ascontiguousarray(np.rot90(frames, 1, axes=(1, 2))), 25.0, source="sideways.mp4")
    assert MAX_ROLL_DEG == 45.0


def test_a_face_upside_down_is_refused_though_facemesh_fits_it(frames):
    """FaceMesh fits an upright mesh to an upside-down face (its eye line is level), so the eye
    line cannot tell; the face detector's scores of the four quarter turns can."""
    from microemo_ref.face.landmarks import turn_scores

    upside = np.ascontiguousarray(frames[:, ::-1, ::-1])
    scores = turn_scores([frames[0]])
    assert int(np.argmax(scores)) == 0 and scores[0] - scores[1:].max() >= 0.05
    assert int(np.argmax(turn_scores([upside[0]]))) == 2
    with pytest.raises(NoFaceError, match="upside_down.mp4: the face is upside down in the picture"):
        track_face(upside, 25.0, source="upside_down.mp4")


def test_a_clip_too_short_to_judge_is_refused(tmp_path):
    short = write_video(tmp_path / "blink.mp4", load_clip(SAMPLE, max_frames=3).frames, 25.0)
    with pytest.raises(ClipError, match=r"blink.mp4: only 0.12 s of video, too short to judge"):
        run_emer(short, model=None)  # refused before the model is touched
    assert MIN_CLIP_S == 1.0


def test_a_prompt_too_long_for_the_llm_is_refused(monkeypatch):
    """SmolLM2 reads 8192 positions. A clip whose utterances alone fill them is refused before
    the face is measured; one whose whole prompt (with the cue line) is too long, before the
    LLM runs. Here the context is cut down so that the 4-utterance sample shows each case."""
    from microemo_ref.model.llm import PromptTooLong, check_fits, context_length
    from microemo_ref.pipeline import emer, evidence
    from microemo_ref.text.utterances import segment_clip

    check_fits(8192 - 224, 224, 8192)
    with pytest.raises(PromptTooLong, match="the prompt is 7969 tokens"):
        check_fits(7969, 224, 8192)
    seg = segment_clip(load_clip(SAMPLE, subtitles="auto", stream="auto"))
    assert len(seg.utterances) == 4

    def never(*args, **kwargs):
        raise AssertionError("this stage should not have run")

    tokens, _ = emer.load_for_answers(emer.default_checkpoint("tokens"))  # no cue line: the floor is exact
    assert context_length(tokens.llm) == 8192
    floor = emer.prompt_floor(tokens, seg)
    with monkeypatch.context() as m:
        m.setattr(tokens.llm, "context", floor + 223)
        m.setattr(evidence, "extract_local_frames", never)
        with pytest.raises(PromptTooLong, match=rf"concealed_astronaut_s0002.mp4: 4 utterances in 9 s: the prompt is "
                                                rf"at least {floor} tokens.* past the {floor + 223} the LLM reads"):
            emer.run_emer(SAMPLE, tokens)
    with monkeypatch.context() as m:
        m.setattr(tokens.llm, "context", floor + 224)
        m.setattr(tokens.decoder, "greedy", lambda embeds, n: [])
        assert emer.run_emer(SAMPLE, tokens).labels == []  # it fits, to the token
    cues, _ = emer.load_for_answers(emer.default_checkpoint("cues"))
    floor = emer.prompt_floor(cues, seg)
    with monkeypatch.context() as m:
        m.setattr(cues.llm, "context", floor + 224)  # the floor fits; with the cue line the prompt does not
        m.setattr(cues.decoder, "greedy", never)
        with pytest.raises(PromptTooLong, match=r"concealed_astronaut_s0002.mp4: the prompt is \d+ tokens, .*; EMER"):
            emer.run_emer(SAMPLE, cues)
    assert not cues.training  # generate() put the mode back though it raised


def test_a_face_photo_too_small_is_refused(tmp_path, capsys):
    from skimage import data

    small = cv2.resize((data.lfw_subset()[0] * 255).astype("uint8"), (64, 64), interpolation=cv2.INTER_CUBIC)
    photo = tmp_path / "tiny.png"
    cv2.imwrite(str(photo), small)
    out = tmp_path / "clips"
    assert main(["generate", "--out", str(out), "--n", "1", "--face", str(photo)]) == 2
    err = capsys.readouterr().err
    assert "tiny.png" in err and ("px wide" in err or "no face" in err), err
    assert not list(out.glob("*.mp4"))


def test_info_reads_metadata_only(monkeypatch, capsys):
    import microemo_ref.io.video as video

    def no_decoding(*args, **kwargs):
        raise AssertionError("info decoded the media")

    monkeypatch.setattr(video, "iter_frames", no_decoding)
    monkeypatch.setattr(video, "read_audio", no_decoding)
    assert main(["info", str(SAMPLE)]) == 0
    info = json.loads(capsys.readouterr().out)
    truth = json.loads(SAMPLE.with_suffix(".json").read_text())
    assert info["frames"] == truth["n_frames"] and info["audio_s"] == pytest.approx(info["duration_s"], abs=0.1)
    assert info["rotation"] == 0 and info["variable_rate"] is False


def test_a_normal_run_writes_nothing_to_stderr():
    """MediaPipe's and TFLite's own log lines are silenced while their graphs run; Python's
    warnings would still show. ``spot`` on a sample prints its events and nothing else."""
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-m", "microemo_ref", "spot", str(SAMPLE)], capture_output=True, text=True)
    assert res.returncode == 0 and "events at 25 fps" in res.stdout
    assert res.stderr == "", res.stderr


def test_python_warnings_still_show_while_native_logs_are_silenced():
    """In a plain process: a write to fd 2 inside the silenced window is lost, Python's own
    stderr inside it still shows, and fd 2 is back afterwards."""
    import subprocess
    import sys

    code = ("import os, sys, warnings\n"
            "from microemo_ref.face.landmarks import NativeLogs\n"
            "NativeLogs.enter(); NativeLogs.enter()\n"
            "os.write(2, b'native line\\n'); warnings.warn('a Python warning'); print('python line', file=sys.stderr)\n"
            "NativeLogs.exit(); os.write(2, b'still silenced\\n'); NativeLogs.exit()\n"
            "os.write(2, b'after\\n')\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "a Python warning" in res.stderr and "python line" in res.stderr and "after" in res.stderr
    assert "native line" not in res.stderr and "still silenced" not in res.stderr
