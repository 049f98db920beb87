"""Probes before the LLM: is a micro-expression in its utterance's video tokens, and which part puts it there?

For each encoder below, frozen, linear probes read every utterance's video tokens
(:mod:`microemo_ref.pipeline.token_probe`): fitted on the training clips (the training
identity), scored on held-out clips (another identity).

Encoders:
* ``untrained``: random initialisation (seeded): what the architecture alone gives a probe;
* ``heads/full``, ``heads/no_local``, ``heads/concat``, ``heads/whole``: trained from scratch by
  the token heads alone (stage 0, :mod:`microemo_ref.model.token_heads`, no LLM), with all
  parts, without the local branch, with the global-local attention replaced by plain
  concatenation, and with the whole-clip sequence only (no utterance tokens);
* ``shipped:cues`` and ``shipped:tokens``: the encoders of the two shipped checkpoints, trained
  through the LLM (the cue-text model's never needed its tokens; the tokens model's did).

    python benchmarks/token_probe.py --train .cache/train --test .cache/heldout --seeds 0 1 2

Each trained encoder is kept under ``--runs`` (resumable per epoch; a finished probe is not
repeated) and the table goes to ``--out`` (JSON) and stdout (mean and spread over seeds).
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import torch

from microemo_ref.model.llm import load_llm
from microemo_ref.model.checkpoint import load_checkpoint
from microemo_ref.model.microemo import MicroEmo, MicroEmoConfig
from microemo_ref.pipeline.dataset import find_examples, load_example
from microemo_ref.pipeline.emer import default_checkpoint
from microemo_ref.pipeline.token_probe import probe_rows, summarise, table, utterance_rows
from microemo_ref.pipeline.train import TrainConfig, align_tokens


def variant_config(name: str) -> MicroEmoConfig:
    cfg = MicroEmoConfig(cue_text=False)
    if name == "no_local":
        return replace(cfg, local_branch=False)
    if name == "concat":
        visual = cfg.encoder.visual
        return replace(cfg, encoder=replace(cfg.encoder, visual=replace(visual, fusion=replace(visual.fusion, mode="concat"))))
    if name == "whole":
        return replace(cfg, encoder=cfg.encoder.with_mode("whole"))
    return cfg


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--train", nargs="+", default=[".cache/train"])
    ap.add_argument("--test", nargs="+", default=[".cache/heldout"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=8, help="token-head epochs of the heads/* encoders")
    ap.add_argument("--variants", nargs="+", default=["untrained", "heads/full", "heads/no_local", "heads/concat",
                                                        "heads/whole", "shipped:cues", "shipped:tokens"])
    ap.add_argument("--runs", default=".cache/probe_runs")
    ap.add_argument("--out", default="benchmarks/results/token_probe.json")
    args = ap.parse_args()
    train_paths = find_examples(tuple(args.train))
    test_paths = find_examples(tuple(args.test))
    results = []
    for variant in args.variants:
        seeds = [None] if variant.startswith("shipped:") else args.seeds
        for seed in seeds:
            folder = Path(args.runs) / variant.replace(":", "_").replace("/", "_") / f"seed_{seed}"
            done = folder / "probe.json"
            if done.is_file():
                results.append(json.loads(done.read_text()))
                continue
            began = time.time()
            if variant.startswith("shipped:"):
                model = load_checkpoint(default_checkpoint(variant.split(":")[1]), load_llm())
            else:
                torch.manual_seed(seed)
                model = MicroEmo(variant_config(variant.split("/")[-1]), load_llm())  # a fresh LLM: adapters attach once
                if variant.startswith("heads/"):
                    examples = [load_example(p) for p in train_paths]
                    align_tokens(model, examples, TrainConfig(token_epochs=args.epochs, seed=seed, lr=1e-3), _mk(folder),
                                 progress=print)
            report = probe_rows(utterance_rows(model, train_paths), utterance_rows(model, test_paths))
            report = {"variant": variant, "seed": seed, "seconds": round(time.time() - began, 1), **report}
            _mk(folder)
            done.write_text(json.dumps(report, indent=1))
            print(json.dumps(report))
            results.append(report)
            del model
    summary = summarise(results)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"train": args.train, "test": args.test, "epochs": args.epochs,
                               "n_train_clips": len(train_paths), "n_test_clips": len(test_paths),
                               "summary": summary, "runs": results}, indent=1) + "\n")
    print(table(summary))


def _mk(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder


if __name__ == "__main__":
    main()
