"""Bad and awkward inputs, run through the command line as a user would, each outcome classed.

Every case builds its input in a scratch folder (a PNG renamed ``.mp4``, a truncated video, a
portrait phone clip, a mirrored selfie, a variable-frame-rate file, a face sliding out of the
picture, malformed JSON, impossible arguments, ...), runs one ``microemo-ref`` command in its
own process, and classes what came back:

* ``clear error``: exit code 2 (130 for Ctrl-C), no traceback, and the message names the file
  or argument at fault;
* ``right answer``: a case that should work did, and its events are where they should be;
* ``traceback``, ``unclear error`` (a non-zero exit that names nothing), ``hang`` (past the
  time limit), ``wrong answer`` (exit 0 with events that are not where they should be, or
  exit 0 where the input should have been refused).

``--runner`` is the command that runs the command line (by default this Python's
``-m microemo_ref``; e.g. a script that imports another checkout of the package), so two
versions can be classed on the same cases. Usage:

    python benchmarks/hostile_inputs.py [--only NAME ...] [--json FILE] [--runner "python /path/run_old.py"]

A few minutes on 2 cores (the cases that measure a face run the local branch on 6-s clips).
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections import Counter
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from microemo_ref.config import DATA_SAMPLES
from microemo_ref.io.clip import load_clip
from microemo_ref.io.video import write_video

FPS = 25.0
LIMIT_S = 90
CLEAR, RIGHT = "clear error", "right answer"


def write_pyav(path: Path, frames: list[np.ndarray], times: list[float] | None = None,
               matrix: list[int] | None = None) -> Path:
    """Frames written with PyAV at presentation times ``times`` (s) and with a display ``matrix``
    (FFmpeg's layout, 16.16 fixed point), as phones and editors write them."""
    times = times if times is not None else [k / FPS for k in range(len(frames))]
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        if matrix:
            stream.set_display_matrix(matrix)
        for frame, t in zip(frames, times):
            picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            picture.pts, picture.time_base = round(t * 1000), Fraction(1, 1000)
            container.mux(stream.encode(picture))
        container.mux(stream.encode(None))
    return path


U = 65536
QUARTER_CLOCKWISE = [0, U, 0, -U, 0, 0, 0, 0, 1 << 30]   # shows the stored pixels turned clockwise
MIRROR = [-U, 0, 0, 0, U, 0, 0, 0, 1 << 30]             # shows them mirrored left-right


class Cases:
    """The inputs, made once in ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        sample = load_clip(DATA_SAMPLES / "congruent_astronaut_s0004.mp4", max_frames=int(6 * FPS))
        self.frames = [np.asarray(f) for f in sample.frames]        # 6 s: a micro at 1.0 s, a macro at 3.6 s
        self.ref = write_video(root / "upright.mp4", self.frames, FPS)

    def file(self, name: str, data: bytes | str) -> Path:
        p = self.root / name
        p.write_bytes(data if isinstance(data, bytes) else data.encode())
        return p

    def folder(self, name: str) -> Path:
        (self.root / name).mkdir(exist_ok=True)
        return self.root / name


def spot_events(out: str) -> list[dict]:
    return json.loads(out)["events"]


def same_events(expected: list[dict], tol: float = 0.12):
    """A check: the events (type, onset, offset) match ``expected`` within ``tol`` seconds."""
    def check(out: str) -> bool:
        got = spot_events(out)
        return len(got) == len(expected) and all(
            a["type"] == b["type"] and abs(a["onset_s"] - b["onset_s"]) <= tol and abs(a["offset_s"] - b["offset_s"]) <= tol
            for a, b in zip(got, expected))
    return check


def no_micro_after(t: float):
    return lambda out: not any(e["type"] == "micro" and e["offset_s"] > t for e in spot_events(out))


def nothing_starts_after(t: float, expected: list[dict]):
    """No event starts after ``t``; the events before it are ``expected``'s (within 0.12 s)."""
    def check(out: str) -> bool:
        got = spot_events(out)
        before = [e for e in expected if e["onset_s"] < t]
        return (not any(e["onset_s"] > t for e in got) and len(got) == len(before)
                and all(abs(a["onset_s"] - b["onset_s"]) <= 0.12 for a, b in zip(got, before)))
    return check


def build(c: Cases, reference: list[dict]) -> list[tuple[str, list[str], object, str | None]]:
    """(name, arguments, check, what the message must name). ``check``: None for a case that must
    be refused, else a function of stdout that says whether the answer is right."""
    f, r = c.frames, c.root
    png = r / "still.png"
    cv2.imwrite(str(png), f[0][..., ::-1])
    renamed = c.file("still.mp4", png.read_bytes())
    truncated = c.file("truncated.mp4", c.ref.read_bytes()[: c.ref.stat().st_size // 3])
    black = write_video(r / "black.mp4", [np.zeros_like(f[0])] * 50, FPS)
    blink = write_video(r / "blink.mp4", f[:3], FPS)
    sideways = write_video(r / "sideways.mp4", [np.rot90(x) for x in f[:50]], FPS)
    upside = write_video(r / "upside_down.mp4", [x[::-1, ::-1] for x in f[:50]], FPS)
    portrait = write_pyav(r / "portrait.mp4", [np.rot90(x) for x in f], matrix=QUARTER_CLOCKWISE)
    mirrored = write_pyav(r / "mirrored.mp4", [x[:, ::-1] for x in f], matrix=MIRROR)
    keep = [k for k in range(len(f)) if not (50 <= k < 100 and k % 3 == 1)]   # a second at 2/3 the rate
    vfr = write_pyav(r / "vfr.mp4", [f[k] for k in keep], times=[k / FPS for k in keep])
    slide, w, n = [x.copy() for x in f], f[0].shape[1], int(1.2 * FPS)
    for i in range(n):
        k, dx = len(f) - n + i, int((i + 1) / n * 0.9 * w)
        slide[k] = np.zeros_like(f[k])
        slide[k][:, dx:] = f[k][:, :w - dx]
    sliding = write_video(r / "sliding_out.mp4", slide, FPS)
    cut = write_video(r / "cut.mp4", f[:int(3.8 * FPS)], FPS)
    small_face = r / "tiny.png"
    cv2.imwrite(str(small_face), cv2.resize(f[0][..., ::-1], (20, 20)))
    no_face = r / "wall.png"
    cv2.imwrite(str(no_face), np.full((256, 256, 3), 128, np.uint8))
    a_file = c.file("a_file.txt", "x")
    empty = c.folder("empty")
    bad_json = c.file("bad.json", '{"events": [')
    truth_dir = c.folder("truth")
    write_video(truth_dir / "clip.mp4", f[:50], FPS)
    (truth_dir / "clip.json").write_text(json.dumps({"scenario": "neutral"}))
    report = c.file("report.json", json.dumps({"answers": [{"name": "x"}]}))
    ckpt = c.folder("ckpt")
    (ckpt / "config.json").write_text("{not json")
    (ckpt / "checksum.json").write_text("{}")
    (ckpt / "trainable.safetensors").write_bytes(b"\x00" * 16)
    ckpt2 = c.folder("ckpt_bad_tensors")
    shipped = Path(__file__).resolve().parent.parent / "microemo_ref" / "checkpoints" / "microemo-smollm2"
    (ckpt2 / "config.json").write_text((shipped / "config.json").read_text())
    (ckpt2 / "trainable.safetensors").write_bytes(b"\xff" * 64)
    (ckpt2 / "checksum.json").write_text(json.dumps({"trainable.safetensors": "0" * 64}))
    garbled = write_video(r / "garbled.mp4", f[:50], FPS)
    c.file("garbled.srt", "1\nthis is not a time line\nhello\n")
    late = write_video(r / "late_subs.mp4", f[:50], FPS)
    (r / "late_subs.srt").write_text("1\n00:00:30,000 --> 00:00:32,000\nlong after the end\n")
    wordy = write_video(r / "wordy.mp4", f, FPS)  # a whole transcript pasted into one clip's subtitles
    line = " ".join(["and then we talked about the weather for a while"] * 12)
    (r / "wordy.srt").write_text("".join(f"{k + 1}\n00:00:{k // 10:02d},{k % 10 * 100:03d} --> "
                                         f"00:00:{k // 10:02d},{k % 10 * 100 + 90:03d}\n{line}\n\n" for k in range(60)))
    gen_out = r / "gen"
    return [
        ("info: missing file", ["info", str(r / "nope.mp4")], None, "nope.mp4"),
        ("info: empty file", ["info", str(c.file("zero.mp4", b""))], None, "zero.mp4"),
        ("info: text renamed .mp4", ["info", str(c.file("text.mp4", "hello"))], None, "text.mp4"),
        ("info: PNG renamed .mp4", ["info", str(renamed)], None, "still.mp4"),
        ("info: truncated video", ["info", str(truncated)], None, "truncated.mp4"),
        ("info: a folder as video", ["info", str(empty)], None, "empty"),
        ("info: garbled subtitles beside", ["info", str(garbled)], None, "garbled.srt"),
        ("info: subtitles after the clip's end", ["info", str(late)], None, "late_subs.srt"),
        ("spot: missing file", ["spot", str(r / "nope.mp4")], None, "nope.mp4"),
        ("spot: PNG renamed .mp4", ["spot", str(renamed)], None, "still.mp4"),
        ("spot: truncated video", ["spot", str(truncated)], None, "truncated.mp4"),
        ("spot: no face", ["spot", str(black)], None, "black.mp4"),
        ("spot: face on its side in the pixels", ["spot", str(sideways)], None, "sideways.mp4"),
        ("spot: face upside down in the pixels", ["spot", str(upside)], None, "upside_down.mp4"),
        ("spot: upright clip (reference)", ["spot", "--json", str(c.ref)], same_events(reference), None),
        ("spot: portrait phone clip (display matrix)", ["spot", "--json", str(portrait)], same_events(reference), None),
        ("spot: mirrored selfie (display matrix)", ["spot", "--json", str(mirrored)], same_events(reference), None),
        ("spot: variable frame rate", ["spot", "--json", str(vfr)], same_events(reference, 0.2), None),
        ("spot: face sliding out of the picture", ["spot", "--json", str(sliding)],
         nothing_starts_after(len(f) / FPS - 1.2, reference), None),
        ("spot: clip cut 0.2 s into an expression", ["spot", "--json", str(cut)], no_micro_after(3.3), None),
        ("emer: missing video", ["emer", str(r / "nope.mp4")], None, "nope.mp4"),
        ("emer: 0.12 s clip", ["emer", str(blink)], None, "blink.mp4"),
        ("emer: PNG renamed .mp4", ["emer", str(renamed)], None, "still.mp4"),
        ("emer: missing checkpoint folder", ["emer", str(c.ref), "--checkpoint", str(r / "no_ckpt")], None, "no_ckpt"),
        ("emer: checkpoint config not JSON", ["emer", str(c.ref), "--checkpoint", str(ckpt)], None, "config.json"),
        ("emer: checkpoint checksum mismatch", ["emer", str(c.ref), "--checkpoint", str(ckpt2)], None,
         "trainable.safetensors"),
        ("emer: a prompt too long for the LLM (60 wordy cues)", ["emer", str(wordy)], None, "wordy.mp4"),
        ("emer: missing subtitles file", ["emer", str(c.ref), "--subtitles", str(r / "none.srt")], None, "none.srt"),
        ("generate: --out a file", ["generate", "--out", str(a_file), "--n", "1"], None, "a_file.txt"),
        ("generate: --out under a file", ["generate", "--out", str(a_file / "sub"), "--n", "1"], None, "a_file.txt"),
        ("generate: --out unwritable", ["generate", "--out", "/proc/microemo_out", "--n", "1"], None, "/proc"),
        ("generate: --n 0", ["generate", "--out", str(gen_out), "--n", "0"], None, "--n"),
        ("generate: --n -5", ["generate", "--out", str(gen_out), "--n", "-5"], None, "--n"),
        ("generate: --n 200000000", ["generate", "--out", str(gen_out), "--n", "200000000"], None, "--n"),
        ("generate: --seed -1", ["generate", "--out", str(gen_out), "--seed", "-1"], None, "--seed"),
        ("generate: --face missing photo", ["generate", "--out", str(gen_out), "--n", "1", "--face",
                                            str(r / "nobody.png")], None, "nobody.png"),
        ("generate: --face 20x20 photo", ["generate", "--out", str(gen_out), "--n", "1", "--face", str(small_face)],
         None, "tiny.png"),
        ("generate: --face photo without a face", ["generate", "--out", str(gen_out), "--n", "1", "--face",
                                                   str(no_face)], None, "wall.png"),
        ("cache: missing folder", ["cache", str(r / "no_dir")], None, "no_dir"),
        ("cache: a file", ["cache", str(a_file)], None, "a_file.txt"),
        ("cache: folder with no clip", ["cache", str(empty)], None, "empty"),
        ("evaluate: missing folder", ["evaluate", str(r / "no_dir")], None, "no_dir"),
        ("evaluate: --limit -1", ["evaluate", str(truth_dir), "--limit", "-1"], None, "--limit"),
        ("spot-eval: missing folder", ["spot-eval", str(r / "no_dir")], None, "no_dir"),
        ("spot-eval: ground truth without events", ["spot-eval", str(truth_dir)], None, "clip.json"),
        ("rescore: report not JSON", ["rescore", str(bad_json)], None, "bad.json"),
        ("rescore: malformed answer", ["rescore", str(report)], None, "report.json"),
        ("rescore: --out a folder", ["rescore", str(report), "--out", str(empty)], None, "empty"),
        ("train: missing data folder", ["train", "--data", str(r / "no_dir"), "--out", str(r / "run")], None, "no_dir"),
    ]


def _events_or_none(out: str) -> list | None:
    try:
        return [[e["type"], e["onset_s"], e["offset_s"]] for e in spot_events(out)]
    except (ValueError, KeyError, TypeError):
        return None


def classify(proc: subprocess.CompletedProcess | None, check, names: str | None) -> str:
    if proc is None:
        return "hang"
    err = proc.stderr
    if "Traceback (most recent call last)" in err:
        return "traceback"
    if check is not None:
        if proc.returncode != 0:
            return "wrong answer" if proc.returncode == 2 else "unclear error"
        try:
            return RIGHT if check(proc.stdout) else "wrong answer"
        except (ValueError, KeyError):
            return "wrong answer"
    if proc.returncode == 0:
        return "wrong answer"
    if proc.returncode not in (2, 130):
        return "unclear error"
    return CLEAR if names and names in err else "unclear error"


def run(runner: list[str], args: list[str]) -> subprocess.CompletedProcess | None:
    try:
        return subprocess.run(runner + args, capture_output=True, text=True, timeout=LIMIT_S,
                              env={**os.environ, "HF_HUB_OFFLINE": "1"})
    except subprocess.TimeoutExpired:
        return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", nargs="+", help="run only the cases whose name contains one of these")
    ap.add_argument("--runner", default=f"{sys.executable} -m microemo_ref",
                    help="the command that runs the command line (default: this Python's microemo_ref)")
    ap.add_argument("--json", type=Path, help="also write the outcomes here")
    args = ap.parse_args()
    runner = shlex.split(args.runner)
    with tempfile.TemporaryDirectory() as tmp:
        cases = Cases(Path(tmp))
        ref = run([sys.executable, "-m", "microemo_ref"], ["spot", "--json", str(cases.ref)])  # the current package's events are the reference
        reference = spot_events(ref.stdout)
        rows = []
        for name, argv, check, names in build(cases, reference):
            if args.only and not any(o in name for o in args.only):
                continue
            began = time.time()
            proc = run(runner, argv)
            outcome = classify(proc, check, names)
            tail = "" if proc is None else (proc.stderr.strip().splitlines() or [""])[-1][:150]
            rows.append({"case": name, "outcome": outcome, "exit": None if proc is None else proc.returncode,
                         "seconds": round(time.time() - began, 1), "message": tail,
                         **({"events": _events_or_none(proc.stdout)} if check is not None and proc else {})})
            print(f"{outcome:14s} {name:45s} {tail}", flush=True)
    print()
    for outcome, n in Counter(r["outcome"] for r in rows).most_common():
        print(f"{n:3d}  {outcome}")
    print(f"{len(rows)} cases")
    if args.json:
        args.json.write_text(json.dumps({"reference_events": reference, "cases": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
