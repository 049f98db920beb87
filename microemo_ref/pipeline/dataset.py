"""EMER examples: one clip's measured evidence, its prompt parts and its gold answer, cached.

Measuring a clip (FaceMesh, optical flow, pYIN) takes about 8 s on a 2-core CPU and does not
change while the model trains, so each clip is measured once and stored beside the video as
``NAME.evidence.npz`` (about 0.5 MB): the sampled frames at the frame encoder's size, the
local dynamics, the audio features, the utterances, the measured-cue text and, for generated
clips, the gold answer. Training and evaluation then read only these files. A version number
in the file makes stale caches obvious.

The gold answer follows EMER (Lian et al., 2023): an explanation that cites the clues, then
the open-vocabulary labels, written as "Emotions: a, b, c." so they can be parsed back.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import torch

from microemo_ref.audio.features import span_summary
from microemo_ref.face.spotting import SpottedEvent
from microemo_ref.io.clip import Utterance, atomic_path, load_clip
from microemo_ref.io.files import files_under, truth_beside
from microemo_ref.model.encoder import EncoderInputs
from microemo_ref.model.visual_encoder import VisualEncoderConfig
from microemo_ref.pipeline.cues import Readout, cue_text
from microemo_ref.pipeline.evidence import Evidence, encoder_inputs, gather_evidence
from microemo_ref.text.utterances import transcript_lines

VERSION = 5  # cache format, raised whenever the cached evidence changes; it holds the spotter's current events
#   (2-frame transient runs, sided mouth corners, transient runs must come back (max_net), the head gate,
#   the asymmetry feature in the dynamics)
SUFFIX = ".evidence.npz"


def gold_answer(truth: dict) -> str | None:
    """The training target: the gold explanation, then 'Emotions: a, b, c.' (the explanation
    alone where there are no labels, as in EMER v2; None without an explanation, as in MER OV)."""
    if not truth.get("explanation"):
        return None
    if not truth["labels"]:
        return truth["explanation"]
    return f"{truth['explanation']}\nEmotions: {', '.join(truth['labels'])}."


@dataclass
class Example:
    name: str
    inputs: EncoderInputs
    subtitles: list[str]  # the prompt's speech lines
    cues: str  # the prompt's measured-cue line
    answer: str | None  # gold answer, None for clips without ground truth
    truth: dict | None
    events: list[dict] | None = None  # spotted facial events (to_json form), None without a face
    utterances: list[tuple[float, float, str]] = field(default_factory=list)  # start, end, words ("" if none)


def evidence_arrays(ev: Evidence, cfg: VisualEncoderConfig) -> dict[str, np.ndarray]:
    """The arrays of an Evidence, sampled and resized as the encoder wants them."""
    x = encoder_inputs(ev, cfg)
    arrays = {"images": (x.images.numpy() * 255).round().astype(np.uint8), "frame_times": x.frame_times.numpy()}
    for key in ("dynamics", "local_times", "local_mask", "audio", "audio_times"):
        value = getattr(x, key)
        if value is not None:
            arrays[key] = value.numpy()
    return arrays


def voice_summaries(ev: Evidence) -> list[dict[str, float]] | None:
    """Prosody of each utterance (None without audio)."""
    if ev.audio is None:
        return None
    return [span_summary(ev.audio, u.start, u.end) for u in ev.segmentation.utterances]


def describe(ev: Evidence, dynamics: np.ndarray | None = None, readout: Readout | None = None) -> tuple[list[str], str]:
    """Subtitle lines and the measured-cue line of a clip's evidence (``dynamics``: the local
    branch's (R, T, 4) per-frame tensor, when :func:`encoder_inputs` has already built it;
    ``readout``: the model's, if it has one, see :meth:`MicroEmo.cue_readout`)."""
    utts = ev.segmentation.utterances
    events = None if ev.local is None else ev.local.events
    if dynamics is None and ev.local is not None:
        dynamics = ev.local.tensor(ev.local.track.n_frames)  # (R, T, 4) per frame
    return transcript_lines(utts), cue_text(events, ev.clip.fps, utts, voice_summaries(ev), dynamics, readout)


def event_from_json(d: dict) -> SpottedEvent:
    """A spotted event back from its ``to_json`` form."""
    names = {f.name for f in fields(SpottedEvent)}
    return SpottedEvent(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items() if k in names})


def cache_example(video: str | Path, cfg: VisualEncoderConfig = VisualEncoderConfig(), *,
                  truth: dict | None | str = "beside", out: str | Path | None = None,
                  label_words: str | None = None) -> Path:
    """Measure one clip and write ``NAME.evidence.npz`` (atomically) beside it, or to ``out``;
    return its path. ``truth``: ``"beside"`` reads ``NAME.json`` beside the video, else the
    ground truth itself (a label file's row, :mod:`microemo_ref.pipeline.labelled`) or None;
    ``label_words``: see :func:`~microemo_ref.pipeline.evidence.gather_evidence`."""
    video = Path(video)
    if truth == "beside":
        truth = truth_beside(video, "emer")  # before measuring: a malformed one fails at once
    clip = load_clip(video, stream="auto")
    ev = gather_evidence(clip, cfg, label_words=label_words)
    meta = {"version": VERSION, "name": video.stem, "duration": clip.duration, "fps": clip.fps,
            "utterances": [[u.start, u.end, u.text, u.source] for u in ev.segmentation.utterances],
            "notes": ev.notes, "voice": voice_summaries(ev),
            "events": None if ev.local is None else [e.to_json(clip.fps) for e in ev.local.events],
            "answer": gold_answer(truth) if truth else None, "truth": truth}
    out = Path(out) if out else video.with_name(video.stem + SUFFIX)
    with atomic_path(out) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, meta=np.array(json.dumps(meta)), **evidence_arrays(ev, cfg))
    return out


def find_examples(folders: tuple[str, ...], limit: int | None = None) -> list[Path]:
    """The cached examples (``*.evidence.npz``) under ``folders``, searched recursively, sorted
    (hidden files and folders, such as a killed run's temporary ones, left out)."""
    paths = sorted(p for f in folders for p in files_under(f, "*" + SUFFIX))
    if not paths:
        raise FileNotFoundError(f"no *.evidence.npz under {', '.join(folders)}: run `microemo-ref cache DIR` first")
    return paths[:limit] if limit else paths


def load_example(path: str | Path, readout: Readout | None = None) -> Example:
    """Read a cached example back as encoder inputs and prompt parts (the cue line written with
    the model's ``readout``, if it has one)."""
    with np.load(path) as z:
        meta = json.loads(str(z["meta"]))
        if meta.get("version") != VERSION:
            raise ValueError(f"{path}: cache version {meta.get('version')}, expected {VERSION}; "
                             "run `microemo-ref cache` on its folder to measure it again")
        t = {k: torch.from_numpy(z[k]) for k in z.files if k != "meta"}
    x = EncoderInputs(duration=meta["duration"], images=t["images"].float() / 255.0, frame_times=t["frame_times"],
                      utterances=[(u[0], u[1]) for u in meta["utterances"]],
                      dynamics=t.get("dynamics"), local_times=t.get("local_times"), local_mask=t.get("local_mask"),
                      audio=t.get("audio"), audio_times=t.get("audio_times"))
    utts = [Utterance(*u) for u in meta["utterances"]]
    events = None if meta["events"] is None else [event_from_json(e) for e in meta["events"]]
    dynamics = t["dynamics"].numpy() if "dynamics" in t else None
    cues = cue_text(events, meta["fps"], utts, meta["voice"], dynamics, readout)  # rebuilt: the wording may change, the measures not
    return Example(meta["name"], x, transcript_lines(utts), cues, meta["answer"], meta["truth"], meta["events"],
                   [(u.start, u.end, u.text) for u in utts])


def cache_meta(path: str | Path) -> dict | None:
    """The ``meta`` record of a cached example (None if it cannot be read)."""
    try:
        with np.load(path) as z:
            return json.loads(str(z["meta"]))
    except (OSError, ValueError, KeyError):
        return None


def cache_version(path: str | Path) -> int | None:
    """The format version of a cached example (None if it cannot be read)."""
    meta = cache_meta(path)
    return None if meta is None else meta.get("version")


def cache_folder(folder: str | Path, progress: Callable[[str], None] | None = None,
                 failures: list[tuple[Path, str]] | None = None) -> list[Path]:
    """Cache every ``*.mp4`` under ``folder`` (recursively, hidden folders left out) that has no
    current cache yet (a cache of another version, or one that cannot be read, is measured again).

    With a ``failures`` list, a clip that cannot be measured (a bad video, a malformed ground
    truth) is appended to it as ``(video, reason)`` and the others go on; without, it raises.
    """
    done = []
    for video in files_under(folder, "*.mp4"):
        out = video.with_name(video.stem + SUFFIX)
        if not out.is_file() or cache_version(out) != VERSION:
            for stale in video.parent.glob(f".{out.name}.*.part"):  # a killed run's half-written cache
                stale.unlink(missing_ok=True)
            try:
                cache_example(video)
            except (ValueError, RuntimeError, OSError) as err:
                if failures is None:
                    raise
                failures.append((video, str(err)))
                continue
            if progress:
                progress(f"measured {video.name}")
        done.append(out)
    return done


__all__ = ["Example", "SUFFIX", "VERSION", "cache_example", "cache_folder", "cache_meta", "cache_version", "describe",
           "event_from_json", "find_examples", "gold_answer", "load_example"]
