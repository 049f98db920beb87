"""``microemo-ref`` subcommands that look at clips: ``info``, ``generate``, ``samples``, ``spot``,
``spot-eval`` and ``utterances`` (the measuring half of the pipeline, no model)."""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def cmd_info(args: argparse.Namespace) -> int:
    """The clip's metadata and subtitles; no frame or sample beyond the first is decoded."""
    from microemo_ref.io.clip import find_subtitles
    from microemo_ref.io.subtitles import load_subtitles, validate_utterances
    from microemo_ref.io.video import audio_seconds, probe_video

    video = Path(args.video)
    info = probe_video(video)
    audio = audio_seconds(video) if info.has_audio else None
    if audio is None and video.with_suffix(".wav").is_file():
        audio = audio_seconds(video.with_suffix(".wav"))
    side = find_subtitles(video, "auto")
    utterances = [] if side is None else validate_utterances(load_subtitles(side), duration=info.duration, path=side)
    out = {"path": str(video), "frames": info.n_frames, "fps": info.fps, "duration_s": round(info.duration, 2),
           "size": [info.height, info.width], "audio_s": None if audio is None else round(audio, 2),
           "rotation": info.rotation, "mirrored": info.mirrored, "variable_rate": info.variable_rate,
           "utterances": [{"start": u.start, "end": u.end, "text": u.text, "source": u.source} for u in utterances]}
    print(json.dumps(out, indent=1))
    return 0


def print_events(ev: dict) -> None:
    print(f"{len(ev['events'])} events at {ev['fps']:g} fps (speech from {ev['speech_source']})")
    for e in ev["events"]:
        print(f"  {e['type']:5s} frames {e['onset']:4d}-{e['apex']:4d}-{e['offset']:4d} "
              f"({e['onset_s']:6.2f}-{e['offset_s']:6.2f} s)  peak {e['peak_px']:.2f} px  regions {', '.join(e['regions'])}")
    for a, b in ev["face_lost"]:
        print(f"  face lost {a:.2f}-{b:.2f} s")
    for a, b in ev.get("hand_over_face", []):
        print(f"  hand over the face {a:.2f}-{b:.2f} s (no events from the covered regions)")
    for a, b in ev.get("head_turned", []):
        print(f"  head turned {a:.2f}-{b:.2f} s (no events that the turn explains)")


def cmd_spot(args: argparse.Namespace) -> int:
    from microemo_ref.face.local_branch import extract_local

    out = extract_local(args.video).to_json()
    if args.json:
        print(json.dumps(out))
    else:
        print_events(out)
    return 0


def cmd_spot_eval(args: argparse.Namespace) -> int:
    from microemo_ref.face.local_branch import extract_local
    from microemo_ref.io.casme import events_from_truth, load_spotting_annotations
    from microemo_ref.metrics.spotting import iou_sweep, score_spotting
    from microemo_ref.io.files import files_under, input_folder, truth_beside

    root = input_folder(args.dir)
    table = load_spotting_annotations(args.annotations) if args.annotations else None
    clips = []
    for video in files_under(root, "*.mp4", "*.avi"):
        if table is not None:
            key = next((k for k in (video.stem, video.relative_to(root).with_suffix("").as_posix()) if k in table), None)
            if key is None:
                continue
            gt = [a.to_event() for a in table[key]]
        else:
            truth = truth_beside(video, "spotting")
            if truth is None:
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


def progress(msg: str) -> None:
    print(f"  {msg}", flush=True)


def progress_to_stderr(msg: str) -> None:
    """Progress for a command whose stdout is a JSON document."""
    print(f"  {msg}", file=sys.stderr, flush=True)


def cmd_generate(args: argparse.Namespace) -> int:
    from microemo_ref.io.files import output_folder
    from microemo_ref.samples.sets import generate_set

    output_folder(args.out, "--out")  # before any clip is made
    t0 = time.perf_counter()
    paths = generate_set(args.out, args.n, args.seed, split=args.split, face=args.face, scenario=args.scenario,
                         progress=progress)
    dt = time.perf_counter() - t0
    print(f"wrote {len(paths)} clips to {args.out} in {dt:.1f} s ({dt / len(paths):.1f} s per clip)")
    return 0


def cmd_samples(args: argparse.Namespace) -> int:
    from microemo_ref.samples.sets import regenerate_committed

    t0 = time.perf_counter()
    paths = regenerate_committed(args.out, progress=progress)
    print(f"wrote {len(paths)} committed samples to {args.out} in {time.perf_counter() - t0:.1f} s")
    return 0


def cmd_utterances(args: argparse.Namespace) -> int:
    from microemo_ref.model.encoder import EncoderConfig, token_budget
    from microemo_ref.text.utterances import segment_video, transcript_lines

    subtitles = None if args.no_subtitles else (args.subtitles or "auto")
    seg = segment_video(args.video, subtitles=subtitles, recognise=not args.no_asr)
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
        print(f"  {i:2d}. {u.start:6.2f} - {u.end:6.2f} s  [{u.source}] {u.text or '(no words)'}")
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

