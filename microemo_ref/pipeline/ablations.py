"""Ablations: what each MicroEmo part buys, trained and scored the same way.

Each variant switches one part off in :class:`~microemo_ref.model.microemo.MicroEmoConfig`
(or the encoder's span mode), is trained from the same seed on the same cached clips, and is
scored on the same held-out clips (:mod:`microemo_ref.pipeline.evaluate`):

============== =====================================================================
full            MicroEmo as built here
no_local        no local dynamics branch: no face dynamics into the encoder and no
                spotted face events in the cue line (the voice cues stay)
no_time_text    no timestamp text: the frame Q-Former reads no "sampled at t second",
                and no time is written in the prompt (spans, subtitles, cue line)
whole_only      one video and one audio sequence over the whole clip (no utterance tokens)
windows         TimeChat's sliding windows instead of utterances (audio: whole clip)
subtitles_only  no video, no audio, no cue line: the subtitles and the question alone
plus_readout    one part *added* (ours, not MicroEmo's): the cue line also says what emotion
                a linear readout of each micro event's displacements reads (``readout``)
tokens          MicroEmo's own path: no cue line, the answer must come from the tokens
tokens_no_local the same without the local dynamics branch
tokens_concat   the same with the global-local attention replaced by plain concatenation
tokens_whole_only / tokens_windows   the same with one whole-clip sequence / TimeChat's windows
cues_only       the cue line and subtitles, no video or audio tokens
============== =====================================================================

Two recipes. ``full`` is the shipped checkpoint's (1 align + 3 EMER epochs, explanation and
labels as target): about 1 h per run on a 2-core CPU. ``quick`` trains the EMER stage only,
for one epoch, with the labels line alone as target ("Emotions: a, b, c.") and answers with
at most 24 new tokens: it scores labels (OV F) but not explanations (no clue recall), and
costs a few minutes per run. ``quick_tokens`` adds the token heads' stage before it (for the
tokens path's rows). ``tokens_explained`` is the tokens path's recipe with explanations: it
starts from the shipped cue-text checkpoint's weights (as the shipped tokens model does), runs
the token heads' stage, then one EMER epoch on explanations (about 20 minutes a run with
its answers), so it scores clue recall and, on shift clips, whether each utterance's mood is
named for it (``utterance_mood``). Results go to ``OUT/VARIANT/seed_S/result.json`` (a finished
run is not repeated), the summary (mean and spread over seeds) to ``OUT/ablations.json``.

A cheaper, different question is asked by :func:`knock_out`: how much does an already *trained*
model lean on a part? The part is switched off at inference only (``microemo-ref evaluate
--knockout local_branch``); the model never learned to do without it, so a knock-out measures
reliance, not what training without the part would reach.
"""
from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path

from microemo_ref.io.clip import atomic_path
from microemo_ref.model.microemo import MicroEmo, MicroEmoConfig
from microemo_ref.pipeline.emer import default_checkpoint, load_for_answers
from microemo_ref.pipeline.evaluate import answer_all, clue_score, label_scores, mood_scores, score
from microemo_ref.pipeline.train import TrainConfig, train

VARIANTS: dict[str, dict] = {
    "full": {},
    "no_local": {"local_branch": False},
    "no_time_text": {"time_text": False},
    "whole_only": {"span_mode": "whole"},
    "windows": {"span_mode": "window"},
    "subtitles_only": {"video": False, "audio": False, "cue_text": False},
    "plus_readout": {"readout": True},
    # MicroEmo's own path (no cue line) and its parts:
    "tokens": {"cue_text": False},
    "tokens_no_local": {"cue_text": False, "local_branch": False},
    "tokens_concat": {"cue_text": False, "fusion": "concat"},
    "tokens_whole_only": {"cue_text": False, "span_mode": "whole"},
    "tokens_windows": {"cue_text": False, "span_mode": "window"},
    "cues_only": {"video": False, "audio": False},
}
KNOCKOUTS = ("local_branch", "cue_text", "video", "audio", "flash_word")  # switches a trained model can run without
RECIPES: dict[str, dict] = {
    "full": {"train": {"align_epochs": 1, "emer_epochs": 3, "target": "explanation"}, "max_new_tokens": 224},
    "quick": {"train": {"align_epochs": 0, "emer_epochs": 1, "target": "labels"}, "max_new_tokens": 24},
    # quick, after the token heads' stage (and with their loss kept): for the tokens path's rows
    "quick_tokens": {"train": {"align_epochs": 0, "emer_epochs": 1, "target": "labels", "token_epochs": 8,
                               "token_weight": 0.5}, "max_new_tokens": 24},
    # the tokens path's rows with explanations: from the cue-text checkpoint's weights (as the shipped
    # tokens model), token heads, then one EMER epoch on explanations; scores clue recall and moods
    "tokens_explained": {"train": {"align_epochs": 0, "emer_epochs": 1, "target": "explanation", "token_epochs": 8,
                                   "token_weight": 0.5}, "init": "cues", "max_new_tokens": 224},
    # the tokens path's parts at the LLM level, with the flash word (our addition) that lets the LLM read
    # them: from the shipped tokens checkpoint's weights, the token heads retrain the variant's encoder,
    # the flash word's reader is fitted on it (both frozen from then on), then one EMER epoch
    "flash_word": {"train": {"align_epochs": 0, "emer_epochs": 1, "target": "explanation", "token_epochs": 8,
                             "token_weight": 0.5, "init_partial": True}, "init": "tokens",
                   "config": {"flash_word": True}, "max_new_tokens": 224},
}


def variant_config(name: str, base: MicroEmoConfig = MicroEmoConfig()) -> MicroEmoConfig:
    """The model configuration of one ablation variant."""
    if name not in VARIANTS:
        raise ValueError(f"unknown ablation {name!r}; choose from {', '.join(VARIANTS)}")
    change = dict(VARIANTS[name])
    if "span_mode" in change:
        base = replace(base, encoder=base.encoder.with_mode(change.pop("span_mode")))
    if "fusion" in change:
        visual = base.encoder.visual
        fusion = replace(visual.fusion, mode=change.pop("fusion"))
        base = replace(base, encoder=replace(base.encoder, visual=replace(visual, fusion=fusion)))
    return replace(base, **change)


def knock_out(model: MicroEmo, parts: Sequence[str]) -> MicroEmo:
    """Switch ``parts`` (see ``KNOCKOUTS``) off in a trained model, in place, for inference.
    A part the model does not have (``absent_parts``) is left as it is: a no-op."""
    unknown = [p for p in parts if p not in KNOCKOUTS]
    if unknown:
        raise ValueError(f"cannot knock out {', '.join(unknown)}; choose from {', '.join(KNOCKOUTS)}")
    model.cfg = replace(model.cfg, **{p: False for p in parts})
    return model


def absent_parts(model: MicroEmo, parts: Sequence[str]) -> list[str]:
    """The parts among ``parts`` that ``model`` was built without: knocking them out changes nothing."""
    return [p for p in parts if not getattr(model.cfg, p)]


def knockout_row(report: dict, scenario: str = "concealed") -> dict:
    """One line of a knock-out table from an ``evaluate --json`` report: the model's path, what was
    switched off, and on the clips of ``scenario``: OV F, clue recall, and the share of answers
    whose labels include the surface emotion only (the hidden one missed)."""
    rows = [r for r in report["answers"] if r["scenario"] == scenario]
    if not rows:
        raise ValueError(f"the report has no {scenario} clips")
    labels = label_scores(rows)
    return {"trained": report.get("answer_path", {}).get("trained"), "knocked_out": report.get("knocked_out", []),
            "noop": report.get("knockout_noop", []), "clips": len(rows), "ov_f": labels["ov"]["f"],
            "clue_recall": clue_score(rows), "errors": labels["errors"].get(scenario, {})}


def knockout_table(reports: Sequence[tuple[str, dict]], scenario: str = "concealed") -> str:
    """Markdown: one line per (model name, report) pair (see :func:`knockout_row`)."""
    lines = [f"| model | switched off at inference | {scenario} OV F | clue recall | clips |", "|---|---|---|---|---|"]
    for name, report in reports:
        r = knockout_row(report, scenario)
        off = ", ".join(p + (" (absent: no-op)" if p in r["noop"] else "") for p in r["knocked_out"]) or "nothing"
        clues = "-" if r["clue_recall"] is None else f"{r['clue_recall']:.3f}"
        lines.append(f"| {name} | {off} | {r['ov_f']:.3f} | {clues} | {r['clips']} |")
    return "\n".join(lines)


def run_one(name: str, seed: int, data: Sequence[str], eval_dirs: Sequence[str], out: str | Path,
            recipe: str = "quick", llm: str = "smollm2", progress: Callable[[str], None] = print,
            decoder: str = "auto") -> dict:
    """Train and score one variant with one seed (or read the result of a finished run); ``decoder``
    answers the held-out clips (:func:`microemo_ref.pipeline.emer.load_for_answers`)."""
    folder = Path(out) / name / f"seed_{seed}"
    done = finished(name, seed, out)
    if done is not None:
        return done
    plan = RECIPES[recipe]
    init = str(default_checkpoint(plan["init"])) if plan.get("init") else None
    cfg = TrainConfig(data=tuple(data), out=str(folder), seed=seed, init=init, **plan["train"])
    model_cfg = variant_config(name, MicroEmoConfig(llm=llm, **plan.get("config", {})))
    checkpoint = train(cfg, model_cfg, progress=progress)
    model = load_for_answers(checkpoint, llm, decoder)[0]
    rows = answer_all(model, eval_dirs, max_new_tokens=plan["max_new_tokens"])
    explained = plan["train"]["target"] == "explanation"
    report = score(rows, similarity=explained)
    result = _with_label_scores({"variant": name, "seed": seed, "recipe": recipe, "train": asdict(cfg),
                                 "clue_recall": report["clue_recall"] if explained else None,
                                 "clips": report["clips"], "answers": report["answers"]})
    with atomic_path(folder / "result.json") as tmp:  # a run killed here leaves no result, so it is run again
        tmp.write_text(json.dumps(result, indent=1))
    return result


def finished(name: str, seed: int, out: str | Path) -> dict | None:
    """The result of a finished run, scored again by the current lexicon (so that old and new
    runs are scored alike), or None if the run has not finished."""
    done = Path(out) / name / f"seed_{seed}" / "result.json"
    return _with_label_scores(json.loads(done.read_text())) if done.is_file() else None


def _with_label_scores(result: dict) -> dict:
    labels = label_scores(result["answers"])
    explained = result["train"].get("target", "explanation") == "explanation"
    moods = mood_scores(result["answers"])["utterance_mood"] if explained else None
    return {**result, "ov_f": labels["ov"]["f"], "coverage": labels["ov"]["coverage"],
            "per_scenario": {s: v["f"] for s, v in labels["per_scenario"].items()}, "utterance_mood": moods}


def summarise(results: list[dict]) -> dict:
    """Mean and sample standard deviation over seeds of every score, per variant."""
    by_variant: dict[str, list[dict]] = {}
    for r in results:
        by_variant.setdefault(r["variant"], []).append(r)

    def spread(values: list[float | None]) -> dict:
        real = [v for v in values if v is not None]
        if not real:
            return {"mean": None, "sd": None, "n": 0}
        return {"mean": round(statistics.fmean(real), 4),
                "sd": round(statistics.stdev(real), 4) if len(real) > 1 else None, "n": len(real)}

    table = {}
    for name, rs in by_variant.items():
        scenarios = sorted({s for r in rs for s in r["per_scenario"]})
        table[name] = {"ov_f": spread([r["ov_f"] for r in rs]),
                       "per_scenario": {s: spread([r["per_scenario"].get(s) for r in rs]) for s in scenarios},
                       "clue_recall": spread([r["clue_recall"] for r in rs]),
                       "utterance_mood": spread([r.get("utterance_mood") for r in rs]), "seeds": [r["seed"] for r in rs]}
    return table


def run_ablations(variants: Sequence[str], seeds: Sequence[int], data: Sequence[str], eval_dirs: Sequence[str],
                  out: str | Path, recipe: str = "quick", llm: str = "smollm2",
                  progress: Callable[[str], None] = print, finished_only: bool = False,
                  decoder: str = "auto") -> dict:
    """Every variant x seed (see :func:`run_one`), then the summary, written to OUT/ablations.json.
    With ``finished_only``, nothing is trained: the summary covers the finished runs and lists
    the missing ones."""
    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}; choose from {', '.join(RECIPES)}")
    for name in variants:
        variant_config(name)  # unknown names fail before hours of training
    results, missing = [], []
    for name in variants:
        for seed in seeds:
            r = finished(name, seed, out) if finished_only else run_one(name, seed, data, eval_dirs, out, recipe,
                                                                        llm, progress, decoder)
            if r is None:
                missing.append(f"{name} seed {seed}")
                continue
            progress(f"{name} seed {seed}: OV F {r['ov_f']:.3f} {r['per_scenario']}")
            results.append(r)
    summary = {"recipe": recipe, "variants": list(variants), "seeds": list(seeds), "data": list(data),
               "eval": list(eval_dirs), "missing": missing, "table": summarise(results)}
    Path(out).mkdir(parents=True, exist_ok=True)
    (Path(out) / "ablations.json").write_text(json.dumps(summary, indent=1))
    return summary


def format_table(summary: dict) -> str:
    """The summary as a Markdown table: OV F (mean +/- sd over seeds) overall and per scenario."""
    table = summary["table"]
    scenarios = sorted({s for v in table.values() for s in v["per_scenario"]})

    def cell(d: dict) -> str:
        if d["mean"] is None:
            return "-"
        return f"{d['mean']:.3f}" + (f" ± {d['sd']:.3f}" if d["sd"] is not None else "")

    extra = [k for k in ("clue_recall", "utterance_mood")
             if any(v.get(k, {}).get("mean") is not None for v in table.values())]
    lines = ["| variant | OV F | " + " | ".join(scenarios + extra) + " | seeds |",
             "|---|---|" + "---|" * len(scenarios + extra) + "---|"]
    for name, v in table.items():
        lines.append(f"| {name} | {cell(v['ov_f'])} | "
                     + " | ".join([cell(v["per_scenario"][s]) for s in scenarios] + [cell(v[k]) for k in extra])
                     + f" | {len(v['seeds'])} |")
    if summary.get("missing"):
        lines.append(f"\nnot run yet: {', '.join(summary['missing'])}")
    return "\n".join(lines)


__all__ = ["KNOCKOUTS", "RECIPES", "VARIANTS", "absent_parts", "finished", "format_table", "knock_out", "knockout_row",
           "knockout_table", "run_ablations", "run_one",
           "summarise", "variant_config"]
