"""Speed of the local facial branch on 480p video, against FaceMesh alone (its floor).

Builds a 640x480 test video from a committed sample (frames scaled to 480 px high and padded),
then times, in the same run:

* FaceMesh alone (decode + landmarks): the floor the branch cannot beat;
* the whole local branch (decode three times, FaceMesh, flow, hands, signals, spotting), with DIS (medium
  preset, the default), DIS (fast preset) and Farneback flow, and the planted
  micro-expression's signal-to-threshold score with each,
  so the flow method is chosen on speed *and* sensitivity.

Prints frames per second and ratios to FaceMesh alone. Usage:
    python benchmarks/local_branch_fps.py [--sample NAME] [--repeat 2]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from microemo_ref.config import DATA_SAMPLES
from microemo_ref.face.local_branch import extract_local
from microemo_ref.face.motion import MotionConfig
from microemo_ref.face.tracking import track_face
from microemo_ref.io.clip import load_clip
from microemo_ref.io.video import iter_frames, probe_video, write_video


def make_480p(sample: str, out: Path) -> Path:
    clip = load_clip(DATA_SAMPLES / f"{sample}.mp4")
    frames = np.stack([cv2.copyMakeBorder(cv2.resize(f, (480, 480), interpolation=cv2.INTER_CUBIC),
                                          0, 0, 80, 80, cv2.BORDER_REPLICATE) for f in clip.frames])
    path = write_video(out / f"{sample}_480p.mp4", frames, clip.fps, clip.audio)
    (out / f"{sample}_480p.srt").write_bytes((DATA_SAMPLES / f"{sample}.srt").read_bytes())
    return path


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sample", default="concealed_astronaut_s0002")
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    truth = json.loads((DATA_SAMPLES / f"{args.sample}.json").read_text())
    micro = next(e for e in truth["events"] if e["kind"] == "micro")
    with tempfile.TemporaryDirectory() as tmp:
        video = make_480p(args.sample, Path(tmp))
        info = probe_video(video)
        n = info.n_frames
        t_mesh = best_of(lambda: track_face((f for _, f in iter_frames(video)), info.fps), args.repeat)
        rows = {"facemesh_alone": {"fps": round(n / t_mesh, 1), "ratio": 1.0}}
        for method in ("dis", "dis_fast", "farneback"):
            cfg = MotionConfig(method=method)
            result = {}
            t = best_of(lambda: result.update(ev=extract_local(video, motion_cfg=cfg)), args.repeat)
            hit = [e for e in result["ev"].events if abs(e.apex - micro["apex"]) <= 2]
            rows[f"local_branch_{method}"] = {"fps": round(n / t, 1), "ratio": round(t_mesh / t, 3),
                                              "micro_found": bool(hit),
                                              "micro_score": round(hit[0].score, 2) if hit else None}
    print(f"{n} frames of {info.width}x{info.height} video ({args.sample}), best of {args.repeat}")
    for name, row in rows.items():
        print(f"  {name:24s} " + "  ".join(f"{k} {v}" for k, v in row.items()))


if __name__ == "__main__":
    main()
