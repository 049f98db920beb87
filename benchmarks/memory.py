"""Peak memory of `microemo-ref spot` and `microemo-ref emer` against the clip's length.

A long clip is made from a sample: its frames (a talking face, 384 px) scaled into a frame of
``--height`` pixels (16:9, the face in the middle) and looped, with its audio looped under
them, for ``--seconds``; a short clip of ``--short`` seconds is made the same way as the
baseline. Each command runs in its own process on each clip, and its peak resident memory
(``ru_maxrss`` of that process) is reported, with the ratio long / short: memory bounded by
the resolution, not the length, gives a ratio near 1. The frames held as one uint8 array
would take ``T x H x W x 3`` bytes; that figure is printed beside them for scale.

Usage (10 minutes of 1080p take about 3 minutes to write, then each command runs at about
the measuring stage's speed, tens of minutes on 2 cores):
    python benchmarks/memory.py [--seconds 600] [--height 1080] [--short 12] [--commands spot emer]
                                [--decoder auto|llama.cpp|transformers] [--keep DIR] [--json FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from microemo_ref.config import DATA_SAMPLES
from microemo_ref.io.clip import load_clip
from microemo_ref.io.video import write_video

SAMPLE = "congruent_astronaut_s0004"


def long_clip(out: Path, seconds: float, height: int) -> Path:
    """The sample's frames scaled into a 16:9 frame of ``height`` px and looped for ``seconds``."""
    clip = load_clip(DATA_SAMPLES / f"{SAMPLE}.mp4")
    width = (height * 16 // 9) // 2 * 2
    n = round(seconds * clip.fps)

    def frames():
        canvas = np.zeros((height, width, 3), np.uint8)
        left = (width - height) // 2
        for t in range(n):
            canvas[:, left:left + height] = cv2.resize(clip.frames[t % clip.n_frames], (height, height),
                                                       interpolation=cv2.INTER_LINEAR)
            yield canvas

    audio = None
    if clip.audio is not None:
        reps = int(np.ceil(n / clip.fps * clip.sample_rate / len(clip.audio)))
        audio = np.tile(clip.audio, reps)[: round(n / clip.fps * clip.sample_rate)]
    return write_video(out, frames(), clip.fps, audio, clip.sample_rate, crf=23, preset="ultrafast")


def peak_rss(command: list[str]) -> tuple[float, float, int]:
    """(peak resident MB, wall seconds, exit code) of ``command`` run as one child process."""
    t = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        sys.stderr.write(proc.stderr.read().decode(errors="replace")[-2000:])
    return usage.ru_maxrss / 1024, time.perf_counter() - t, proc.returncode  # ru_maxrss: KiB on Linux


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=600.0)
    ap.add_argument("--short", type=float, default=12.0)
    ap.add_argument("--height", type=int, default=1080)
    ap.add_argument("--commands", nargs="+", default=["spot", "emer"], choices=["spot", "emer", "info"])
    ap.add_argument("--decoder", default="auto", choices=["auto", "llama.cpp", "transformers"],
                    help="who decodes emer's answer")
    ap.add_argument("--keep", help="write the clips here and keep them (default: a temporary folder)")
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args()
    folder = Path(args.keep or tempfile.mkdtemp(prefix="microemo-memory-"))
    folder.mkdir(parents=True, exist_ok=True)
    exe = [sys.executable, "-m", "microemo_ref"]
    report: dict = {"height": args.height, "clips": {}}
    for name, seconds in (("short", args.short), ("long", args.seconds)):
        path = folder / f"{name}_{args.height}p_{seconds:g}s.mp4"
        t = time.perf_counter()
        if not path.is_file():
            long_clip(path, seconds, args.height)
        width = (args.height * 16 // 9) // 2 * 2
        frames = round(seconds * 25)
        row = {"seconds": seconds, "frames": frames, "file_mb": round(path.stat().st_size / 2**20, 1),
               "as_one_array_gb": round(frames * args.height * width * 3 / 2**30, 2),
               "write_s": round(time.perf_counter() - t, 1)}
        for command in args.commands:
            extra = ["--json"] if command in ("spot", "emer") else []
            extra += ["--decoder", args.decoder] if command == "emer" else []
            mb, wall, code = peak_rss(exe + [command, str(path), *extra])
            row[command] = {"peak_mb": round(mb), "wall_s": round(wall, 1), "exit": code}
            print(f"{name:5s} {seconds:6.0f} s {args.height}p  {command:5s} peak {mb:7.0f} MB  "
                  f"{wall:7.1f} s  exit {code}", flush=True)
        report["clips"][name] = row
    short, long = report["clips"]["short"], report["clips"]["long"]
    print(f"\nframes as one array: {short['as_one_array_gb']} GB ({args.short:g} s), "
          f"{long['as_one_array_gb']} GB ({args.seconds:g} s)")
    for command in args.commands:
        ratio = long[command]["peak_mb"] / short[command]["peak_mb"]
        report.setdefault("ratio_long_to_short", {})[command] = round(ratio, 2)
        print(f"{command}: peak {long[command]['peak_mb']} MB on {args.seconds:g} s against "
              f"{short[command]['peak_mb']} MB on {args.short:g} s: {ratio:.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
