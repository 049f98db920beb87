"""Do the two decoders give the same answers? llama.cpp (our addition) against transformers on held-out clips.

Each checkpoint answers every cached clip twice, greedily: once decoded by ``transformers`` (the
reference) and once by llama.cpp on the merged GGUF (:mod:`microemo_ref.model.gguf_decoder`),
in the same run. Reported per checkpoint: how many answers are the same string, OV F and clue
recall under each decoder and their difference, and the seconds each decoder took. The
acceptance rule of the fast decoder: identical answers, or OV F and clue recall within 0.02.
Usage (the 48 held-out clips of docs/results.md, about 20 minutes on 2 cores per checkpoint):
    microemo-ref generate --out .cache/eval_test --n 48 --seed 100 --split test
    microemo-ref cache .cache/eval_test
    python benchmarks/decoder_agreement.py .cache/eval_test --out benchmarks/results/decoder_agreement.json
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from microemo_ref.model.gguf_decoder import WEIGHTS, DecoderConfig, attach
from microemo_ref.model.llm import load_llm
from microemo_ref.model.checkpoint import load_checkpoint
from microemo_ref.pipeline.emer import SHIPPED, default_checkpoint
from microemo_ref.pipeline.evaluate import answer_all, clue_score, label_scores


def compare(path: str, folders: list[str], weights: str) -> dict:
    """Answers and scores of one shipped checkpoint ('cues' or 'tokens') under both decoders."""
    model = load_checkpoint(default_checkpoint(path), load_llm())
    runs = {}
    for choice in ("transformers", "llama.cpp"):
        decoder = attach(model, choice, DecoderConfig(weights=weights))
        began = time.perf_counter()
        rows = answer_all(model, folders)
        runs[choice] = {"decoder": decoder, "seconds": round(time.perf_counter() - began, 1), "rows": rows,
                        "ov_f": label_scores(rows)["ov"]["f"], "clue_recall": clue_score(rows)}
    slow, fast = runs["transformers"], runs["llama.cpp"]
    differ = [{"name": a["name"], "transformers": a["explanation"] + " | " + ", ".join(a["labels"]),
               "llama.cpp": b["explanation"] + " | " + ", ".join(b["labels"])}
              for a, b in zip(slow["rows"], fast["rows"]) if (a["explanation"], a["labels"]) != (b["explanation"], b["labels"])]

    def delta(key: str) -> float | None:
        return None if slow[key] is None else round(fast[key] - slow[key], 4)

    return {"checkpoint": path, "clips": len(slow["rows"]), "same_answers": len(slow["rows"]) - len(differ),
            "ov_f": {"transformers": slow["ov_f"], "llama.cpp": fast["ov_f"], "difference": delta("ov_f")},
            "clue_recall": {"transformers": slow["clue_recall"], "llama.cpp": fast["clue_recall"],
                            "difference": delta("clue_recall")},
            "seconds": {"transformers": slow["seconds"], "llama.cpp": fast["seconds"],
                        "speedup": round(slow["seconds"] / fast["seconds"], 2)},
            "decoders": [slow["decoder"], fast["decoder"]], "differing_answers": differ}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("folders", nargs="+")
    ap.add_argument("--paths", nargs="+", default=list(SHIPPED), choices=list(SHIPPED))
    ap.add_argument("--weights", choices=WEIGHTS, default="f16")
    ap.add_argument("--out")
    args = ap.parse_args()
    results = [compare(p, args.folders, args.weights) for p in args.paths]
    for r in results:
        ok = r["same_answers"] == r["clips"] or (abs(r["ov_f"]["difference"]) <= 0.02
                                                 and abs(r["clue_recall"]["difference"] or 0) <= 0.02)
        r["within_rule"] = ok
        print(f"{r['checkpoint']}: {r['same_answers']} of {r['clips']} answers the same; OV F "
              f"{r['ov_f']['transformers']} -> {r['ov_f']['llama.cpp']}, clue recall {r['clue_recall']['transformers']}"
              f" -> {r['clue_recall']['llama.cpp']}; {r['seconds']['speedup']}x faster"
              f" ({'within' if ok else 'OUTSIDE'} the 0.02 rule)")
    if args.out:
        Path(args.out).write_text(json.dumps({"folders": args.folders, "weights": args.weights, "results": results},
                                             indent=1) + "\n")


if __name__ == "__main__":
    main()
