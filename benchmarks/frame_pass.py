"""A decoding pass that keeps a few frames: converting only the kept ones, against converting all.

The frame encoder's sampling pass (`VideoFrames.resized`, used by `pipeline.evidence`) keeps
about one frame a second out of 25. Each frame is decoded either way (exact, from frame 0),
but the YUV-to-RGB conversion, which on 1080p costs several times the decoding, is now done
for the kept frames only. The baseline is `io.video.iter_frames` over every frame (each one
converted), timed in the same run on the same clip; the best of ``--repeats`` is reported.

Usage:
    python benchmarks/frame_pass.py [--seconds 12] [--height 1080] [--every 25] [--repeats 3]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from memory import long_clip  # noqa: E402  (the looped sample clip of benchmarks/memory.py)

from microemo_ref.io.frames import VideoFrames  # noqa: E402
from microemo_ref.io.video import iter_frames, probe_video  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=12.0)
    ap.add_argument("--height", type=int, default=1080)
    ap.add_argument("--every", type=int, default=25, help="keep one frame in this many")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = long_clip(Path(tmp) / "clip.mp4", args.seconds, args.height)
        info = probe_video(path)
        keep = set(range(0, info.n_frames, args.every))
        frames = VideoFrames(path, info)
        best = {"convert every frame": float("inf"), "convert the kept frames": float("inf")}
        for _ in range(args.repeats):
            t = time.perf_counter()
            every = [t_ for t_, _ in iter_frames(path, info=info) if t_ in keep]
            best["convert every frame"] = min(best["convert every frame"], time.perf_counter() - t)
            t = time.perf_counter()
            kept = frames.resized(np.array(sorted(keep)), lambda frame: frame.shape)
            best["convert the kept frames"] = min(best["convert the kept frames"], time.perf_counter() - t)
            assert len(every) == len(kept) == len(keep)
    base = best["convert every frame"]
    print(f"{info.n_frames} frames of {info.width}x{info.height}, {len(keep)} kept, best of {args.repeats}")
    for name, s in best.items():
        print(f"  {name:24s} {s:6.2f} s  {s / base:5.2f}x")


if __name__ == "__main__":
    main()
