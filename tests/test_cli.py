"""The command line: generate with a user's photo, demo, info, and clear errors."""
from __future__ import annotations

import json
import subprocess
import sys

import cv2
import pytest

from microemo_ref.cli import main
from microemo_ref.config import DATA_SAMPLES
from microemo_ref.samples.faces import bundled_photo


@pytest.fixture(scope="module")
def user_photo(tmp_path_factory):
    """A frontal photo of someone who is neither bundled face: the first Labeled Faces in the
    Wild portrait that scikit-image ships (``skimage.data.lfw_subset()``, 25x25 grey),
    upscaled to 300x300 and saved as PNG."""
    from skimage import data

    face = cv2.resize((data.lfw_subset()[0] * 255).astype("uint8"), (300, 300), interpolation=cv2.INTER_CUBIC)
    path = tmp_path_factory.mktemp("photo") / "someone.png"
    cv2.imwrite(str(path), face)
    return path


@pytest.mark.slow
def test_generate_with_a_user_photo(tmp_path, user_photo, capsys):
    assert main(["generate", "--out", str(tmp_path), "--n", "1", "--seed", "1", "--face", str(user_photo),
                 "--scenario", "concealed"]) == 0
    truth = json.loads(next(tmp_path.glob("*.json")).read_text())
    assert truth["face"] == {"identity": "someone", "split": "user", "face_px": truth["face"]["face_px"]}
    assert truth["scenario"] == "concealed"
    assert len(list(tmp_path.glob("*.mp4"))) == 1 and len(list(tmp_path.glob("*.srt"))) == 1
    assert not list(tmp_path.glob(".*")), "temporary files left behind"


def test_generate_rejects_a_photo_without_a_face(tmp_path, capsys):
    blank = tmp_path / "wall.png"
    cv2.imwrite(str(blank), 127 * (1 + 0 * bundled_photo("astronaut")[:200, :200]))
    out = tmp_path / "out"
    assert main(["generate", "--out", str(out), "--n", "1", "--face", str(blank)]) == 2
    err = capsys.readouterr().err
    assert "wall.png" in err and "no face" in err
    assert not out.exists() or not any(out.iterdir())


def test_generate_rejects_missing_photo(tmp_path, capsys):
    assert main(["generate", "--out", str(tmp_path), "--face", str(tmp_path / "nope.jpg")]) == 2
    assert "nope.jpg" in capsys.readouterr().err


def test_demo_runs_on_the_bundled_sample(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "concealed" in text and "micro" in text and "gold explanation" in text
    assert "End-to-end EMER" in text and "emotions: " in text  # the shipped checkpoint ran
    assert (tmp_path / "demo.png").stat().st_size > 10_000


def test_info_and_module_entry_point():
    video = sorted(DATA_SAMPLES.glob("*.mp4"))[0]
    res = subprocess.run([sys.executable, "-m", "microemo_ref", "info", str(video)], capture_output=True,
                         text=True, check=True)
    info = json.loads(res.stdout)
    truth = json.loads(video.with_suffix(".json").read_text())
    assert info["frames"] == truth["n_frames"] and info["fps"] == 25
    assert [u["text"] for u in info["utterances"]] == [u["text"] for u in truth["utterances"]]
