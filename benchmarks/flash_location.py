"""Where the flash is: does the reader find its utterance, and does the LLM's answer name it?

Clue recall asks two things of an answer about a concealed clip's flash: the right utterance,
and an apex time within 0.3 s. This splits it, on the clips of an ``evaluate --json`` report:

* **the reader** (models with the flash word, :mod:`microemo_ref.model.flash_word`): which
  utterance spans its straight line calls a flash, read from the checkpoint's own tokens of
  each cached clip; "exact" when it calls the flash's utterance and no other;
* **the answer**: the utterance and the time its first sentence about a flash gives
  (:func:`microemo_ref.metrics.clues.flash_claim`), against the gold cue;
* **the emotion**, with a reader: its class at the flash's utterance (right when it is one of
  the gold labels' heads) crossed with the answer's labels (right when their heads are the
  gold's): does the answer follow the reader, and where it fails, is the reader wrong too?
* **simple guesses of the apex in the right utterance**, for scale: the utterance's middle,
  where its video Q-Former's cross-attention peaks (summed over each frame's tokens), and, for
  a model with the flash time (:mod:`microemo_ref.model.flash_time`), its frame reader's apex.

Usage:
    python benchmarks/flash_location.py REPORT.json [--checkpoint DIR] [--scenario concealed] [--json FILE]

(``--checkpoint`` is the model that wrote the report; without it, only the answers are read.)
"""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch

from microemo_ref.lexicon import head_of
from microemo_ref.metrics.clues import flash_claim


def reader_spans(checkpoint: str, names: list[str], clips: Path) -> dict[str, dict]:
    """Per clip, for each utterance span (the whole clip's span left out): the reader's class,
    the span's middle, its attention peak and the flash time reader's apex if the model has one (s)."""
    from microemo_ref.model.flash_time import span_apex
    from microemo_ref.model.flash_word import read_spans
    from microemo_ref.model.llm import load_prompt_llm
    from microemo_ref.model.checkpoint import load_checkpoint
    from microemo_ref.model.utterance_qformer import per_frame
    from microemo_ref.pipeline.dataset import SUFFIX, find_examples, load_example

    model = load_checkpoint(checkpoint, load_prompt_llm())  # the encoder is all it runs
    if model.flash_reader is None:
        raise SystemExit(f"{checkpoint}: this model has no flash word to read")
    cached = {p.name[: -len(SUFFIX)]: p for p in find_examples((str(clips),))}
    out = {}
    for name in names:
        if name not in cached:
            raise SystemExit(f"{name}: no cached evidence under {clips} (run `microemo-ref cache {clips}`)")
        with torch.no_grad():
            encoded = model.encode(load_example(cached[name]).inputs)
        visual = encoded.visual
        frames = per_frame(visual.key_attention, model.cfg.encoder.visual.n_queries)  # (K, T)
        out[name] = {"read": read_spans(model.flash_reader, visual.tokens, model.cfg.encoder.video_qformer.n_queries)[1:],
                     "middle_s": [(s.start + s.end) / 2 for s in visual.spans[1:]],
                     "peak_s": [float(encoded.frames.times[int(row.argmax())]) for row in frames[1:]]}
        if model.flash_time_reader is not None:
            scores = model.flash_time_reader.scores(encoded.frames.tokens)
            out[name]["time_reader_s"] = [span_apex(scores, encoded.frames.times, s.start, s.end) for s in visual.spans[1:]]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("report")
    ap.add_argument("--checkpoint")
    ap.add_argument("--clips", default=".cache/heldout", help="where the report's clips are cached")
    ap.add_argument("--scenario", default="concealed")
    ap.add_argument("--json")
    args = ap.parse_args()
    rows = [a for a in json.loads(Path(args.report).read_text())["answers"]
            if a["scenario"] == args.scenario and a.get("cues")]
    read = reader_spans(args.checkpoint, [r["name"] for r in rows], Path(args.clips)) if args.checkpoint else {}
    clips, errors = [], []
    for r in rows:
        cue = r["cues"][0]
        utterance, time_s = flash_claim(r["explanation"])
        row = {"name": r["name"], "utterance": cue["utterance"], "apex_s": cue["apex_s"],
               "named_utterance": utterance, "named_time_s": time_s,
               "right_utterance": utterance == cue["utterance"],
               "time_within_0.3": time_s is not None and abs(time_s - cue["apex_s"]) <= 0.3}
        if time_s is not None:
            errors.append(abs(time_s - cue["apex_s"]))
        if r["name"] in read:
            got = read[r["name"]]
            flashes = [k for k, c in enumerate(got["read"]) if c != "none"]
            row |= {"reader": got["read"], "reader_has_it": cue["utterance"] in flashes,
                    "reader_exact": flashes == [cue["utterance"]],
                    "middle_error_s": abs(got["middle_s"][cue["utterance"]] - cue["apex_s"]),
                    "peak_error_s": abs(got["peak_s"][cue["utterance"]] - cue["apex_s"])}
            if "time_reader_s" in got:
                row["time_reader_error_s"] = abs(got["time_reader_s"][cue["utterance"]] - cue["apex_s"])
            gold = {head_of(w) for w in r["gold"]} - {None}
            row |= {"reader_emotion_right": got["read"][cue["utterance"]] in gold,
                    "answer_emotions_right": gold == {head_of(w) for w in r["labels"]} - {None}}
        clips.append(row)
    n = len(clips)
    summary = {"clips": n, "answer_right_utterance": sum(c["right_utterance"] for c in clips),
               "answer_gives_a_time": len(errors),
               "answer_time_within_0.3": sum(c["time_within_0.3"] for c in clips),
               "answer_both": sum(c["right_utterance"] and c["time_within_0.3"] for c in clips),
               "median_time_error_s": round(statistics.median(errors), 2) if errors else None}
    if read:
        summary |= {"reader_has_it": sum(c["reader_has_it"] for c in clips),
                    "reader_exact": sum(c["reader_exact"] for c in clips),
                    "answer_right_utterance_where_reader_exact":
                        sum(c["right_utterance"] for c in clips if c["reader_exact"]),
                    # the emotion: the reader's class at the flash's utterance against the answer's
                    # heads (equal to the gold's), crossed
                    "emotion": {f"reader {'right' if r else 'wrong'}, answer {'right' if a else 'wrong'}":
                                sum(c["reader_emotion_right"] == r and c["answer_emotions_right"] == a for c in clips)
                                for r in (True, False) for a in (True, False)},
                    "reader_none_at_the_flash": sum(c["reader"][c["utterance"]] == "none" for c in clips)}
        for guess in ("middle", "peak", "time_reader"):
            e = [c[f"{guess}_error_s"] for c in clips if f"{guess}_error_s" in c]
            if not e:
                continue
            summary[f"{guess}_of_the_right_utterance"] = {"within_0.3": sum(x <= 0.3 for x in e),
                                                           "median_error_s": round(statistics.median(e), 2)}
    for c in clips:
        print(f"{c['name']}: flash in utterance {c['utterance'] + 1} at {c['apex_s']:.2f} s; answer: utterance "
              f"{'-' if c['named_utterance'] is None else c['named_utterance'] + 1}, "
              f"{'-' if c['named_time_s'] is None else c['named_time_s']} s"
              + (f"; reader: {', '.join(c['reader'])}" if "reader" in c else ""))
    print(json.dumps(summary, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps({"summary": summary, "clips": clips}, indent=1) + "\n")


if __name__ == "__main__":
    main()
