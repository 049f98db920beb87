"""The `Clip`: one dialogue video as arrays, plus `load_clip` that builds it from files.

MicroEmo reads three streams of one clip at once: the frames (global and local visual
branches), the speech (audio Q-Former) and the words with their times (the utterance-aware
video Q-Former).  Every later module takes a `Clip`, so the rest of the package never touches
a container format, a codec or a subtitle syntax.  This module holds:

* `ClipError`, the single error for bad clip input; its message always starts with the file
  it is about, so a failure in a batch of hundreds of clips says which one to look at;
* `Utterance`, one timed piece of speech (from subtitles, a voice-activity detector, or the
  sample generator);
* `Clip`, the record (frames ``(T, H, W, 3)`` uint8 RGB, in memory or decoded on demand from
  the file, mono float32 audio);
* `load_clip`, which finds the side files (``.srt``/``.vtt`` subtitles, ``.wav`` audio),
  decodes the audio, and the frames too unless asked to stream them
  (:class:`~microemo_ref.io.frames.VideoFrames`), and checks that the pieces agree;
* `atomic_path`, the write-then-rename helper shared by the writers of this package.

Reading and writing of the media themselves live in `microemo_ref.io.video` and
`microemo_ref.io.subtitles`; both import the types defined here, so `load_clip` imports
them only when called (that keeps the import graph free of cycles).
"""
from __future__ import annotations

import math
import os
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np

from microemo_ref.config import SAMPLE_RATE

#: Side-file suffixes tried, in this order, when ``subtitles="auto"``.
SUBTITLE_SUFFIXES: tuple[str, ...] = (".srt", ".vtt")


#: ``load_clip(stream="auto")`` keeps the decoded frames in memory up to this size (an 11-s
#: 384 x 384 sample takes 99 MiB; 12 s of 1080p, 1.9 GiB, streams).
STREAM_ABOVE_BYTES: int = 384 * 2**20


def _frames_within(frames, limit: int, listed: int = 0) -> np.ndarray | None:
    """The (t, frame) pairs of ``frames`` stacked as (T, H, W, 3), or None once they pass ``limit``
    bytes (whatever a container claims about its length).

    The frames are written into one array of the ``listed`` frames the container claims (grown
    if more decode), so the clip is held once, not once as a list and again as its stack."""
    out, n = None, 0
    for _, frame in frames:
        if (n + 1) * frame.nbytes > limit:
            return None
        if out is None:
            out = np.empty((max(listed, 1), *frame.shape), frame.dtype)
        elif n == len(out):  # more frames than listed: double the room
            out = np.concatenate([out, np.empty_like(out)])
        out[n] = frame
        n += 1
    return None if out is None else out[:n]  # a container that over-lists leaves a tail unused, within ``limit``


class ClipError(ValueError):
    """Bad clip input; the message names the file and says what is wrong with it."""


@dataclass(frozen=True)
class Utterance:
    """One timed piece of speech.

    Attributes
    ----------
    start, end : float
        Times in seconds from the start of the clip, ``end > start``.
    text : str
        The words; may be ``""`` for speech found by a voice-activity detector.
    source : str
        Where it came from: ``"subtitles"``, ``"vad"`` (voice activity, no words), ``"asr"``
        (voice activity, words from speech recognition) or ``"generated"``.
    """

    start: float
    end: float
    text: str
    source: str = "subtitles"

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.end - self.start


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`, renamed onto `path` only if the block succeeds.

    The temporary file lives in the same folder, so the final `os.replace` is a rename on one
    file system: readers see either the old file or the complete new one, never half of it.
    On any exception the temporary file is removed and `path` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.part")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@dataclass
class Clip:
    """A decoded clip: frames, audio and utterances on one clock (seconds from frame 0).

    Attributes
    ----------
    frames : np.ndarray or VideoFrames
        ``(T, H, W, 3)`` uint8 RGB: an array, or a :class:`~microemo_ref.io.frames.VideoFrames`
        that decodes them from the file when read (``load_clip(..., stream=True)``).
    fps : float
        Frames per second; frame ``t`` is shown at ``t / fps`` seconds.
    audio : np.ndarray or None
        ``(S,)`` float32 mono in ``[-1, 1]`` at `sample_rate`, or None when the clip is silent.
    utterances : list of Utterance
        Sorted by start time, inside ``[0, duration]``.
    path : Path or None
        The video file it was read from, None for clips built in memory.
    sample_rate : int
        Audio samples per second.
    """

    frames: np.ndarray  # or VideoFrames (same shape, dtype and indexing; decoded on demand)
    fps: float
    audio: np.ndarray | None
    utterances: list[Utterance]
    path: Path | None = None
    sample_rate: int = SAMPLE_RATE

    def __post_init__(self) -> None:
        where = self.path if self.path is not None else "<in-memory clip>"
        from microemo_ref.io.frames import VideoFrames  # here: frames imports video, which imports this module

        frames = self.frames
        if not isinstance(frames, VideoFrames) and (not isinstance(frames, np.ndarray) or frames.dtype != np.uint8):
            raise ClipError(f"{where}: frames must be a uint8 numpy array")
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] == 0:
            raise ClipError(f"{where}: frames must have shape (T>0, H, W, 3), got {frames.shape}")
        if not (math.isfinite(self.fps) and self.fps > 0):
            raise ClipError(f"{where}: fps must be a positive number, got {self.fps}")
        if self.audio is not None:
            self.audio = np.asarray(self.audio, dtype=np.float32)
            if self.audio.ndim != 1:
                raise ClipError(f"{where}: audio must be mono (S,), got {self.audio.shape}")

    @property
    def n_frames(self) -> int:
        """Number of frames ``T``."""
        return int(self.frames.shape[0])

    @property
    def duration(self) -> float:
        """Length in seconds, ``n_frames / fps`` (the video clock is the reference)."""
        return self.n_frames / self.fps

    @property
    def timestamps(self) -> np.ndarray:
        """``(T,)`` display time of each frame in seconds, ``arange(T) / fps``."""
        return np.arange(self.n_frames) / self.fps

    @property
    def size(self) -> tuple[int, int]:
        """Frame size ``(H, W)`` in pixels."""
        return int(self.frames.shape[1]), int(self.frames.shape[2])


def load_clip(
    path: str | Path,
    *,
    subtitles: str | Path | None | Literal["auto"] = "auto",
    audio: str | Path | None | Literal["auto"] = "auto",
    max_frames: int | None = None,
    stream: bool | Literal["auto"] = False,
) -> Clip:
    """Read a video file and its side files into a `Clip`.

    Parameters
    ----------
    path
        The video (any container FFmpeg reads; ``.mp4`` is what this package writes).
    subtitles
        ``"auto"``: a side file with the same stem and suffix ``.srt`` or ``.vtt`` if one
        exists (``.srt`` first), else no utterances.  A path: that file.  None: no utterances.
    audio
        ``"auto"``: the video's own audio track, else a side ``.wav`` with the same stem, else
        None with a warning.  A path: that file (a ``.wav`` or any media file).  None: silent.
    max_frames
        Keep only the first `max_frames` frames; audio and utterances are cut to match.
    stream
        Leave the frames in the file: ``clip.frames`` is a
        :class:`~microemo_ref.io.frames.VideoFrames`, decoded pass by pass when read, so memory
        does not grow with the clip's length. False: they are decoded into one array (short
        clips, notebooks). ``"auto"`` (what the command line and the pipeline use): one array
        when it would take at most :data:`STREAM_ABOVE_BYTES`, so that a short clip is decoded
        once and not once per pass, else streamed.

    Returns
    -------
    Clip
        With audio at 16 kHz mono float32 and validated, time-sorted utterances.

    Raises
    ------
    ClipError
        For a missing, unreadable or empty video, an implausible frame rate, or subtitles that
        do not fit the clip; the message names the offending file.
    """
    # Imported here: video and subtitles import ClipError and Utterance from this module.
    from microemo_ref.io.frames import VideoFrames
    from microemo_ref.io.subtitles import load_subtitles, validate_utterances
    from microemo_ref.io.video import iter_frames, probe_video, read_audio

    if max_frames is not None and max_frames < 1:
        raise ValueError(f"max_frames must be >= 1, got {max_frames}")
    path = Path(path)
    info = probe_video(path)
    listed = min(info.n_frames, max_frames or info.n_frames)  # what the container says
    if stream == "auto":  # hold the frames unless they are, or turn out to be, too many
        too_many = listed * info.height * info.width * 3 > STREAM_ABOVE_BYTES
        frames = None if too_many else _frames_within(iter_frames(path, stop=max_frames, info=info),
                                                      STREAM_ABOVE_BYTES, listed)
        stream = frames is None
    elif not stream:
        frames = np.stack([frame for _, frame in iter_frames(path, stop=max_frames, info=info)])
    if stream:
        frames = VideoFrames(path, info, stop=max_frames)
    duration = frames.shape[0] / info.fps
    if not stream and frames.shape[0] < listed:
        message = f"the container lists {info.n_frames} frames, only {frames.shape[0]} decode"
        warnings.warn(f"{path}: {message}; using those", stacklevel=2)

    wave = _load_audio(path, audio, info.has_audio, read_audio)
    if wave is not None and max_frames is not None:
        wave = wave[: round(duration * SAMPLE_RATE)]

    utterances: list[Utterance] = []
    sub_path = find_subtitles(path, subtitles)
    if sub_path is not None:
        # Validate against the whole video, then crop to the frames actually kept.
        full = validate_utterances(load_subtitles(sub_path), duration=info.duration, path=sub_path)
        utterances = [
            replace(u, end=min(u.end, duration)) for u in full if u.start < duration
        ]
    return Clip(frames=frames, fps=info.fps, audio=wave, utterances=utterances, path=path)


def find_subtitles(video: Path, subtitles: str | Path | None) -> Path | None:
    """Resolve the `subtitles` argument of `load_clip` to a file, or None."""
    if subtitles is None:
        return None
    if subtitles != "auto":
        return Path(subtitles)
    for suffix in SUBTITLE_SUFFIXES:
        candidate = video.with_suffix(suffix)
        if candidate.is_file():
            return candidate
    return None


def _load_audio(
    video: Path,
    audio: str | Path | None,
    has_track: bool,
    read_audio: Callable[[Path], np.ndarray | None],
) -> np.ndarray | None:
    """Resolve the `audio` argument of `load_clip` and decode it (16 kHz mono float32)."""
    if audio is None:
        return None
    if audio != "auto":
        wave = read_audio(Path(audio))
        if wave is None:
            raise ClipError(f"{audio}: no audio stream in this file")
        return wave
    if has_track:
        return read_audio(video)
    side = video.with_suffix(".wav")
    if side.is_file():
        return read_audio(side)
    warnings.warn(
        f"{video}: no audio track and no side file {side.name}; audio is None", stacklevel=3
    )
    return None
