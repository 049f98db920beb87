"""Probes before the LLM: what can a straight line read out of each utterance's video tokens?

MicroEmo's claim is that its visual encoder puts a micro-expression into the tokens of the
utterance it happened in. Whether the LLM then reads it is a second question; this module asks
the first one alone. An encoder is frozen; for every utterance of every clip its utterance
token sequence (the video Q-Former's Q tokens, Q x D flattened) becomes one row, and linear
probes (:mod:`microemo_ref.model.probe`) are fitted on the rows of training clips and scored
on the rows of held-out clips (another identity):

* **flash emotion**: on the utterances that hold a micro-expression, which emotion it shows
  (ridge classifier; accuracy against always answering the commonest training emotion);
* **flash or not**: on every utterance, whether one flashes there;
* **apex time**: on the utterances that hold one, the apex's offset from the utterance's start
  in seconds (ridge regression; mean error against always answering the training mean);
* **held expression**: on every utterance, the macro emotion held through it or neutral (the
  mood of a shift clip's utterance).

An encoder in "whole" span mode has no utterance tokens; its rows are the whole-clip tokens,
the same for every utterance of a clip: what an LLM without utterance tokens could read.
"""
from __future__ import annotations

import statistics
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from microemo_ref.model.microemo import MicroEmo
from microemo_ref.model.probe import ridge_classifier, ridge_probe
from microemo_ref.model.token_heads import FACE_CLASSES, FLASH_CLASSES, span_targets
from microemo_ref.model.utterance_qformer import utterance_spans
from microemo_ref.pipeline.dataset import load_example


@torch.no_grad()
def utterance_rows(model: MicroEmo, paths: Sequence[str | Path]) -> list[dict]:
    """One row per utterance of every clip with ground truth: its tokens and what it holds."""
    mode = model.cfg.encoder.span_mode
    if mode not in ("utterance", "whole"):
        raise ValueError(f"probing utterance tokens needs span mode 'utterance' or 'whole', not {mode!r}")
    was = model.training
    model.eval()
    rows = []
    for path in paths:
        ex = load_example(path)
        if not ex.truth:
            continue
        out = model.encode(ex.inputs)
        tokens = out.visual.tokens.reshape(len(out.visual.spans), -1).numpy()  # (K, Q*D)
        utts = utterance_spans(ex.inputs.duration, ex.inputs.utterances)[1:]
        if mode == "utterance":
            features = tokens[1:]
        else:  # whole: the whole-clip sequence stands for every utterance
            features = np.repeat(tokens[:1], len(utts), axis=0)
        targets = span_targets(ex.truth, utts, None)
        for k, span in enumerate(utts):
            flash = FLASH_CLASSES[targets.flash[k]]
            apex_s = None if targets.apex[k] is None else targets.apex[k] * (span.end - span.start)
            rows.append({"name": ex.name, "scenario": ex.truth["scenario"], "utterance": k, "features": features[k],
                         "flash": flash, "apex_s": apex_s, "face": FACE_CLASSES[targets.face[k]]})
    model.train(was)
    return rows


def _classify(train: list[dict], test: list[dict], key: str, label=lambda r, key: r[key]) -> dict:
    x = np.stack([r["features"] for r in train + test])
    y = [label(r, key) for r in train + test]
    result = ridge_classifier(x, y, train=np.arange(len(train)), test=np.arange(len(train), len(train) + len(test)))
    return {"accuracy": round(result.accuracy, 3), "chance": round(result.chance, 3), "n_train": len(train),
            "n_test": len(test), "classes": result.classes}


def probe_rows(train: list[dict], test: list[dict]) -> dict:
    """The four probes of the module docstring, fitted on ``train`` rows, scored on ``test`` rows."""
    flash_train = [r for r in train if r["flash"] != "none"]
    flash_test = [r for r in test if r["flash"] != "none"]
    report = {"flash_emotion": _classify(flash_train, flash_test, "flash"),
              "flash_present": _classify(train, test, "flash", lambda r, k: "flash" if r[k] != "none" else "none"),
              "held_expression": _classify(train, test, "face")}
    n = len(flash_train)
    val = max(1, n // 5)
    x = np.stack([r["features"] for r in flash_train + flash_test])
    y = np.array([r["apex_s"] for r in flash_train + flash_test])
    apex = ridge_probe(x, y, train=slice(0, n - val), val=slice(n - val, n), test=slice(n, len(y)))
    report["apex_time"] = {"mae_s": round(apex.mae, 3), "baseline_mae_s": round(apex.baseline_mae, 3),
                           "n_train": n - val, "n_test": len(flash_test)}
    return report


def probe_tokens(model: MicroEmo, train_paths: Sequence[str | Path], test_paths: Sequence[str | Path]) -> dict:
    """Probe ``model``'s frozen encoder: rows of the training clips fit, rows of the held-out ones score."""
    return probe_rows(utterance_rows(model, train_paths), utterance_rows(model, test_paths))


def summarise(results: list[dict]) -> dict:
    """Mean and sample standard deviation over seeds, per variant and probe."""
    def spread(values):
        return {"mean": round(statistics.fmean(values), 3),
                "sd": round(statistics.stdev(values), 3) if len(values) > 1 else None, "n": len(values)}

    by: dict[str, list[dict]] = {}
    for r in results:
        by.setdefault(r["variant"], []).append(r)
    return {v: {"flash_emotion": spread([r["flash_emotion"]["accuracy"] for r in rs]),
                "flash_emotion_chance": rs[0]["flash_emotion"]["chance"],
                "flash_present": spread([r["flash_present"]["accuracy"] for r in rs]),
                "flash_present_chance": rs[0]["flash_present"]["chance"],
                "held_expression": spread([r["held_expression"]["accuracy"] for r in rs]),
                "held_expression_chance": rs[0]["held_expression"]["chance"],
                "apex_mae_s": spread([r["apex_time"]["mae_s"] for r in rs]),
                "apex_baseline_mae_s": rs[0]["apex_time"]["baseline_mae_s"],
                "n_test_flashes": rs[0]["flash_emotion"]["n_test"], "n_test_utterances": rs[0]["flash_present"]["n_test"]}
            for v, rs in by.items()}


def table(summary: dict) -> str:
    """The summary of :func:`summarise` as a Markdown table, with the chance levels below it."""
    def cell(d):
        return f"{d['mean']:.3f}" + (f" ± {d['sd']:.3f}" if d["sd"] is not None else "") + f" (n={d['n']})"

    lines = ["| encoder | flash emotion acc | flash present acc | held expression acc | apex error (s) |",
             "|---|---|---|---|---|"]
    for v, s in summary.items():
        lines.append(f"| {v} | {cell(s['flash_emotion'])} | {cell(s['flash_present'])} | {cell(s['held_expression'])} "
                     f"| {cell(s['apex_mae_s'])} |")
    first = next(iter(summary.values()))
    lines.append(f"\nchance (commonest training class / training mean): flash emotion {first['flash_emotion_chance']}, "
                 f"flash present {first['flash_present_chance']}, held expression {first['held_expression_chance']}, "
                 f"apex {first['apex_baseline_mae_s']} s; held-out: {first['n_test_flashes']} flashes in "
                 f"{first['n_test_utterances']} utterances")
    return "\n".join(lines)


__all__ = ["probe_rows", "probe_tokens", "summarise", "table", "utterance_rows"]
