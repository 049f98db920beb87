"""Compare spotter settings (``SpotConfig``) on generated clips, measuring the face once.

Spotting is cheap; FaceMesh and optical flow are not. This script measures each clip's region
motion once (cached as ``NAME.motion.pkl`` under ``--cache``), then runs the spotter with each
setting below and prints, per setting:

* ``micro_hit``: share of the true micro-expressions with a spotted *micro* event whose apex
  lies within 0.3 s of the true apex (what the EMER cue line needs; clue-recall tolerance);
* ``megc_f1``: MEGC overall F1 (IoU >= 0.5, micro and macro pooled);
* ``false_micro_10s``: spotted micro events near no true event, per 10 s of video (each one
  becomes a wrong "flash" in the cue line);
* ``neutral_10s``: all events per 10 s on the neutral clips (no expression at all).

The sweep runs the spotter without the hand and head-turn gates (``spot_events`` without
``covered`` and ``head``), which changed no event on generated clips; so the default setting here
is the pipeline's spotter less those gates.

Use clips of the *training* identities to choose a setting (``--data .cache/train/s1001``),
and keep the held-out ones for the final score. Usage:

    python benchmarks/spotting_sweep.py --data DIR [DIR ...] [--per-scenario 15]
"""
from __future__ import annotations

import argparse
import json
import pickle
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from microemo_ref.config import cache_dir
from microemo_ref.face.local_branch import extract_local
from microemo_ref.face.spotting import SpotConfig, region_signals, spot_events
from microemo_ref.io.casme import events_from_truth
from microemo_ref.metrics.spotting import score_spotting
from microemo_ref.pipeline.evaluate import nearest_micro

#: The spotter settings compared here, by their labels: "3_frames_both_corners" asks for
#: transient runs of 3 frames and averages both mouth corners; "brief_2_frames" and
#: "sided_corners" change one of the two; "both" asks for 2 frames and measures the mouth
#: corners' transient channel per side; the default also requires a transient run to come
#: back (``max_net``).
NO_COMEBACK = replace(SpotConfig(), max_net=np.inf)
STRICT = replace(NO_COMEBACK, min_frames_brief=3, sided=())
SETTINGS: dict[str, SpotConfig] = {
    "3_frames_both_corners": STRICT,
    "brief_2_frames": replace(STRICT, min_frames_brief=2),
    "sided_corners": replace(STRICT, sided=("mouth_corners",)),
    "both (no come-back rule)": NO_COMEBACK,
    "both + come-back rule (the default)": SpotConfig(),
}


def measured(video: Path, cache: Path) -> tuple:
    """(motion, speaking) of one clip, from the cache or measured now."""
    path = cache / (video.stem + ".rgb.motion.pkl")  # ".rgb": plain ".motion.pkl" files came from libav's grey decode
    if path.is_file():
        return pickle.loads(path.read_bytes())
    ev = extract_local(video)          # spots with the default setting too, which costs little
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(pickle.dumps((ev.motion, ev.speaking)))
    tmp.replace(path)
    return ev.motion, ev.speaking


def scores(clips: list[tuple], cfg: SpotConfig) -> dict:
    hits = n_micro = false_micro = neutral_events = 0
    seconds = neutral_s = 0.0
    megc = []
    for motion, speaking, truth in clips:
        fps = motion.fps
        pred = [e.to_json(fps) for e in spot_events(region_signals(motion, cfg), fps, speaking, cfg)]
        gold = events_from_truth(truth)
        megc.append((pred, gold))
        micro = [e for e in truth["events"] if e["kind"] == "micro"]
        n_micro += len(micro)
        hits += sum(nearest_micro(e["apex_s"], pred) is not None for e in micro)
        near_truth = [e["apex_s"] for e in truth["events"]]
        false_micro += sum(e["type"] == "micro" and all(abs(e["apex_s"] - t) > 0.3 for t in near_truth) for e in pred)
        seconds += truth["duration"]
        if truth["scenario"] == "neutral":
            neutral_events += len(pred)
            neutral_s += truth["duration"]
    return {"micro_hit": round(hits / max(n_micro, 1), 3), "micro_true": n_micro,
            "megc_f1": round(score_spotting(megc)["overall"]["f1"], 3),
            "false_micro_10s": round(10 * false_micro / max(seconds, 1e-9), 3),
            "neutral_10s": round(10 * neutral_events / max(neutral_s, 1e-9), 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", nargs="+", required=True, help="folders of generated clips (*.mp4 + *.json)")
    ap.add_argument("--per-scenario", type=int, default=15, help="clips per scenario (the first ones, sorted)")
    ap.add_argument("--cache", type=Path, default=None)
    args = ap.parse_args()
    cache = args.cache or cache_dir() / "spotting_sweep"
    cache.mkdir(parents=True, exist_ok=True)
    chosen: dict[str, list[Path]] = {}
    for video in sorted(p for d in args.data for p in Path(d).rglob("*.mp4")):
        truth = json.loads(video.with_suffix(".json").read_text())
        group = chosen.setdefault(truth["scenario"], [])
        if len(group) < args.per_scenario:
            group.append(video)
    t0 = time.perf_counter()
    clips = [(*measured(v, cache), json.loads(v.with_suffix(".json").read_text()))
             for group in chosen.values() for v in group]
    print(f"{len(clips)} clips ({', '.join(f'{k} {len(v)}' for k, v in sorted(chosen.items()))}), "
          f"measured in {time.perf_counter() - t0:.0f} s")
    for name, cfg in SETTINGS.items():
        by_scenario = {s: scores([c for c in clips if c[2]["scenario"] == s], cfg) for s in sorted(chosen)}
        print(json.dumps({"setting": name, "all": scores(clips, cfg),
                          "micro_hit": {s: v["micro_hit"] for s, v in by_scenario.items() if v["micro_true"]}}))


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
