"""The flash word's reader on faces training never saw: is the emotion in the tokens, or lost in the reader?

On the pointer path (``--path pointer``) the answer names the emotion the flash pointer hands it,
and on the held-out identity that emotion is the limit of concealed F. This script refits the
reader (:func:`~microemo_ref.model.flash_word.fit_flash_reader`) on the frozen encoder of a
checkpoint, in three ways, and scores each on the concealed clips of several held-out faces:

* ``shipped``: the reader as training fits it (span tokens, flattened);
* ``clip_median``: each span's tokens minus the median of its clip's utterance spans, a
  per-clip normalisation against the face's identity (subject-wise normalisation, common in
  micro-expression recognition);
* ``conditional``: the shipped reader, but the emotion is its most probable flash class at the
  pointer's utterance, however small the flash mass (an upper bound of what the pointer could
  hand over if it always named an emotion).

For each concealed clip: does the pointer name the flash's utterance (the utterance of most flash
mass), and does the pointer's emotion word name the hidden emotion? Two faces besides the test
identity come from frames of the bundled real clips (``--faces DIR`` writes them):

    python benchmarks/flash_reader_faces.py --faces .cache/val/faces
    microemo-ref generate --out .cache/val/langer --n 24 --seed 700 --split test --scenario concealed --face .cache/val/faces/langer.png
    microemo-ref generate --out .cache/val/obama --n 24 --seed 700 --split test --scenario concealed --face .cache/val/faces/obama.png
    microemo-ref cache .cache/val/langer && microemo-ref cache .cache/val/obama
    python benchmarks/flash_reader_faces.py --test grace_hopper=.cache/heldout/concealed langer=.cache/val/langer \\
        obama=.cache/val/obama --json benchmarks/results/flash_reader_faces.json

One encoder pass over the training and test clips (about a minute on 2 cores); the fits take seconds.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

FRAMES = {"langer": ("pexels_wolfgang_langer.mp4", 0.0, None),  # the clip's first frame, near neutral
          "obama": ("obama_iran_statement_2015.mp4", 2.0, (0, 150, 135, 285))}  # face crop, upscaled 3x


def write_faces(out: Path) -> None:
    """Two frontal face photos from the bundled real clips, for ``generate --face``."""
    import cv2

    from microemo_ref.config import DATA_SAMPLES

    out.mkdir(parents=True, exist_ok=True)
    for name, (clip, t, crop) in FRAMES.items():
        cap = cv2.VideoCapture(str(DATA_SAMPLES / "real" / clip))
        cap.set(cv2.CAP_PROP_POS_MSEC, t * 1000)
        ok, frame = cap.read()
        if not ok:
            raise SystemExit(f"{clip}: no frame at {t} s")
        if crop:
            y0, y1, x0, x1 = crop
            frame = cv2.resize(frame[y0:y1, x0:x1], (3 * (x1 - x0), 3 * (y1 - y0)), interpolation=cv2.INTER_CUBIC)
        cv2.imwrite(str(out / f"{name}.png"), frame)
        print(f"wrote {out / name}.png")


def span_table(model, folders) -> dict:
    """Every video span of every clip: flattened tokens, flash class, clip, span kind, scenario."""
    from microemo_ref.pipeline.dataset import find_examples, load_example
    from microemo_ref.pipeline.train import flash_rows, labelled_outputs

    labelled = labelled_outputs(model, [load_example(p) for p in find_examples(tuple(folders))])
    x, y, clip = flash_rows(labelled)
    kind = [s.kind for _, _, out in labelled for s in out.visual.spans]
    scenario = [ex.truth["scenario"] for _, ex, out in labelled for _ in out.visual.spans]
    return {"x": x, "y": np.array(y), "clip": np.array(clip), "kind": np.array(kind), "scenario": np.array(scenario)}


def clip_median(t: dict) -> np.ndarray:
    x = t["x"].copy()
    for c in np.unique(t["clip"]):
        rows = t["clip"] == c
        x[rows] -= np.median(t["x"][rows & (t["kind"] == "utterance")], axis=0)
    return x


def pointer_scores(p: np.ndarray, classes: list[str], t: dict, conditional: bool = False) -> dict:
    """Per concealed clip: the pointer's utterance and its emotion word against the truth."""
    none = classes.index("none")
    where = what = n = 0
    by_emotion: dict[str, list[int]] = {}  # hidden emotion -> [emotion right, clips]
    for c in np.unique(t["clip"]):
        rows = np.flatnonzero((t["clip"] == c) & (t["kind"] == "utterance"))
        flash = [k for k in rows if t["y"][k] != "none"]
        if t["scenario"][rows[0]] != "concealed" or not flash:
            continue
        n += 1
        mass = 1.0 - p[rows, none]
        best = rows[np.argmax(mass)]
        if conditional:
            e = p[best].copy()
        else:  # as model.flash_word.flash_pointer: e = sum_k q_k w_k + (1 - sum_k q_k) E[none]
            q = mass / max(1.0, mass.sum())
            e = q @ p[rows]
        e[none] = -np.inf  # the emotion word the pointer leans to most
        where += int(best == flash[0])
        right = int(classes[int(np.argmax(e))] == t["y"][flash[0]])
        what += right
        tally = by_emotion.setdefault(str(t["y"][flash[0]]), [0, 0])
        tally[0] += right
        tally[1] += 1
    return {"clips": n, "utterance_right": where, "emotion_right": what,
            "emotion_right_by_class": {k: by_emotion[k] for k in sorted(by_emotion)}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--faces", type=Path, help="write the two validation face photos here and stop")
    ap.add_argument("--checkpoint", default=None, help="default: the shipped pointer checkpoint")
    ap.add_argument("--train", nargs="+", default=[".cache/train"])
    ap.add_argument("--test", nargs="+", default=["grace_hopper=.cache/heldout/concealed"], help="NAME=DIR ...")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    if args.faces:
        write_faces(args.faces)
        return
    from microemo_ref.model.flash_word import fit_flash_reader
    from microemo_ref.pipeline.emer import default_checkpoint, load_for_answers

    torch.manual_seed(args.seed)
    model, _ = load_for_answers(args.checkpoint or default_checkpoint("pointer"))
    train = span_table(model, args.train)
    tests = {name: span_table(model, [folder]) for name, folder in (s.split("=", 1) for s in args.test)}
    report = {"checkpoint": str(args.checkpoint or "pointer"), "readers": {}}
    for variant, features in (("shipped", lambda t: t["x"]), ("clip_median", clip_median),
                              ("conditional", lambda t: t["x"])):
        reader, fit = fit_flash_reader(features(train), train["y"], train["clip"], seed=args.seed)
        classes = list(reader.classifier.classes)
        scores = {name: pointer_scores(reader.probabilities(torch.as_tensor(features(t))).numpy(), classes, t,
                                       conditional=variant == "conditional") for name, t in tests.items()}
        report["readers"][variant] = {"fit": fit, "faces": scores}
        print(variant, " | ".join(f"{k}: utterance {v['utterance_right']}/{v['clips']}, emotion "
                                  f"{v['emotion_right']}/{v['clips']}" for k, v in scores.items()))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
