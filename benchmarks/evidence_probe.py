"""Is a concealed clip's hidden emotion in the measured evidence, and does the model use it?

Fits the linear probe of :mod:`microemo_ref.pipeline.evidence_probe` on the spotted micro
events of the cached training clips, reads the hidden emotion of the cached held-out clips,
and sets it beside the shipped model's answers (from an ``evaluate --json`` report). Writes
``benchmarks/results/evidence_probe.json``, which notebook 10 reads. Usage:

    python benchmarks/evidence_probe.py [--train .cache/train] [--test .cache/eval_test]
                                        [--report benchmarks/results/eval_test.json]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from microemo_ref.metrics.emotion_sets import heads
from microemo_ref.pipeline.evidence_probe import probe_hidden_emotion

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--train", nargs="+", default=[".cache/train"])
    ap.add_argument("--test", nargs="+", default=[".cache/eval_test"])
    ap.add_argument("--report", type=Path, default=RESULTS / "eval_test.json")
    ap.add_argument("--out", type=Path, default=RESULTS / "evidence_probe.json")
    args = ap.parse_args()

    probe = probe_hidden_emotion(args.train, args.test)
    answers = {r["name"]: r for r in json.loads(args.report.read_text())["answers"]}
    model_right = 0
    for p in probe["predictions"]:
        row = answers.get(p["name"])
        p["model"] = sorted(heads(row["labels"])[0]) if row else None
        model_right += bool(row) and p["emotion"] in p["model"]
    probe["model_names_hidden"] = model_right
    print(f"training events (spotted): {probe['train_events']} {probe['train_emotions']}; ridge {probe['ridge']}")
    print(f"held-out concealed clips: {probe['test_clips']}, spotted {probe['spotted']}")
    print(f"probe names the hidden emotion: {probe['accuracy']:.3f} of all clips, {probe['accuracy_spotted']:.3f} "
          f"of spotted ones (chance {probe['chance']:.3f}); the model names it in {model_right} of {probe['test_clips']}")
    for p in probe["predictions"]:
        print(f"  {p['name']:36s} {p['emotion']:9s} probe {p['probe'] or 'missed':9s} model {p['model']}")
    args.out.write_text(json.dumps(probe, indent=1) + "\n")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
