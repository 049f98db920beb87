"""``microemo-ref`` subcommands that score: ``evaluate``, ``rescore`` and ``ablate`` (clips with
ground truth), and ``nbclean`` (the notebooks' house rules)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from microemo_ref.cli.clips import progress, progress_to_stderr
from microemo_ref.cli.run import labelled_cache, load_model_from_args, print_failures


def cmd_evaluate(args: argparse.Namespace) -> int:
    from microemo_ref.pipeline.dataset import cache_folder
    from microemo_ref.metrics.judge import make_judge
    from microemo_ref.model.gguf_decoder import describe
    from microemo_ref.model.microemo import answer_path
    from microemo_ref.pipeline.ablations import absent_parts, knock_out
    from microemo_ref.pipeline.evaluate import evaluate, wheel_scorer
    from microemo_ref.io.files import input_folder

    judge = make_judge(args.judge, args.judge_model)  # a bad --judge fails before any work
    if (args.synonyms or args.formats) and not args.grouping:
        raise ValueError("--synonyms and --formats go with --grouping WHEEL")
    grouping = {"wheels": args.grouping, "synonyms": args.synonyms, "formats": args.formats,
                "level": args.level} if args.grouping else None
    wheel_scorer(grouping)  # a bad grouping file fails before any work too
    # measures only clips not measured yet; with --json, stdout holds the report alone
    failures: list = []
    report_to = progress_to_stderr if args.json else progress
    labelled = labelled_cache(args, args.dir, report_to, failures)
    if labelled is None:
        folder = str(input_folder(args.dir))
        cache_folder(folder, report_to, failures=failures)
    else:
        folder = labelled[0]
    model = load_model_from_args(args)
    trained_path, absent = answer_path(model.cfg), absent_parts(model, args.knockout)
    model = knock_out(model, args.knockout)
    report = evaluate(model, [folder], limit=args.limit, progress=None if args.json else progress,
                      judge=judge, scenarios=args.scenario, grouping=grouping)
    report["knocked_out"] = list(args.knockout)
    report["knockout_noop"] = absent  # parts this model never had: switching them off changed nothing
    report["answer_path"] = {"trained": trained_path, "evaluated": answer_path(model.cfg)}
    report["decoder"] = describe(model.decoder)
    report["failed"] = [{"video": str(video), "error": why} for video, why in failures]
    if args.json:
        print(json.dumps(report, indent=1))
        print_failures(failures, "evaluate")
        return 2 if failures else 0
    print(f"{report['clips']} clips under {folder}"
          + (f"; switched off at inference: {', '.join(args.knockout)}" if args.knockout else ""))
    print(f"model's path: {trained_path}" + (f"; evaluated as: {answer_path(model.cfg)}" if args.knockout else ""))
    print(f"decoder: {report['decoder']}")
    for part in absent:
        print(f"note: this model has no {part.replace('_', ' ')}; knocking it out is a no-op")
    print_scores(report)
    print_failures(failures, "evaluate")
    return 2 if failures else 0


def print_scores(report: dict) -> None:
    if report["ov"] is None:
        print("no gold emotion labels: OV scores not computed")
    else:
        g = report.get("grouping")
        print("OV sets by " + (f"{len(g['wheels'])} emotion wheel(s) ({g['level']}), averaged, unmapped gold left out"
                               if g else "our lexicon"))
        print(f"{'':12s} {'P':>6s} {'R':>6s} {'F':>6s} {'coverage':>9s} {'n':>4s}")
    for name, s in [("overall", report["ov"]), *report["per_scenario"].items()] if report["ov"] else []:
        print(f"{name:12s} {s['precision']:6.3f} {s['recall']:6.3f} {s['f']:6.3f} {s['coverage']:9.3f} {s['samples']:4d}")
    if report["clue_recall"] is not None:
        per = ", ".join(f"{k} {v:.3f}" for k, v in report.get("clue_recall_per_scenario", {}).items())
        print(f"clue recall (micro-expressions, time within 0.3 s and utterance named): {report['clue_recall']:.3f}"
              + (f" ({per})" if per else ""))
    print(f"grounded (only measured times cited): {report['grounded']:.3f}")
    if report.get("flashes_grounded") is not None:
        print(f"flashes grounded (every flash claimed has a spotted micro event): {report['flashes_grounded']:.3f}")
    if report.get("claims_grounded") is not None:
        print(f"claims grounded (times, flashes, speech and quotes all backed by the evidence): "
              f"{report['claims_grounded']:.3f}")
    if report.get("clue_recall_guarded") is not None:
        print(f"clue recall on concealed clips after the grounding guard (what run_emer returns): "
              f"{report['clue_recall_guarded']:.3f}")
    if report.get("utterance_mood") is not None:
        print(f"per-utterance mood on shift clips (named in a sentence about that utterance): "
              f"{report['utterance_mood']:.3f}")
    sim = report["similarity"]
    if sim and sim["mean"] is not None:
        print(f"explanation similarity to gold (proxy, {sim['proxy']}): {sim['mean']:.3f}")
    elif sim:
        print("no gold explanations: explanation similarity not computed")
    j = report["judge"]
    print(f"LLM judge: {j['reason']}" if j["judge"] == "unavailable" else
          f"LLM judge ({j['judge']}, {j['prompt_version']}): clue overlap {j['clue_overlap']}, "
          f"label overlap {j['label_overlap']} (0-10)")


def cmd_rescore(args: argparse.Namespace) -> int:
    from microemo_ref.io.clip import atomic_path
    from microemo_ref.io.files import output_file, read_json
    from microemo_ref.pipeline.evaluate import rescore

    path = Path(args.report)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such report")
    out = output_file(args.out or path, "--out")  # before any scoring
    report = read_json(path, "report")
    if not isinstance(report, dict) or not report.get("answers") or not isinstance(report["answers"], list):
        raise ValueError(f"{path} has no answers to score again (write one with 'microemo-ref evaluate DIR --json')")
    before = report.get("ov", {}).get("f") if isinstance(report.get("ov"), dict) else None
    clues_before = report.get("clue_recall")
    try:
        report = rescore(report)
    except (KeyError, TypeError, IndexError, AttributeError, ValueError):
        raise ValueError(f"{path}: {malformed_answer(report['answers'])}") from None
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(report, indent=1) + "\n")
    by = "the report's emotion wheels" if report.get("grouping") else "the current lexicon"
    after = report["ov"]["f"] if report["ov"] else None
    print(f"{report['clips']} answers in {path} scored again with {by} and the clue rule; OV F {before} -> "
          f"{after}, clue recall {clues_before} -> {report['clue_recall']}; written to {out}")
    print_scores(report)
    return 0


def malformed_answer(answers: list) -> str:
    """Which answer of a report cannot be scored, and why (for the error message)."""
    from microemo_ref.pipeline.evaluate import rescore

    for i, a in enumerate(answers):
        name = a.get("name", "?") if isinstance(a, dict) else "?"
        try:
            rescore({"answers": [a]})
        except KeyError as err:
            return f"answer {i} ({name}) lacks the key {err}"
        except (TypeError, IndexError, AttributeError, ValueError) as err:
            return f"answer {i} ({name}) is malformed ({err})"
    return "its answers cannot be scored together"


def cmd_ablate(args: argparse.Namespace) -> int:
    from microemo_ref.pipeline.ablations import format_table, run_ablations

    summary = run_ablations(args.variants, args.seeds, args.data, [args.eval], args.out, args.recipe, args.llm,
                            progress=progress, finished_only=args.finished_only, decoder=args.decoder)
    print(f"recipe {summary['recipe']}, seeds {summary['seeds']}; OV F, mean ± sd over seeds")
    print(format_table(summary))
    print(f"written to {Path(args.out) / 'ablations.json'}")
    if args.summary:
        Path(args.summary).parent.mkdir(parents=True, exist_ok=True)
        Path(args.summary).write_text(json.dumps(summary, indent=1) + "\n")
        print(f"summary copied to {args.summary}")
    return 0


def cmd_nbclean(args: argparse.Namespace) -> int:
    from microemo_ref.notebook_tools import clean_file, problems

    bad = 0
    for p in args.notebooks:
        clean_file(p)
        for msg in problems(p):
            print(f"{p}: {msg}")
            bad += 1
    return 1 if bad else 0

