"""Utterance segmentation: where each utterance of a dialogue clip starts and ends, and its words.

MicroEmo's utterance-aware video Q-Former (Zhang et al., 2024, arXiv 2407.16552) makes one
visual token sequence per utterance, so the pipeline first needs the utterances. The paper
does not say where they come from; **our choice**:

1. **Subtitles first.** An ``.srt`` or ``.vtt`` file (read by the ``srt`` and ``webvtt-py``
   libraries in :mod:`microemo_ref.io.subtitles`) gives times *and* words. Its times are
   checked against the clip: a cue that starts after the clip ends, or ends more than
   ``END_TOLERANCE`` after it, is an error naming the file; overlaps of up to 0.2 s are
   trimmed with a warning (the policy of :func:`~microemo_ref.io.subtitles.validate_utterances`).
2. **Else voice activity.** Silero VAD (:func:`microemo_ref.audio.vad.detect_speech`) finds the
   speech in the audio track; each segment becomes an utterance with empty text and
   ``source="vad"``. Its rules, in order: hysteresis on the speech probability (enter at
   0.5, leave below 0.35); **merge** pauses shorter than ``MIN_PAUSE_S`` = 0.3 s (the gaps
   between words and at commas; at 0.3 s two sentences separated by a pause of 0.45 s or
   more come apart); **drop** segments shorter than ``MIN_UTTERANCE_S`` = 0.25 s (clicks,
   breaths); pad by 30 ms on each side, never into a neighbour.
   **Their words come from speech recognition** (:mod:`microemo_ref.audio.asr`, Whisper
   tiny.en): each recognised word goes to the utterance its time overlaps most, or to the
   nearest one within ``MAX_WORD_GAP_S`` = 0.5 s (word times and voice activity disagree by
   a few hundred ms at soft onsets); an utterance that gets words has ``source="asr"``, one
   that gets none keeps ``source="vad"`` and empty text. ``recognise=False`` skips this.
3. **Else nothing.** No audio track, or audio without speech: no utterances. The model then
   sees the whole-video token sequence only, and :class:`Segmentation` says why in ``notes``.

Words for the prompt follow TimeChat (Ren et al., CVPR 2024), which puts timestamped ASR
segments into the prompt as "{start:.1f} - {end:.1f} seconds, {text}": see
:func:`transcript_lines` and :func:`span_label`. Recognised words are headed
:data:`RECOGNISED_HEADING` instead of "Subtitles:", so the prompt says they may be wrong.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from microemo_ref.config import SAMPLE_RATE
from microemo_ref.io.clip import Clip, ClipError, Utterance, find_subtitles

#: VAD rules (seconds): shortest pause that separates two utterances, shortest utterance kept.
MIN_PAUSE_S: float = 0.3
MIN_UTTERANCE_S: float = 0.25
#: Farthest a recognised word may lie from an utterance and still be given to it (seconds).
MAX_WORD_GAP_S: float = 0.5
#: The prompt's heading for words that a recogniser heard (subtitles are headed "Subtitles:").
RECOGNISED_HEADING = "Speech recognised from the audio (words may be wrong):"

Source = Literal["subtitles", "asr", "vad", "labels", "none"]


@dataclass
class Segmentation:
    """The utterances of one clip, where they came from, and why there may be none."""

    utterances: list[Utterance]
    source: Source  # "subtitles", "asr" (voice activity + recognised words), "vad", or "none"
    duration: float  # clip length in seconds
    has_audio: bool  # the clip has an audio track (with or without speech)
    notes: list[str] = field(default_factory=list)  # human-readable remarks (no audio, ...)

    def spans(self) -> list[tuple[float, float]]:
        """(start, end) of every utterance, seconds."""
        return [(u.start, u.end) for u in self.utterances]

    def to_json(self) -> dict:
        return {
            "duration": round(self.duration, 3),
            "source": self.source,
            "has_audio": self.has_audio,
            "utterances": [{"start": round(u.start, 3), "end": round(u.end, 3), "text": u.text,
                            "source": u.source} for u in self.utterances],
            "notes": list(self.notes),
        }


def vad_utterances(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> list[Utterance]:
    """Speech segments found by Silero VAD, as utterances with empty text (rules in the docstring)."""
    from microemo_ref.audio.vad import detect_speech  # imported here: loads torch and the model

    segments = detect_speech(audio, sample_rate, min_speech_s=MIN_UTTERANCE_S,
                             min_silence_s=MIN_PAUSE_S)
    return [Utterance(start=s, end=e, text="", source="vad") for s, e in segments]


def attach_words(utterances: list[Utterance], words: list, max_gap: float = MAX_WORD_GAP_S,
                 ) -> tuple[list[Utterance], int]:
    """Give each recognised word (anything with ``text``, ``start``, ``end``) to the utterance
    it overlaps most, else to the nearest within ``max_gap`` s; return the utterances (those with
    words get ``source="asr"``) and the number of words that fell outside every utterance."""
    if not utterances:
        return [], len(words)
    bins: list[list[str]] = [[] for _ in utterances]
    lost = 0
    for w in words:
        overlap = [min(u.end, w.end) - max(u.start, w.start) for u in utterances]
        gap = [max(u.start - w.end, w.start - u.end, 0.0) for u in utterances]
        k = int(np.argmax(overlap)) if max(overlap) > 0 else int(np.argmin(gap))
        if overlap[k] > 0 or gap[k] <= max_gap:
            bins[k].append(w.text)
        else:
            lost += 1
    out = [Utterance(u.start, u.end, " ".join(b), "asr") if b else u for u, b in zip(utterances, bins)]
    return out, lost


def recognised_utterances(utterances: list[Utterance], audio: np.ndarray, sample_rate: int,
                          where: str | Path) -> tuple[list[Utterance], list[str]]:
    """The voice-activity utterances with the recogniser's words in them, and notes on what was
    left out (low-confidence speech, words outside every utterance, a missing recogniser)."""
    from microemo_ref.audio.asr import MODEL_NAME, RecogniserUnavailable, recognise

    try:
        pauses = [(a.end + b.start) / 2 for a, b in zip(utterances, utterances[1:])]
        heard = recognise(audio, sample_rate, pauses=pauses)
    except RecogniserUnavailable as err:
        return utterances, [f"no speech recognition ({err}): the utterances have no words"]
    filled, lost = attach_words(utterances, heard.words)
    n = sum(u.source == "asr" for u in filled)
    notes = [f"words recognised by {MODEL_NAME}: {len(heard.words)} word(s) in {n} of {len(filled)} utterance(s)"]
    if heard.dropped:
        notes.append(f"{where}: {len(heard.dropped)} stretch(es) of speech left without words: the English-only "
                     "recogniser was not confident (speech in another language, noise or mumbling)")
    if lost:
        notes.append(f"{lost} recognised word(s) fell outside every utterance and were left out")
    return filled, notes


def segment(
    *,
    duration: float,
    audio: np.ndarray | None,
    subtitles: list[Utterance] | None,
    sample_rate: int = SAMPLE_RATE,
    where: str | Path = "<clip>",
    recognise: bool = True,
) -> Segmentation:
    """Choose the utterances of a clip: subtitles if given, else VAD on the audio (with words
    from speech recognition unless ``recognise=False``), else none.

    ``subtitles`` must already be read (and validated against ``duration``); an empty list
    means "a subtitle file with no cues" and falls back to VAD like None does.
    """
    if not (math.isfinite(duration) and duration > 0):
        raise ClipError(f"{where}: clip duration must be positive, got {duration}")
    has_audio = audio is not None and np.asarray(audio).size > 0
    if subtitles:
        return Segmentation(list(subtitles), "subtitles", duration, has_audio)
    notes = ["no subtitles: utterances from voice activity"] if subtitles is None else [
        "the subtitle file has no cues: utterances from voice activity"]
    if not has_audio:
        notes = [f"{where}: no audio track and no subtitles, so no utterances; "
                 "the model sees the whole-video token sequence only"]
        return Segmentation([], "none", duration, False, notes)
    utterances = vad_utterances(audio, sample_rate)
    if not utterances:
        notes.append(f"{where}: no speech found in the audio, so no utterances; "
                     "the model sees the whole-video token sequence only")
        return Segmentation([], "none", duration, True, notes)
    if recognise:
        utterances, heard = recognised_utterances(utterances, audio, sample_rate, where)
        notes += heard
    source = "asr" if any(u.source == "asr" for u in utterances) else "vad"
    return Segmentation(utterances, source, duration, True, notes)


def with_label_words(seg: Segmentation, text: str) -> Segmentation:
    """A label file's subtitle (EMER v1's ``subtitles`` column: the words of the whole clip, no
    times) as the words of one utterance over all the speech voice activity found, or over the
    whole clip if it found none, with ``source="labels"``. Used only when the clip has no words
    of its own (no subtitle file, and nothing recognised, as for speech that is not English);
    otherwise ``seg`` is returned as it is."""
    if not text.strip() or any(u.text.strip() for u in seg.utterances):
        return seg
    start, end = (seg.utterances[0].start, seg.utterances[-1].end) if seg.utterances else (0.0, seg.duration)
    note = "words from the label file's subtitle, as one utterance over all the speech"
    return Segmentation([Utterance(start, end, text.strip(), "labels")], "labels", seg.duration, seg.has_audio,
                        [*seg.notes, note])


def segment_clip(clip: Clip, *, use_subtitles: bool = True, recognise: bool = True) -> Segmentation:
    """Segment a loaded :class:`~microemo_ref.io.clip.Clip` (its utterances came from subtitles)."""
    subtitles = clip.utterances if use_subtitles and clip.utterances else None
    return segment(duration=clip.duration, audio=clip.audio, subtitles=subtitles,
                   sample_rate=clip.sample_rate, where=clip.path or "<in-memory clip>", recognise=recognise)


def segment_video(video: str | Path, *, subtitles: str | Path | None | Literal["auto"] = "auto",
                  recognise: bool = True) -> Segmentation:
    """Segment a video file without decoding its frames (what ``microemo-ref utterances`` runs).

    ``subtitles``: ``"auto"`` finds a side ``.srt``/``.vtt`` with the video's stem, a path
    names the file, None ignores subtitles and uses VAD (and speech recognition, unless
    ``recognise=False``).
    """
    from microemo_ref.io.subtitles import load_subtitles, validate_utterances
    from microemo_ref.io.video import probe_video, read_audio

    video = Path(video)
    info = probe_video(video)  # raises ClipError for a missing or corrupt file
    cues = None
    sub_path = find_subtitles(video, subtitles)
    if sub_path is not None:
        if not sub_path.is_file():
            raise ClipError(f"{sub_path}: subtitle file not found")
        cues = validate_utterances(load_subtitles(sub_path), duration=info.duration, path=sub_path)
    audio = read_audio(video) if info.has_audio else None
    return segment(duration=info.duration, audio=audio, subtitles=cues, where=video, recognise=recognise)


def span_label(start: float, end: float) -> str:
    """TimeChat's time phrase for a span: "1.2 - 3.4 seconds"."""
    return f"{start:.1f} - {end:.1f} seconds"


def transcript_lines(utterances: list[Utterance]) -> list[str]:
    """One prompt line per utterance with words, in TimeChat's "s - e seconds, text" form.

    Utterances without words (found by VAD) are left out: the prompt cannot quote them. When
    the words were recognised (``source="asr"``), the first line is :data:`RECOGNISED_HEADING`,
    which the prompt then writes in place of "Subtitles:".
    """
    lines = [f"{span_label(u.start, u.end)}, {u.text}" for u in utterances if u.text.strip()]
    if lines and any(u.source == "asr" and u.text.strip() for u in utterances):
        lines.insert(0, RECOGNISED_HEADING)
    return lines


__all__ = ["MAX_WORD_GAP_S", "MIN_PAUSE_S", "MIN_UTTERANCE_S", "RECOGNISED_HEADING", "Segmentation",
           "attach_words", "recognised_utterances", "segment", "segment_clip", "segment_video", "span_label",
           "transcript_lines", "vad_utterances", "with_label_words"]
