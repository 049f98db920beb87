"""End-to-end EMER time for one clip, split by stage, with both decoders timed in the same run.

Stages, each timed in the same run:

* load: the frozen LLM (converted SmolLM2, or a folder), the checkpoint, and the llama.cpp
  decoder on the merged GGUF (:mod:`microemo_ref.model.gguf_decoder`, our addition). Writing the
  merged file happens once per checkpoint and is reported apart (``export_s``, 0 when cached);
* measure: decode, utterances, the local facial branch (FaceMesh + optical flow + spotting),
  audio features (pYIN); FaceMesh alone over the same decoded frames is reported as the floor
  of this stage (``facemesh_floor_s``);
* encode: the visual encoder, the utterance-aware video and audio Q-Formers, the bridge;
* prefill and generate, once with ``transformers`` (the reference) and once with llama.cpp:
  ``--tokens`` greedy tokens each, end-of-sequence ignored so that both decode the same count.

``real_time_factor`` is (measure + encode + generate) over the clip's duration with the decoder
``emer`` uses by default (llama.cpp where it runs); ``real_time_factor_transformers`` is the
same with ``transformers``; ``decoder_speedup`` is transformers' generate time over llama.cpp's.
Uses the shipped checkpoint, else ``--checkpoint``. Usage:
    python benchmarks/emer_speed.py [--sample NAME] [--checkpoint DIR] [--tokens 224] [--weights f16|q4_1]
"""
from __future__ import annotations

import argparse
import json
import time

import torch

from microemo_ref.config import DATA_SAMPLES
from microemo_ref.io.clip import load_clip
from microemo_ref.model import gguf_decoder as G
from microemo_ref.model.llm import load_llm
from microemo_ref.model.checkpoint import load_checkpoint
from microemo_ref.pipeline.dataset import describe
from microemo_ref.pipeline.emer import default_checkpoint
from microemo_ref.pipeline.evidence import encoder_inputs, gather_evidence


def facemesh_floor(frames) -> float:
    """Seconds FaceMesh (video mode) alone takes over the decoded frames."""
    from microemo_ref.face.landmarks import FaceMesh

    t = time.perf_counter()
    with FaceMesh(static=False) as fm:
        for frame in frames:
            fm.landmarks(frame)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sample", default="congruent_astronaut_s0004")  # 11.4 s, 4 utterances
    ap.add_argument("--checkpoint")
    ap.add_argument("--tokens", type=int, default=224)
    ap.add_argument("--weights", choices=G.WEIGHTS, default="f16")
    args = ap.parse_args()
    times: dict[str, float] = {}
    why_not = G.unavailable_reason()

    t = time.perf_counter()
    model = load_checkpoint(args.checkpoint or default_checkpoint(), load_llm())
    times["load_model"] = time.perf_counter() - t
    decoder = None
    if why_not is None:
        t = time.perf_counter()
        path = G.export_gguf(model.llm, args.weights)
        times["export"] = time.perf_counter() - t
        t = time.perf_counter()
        decoder = G.GGUFDecoder(path, G.DecoderConfig(weights=args.weights), eos_id=None)  # None: never stops early
        times["load_decoder"] = time.perf_counter() - t
    times["load"] = times["load_model"] + times.get("load_decoder", 0.0)

    t = time.perf_counter()
    clip = load_clip(DATA_SAMPLES / f"{args.sample}.mp4")
    evidence = gather_evidence(clip, model.cfg.encoder.visual)
    x = encoder_inputs(evidence, model.cfg.encoder.visual)
    lines, cues = describe(evidence, None if x.dynamics is None else x.dynamics.numpy(), model.cue_readout())
    times["measure"] = time.perf_counter() - t
    times["facemesh_floor"] = facemesh_floor(clip.frames)

    with torch.no_grad():
        t = time.perf_counter()
        assembled, _ = model.prompt(x, lines, cues)
        times["encode"] = time.perf_counter() - t
        t = time.perf_counter()
        model.llm(inputs_embeds=assembled.embeds[None])
        times["prefill_transformers"] = time.perf_counter() - t
        t = time.perf_counter()
        ids = model.llm.generate(inputs_embeds=assembled.embeds[None], max_new_tokens=args.tokens,
                                 min_new_tokens=args.tokens, do_sample=False,
                                 pad_token_id=model.tokenizer.pad_token_id)
        times["generate_transformers"] = time.perf_counter() - t
    new = int(ids.shape[1])
    if decoder is not None:
        t = time.perf_counter()
        decoder.prompt_logits(assembled.embeds)
        times["prefill_llama_cpp"] = time.perf_counter() - t
        t = time.perf_counter()
        fast = decoder.greedy(assembled.embeds, args.tokens)
        times["generate_llama_cpp"] = time.perf_counter() - t
        same = next((i for i, (a, b) in enumerate(zip(fast, ids[0].tolist())) if a != b), len(fast))

    def rtf(generate: float) -> float:
        return round((times["measure"] + times["encode"] + generate) / clip.duration, 2)

    default = "generate_llama_cpp" if decoder is not None else "generate_transformers"
    report = {"sample": args.sample, "weights": args.checkpoint or "shipped", "clip_s": round(clip.duration, 2),
              "prompt_tokens": len(assembled.ids), "new_tokens": new,
              "decoder": G.describe(decoder) + ("" if decoder else f" (llama.cpp unavailable: {why_not})"),
              "seconds": {k: round(v, 2) for k, v in times.items()},
              "per_clip_after_load_s": round(times["measure"] + times["encode"] + times[default], 2),
              "real_time_factor": rtf(times[default]),
              "real_time_factor_transformers": rtf(times["generate_transformers"]),
              "measure_over_facemesh_floor": round(times["measure"] / times["facemesh_floor"], 2),
              "tokens_per_s": {"transformers": round(new / times["generate_transformers"], 1)},
              "threads": torch.get_num_threads()}
    if decoder is not None:
        report["tokens_per_s"]["llama_cpp"] = round(len(fast) / times["generate_llama_cpp"], 1)
        report["decoder_speedup"] = round(times["generate_transformers"] / times["generate_llama_cpp"], 2)
        report["tokens_equal_to_transformers"] = same  # leading tokens both decoders chose alike
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
