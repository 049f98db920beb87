"""End-to-end EMER time for one clip, split by stage, with the model load timed apart.

Stages, each timed in the same run:

* load: the frozen LLM (converted SmolLM2, or a folder) and the checkpoint;
* measure: decode, utterances, the local facial branch (FaceMesh + optical flow + spotting),
  audio features (pYIN);
* encode: the visual encoder, the utterance-aware video and audio Q-Formers, the bridge;
* generate: greedy decoding of the answer (tokens per second reported).

Ratios are given against the clip's own duration (real-time factor) and, for generation,
against one forward pass over the prompt (the prefill), measured in the same run. Uses the
shipped checkpoint, else ``--checkpoint``, else an untrained model (timing does not depend on
the weights; the answer then is noise). Usage:
    python benchmarks/emer_speed.py [--sample NAME] [--checkpoint DIR] [--tokens 160]
"""
from __future__ import annotations

import argparse
import json
import time

import torch

from microemo_ref.config import DATA_SAMPLES
from microemo_ref.io.clip import load_clip
from microemo_ref.model.llm import load_llm
from microemo_ref.model.microemo import MicroEmo, MicroEmoConfig, load_checkpoint
from microemo_ref.pipeline.dataset import describe
from microemo_ref.pipeline.evidence import encoder_inputs, gather_evidence


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sample", default="congruent_astronaut_s0004")  # 11.4 s, 4 utterances
    ap.add_argument("--checkpoint")
    ap.add_argument("--tokens", type=int, default=160)
    args = ap.parse_args()
    times: dict[str, float] = {}

    t = time.perf_counter()
    llm = load_llm()
    if args.checkpoint:
        model, weights = load_checkpoint(args.checkpoint, llm), args.checkpoint
    else:
        try:
            from microemo_ref.pipeline.emer import default_checkpoint

            model, weights = load_checkpoint(default_checkpoint(), llm), "shipped"
        except FileNotFoundError:
            torch.manual_seed(0)
            model, weights = MicroEmo(MicroEmoConfig(), llm).eval(), "untrained"
    times["load"] = time.perf_counter() - t

    t = time.perf_counter()
    clip = load_clip(DATA_SAMPLES / f"{args.sample}.mp4")
    evidence = gather_evidence(clip, model.cfg.encoder.visual)
    x = encoder_inputs(evidence, model.cfg.encoder.visual)
    lines, cues = describe(evidence, None if x.dynamics is None else x.dynamics.numpy(), model.cue_readout())
    times["measure"] = time.perf_counter() - t

    with torch.no_grad():
        t = time.perf_counter()
        assembled, _ = model.prompt(x, lines, cues)
        times["encode"] = time.perf_counter() - t
        t = time.perf_counter()
        model.llm(inputs_embeds=assembled.embeds[None])
        times["prefill"] = time.perf_counter() - t
        t = time.perf_counter()
        ids = model.llm.generate(inputs_embeds=assembled.embeds[None], max_new_tokens=args.tokens,
                                 min_new_tokens=args.tokens, do_sample=False,
                                 pad_token_id=model.tokenizer.pad_token_id)
        times["generate"] = time.perf_counter() - t
    new = ids.shape[1]
    after_load = times["measure"] + times["encode"] + times["generate"]
    print(json.dumps({"sample": args.sample, "weights": weights, "clip_s": round(clip.duration, 2),
                      "prompt_tokens": len(assembled.ids), "new_tokens": int(new),
                      "seconds": {k: round(v, 2) for k, v in times.items()},
                      "per_clip_after_load_s": round(after_load, 2),
                      "real_time_factor": round(after_load / clip.duration, 2),
                      "generate_tokens_per_s": round(new / times["generate"], 1),
                      "generate_over_prefill": round(times["generate"] / times["prefill"], 2),
                      "threads": torch.get_num_threads()}, indent=1))


if __name__ == "__main__":
    main()
