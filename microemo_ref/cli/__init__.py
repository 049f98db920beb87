"""The ``microemo-ref`` command (also ``python -m microemo_ref``).

Subcommands: ``demo`` (what the reference can do, on a bundled sample), ``generate``
(sample dialogues with ground truth), ``samples`` (regenerate the committed set), ``spot`` and
``spot-eval`` (the local facial branch and its MEGC score), ``utterances`` (utterance
segments and the token budget of the utterance-aware Q-Former), ``emer`` (the end-to-end run:
explanation and emotion labels), ``cache`` and ``train`` (measure clips once; train MicroEmo),
``evaluate``, ``rescore`` and ``ablate`` (scores on clips with ground truth),
``info`` (summary of a clip) and ``nbclean`` (strip notebook metadata before committing).

The commands live in three modules by what they do: :mod:`.clips` (measure, no model),
:mod:`.run` (run or train the model) and :mod:`.scores` (score and tidy); this one builds the
parser and runs the chosen command.
"""
from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GLOG_minloglevel", "2")       # quieten MediaPipe's C++ logging
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from microemo_ref.cli.clips import cmd_generate, cmd_info, cmd_samples, cmd_spot, cmd_spot_eval, cmd_utterances  # noqa: E402
from microemo_ref.cli.run import DEMO_SAMPLE, cmd_cache, cmd_demo, cmd_emer, cmd_train  # noqa: E402
from microemo_ref.cli.scores import cmd_ablate, cmd_evaluate, cmd_nbclean, cmd_rescore  # noqa: E402


#: The commands that decode a clip's frames: they keep the heap from holding freed frames.
VIDEO_COMMANDS = frozenset({"demo", "spot", "spot-eval", "emer", "cache", "evaluate", "info", "utterances"})

MAX_COUNT = 100_000  # more clips than a laptop makes in weeks: likelier a typo than a wish


def count(text: str) -> int:
    """``--n`` and ``--limit``: a whole number from 1 to :data:`MAX_COUNT`."""
    return _whole(text, 1, MAX_COUNT)


def seed(text: str) -> int:
    """``--seed``: a whole number from 0 to 2**32 - 1 (numpy's ``SeedSequence`` takes no negatives)."""
    return _whole(text, 0, 2**32 - 1)


def _whole(text: str, low: int, high: int) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not low <= n <= high:
        raise argparse.ArgumentTypeError(f"must be from {low} to {high}, got {n}")
    return n


def _subtitle_options(p: argparse.ArgumentParser) -> None:
    group = p.add_mutually_exclusive_group()
    group.add_argument("--subtitles", help="an .srt or .vtt file (default: a side file with the video's name)")
    group.add_argument("--no-subtitles", action="store_true",
                       help="ignore subtitles; segment by voice activity, words by speech recognition")
    p.add_argument("--no-asr", action="store_true",
                   help="no speech recognition: utterances found by voice activity stay without words")


def _label_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--labels", help="a real dataset's label file (EMER v1, EMER v2 or MER open-vocabulary CSV, "
                                    "told apart by its header) instead of a folder of generated clips")
    p.add_argument("--videos", help="with --labels: the folder holding the videos, found by name")
    p.add_argument("--cache", help="with --labels: where the measured clips go (default .cache/labelled/NAME)")


def _model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", help="a checkpoint folder (default: the shipped one of --path)")
    p.add_argument("--path", choices=["cues", "tokens", "flashword", "pointer"], default="cues",
                   help="which shipped checkpoint: 'cues' (default: tokens + measured-cue text, our addition), "
                        "'tokens' (MicroEmo's own path: the answer must come from the video and audio tokens), "
                        "'flashword' (MicroEmo's path plus a soft word read from each span's video tokens, our addition) "
                        "or 'pointer' (that, plus a line pointing at the flash's utterance and time, read from the "
                        "video tokens, our addition)")
    p.add_argument("--llm", default="smollm2", help="the frozen LLM: smollm2 (default) or a local model folder")
    _decoder_option(p)


#: ``--decoder`` choices; the same as :data:`microemo_ref.model.gguf_decoder.CHOICES` (a test checks),
#: spelt out here so that building the parser imports no torch.
DECODERS = ("auto", "llama.cpp", "transformers")


def _decoder_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--decoder", choices=DECODERS, default="auto",
                   help="who decodes the answer: 'llama.cpp' (fast, our addition; ik-llama-cpp-python on float16 "
                        "weights with the LoRA merged), 'transformers' (the reference), or 'auto' (default: "
                        "llama.cpp where it runs, else transformers, saying why)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="microemo-ref", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="run the demo on a bundled sample")
    p.add_argument("--video", help="a clip to use instead of the bundled sample")
    p.add_argument("--out", default="out", help="folder for the demo figure (default: out/)")
    p.set_defaults(func=cmd_demo)
    p = sub.add_parser("generate", help="generate sample dialogues with ground truth")
    p.add_argument("--out", required=True)
    p.add_argument("--n", type=count, default=4)
    p.add_argument("--seed", type=seed, default=0)
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
    p.add_argument("--annotations", help="an annotation sheet exported to CSV/TSV (CASME II, CAS(ME)^2, SAMM, SAMM Long "
                                          "Videos, told apart by its layout; or any table naming clip, onset, apex, offset)")
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
    p = sub.add_parser("evaluate", help="score MicroEmo on every clip with ground truth under DIR (or of --labels)")
    p.add_argument("dir", nargs="?")
    _label_options(p)
    _model_options(p)
    p.add_argument("--limit", type=count, help="only the first N clips")
    p.add_argument("--judge", default="unavailable",
                   help="LLM judge: 'unavailable' (default), 'replay:FILE', or an OpenAI-compatible base URL")
    p.add_argument("--judge-model", default="judge", help="model name sent to an HTTP judge")
    p.add_argument("--scenario", nargs="+", help="only clips of these scenarios (e.g. concealed)")
    p.add_argument("--grouping", nargs="+", metavar="WHEEL",
                   help="score OV labels with these emotion-wheel CSVs (MERTools' layout: level1,level2,level3) "
                        "instead of our lexicon; several wheels are averaged, as MERTools does")
    p.add_argument("--synonyms", help="with --grouping: a synonym CSV (word_runK,synonym_runK column pairs)")
    p.add_argument("--formats", help="with --grouping: a word-form CSV (name,format)")
    p.add_argument("--level", default="level1", choices=["level1", "level2"], help="with --grouping: the wheel level")
    p.add_argument("--knockout", nargs="+", default=[], choices=["local_branch", "cue_text", "video", "audio", "flash_word"],
                   help="switch these parts of the trained model off at inference (reliance, not an ablation)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_evaluate)
    p = sub.add_parser("rescore", help="score a saved evaluate --json report again (after the lexicon or the clue rule changed)")
    p.add_argument("report")
    p.add_argument("--out", help="write here instead of over REPORT")
    p.set_defaults(func=cmd_rescore)
    p = sub.add_parser("ablate", help="train and score MicroEmo with one part switched off at a time")
    p.add_argument("--data", nargs="+", default=[".cache/train"], help="cached training clips")
    p.add_argument("--eval", default=".cache/eval_test", help="cached held-out clips")
    p.add_argument("--variants", nargs="+",
                   default=["full", "no_local", "no_time_text", "whole_only", "windows", "subtitles_only",
                            "plus_readout"])
    p.add_argument("--seeds", nargs="+", type=seed, default=[0, 1, 2])
    p.add_argument("--recipe", default="quick", choices=["full", "quick", "quick_tokens", "tokens_explained", "flash_word"])
    p.add_argument("--out", default=".cache/ablations", help="runs (checkpoints, answers) go here")
    p.add_argument("--summary", help="also write the summary table here (e.g. benchmarks/results/ablations.json)")
    p.add_argument("--finished-only", action="store_true", help="train nothing: summarise the finished runs, list the rest")
    p.add_argument("--llm", default="smollm2")
    _decoder_option(p)
    p.set_defaults(func=cmd_ablate)
    p = sub.add_parser("cache", help="measure every video under DIR (or of --labels) once, for training and evaluation")
    p.add_argument("dir", nargs="?")
    _label_options(p)
    p.set_defaults(func=cmd_cache)
    p = sub.add_parser("train", help="train MicroEmo (two stages) on cached examples")
    p.add_argument("--data", nargs="+", help="cached clips (default .cache/train)")
    _label_options(p)
    p.add_argument("--out", default=".cache/runs/default")
    p.add_argument("--align-epochs", type=int, default=1)
    p.add_argument("--emer-epochs", type=int, default=3)
    p.add_argument("--batch", type=int, default=1, help="examples per step (1 was fastest per example on a 2-core CPU)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument("--concealed-repeat", type=int, default=2,
                   help="EMER stage: times each concealed-emotion clip is seen per epoch")
    p.add_argument("--limit", type=count, help="use only the first N examples")
    p.add_argument("--llm", default="smollm2")
    p.add_argument("--accelerate", action="store_true",
                   help="train through accelerate: `accelerate launch -m microemo_ref train --accelerate ...`")
    p.add_argument("--readout", action="store_true",
                   help="fit the micro-expression readout and write its answer into the cue line (our addition)")
    p.add_argument("--no-cue-text", action="store_true",
                   help="MicroEmo's own path: no measured-cue line in the prompt, the answer must come from the tokens")
    p.add_argument("--flash-word", action="store_true",
                   help="after each video span's tokens, a soft word read from them (our addition); the encoder "
                        "is frozen once the reader is fitted")
    p.add_argument("--flash-pointer", action="store_true",
                   help="with --flash-word: one more prompt line pointing, by a soft digit and a soft word, at the "
                        "utterance whose flash word carries a flash (our addition)")
    p.add_argument("--flash-time", action="store_true",
                   help="with --flash-pointer: the pointer's line also states the flash's time, two soft digits "
                        "read from the fused frame tokens (our addition)")
    p.add_argument("--token-epochs", type=int, default=0,
                   help="stage 0 (our addition): epochs of token heads on the encoder alone, before the LLM stages")
    p.add_argument("--token-weight", type=float, default=0.0,
                   help="keep the token heads' loss beside the answer loss in the LLM stages, with this weight")
    p.add_argument("--balance", action="store_true",
                   help="EMER stage: repeat concealed clips so that each hidden emotion is seen about as often")
    p.add_argument("--anchor", action="store_true",
                   help="our addition: word-anchor losses beside the token heads (a flash span's projected token "
                        "points to the LLM's embedding of the flash's emotion words)")
    p.add_argument("--content-weight", type=float, default=1.0,
                   help="our addition: answer tokens in an emotion, face-movement or number word weigh this much "
                        "in the answer loss (1: the plain loss)")
    p.add_argument("--span-mode", choices=["utterance", "whole", "window"], default="utterance",
                   help="the encoder's spans: one token sequence per utterance plus the whole clip (MicroEmo), "
                        "the whole clip only, or TimeChat's fixed windows (the last two are ablations)")
    p.add_argument("--asymmetry", action="store_true",
                   help="our addition: the local encoder also reads each region's left-right asymmetry (a 4th "
                        "dynamics feature, for one-sided flashes such as contempt); with --init, its new weights "
                        "start at zero, so training starts from the init's function")
    p.add_argument("--init", help="start from this checkpoint folder's trainable weights")
    p.set_defaults(func=cmd_train)
    p = sub.add_parser("info", help="summary of a clip (video + audio + subtitles)")
    p.add_argument("video")
    p.set_defaults(func=cmd_info)
    p = sub.add_parser("nbclean", help="strip notebook metadata and report house-rule breaches")
    p.add_argument("notebooks", nargs="+")
    p.set_defaults(func=cmd_nbclean)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command. A failure is one line on stderr naming the file or argument, and exit
    code 2 (argparse's own for a bad argument); Ctrl-C stops with 130, the shell's code for it."""
    args = build_parser().parse_args(argv)
    if args.command in VIDEO_COMMANDS and not os.environ.get("MICROEMO_GLIBC_HEAP"):  # set: glibc's default, to compare
        from microemo_ref.io.frames import bound_heap
        bound_heap()
    try:
        return args.func(args)
    except BrokenPipeError:  # the reader went away (`... | head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        print(f"microemo-ref {args.command}: interrupted", file=sys.stderr)
        return 130
    except OSError as err:  # unreadable or unwritable places, full disks: the message names the file
        where = f"{err.filename}: " if err.filename else ""
        print(f"microemo-ref {args.command}: error: {where}{err.strerror or err}", file=sys.stderr)
        return 2
    except (ValueError, RuntimeError) as err:
        print(f"microemo-ref {args.command}: error: {err}", file=sys.stderr)
        return 2


__all__ = ["DEMO_SAMPLE", "MAX_COUNT", "VIDEO_COMMANDS", "build_parser", "count", "main", "seed"]
