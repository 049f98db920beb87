"""``microemo-ref`` subcommands that run or train the model: ``demo``, ``emer``, ``cache`` and
``train``."""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

from microemo_ref.cli.clips import print_events, progress

DEMO_SAMPLE = "concealed_astronaut_s0002"


def cmd_demo(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    from microemo_ref.config import DATA_SAMPLES
    from microemo_ref.io.clip import load_clip
    from microemo_ref.io.files import truth_beside
    from microemo_ref.viz import tour_figure

    video = Path(args.video) if args.video else DATA_SAMPLES / f"{DEMO_SAMPLE}.mp4"
    clip = load_clip(video, stream="auto")
    truth = truth_beside(video, "emer")
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
    print_events(extract_local(video).to_json())
    from microemo_ref.pipeline.emer import default_checkpoint, run_emer

    try:
        folder = default_checkpoint()
    except FileNotFoundError as err:
        print(f"(no end-to-end EMER run: {err})")
        return 0
    from microemo_ref.pipeline.emer import load_for_answers

    t = time.perf_counter()
    model, decoder = load_for_answers(folder)
    print(f"End-to-end EMER (SmolLM2-135M + the shipped checkpoint, loaded in {time.perf_counter() - t:.1f} s; "
          f"decoding: {decoder}):")
    result = run_emer(video, model)
    print(f"  {result.explanation}")
    print(f"  emotions: {', '.join(result.labels) or '(none parsed)'}")
    print_removed(result.removed)
    print(f"  time: measure {result.seconds['measure']:.1f} s, encode + generate {result.seconds['encode_and_generate']:.1f} s")
    return 0


def load_model_from_args(args: argparse.Namespace):
    """The checkpoint of ``--checkpoint`` or ``--path`` on ``--llm``, with the decoder of ``--decoder``."""
    from microemo_ref.pipeline.emer import default_checkpoint, load_for_answers

    folder = Path(args.checkpoint) if args.checkpoint else default_checkpoint(getattr(args, "path", "cues"))
    return load_for_answers(folder, args.llm, getattr(args, "decoder", "auto"))[0]


def cmd_emer(args: argparse.Namespace) -> int:
    from microemo_ref.io.video import probe_video
    from microemo_ref.pipeline.emer import check_long_enough, run_emer

    subtitles = None if args.no_subtitles else (args.subtitles or "auto")
    for f in (args.video, args.subtitles):  # before the model loads
        if f and not Path(f).is_file():
            raise FileNotFoundError(f"{f}: no such file")
    check_long_enough(args.video, probe_video(args.video).duration)
    t = time.perf_counter()
    model = load_model_from_args(args)
    load_s = time.perf_counter() - t
    result = run_emer(args.video, model, subtitles=subtitles, grounding_guard=not args.no_guard,
                      recognise=not args.no_asr)
    result.seconds["load"] = round(load_s, 2)
    if args.json:
        print(json.dumps(result.to_json(), indent=1))
        return 0
    print(f"{args.video}")
    print(f"  model's path: {result.path}")
    print(f"  decoder: {result.decoder}")
    for note in result.notes:
        print(f"  note: {note}")
    print(f"  measured {result.cues}")
    print(f"\n{result.explanation or '(every sentence claimed what the evidence lacks)'}\n\n"
          f"Emotions: {', '.join(result.labels) or '(none parsed)'}")
    print_removed(result.removed, dropped=not args.no_guard)
    print(f"\n  time: load {load_s:.1f} s, measure {result.seconds['measure']:.1f} s, "
          f"encode + generate {result.seconds['encode_and_generate']:.1f} s")
    return 0


def print_removed(removed: list[dict], dropped: bool = True) -> None:
    if removed:
        print(f"\n  {'dropped' if dropped else 'unsupported'} (claims the evidence lacks):")
    for p in removed:
        print(f"    {p['sentence']}  [{'; '.join(p['reasons'])}]")
        if dropped and p.get("repair"):
            print(f"      kept as: {p['repair']}")


def labelled_cache(args: argparse.Namespace, folder: str | None, report=progress,
                   failures: list | None = None) -> tuple[str, list[Path]] | None:
    """With ``--labels FILE --videos DIR``: measure the label file's clips (those not measured
    yet) and return their cache folder and examples, printing each row whose video is missing;
    else None.
    Exactly one of ``folder`` (a folder of generated clips) and ``--labels`` must be given."""
    import sys

    from microemo_ref.pipeline.labelled import cache_labelled

    if args.labels is None:
        if args.videos or args.cache:
            raise ValueError("--videos and --cache go with --labels FILE")
        if folder is None and args.command != "train":
            raise ValueError("give a folder of clips, or --labels FILE --videos DIR")
        return None
    if folder is not None:
        raise ValueError(f"give either a folder of clips ({folder}) or --labels FILE, not both")
    if not args.videos:
        raise ValueError("--labels needs --videos DIR, the folder holding the videos")
    out, paths, missing = cache_labelled(args.labels, args.videos, args.cache, report, failures)
    for line in missing:
        print(f"microemo-ref {args.command}: {line}", file=sys.stderr)
    if not paths:
        raise FileNotFoundError(f"{args.labels}: none of its {len(missing)} clip(s) found under {args.videos}"
                                if missing and not failures else f"{args.labels}: no clip could be measured")
    return str(out), paths


def cmd_cache(args: argparse.Namespace) -> int:
    from microemo_ref.io.files import input_folder
    from microemo_ref.pipeline.dataset import cache_folder

    failures: list[tuple[Path, str]] = []
    labelled = labelled_cache(args, args.dir, failures=failures)
    if labelled is not None:
        folder, paths = labelled
        print(f"{len(paths)} examples cached under {folder}")
        print_failures(failures, "cache")
        return 2 if failures else 0
    paths = cache_folder(input_folder(args.dir), progress, failures=failures)
    if not paths and not failures:
        raise FileNotFoundError(f"{args.dir}: no .mp4 clip found")
    print(f"{len(paths)} examples cached under {args.dir}")
    print_failures(failures, "cache")
    return 2 if failures else 0


def print_failures(failures: list[tuple[Path, str]], command: str) -> None:
    """The clips a command could not measure, one line each on stderr."""
    import sys

    for video, why in failures:
        print(f"microemo-ref {command}: error: {video}: {why} (skipped)", file=sys.stderr)
    if failures:
        print(f"microemo-ref {command}: {len(failures)} clip(s) failed", file=sys.stderr)


def cmd_train(args: argparse.Namespace) -> int:
    from microemo_ref.model.microemo import MicroEmoConfig
    from microemo_ref.pipeline.train import TrainConfig, train

    if args.flash_pointer and not args.flash_word:
        raise ValueError("--flash-pointer points at the flash words: it needs --flash-word")
    if args.flash_time and not args.flash_pointer:
        raise ValueError("--flash-time writes its time into the flash pointer's line: it needs --flash-pointer")
    labelled = labelled_cache(args, args.data and " ".join(args.data))
    data = (labelled[0],) if labelled else tuple(args.data or [".cache/train"])
    cfg = TrainConfig(data=data, out=args.out, align_epochs=args.align_epochs,
                      emer_epochs=args.emer_epochs, batch=args.batch, lr=args.lr, seed=args.seed, limit=args.limit,
                      concealed_repeat=args.concealed_repeat, accelerate=args.accelerate,
                      token_epochs=args.token_epochs, token_weight=args.token_weight, init=args.init,
                      anchor=args.anchor, balance=args.balance, content_weight=args.content_weight,
                      init_partial=args.asymmetry)
    if args.readout and args.no_cue_text:
        raise ValueError("--readout writes into the cue line, which --no-cue-text leaves out: choose one")
    model_cfg = MicroEmoConfig(llm=args.llm, readout=args.readout, cue_text=not args.no_cue_text,
                               flash_word=args.flash_word, flash_pointer=args.flash_pointer, flash_time=args.flash_time)
    model_cfg = replace(model_cfg, encoder=model_cfg.encoder.with_mode(args.span_mode))
    if args.asymmetry:
        from microemo_ref.face.spotting import DYNAMICS_FEATURES

        model_cfg = replace(model_cfg, encoder=model_cfg.encoder.with_local_features(len(DYNAMICS_FEATURES)))
    folder = train(cfg, model_cfg, progress=progress)
    print(f"checkpoint: {folder}")
    return 0

