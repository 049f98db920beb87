"""Subtitles in and out: SRT and WebVTT files <-> a clean, sorted list of `Utterance`.

MicroEmo's utterance-aware video Q-Former pools the frames *under each utterance*, so the cue
times must be trustworthy: sorted, non-overlapping and inside the clip.  Real subtitle files
are often sloppy (cues out of order, a few hundred milliseconds of overlap, a last cue running
past the end of a cut clip), so this module reads them with the established parsers (`srt`
for ``.srt``, `webvtt-py` for ``.vtt``; no hand-written parser) and then applies one policy,
`validate_utterances`, which repairs what is clearly harmless and refuses the rest.

Policy
------
* A cue with ``end <= start``, a negative start or a non-finite time raises `ClipError`.
* Cues are sorted by start time; input that was not sorted is sorted with a warning.
* Two consecutive cues that overlap by at most `MAX_TRIM_OVERLAP` (0.2 s) are separated by
  trimming the earlier cue's end to the later cue's start, with a warning; a larger overlap
  (two people talking at once, or a wrong file) raises `ClipError`.
* With a known clip duration: a cue ending at most `END_TOLERANCE` (0.5 s) past the end is
  clipped to the end (subtitle tools round times up); a cue that starts at or after the end,
  or ends further past it, raises `ClipError` naming the subtitle file and the cue.
* When reading a file (not in `validate_utterances`, which also sees text-less VAD segments):
  multi-line cue text is joined with single spaces, and cues whose text is empty are dropped
  with a warning, because an utterance without words gives the model nothing to align.
* A file the parser rejects, or that is not UTF-8, raises `ClipError` naming the file.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import srt
import webvtt

from microemo_ref.io.clip import ClipError, Utterance, atomic_path

#: Largest overlap (seconds) between consecutive cues that is repaired rather than refused.
MAX_TRIM_OVERLAP: float = 0.2
#: How far (seconds) a cue may end past the end of the clip and still be clipped to it.
END_TOLERANCE: float = 0.5


def _describe(index: int, utt: Utterance) -> str:
    """Name a cue in an error message: number, times and the start of its text."""
    text = utt.text if len(utt.text) <= 40 else utt.text[:37] + "..."
    return f"cue {index + 1} ({utt.start:.3f} --> {utt.end:.3f} s, {text!r})"


def _join_lines(text: str) -> str:
    """Collapse a multi-line cue into one line with single spaces."""
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def _read_srt(path: Path) -> list[Utterance]:
    try:
        cues = list(srt.parse(path.read_text(encoding="utf-8-sig")))
    except (srt.SRTParseError, UnicodeDecodeError) as err:
        raise ClipError(f"{path}: malformed SRT file ({err})") from err
    return [
        Utterance(cue.start.total_seconds(), cue.end.total_seconds(), _join_lines(cue.content))
        for cue in cues
    ]


def _seconds(timestamp) -> float:
    """Seconds of a webvtt ``Timestamp`` (its ``*_in_seconds`` properties truncate to int)."""
    hours, minutes, seconds, millis = timestamp.to_tuple()
    return hours * 3600 + minutes * 60 + seconds + millis / 1000


def _read_vtt(path: Path) -> list[Utterance]:
    try:
        captions = webvtt.read(str(path), strict=True)
    except (webvtt.errors.MalformedFileError, webvtt.errors.MalformedCaptionError,
            UnicodeDecodeError) as err:
        raise ClipError(f"{path}: malformed WebVTT file ({err})") from err
    return [
        Utterance(_seconds(cap.start_time), _seconds(cap.end_time), _join_lines(cap.text))
        for cap in captions
    ]


def load_subtitles(path: str | Path) -> list[Utterance]:
    """Read an ``.srt`` or ``.vtt`` file into utterances, sorted and overlap-free.

    Times are not checked against a clip here (the file does not know its clip); `load_clip`
    does that with `validate_utterances`.  See the module docstring for the policy.

    Raises
    ------
    ClipError
        Missing file, unknown suffix, malformed file, or cues that break the policy.
    """
    path = Path(path)
    if not path.is_file():
        raise ClipError(f"{path}: subtitle file not found")
    readers = {".srt": _read_srt, ".vtt": _read_vtt}
    reader = readers.get(path.suffix.lower())
    if reader is None:
        raise ClipError(f"{path}: unknown subtitle format (expected .srt or .vtt)")
    utterances = reader(path)
    kept = [u for u in utterances if u.text]
    if len(kept) < len(utterances):
        dropped = len(utterances) - len(kept)
        warnings.warn(f"{path}: dropped {dropped} cue(s) with empty text", stacklevel=2)
    return validate_utterances(kept, duration=None, path=path)


def validate_utterances(
    utts: Sequence[Utterance], *, duration: float | None, path: str | Path | None
) -> list[Utterance]:
    """Apply the module's timing policy and return a new, cleaned list.

    Parameters
    ----------
    utts
        Utterances in any order.
    duration
        Clip length in seconds, or None to skip the checks against the clip.
    path
        The file the utterances came from, used in warnings and error messages.

    Returns
    -------
    list of Utterance
        Sorted by start, consecutive cues not overlapping, inside ``[0, duration]``.

    Raises
    ------
    ClipError
        A cue with ``end <= start`` or a negative or non-finite time, an overlap above
        `MAX_TRIM_OVERLAP`, or a cue that does not fit within `duration` (+ `END_TOLERANCE`).
    """
    where = path if path is not None else "<utterances>"
    for i, utt in enumerate(utts):
        if not (math.isfinite(utt.start) and math.isfinite(utt.end)) or utt.start < 0:
            raise ClipError(f"{where}: {_describe(i, utt)} has a negative or non-finite time")
        if utt.end <= utt.start:
            raise ClipError(f"{where}: {_describe(i, utt)} ends before it starts")

    ordered = sorted(utts, key=lambda u: (u.start, u.end))  # stable: equal cues keep order
    if ordered != list(utts):
        warnings.warn(f"{where}: cues were not in time order; sorted them by start", stacklevel=2)

    for i in range(len(ordered) - 1):
        current, following = ordered[i], ordered[i + 1]
        overlap = current.end - following.start
        if overlap <= 0:
            continue
        if overlap > MAX_TRIM_OVERLAP or following.start <= current.start:
            raise ClipError(
                f"{where}: {_describe(i, current)} overlaps {_describe(i + 1, following)} "
                f"by {overlap:.3f} s (at most {MAX_TRIM_OVERLAP} s is repaired)"
            )
        warnings.warn(
            f"{where}: trimmed the end of {_describe(i, current)} by {overlap:.3f} s "
            "so it no longer overlaps the next cue",
            stacklevel=2,
        )
        ordered[i] = replace(current, end=following.start)

    if duration is None:
        return ordered
    for i, utt in enumerate(ordered):
        if utt.start >= duration or utt.end > duration + END_TOLERANCE:
            raise ClipError(
                f"{where}: {_describe(i, utt)} does not fit in the clip of {duration:.3f} s"
            )
        if utt.end > duration:
            ordered[i] = replace(utt, end=duration)
    return ordered


def write_srt(path: str | Path, utterances: Sequence[Utterance]) -> Path:
    """Write utterances as an SRT file (validated first, numbered from 1), atomically.

    SRT stores milliseconds, so times are rounded to the millisecond on the way out.
    """
    path = Path(path)
    cues = [
        srt.Subtitle(
            index=i + 1,
            start=timedelta(milliseconds=round(utt.start * 1000)),
            end=timedelta(milliseconds=round(utt.end * 1000)),
            content=utt.text,
        )
        for i, utt in enumerate(validate_utterances(utterances, duration=None, path=path))
    ]
    with atomic_path(path) as tmp:
        tmp.write_text(srt.compose(cues, reindex=False), encoding="utf-8")
    return path
