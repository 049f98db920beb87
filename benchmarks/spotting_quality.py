"""Spotting quality of the local facial branch on generated held-out clips.

Generates (once, into the cache) N clips of the *test* identity covering every scenario, runs
the local branch on each, and prints MEGC scores (IoU >= 0.5; micro, macro, overall), scores
per scenario, and false events per 10 s on the neutral clips (head motion, blinks and speech,
no expression). Usage:

    python benchmarks/spotting_quality.py [--n 48] [--seed 100] [--out DIR]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from microemo_ref.config import cache_dir
from microemo_ref.face.local_branch import extract_local
from microemo_ref.io.casme import events_from_truth
from microemo_ref.metrics.spotting import score_spotting
from microemo_ref.samples.sets import generate_set


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=48)
    ap.add_argument("--seed", type=int, default=100)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    out = args.out or cache_dir() / f"spotting_test_n{args.n}_s{args.seed}"
    videos = sorted(out.glob("*.mp4"))
    if len(videos) < args.n:
        t0 = time.perf_counter()
        videos = generate_set(out, args.n, args.seed, split="test")
        print(f"generated {len(videos)} clips in {time.perf_counter() - t0:.0f} s")
    per_scenario: dict[str, list] = {}
    neutral_false, neutral_s, frames, t0 = 0, 0.0, 0, time.perf_counter()
    for video in videos:
        truth = json.loads(video.with_suffix(".json").read_text())
        pred = extract_local(video).to_json()["events"]
        frames += truth["n_frames"]
        per_scenario.setdefault(truth["scenario"], []).append((pred, events_from_truth(truth)))
        if truth["scenario"] == "neutral":
            neutral_false += len(pred)
            neutral_s += truth["duration"]
    elapsed = time.perf_counter() - t0
    every = [c for clips in per_scenario.values() for c in clips]
    report = {"all": score_spotting(every),
              "per_scenario": {k: score_spotting(v)["overall"] for k, v in sorted(per_scenario.items())},
              "neutral_false_events_per_10s": round(10 * neutral_false / max(neutral_s, 1e-9), 3),
              "neutral_seconds": round(neutral_s, 1),
              "frames_per_second_end_to_end": round(frames / elapsed, 1)}
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
