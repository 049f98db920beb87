"""The ``microemo-ref`` command (also ``python -m microemo_ref``).

Subcommands: ``demo`` (what the reference can do so far, on a bundled sample), ``generate``
(sample dialogues with ground truth), ``samples`` (regenerate the committed set), ``spot`` and
``spot-eval`` (the local facial branch and its MEGC score), ``utterances`` (utterance
segments and the token budget of the utterance-aware Q-Former), ``emer`` (the end-to-end run:
explanation and emotion labels), ``cache`` and ``train`` (measure clips once; train MicroEmo),
``evaluate``, ``rescore`` and ``ablate`` (scores on clips with ground truth, issue #7),
``info`` (summary of a clip) and ``nbclean`` (strip notebook metadata before committing).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GLOG_minloglevel", "2")       # quieten MediaPipe's C++ logging
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

DEMO_SAMPLE = "concealed_astronaut_s0002"


def _truth_for(video: Path) -> dict | None:
    side = video.with_suffix(".json")
    return json.loads(side.read_text()) if side.is_file() else None


def cmd_info(args: argparse.Namespace) -> int:
    from microemo_ref.io.clip import load_clip

    clip = load_clip(args.video)
    out = {"path": str(clip.path), "frames": clip.n_frames, "fps": clip.fps, "duration_s": round(clip.duration, 2),
           "size": list(clip.size), "audio_s": None if clip.audio is None else round(len(clip.audio) / clip.sample_rate, 2),
           "utterances": [{"start": u.start, "end": u.end, "text": u.text, "source": u.source} for u in clip.utterances]}
    print(json.dumps(out, indent=1))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    from microemo_ref.config import DATA_SAMPLES
    from microemo_ref.io.clip import load_clip
    from microemo_ref.viz import tour_figure

    video = Path(args.video) if args.video else DATA_SAMPLES / f"{DEMO_SAMPLE}.mp4"
    clip = load_clip(video)
    truth = _truth_for(video)
    print(f"MicroEmo reference demo: {video.name}")
    print(f"  {clip.n_frames} frames at {clip.fps:g} fps ({clip.duration:.1f} s), {clip.size[1]}x{clip.size[0]} px, "
          f"audio {'none' if clip.audio is None else f'{len(clip.audio) / clip.sample_rate:.1f} s at {clip.sample_rate} Hz'}")
    for i, u in enumerate(clip.utterances, 1):
        print(f"  utterance {i}: {u.start:5.2f}-{u.end:5.2f} s  \"{u.text}\"")
    if truth:
        print(f"  ground truth: scenario {truth['scenario']}, felt {truth['emotions']['felt']}, shown {truth['emotions']['shown']}")
        for ev in truth["events"]:
            print(f"    {ev['kind']:5s} {ev['emotion']:8s} frames {ev['onset']}-{ev['apex']}-{ev['offset']} "
                  f"({ev['onset_s']:.2f}-{ev['offset_s']:.2f} s) regions {', '.join(ev['regions'])} peak {ev['amplitude']} px")
        print(f"  gold labels: {', '.join(truth['labels'])}")
        print(f"  gold explanation: {truth['explanation']}")
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        fig = tour_figure(clip.frames, clip.audio, clip.sample_rate, {"name": video.stem, **truth})
        fig.savefig(out / "demo.png", dpi=80)
        print(f"  figure: {out / 'demo.png'}")
    from microemo_ref.face.local_branch import extract_local

    print("Local facial branch (FaceMesh + optical flow + spotting):")
    _print_events(extract_local(video).to_json())
    from microemo_ref.pipeline.emer import default_checkpoint, run_emer

    try:
        folder = default_checkpoint()
    except FileNotFoundError as err:
        print(f"(no end-to-end EMER run: {err})")
        return 0
    from microemo_ref.model.llm import load_llm
    from microemo_ref.model.microemo import load_checkpoint

    t = time.perf_counter()
    model = load_checkpoint(folder, load_llm())
    print(f"End-to-end EMER (SmolLM2-135M + the shipped checkpoint, loaded in {time.perf_counter() - t:.1f} s):")
    result = run_emer(video, model)
    print(f"  {result.explanation}")
    print(f"  emotions: {', '.join(result.labels) or '(none parsed)'}")
    _print_removed(result.removed)
    print(f"  time: measure {result.seconds['measure']:.1f} s, encode + generate {result.seconds['encode_and_generate']:.1f} s")
    return 0


def _print_events(ev: dict) -> None:
    print(f"{len(ev['events'])} events at {ev['fps']:g} fps (speech from {ev['speech_source']})")
    for e in ev["events"]:
        print(f"  {e['type']:5s} frames {e['onset']:4d}-{e['apex']:4d}-{e['offset']:4d} "
              f"({e['onset_s']:6.2f}-{e['offset_s']:6.2f} s)  peak {e['peak_px']:.2f} px  regions {', '.join(e['regions'])}")
    for a, b in ev["face_lost"]:
        print(f"  face lost {a:.2f}-{b:.2f} s")
    for a, b in ev.get("hand_over_face", []):
        print(f"  hand over the face {a:.2f}-{b:.2f} s (no events from the covered regions)")
    for a, b in ev.get("head_turned", []):
        print(f"  head turned over 10 degrees {a:.2f}-{b:.2f} s (no events that the turn explains)")


def cmd_spot(args: argparse.Namespace) -> int:
    from microemo_ref.face.local_branch import extract_local

    out = extract_local(args.video).to_json()
    if args.json:
        print(json.dumps(out))
    else:
        _print_events(out)
    return 0


def cmd_spot_eval(args: argparse.Namespace) -> int:
    from microemo_ref.face.local_branch import extract_local
    from microemo_ref.io.casme import events_from_truth, load_spotting_annotations
    from microemo_ref.metrics.spotting import iou_sweep, score_spotting

    root = Path(args.dir)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a folder")
    table = load_spotting_annotations(args.annotations) if args.annotations else None
    clips = []
    for video in sorted(root.rglob("*.mp4")) + sorted(root.rglob("*.avi")):
        if table is not None:
            key = next((k for k in (video.stem, str(video.relative_to(root).with_suffix(""))) if k in table), None)
            if key is None:
                continue
            gt = [a.to_event() for a in table[key]]
        else:
            truth = _truth_for(video)
            if truth is None or "events" not in truth:
                continue
            gt = events_from_truth(truth)
        pred = extract_local(video).to_json()["events"]
        clips.append((pred, gt))
        if not args.json:
            print(f"  {video.name}: {len(pred)} predicted, {len(gt)} true", flush=True)
    if not clips:
        raise FileNotFoundError(f"{root}: no video with ground truth found")
    result = score_spotting(clips)
    result["iou_sweep"] = {f"{k:.1f}": v["overall"]["f1"] for k, v in iou_sweep(clips).items()}
    print(json.dumps(result, indent=None if args.json else 1))
    return 0


def _progress(msg: str) -> None:
    print(f"  {msg}", flush=True)


def cmd_generate(args: argparse.Namespace) -> int:
    from microemo_ref.samples.sets import generate_set

    t0 = time.perf_counter()
    paths = generate_set(args.out, args.n, args.seed, split=args.split, face=args.face, scenario=args.scenario,
                         progress=_progress)
    dt = time.perf_counter() - t0
    print(f"wrote {len(paths)} clips to {args.out} in {dt:.1f} s ({dt / len(paths):.1f} s per clip)")
    return 0


def cmd_samples(args: argparse.Namespace) -> int:
    from microemo_ref.samples.sets import regenerate_committed

    t0 = time.perf_counter()
    paths = regenerate_committed(args.out, progress=_progress)
    print(f"wrote {len(paths)} committed samples to {args.out} in {time.perf_counter() - t0:.1f} s")
    return 0


def cmd_utterances(args: argparse.Namespace) -> int:
    from microemo_ref.model.encoder import EncoderConfig, token_budget
    from microemo_ref.text.utterances import segment_video, transcript_lines

    subtitles = None if args.no_subtitles else (args.subtitles or "auto")
    seg = segment_video(args.video, subtitles=subtitles)
    n, has_audio = len(seg.utterances), seg.has_audio
    tokens = {"reference": token_budget(EncoderConfig(), n, has_audio=has_audio),
              "paper_scale": token_budget(EncoderConfig.paper(), n, has_audio=has_audio)}
    if args.json:
        print(json.dumps({**seg.to_json(), "tokens": tokens}, indent=1))
        return 0
    audio = "" if seg.has_audio else ", no audio track"
    print(f"{args.video}: {seg.duration:.2f} s{audio}, {n} utterance(s) from {seg.source}")
    for note in seg.notes:
        print(f"  note: {note}")
    for i, u in enumerate(seg.utterances, 1):
        print(f"  {i:2d}. {u.start:6.2f} - {u.end:6.2f} s  {u.text or '(no words: voice activity)'}")
    lines = transcript_lines(seg.utterances)
    if lines:
        print("  as the prompt carries them:")
        for line in lines:
            print(f"    {line}")
    for name, b in tokens.items():
        print(f"  tokens ({name.replace('_', ' ')}): visual {b['visual']['sequences']} x "
              f"{b['visual']['per_sequence']} = {b['visual']['total']}, audio {b['audio']['sequences']} x "
              f"{b['audio']['per_sequence']} = {b['audio']['total']}; total {b['total']} "
              f"(TimeChat: {b['timechat_visual']} visual for 96 frames)")
    return 0


def _load_model(args: argparse.Namespace):
    from microemo_ref.model.llm import load_llm
    from microemo_ref.model.microemo import load_checkpoint
    from microemo_ref.pipeline.emer import default_checkpoint

    folder = Path(args.checkpoint) if args.checkpoint else default_checkpoint()
    return load_checkpoint(folder, load_llm(args.llm))


def cmd_emer(args: argparse.Namespace) -> int:
    from microemo_ref.pipeline.emer import run_emer

    subtitles = None if args.no_subtitles else (args.subtitles or "auto")
    t = time.perf_counter()
    model = _load_model(args)
    load_s = time.perf_counter() - t
    result = run_emer(args.video, model, subtitles=subtitles, grounding_guard=not args.no_guard)
    result.seconds["load"] = round(load_s, 2)
    if args.json:
        print(json.dumps(result.to_json(), indent=1))
        return 0
    print(f"{args.video}")
    for note in result.notes:
        print(f"  note: {note}")
    print(f"  measured {result.cues}")
    print(f"\n{result.explanation or '(every sentence claimed what the evidence lacks)'}\n\n"
          f"Emotions: {', '.join(result.labels) or '(none parsed)'}")
    _print_removed(result.removed, dropped=not args.no_guard)
    print(f"\n  time: load {load_s:.1f} s, measure {result.seconds['measure']:.1f} s, "
          f"encode + generate {result.seconds['encode_and_generate']:.1f} s")
    return 0


def _print_removed(removed: list[dict], dropped: bool = True) -> None:
    if removed:
        print(f"\n  {'dropped' if dropped else 'unsupported'} (claims the evidence lacks):")
    for p in removed:
        print(f"    {p['sentence']}  [{'; '.join(p['reasons'])}]")
        if dropped and p.get("repair"):
            print(f"      kept as: {p['repair']}")


def cmd_evaluate(args: argparse.Namespace) -> int:
    from microemo_ref.pipeline.dataset import cache_folder
    from microemo_ref.metrics.judge import make_judge
    from microemo_ref.pipeline.ablations import knock_out
    from microemo_ref.pipeline.evaluate import evaluate

    judge = make_judge(args.judge, args.judge_model)  # a bad --judge fails before any work
    cache_folder(args.dir, _progress)  # measures only clips not measured yet
    model = knock_out(_load_model(args), args.knockout)
    report = evaluate(model, [args.dir], limit=args.limit, progress=None if args.json else _progress,
                      judge=judge, scenarios=args.scenario)
    report["knocked_out"] = list(args.knockout)
    if args.json:
        print(json.dumps(report, indent=1))
        return 0
    print(f"{report['clips']} clips under {args.dir}"
          + (f"; switched off at inference: {', '.join(args.knockout)}" if args.knockout else ""))
    _print_scores(report)
    return 0


def _print_scores(report: dict) -> None:
    print(f"{'':12s} {'P':>6s} {'R':>6s} {'F':>6s} {'coverage':>9s} {'n':>4s}")
    for name, s in [("overall", report["ov"]), *report["per_scenario"].items()]:
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
    print(f"explanation similarity to gold (proxy, {report['similarity']['proxy']}): {report['similarity']['mean']:.3f}")
    j = report["judge"]
    print(f"LLM judge: {j['reason']}" if j["judge"] == "unavailable" else
          f"LLM judge ({j['judge']}, {j['prompt_version']}): clue overlap {j['clue_overlap']}, "
          f"label overlap {j['label_overlap']} (0-10)")


def cmd_rescore(args: argparse.Namespace) -> int:
    from microemo_ref.io.clip import atomic_path
    from microemo_ref.pipeline.evaluate import rescore

    path = Path(args.report)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such report")
    try:
        report = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not a JSON report ({err})") from None
    if not isinstance(report, dict) or not report.get("answers"):
        raise ValueError(f"{path} has no answers to score again (write one with 'microemo-ref evaluate DIR --json')")
    before, clues_before = report.get("ov", {}).get("f"), report.get("clue_recall")
    report = rescore(report)
    out = Path(args.out or path)
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(report, indent=1) + "\n")
    print(f"{report['clips']} answers in {path} scored again with the current lexicon and clue rule; OV F {before} -> "
          f"{report['ov']['f']}, clue recall {clues_before} -> {report['clue_recall']}; written to {out}")
    _print_scores(report)
    return 0


def cmd_ablate(args: argparse.Namespace) -> int:
    from microemo_ref.pipeline.ablations import format_table, run_ablations

    summary = run_ablations(args.variants, args.seeds, args.data, [args.eval], args.out, args.recipe, args.llm,
                            progress=_progress, finished_only=args.finished_only)
    print(f"recipe {summary['recipe']}, seeds {summary['seeds']}; OV F, mean ± sd over seeds")
    print(format_table(summary))
    print(f"written to {Path(args.out) / 'ablations.json'}")
    if args.summary:
        Path(args.summary).parent.mkdir(parents=True, exist_ok=True)
        Path(args.summary).write_text(json.dumps(summary, indent=1) + "\n")
        print(f"summary copied to {args.summary}")
    return 0


def cmd_cache(args: argparse.Namespace) -> int:
    from microemo_ref.pipeline.dataset import cache_folder

    paths = cache_folder(args.dir, _progress)
    print(f"{len(paths)} examples cached under {args.dir}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from microemo_ref.model.microemo import MicroEmoConfig
    from microemo_ref.pipeline.train import TrainConfig, train

    cfg = TrainConfig(data=tuple(args.data), out=args.out, align_epochs=args.align_epochs,
                      emer_epochs=args.emer_epochs, batch=args.batch, lr=args.lr, seed=args.seed, limit=args.limit,
                      concealed_repeat=args.concealed_repeat, accelerate=args.accelerate)
    folder = train(cfg, MicroEmoConfig(llm=args.llm, readout=args.readout), progress=_progress)
    print(f"checkpoint: {folder}")
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


def _subtitle_options(p: argparse.ArgumentParser) -> None:
    group = p.add_mutually_exclusive_group()
    group.add_argument("--subtitles", help="an .srt or .vtt file (default: a side file with the video's name)")
    group.add_argument("--no-subtitles", action="store_true", help="ignore subtitles; segment by voice activity")


def _model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", help="a checkpoint folder (default: the shipped one)")
    p.add_argument("--llm", default="smollm2", help="the frozen LLM: smollm2 (default) or a local model folder")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="microemo-ref", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="run the demo on a bundled sample")
    p.add_argument("--video", help="a clip to use instead of the bundled sample")
    p.add_argument("--out", default="out", help="folder for the demo figure (default: out/)")
    p.set_defaults(func=cmd_demo)
    p = sub.add_parser("generate", help="generate sample dialogues with ground truth")
    p.add_argument("--out", required=True)
    p.add_argument("--n", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--face", help="a frontal face photo to animate instead of the bundled faces")
    p.add_argument("--scenario", help="congruent | concealed | shift | neutral (default: cycle through all)")
    p.add_argument("--split", default="test", choices=["train", "test", "all"], help="bundled identities to use")
    p.set_defaults(func=cmd_generate)
    p = sub.add_parser("samples", help="regenerate the committed sample set")
    p.add_argument("--out", default="data_samples")
    p.set_defaults(func=cmd_samples)
    p = sub.add_parser("spot", help="spot micro- and macro-expressions in a video (local facial branch)")
    p.add_argument("video")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_spot)
    p = sub.add_parser("spot-eval", help="score spotting on every clip with ground truth under DIR (MEGC protocol)")
    p.add_argument("dir")
    p.add_argument("--annotations", help="a CASME-style annotation table (CSV/TSV) instead of generated JSON")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_spot_eval)
    p = sub.add_parser("utterances", help="utterance segments (subtitles or voice activity) and the token budget")
    p.add_argument("video")
    _subtitle_options(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_utterances)
    p = sub.add_parser("emer", help="explain the emotional state in a video (end-to-end EMER)")
    p.add_argument("video")
    _subtitle_options(p)
    _model_options(p)
    p.add_argument("--no-guard", action="store_true",
                   help="keep sentences that claim what the evidence lacks (they are still listed)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_emer)
    p = sub.add_parser("evaluate", help="score MicroEmo on every clip with ground truth under DIR")
    p.add_argument("dir")
    _model_options(p)
    p.add_argument("--limit", type=int, help="only the first N clips")
    p.add_argument("--judge", default="unavailable",
                   help="LLM judge: 'unavailable' (default), 'replay:FILE', or an OpenAI-compatible base URL")
    p.add_argument("--judge-model", default="judge", help="model name sent to an HTTP judge")
    p.add_argument("--scenario", nargs="+", help="only clips of these scenarios (e.g. concealed)")
    p.add_argument("--knockout", nargs="+", default=[], choices=["local_branch", "cue_text", "video", "audio"],
                   help="switch these parts of the trained model off at inference (reliance, not an ablation)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_evaluate)
    p = sub.add_parser("rescore", help="score a saved evaluate --json report again (after the lexicon or the clue rule changed)")
    p.add_argument("report")
    p.add_argument("--out", help="write here instead of over REPORT")
    p.set_defaults(func=cmd_rescore)
    p = sub.add_parser("ablate", help="train and score MicroEmo with one part switched off at a time (issue #7)")
    p.add_argument("--data", nargs="+", default=[".cache/train"], help="cached training clips")
    p.add_argument("--eval", default=".cache/eval_test", help="cached held-out clips")
    p.add_argument("--variants", nargs="+",
                   default=["full", "no_local", "no_time_text", "whole_only", "windows", "subtitles_only",
                            "plus_readout"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--recipe", default="quick", choices=["quick", "full"])
    p.add_argument("--out", default=".cache/ablations", help="runs (checkpoints, answers) go here")
    p.add_argument("--summary", help="also write the summary table here (e.g. benchmarks/results/ablations.json)")
    p.add_argument("--finished-only", action="store_true", help="train nothing: summarise the finished runs, list the rest")
    p.add_argument("--llm", default="smollm2")
    p.set_defaults(func=cmd_ablate)
    p = sub.add_parser("cache", help="measure every video under DIR once (evidence for training and evaluation)")
    p.add_argument("dir")
    p.set_defaults(func=cmd_cache)
    p = sub.add_parser("train", help="train MicroEmo (two stages) on cached examples")
    p.add_argument("--data", nargs="+", default=[".cache/train"])
    p.add_argument("--out", default=".cache/runs/default")
    p.add_argument("--align-epochs", type=int, default=1)
    p.add_argument("--emer-epochs", type=int, default=3)
    p.add_argument("--batch", type=int, default=1, help="examples per step (1 was fastest per example on a 2-core CPU)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--concealed-repeat", type=int, default=2,
                   help="EMER stage: times each concealed-emotion clip is seen per epoch")
    p.add_argument("--limit", type=int, help="use only the first N examples")
    p.add_argument("--llm", default="smollm2")
    p.add_argument("--accelerate", action="store_true",
                   help="train through accelerate: `accelerate launch -m microemo_ref train --accelerate ...`")
    p.add_argument("--readout", action="store_true",
                   help="fit the micro-expression readout and write its answer into the cue line (our addition)")
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("info", help="summary of a clip (video + audio + subtitles)")
    p.add_argument("video")
    p.set_defaults(func=cmd_info)
    p = sub.add_parser("nbclean", help="strip notebook metadata and report house-rule breaches")
    p.add_argument("notebooks", nargs="+")
    p.set_defaults(func=cmd_nbclean)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, RuntimeError) as err:
        print(f"microemo-ref {args.command}: error: {err}", file=sys.stderr)
        return 2
