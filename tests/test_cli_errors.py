"""Bad input to the command line: each case fails at once, with exit code 2, one line naming the
file or argument, no traceback, and nothing half-written; one bad clip does not stop the rest."""
from __future__ import annotations

import argparse
import json
import shutil

import pytest

from microemo_ref.cli import main
from microemo_ref.config import DATA_SAMPLES
from microemo_ref.io.files import check_truth, files_under, read_json
from microemo_ref.model.checkpoint import checkpoint_config, load_trainable
from microemo_ref.pipeline.emer import default_checkpoint

SAMPLE = "concealed_astronaut_s0002"


def fails(argv: list[str], capsys, *words: str) -> str:
    """Run ``argv``; it must exit 2 (returned, or argparse's SystemExit) with every word of
    ``words`` in stderr and no traceback. Returns stderr."""
    try:
        code = main(argv)
    except SystemExit as stop:
        code = stop.code
    err = capsys.readouterr().err
    assert code == 2, (argv, err)
    assert "Traceback" not in err
    for w in words:
        assert w in err, (w, err)
    return err


def test_generate_out_must_be_a_writable_folder(tmp_path, capsys):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    fails(["generate", "--out", str(a_file)], capsys, str(a_file), "is a file")
    fails(["generate", "--out", str(a_file / "clips")], capsys, "no folder can be made under it")
    assert a_file.read_text() == "x"


@pytest.mark.parametrize("argv, words", [
    (["--n", "0"], ["--n", "from 1 to"]),
    (["--n", "200000000"], ["--n", "200000000"]),
    (["--n", "two"], ["--n", "'two' is not a whole number"]),
    (["--seed", "-1"], ["--seed", "from 0"]),
])
def test_generate_arguments_are_checked_before_any_work(tmp_path, capsys, argv, words):
    out = tmp_path / "clips"
    fails(["generate", "--out", str(out), *argv], capsys, *words)
    assert not out.exists()


def test_limit_must_be_positive(tmp_path, capsys):
    fails(["evaluate", str(tmp_path), "--limit", "-1"], capsys, "--limit")
    fails(["train", "--limit", "0"], capsys, "--limit")


def test_folders_to_read_must_exist_and_be_folders(tmp_path, capsys):
    a_file = tmp_path / "clip.mp4"
    a_file.write_bytes(b"\x00")
    for command in ("cache", "evaluate", "spot-eval"):
        fails([command, str(tmp_path / "missing")], capsys, "missing: no such folder")
        fails([command, str(a_file)], capsys, "is a file, not a folder")
    empty = tmp_path / "empty"
    empty.mkdir()
    fails(["cache", str(empty)], capsys, "no .mp4 clip found")


def test_emer_checks_the_video_before_loading_the_model(tmp_path, capsys):
    fails(["emer", str(tmp_path / "nope.mp4")], capsys, "nope.mp4: no such file")


def test_malformed_checkpoint_files_are_named(tmp_path, capsys):
    bad = tmp_path / "ckpt"
    shutil.copytree(default_checkpoint(), bad)
    (bad / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="config.json: checkpoint configuration does not parse as JSON"):
        checkpoint_config(bad)
    video = DATA_SAMPLES / f"{SAMPLE}.mp4"
    fails(["emer", str(video), "--checkpoint", str(bad)], capsys, "config.json", "does not parse")
    (bad / "config.json").write_text('{"encoder": 3}')
    with pytest.raises(ValueError, match="not a MicroEmo checkpoint configuration"):
        checkpoint_config(bad)
    shutil.copy(default_checkpoint() / "config.json", bad / "config.json")
    (bad / "checksum.json").write_text("[")
    with pytest.raises(ValueError, match="checksum.json: checksum file does not parse"):
        load_trainable(bad)


def test_ground_truth_with_missing_keys_is_named(tmp_path, capsys):
    for suffix in (".mp4", ".srt"):
        shutil.copy(DATA_SAMPLES / f"{SAMPLE}{suffix}", tmp_path / f"{SAMPLE}{suffix}")
    truth = json.loads((DATA_SAMPLES / f"{SAMPLE}.json").read_text())
    side = tmp_path / f"{SAMPLE}.json"
    side.write_text(json.dumps({k: v for k, v in truth.items() if k != "events"}))
    fails(["spot-eval", str(tmp_path)], capsys, f"{SAMPLE}.json", "lacks 'events'")
    fails(["cache", str(tmp_path)], capsys, f"{SAMPLE}.json", "lacks 'events'", "1 clip(s) failed")
    assert not list(tmp_path.glob("*.evidence.npz"))
    truth["events"][0].pop("apex")
    side.write_text(json.dumps(truth))
    fails(["spot-eval", str(tmp_path)], capsys, "event 0 lacks 'apex'")
    side.write_text("[1, 2")
    fails(["spot-eval", str(tmp_path)], capsys, "ground truth does not parse as JSON")


def test_check_truth_and_read_json(tmp_path):
    truth = json.loads((DATA_SAMPLES / f"{SAMPLE}.json").read_text())
    assert check_truth(truth, "x.json", "emer") is truth
    with pytest.raises(ValueError, match="x.json: ground truth lacks 'labels', 'explanation'"):
        check_truth({k: v for k, v in truth.items() if k not in ("labels", "explanation")}, "x.json", "emer")
    with pytest.raises(ValueError, match="must be a JSON object"):
        check_truth([1], "x.json", "spotting")
    (tmp_path / "b.json").write_bytes(b"\xff\xfe")
    with pytest.raises(ValueError, match="b.json: report is not UTF-8"):
        read_json(tmp_path / "b.json", "report")


def test_rescore_names_a_malformed_answer_and_a_bad_out(tmp_path, capsys):
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"answers": [{"name": "clip_a"}]}))
    fails(["rescore", str(report)], capsys, "answer 0 (clip_a) lacks the key", str(report))
    assert json.loads(report.read_text()) == {"answers": [{"name": "clip_a"}]}  # untouched
    fails(["rescore", str(report), "--out", str(tmp_path)], capsys, "is a folder, not a file")
    fails(["rescore", str(report), "--out", str(tmp_path / "no" / "r.json")], capsys, "does not exist")


def test_ctrl_c_stops_cleanly(monkeypatch, capsys):
    import microemo_ref.cli as cli

    def interrupted(args):
        raise KeyboardInterrupt

    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    sub.choices["info"].set_defaults(func=interrupted)
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    assert main(["info", "x.mp4"]) == 130
    err = capsys.readouterr().err
    assert "interrupted" in err and "Traceback" not in err


def test_hidden_temporary_files_are_never_clips(tmp_path):
    (tmp_path / ".clip_a.x1y2").mkdir()
    (tmp_path / ".clip_a.x1y2" / "clip_a.mp4").write_bytes(b"")
    (tmp_path / ".clip_b.evidence.npz.ab12.part").write_bytes(b"")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "clip_c.mp4").write_bytes(b"")
    assert files_under(tmp_path, "*.mp4", "*.evidence.npz*") == [tmp_path / "sub" / "clip_c.mp4"]


@pytest.mark.slow
def test_one_bad_clip_does_not_stop_cache_and_killed_runs_are_cleaned(tmp_path, capsys):
    for suffix in (".mp4", ".srt", ".json"):
        shutil.copy(DATA_SAMPLES / f"{SAMPLE}{suffix}", tmp_path / f"{SAMPLE}{suffix}")
    (tmp_path / "broken.mp4").write_bytes(b"\x89PNG\r\n\x1a\n not a video")
    stale = tmp_path / f".{SAMPLE}.evidence.npz.dead.part"
    stale.write_bytes(b"half")
    fails(["cache", str(tmp_path)], capsys, "broken.mp4", "1 clip(s) failed")
    assert (tmp_path / f"{SAMPLE}.evidence.npz").is_file() and not stale.exists()
    assert not (tmp_path / "broken.evidence.npz").exists()


def test_every_video_command_is_a_command() -> None:
    """The commands that bound the heap (``VIDEO_COMMANDS``) are spelled as the parser has them."""
    from microemo_ref.cli import VIDEO_COMMANDS, build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert VIDEO_COMMANDS <= set(sub.choices)
