"""Reading and writing video and audio with PyAV (the FFmpeg libraries, no ``ffmpeg`` binary).

Why PyAV: it decodes every container FFmpeg knows, gives frames as numpy arrays, and encodes
H.264 + AAC, so the same library reads licensed MER clips and writes the generated samples.

Reading
    `probe_video` checks a file and returns its `VideoInfo`; `iter_frames` streams RGB frames
    one at a time (a long clip never sits in memory whole); `read_audio` decodes an audio
    track, averages the channels to mono and resamples to 16 kHz with soxr.

Frame count policy
    MP4/MOV store an exact sample table, so ``stream.frames`` is trusted when it is positive and
    agrees (within one frame) with the stream duration times the frame rate.  Otherwise (e.g.
    Matroska, which stores no count) the frames are counted by decoding the whole stream.

Writing
    `write_video` encodes H.264 (libx264, yuv420p, constant quality `crf`, preset ``medium``)
    and, optionally, AAC mono audio into an ``.mp4``.  The encoder runs single-threaded, which
    makes the output byte-identical for identical input (checked in tests/test_io.py; the
    container only records the libavformat version, not a date).  The file is written beside
    the target and renamed on success (`atomic_path`), so a failure leaves nothing behind.

Every failure on bad input raises `ClipError` with the path in the message.
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import soxr

from microemo_ref.config import SAMPLE_RATE
from microemo_ref.io.clip import ClipError, atomic_path

#: Frame rates outside ``(0, MAX_FPS]`` are treated as corrupt metadata.
MAX_FPS: float = 240.0


@dataclass(frozen=True)
class VideoInfo:
    """What `probe_video` learns about a video file (duration is ``n_frames / fps``)."""

    path: Path
    fps: float
    n_frames: int
    width: int
    height: int
    duration: float
    has_audio: bool


def check_fps(fps: float, path: str | Path) -> float:
    """Return `fps` as a float, or raise `ClipError` if it is NaN, ``<= 0`` or above `MAX_FPS`."""
    fps = float(fps)
    if not (math.isfinite(fps) and 0 < fps <= MAX_FPS):
        raise ClipError(f"{path}: implausible frame rate {fps} (expected 0 < fps <= {MAX_FPS:g})")
    return fps


@contextmanager
def _open_input(path: str | Path) -> Iterator[av.container.InputContainer]:
    """Open a media file for reading; turn every FFmpeg error into a `ClipError`."""
    path = Path(path)
    if not path.exists():
        raise ClipError(f"{path}: file not found")
    if not path.is_file():
        raise ClipError(f"{path}: not a regular file")
    try:
        container = av.open(str(path))
    except av.error.FFmpegError as err:
        raise ClipError(f"{path}: not a readable media file ({err})") from err
    try:
        yield container
    except av.error.FFmpegError as err:
        problem = "decoding failed, the file is corrupt or truncated"
        raise ClipError(f"{path}: {problem} ({err})") from err
    finally:
        container.close()


def _video_stream(container: av.container.InputContainer, path: Path) -> av.VideoStream:
    if not container.streams.video:
        raise ClipError(f"{path}: no video stream (zero frames)")
    return container.streams.video[0]


def _stream_fps(stream: av.VideoStream, path: Path) -> float:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    if rate is None:
        raise ClipError(f"{path}: the video stream has no frame rate")
    return check_fps(rate, path)


def _metadata_frame_count(stream: av.VideoStream, fps: float) -> int | None:
    """The container's frame count if it is present and consistent, else None."""
    if stream.frames <= 0 or stream.duration is None or stream.time_base is None:
        return None
    seconds = float(stream.duration * stream.time_base)
    return stream.frames if abs(stream.frames - seconds * fps) <= 1 else None


def probe_video(path: str | Path) -> VideoInfo:
    """Check that `path` is a decodable video and return its `VideoInfo`.

    The first frame is always decoded, so a file whose header is fine but whose data is
    missing (a truncated download) is caught here rather than halfway through a clip.
    """
    path = Path(path)
    with _open_input(path) as container:
        stream = _video_stream(container, path)
        fps = _stream_fps(stream, path)
        n_frames = _metadata_frame_count(stream, fps)
        if n_frames is None:
            n_frames = sum(1 for _ in container.decode(stream))
        elif next(container.decode(stream), None) is None:
            n_frames = 0
        if n_frames == 0:
            raise ClipError(f"{path}: the video stream has zero frames")
        return VideoInfo(
            path=path,
            fps=fps,
            n_frames=n_frames,
            width=stream.codec_context.width,
            height=stream.codec_context.height,
            duration=n_frames / fps,
            has_audio=bool(container.streams.audio),
        )


def iter_frames(
    path: str | Path, *, start: int = 0, stop: int | None = None, step: int = 1, grey: bool = False
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(index, frame)`` for frames ``start, start + step, ...`` below `stop`.

    Frames are ``(H, W, 3)`` uint8 RGB (or ``(H, W)`` luma with ``grey=True``, which skips the
    colour conversion), decoded one at a time; only the current frame is held.
    Indices count frames in display order from 0 (for variable-frame-rate files, ``index / fps``
    is then only approximately the display time).  Decoding always begins at frame 0 (exact,
    no keyframe seeking), so reaching frame ``start`` costs ``start`` decodes.
    """
    if start < 0 or step < 1 or (stop is not None and stop < start):
        raise ValueError(f"need 0 <= start <= stop and step >= 1, got {start=}, {stop=}, {step=}")
    path = Path(path)
    with _open_input(path) as container:
        stream = _video_stream(container, path)
        _stream_fps(stream, path)  # refuse what probe_video refuses
        for index, frame in enumerate(container.decode(stream)):
            if stop is not None and index >= stop:
                break
            if index >= start and (index - start) % step == 0:
                yield index, frame.to_ndarray(format="gray" if grey else "rgb24")


def read_audio(path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray | None:
    """Decode the first audio stream of `path` (a video or a ``.wav``) to mono float32.

    Channels are averaged, the signal is resampled to `sample_rate` with soxr and clipped to
    ``[-1, 1]``.  Returns None when the file has no audio stream.  AAC decoders emit whole
    1024-sample frames, so the decoded signal is cut to the duration the container declares.
    """
    path = Path(path)
    with _open_input(path) as container:
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        to_planar_float = av.AudioResampler(format="fltp")  # keeps layout and rate
        chunks = []  # (channels, n) float32 blocks
        for frame in container.decode(stream):
            chunks += [block.to_ndarray() for block in to_planar_float.resample(frame)]
        chunks += [block.to_ndarray() for block in to_planar_float.resample(None)]
        in_rate = stream.rate
        if stream.duration is not None and stream.time_base is not None:
            declared = round(float(stream.duration * stream.time_base) * in_rate)
        else:
            declared = None
    if not chunks:
        return np.zeros(0, dtype=np.float32)
    mono = np.concatenate(chunks, axis=1).mean(axis=0)[:declared]
    if in_rate != sample_rate:
        mono = soxr.resample(mono, in_rate, sample_rate)
    return np.clip(mono, -1.0, 1.0).astype(np.float32)


def _check_frame(frame: np.ndarray, shape: tuple[int, ...], index: int, path: Path) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.dtype != np.uint8 or frame.shape != shape:
        raise ClipError(
            f"{path}: frame {index} must be uint8 of shape {shape}, got {frame.dtype} {frame.shape}"
        )
    return np.ascontiguousarray(frame)


def write_video(
    path: str | Path,
    frames: Iterable[np.ndarray] | np.ndarray,
    fps: float,
    audio: np.ndarray | None = None,
    sample_rate: int = SAMPLE_RATE,
    *,
    crf: int = 20,
) -> Path:
    """Encode RGB frames (and optional mono audio) to an H.264/AAC ``.mp4`` file, atomically.

    Parameters
    ----------
    path
        Target file; must end in ``.mp4``.  Its folder is created if needed.
    frames
        ``(T, H, W, 3)`` uint8 array or any iterable of ``(H, W, 3)`` uint8 frames (a
        generator is consumed lazily).  ``H`` and ``W`` must be even (yuv420p halves chroma).
    fps
        Frames per second, ``0 < fps <= MAX_FPS``.
    audio
        ``(S,)`` float mono in ``[-1, 1]`` at `sample_rate`, or None for a silent video.
    crf
        x264 constant rate factor: 0 is lossless (in YUV), 18-23 visually good, 51 worst.

    Returns
    -------
    Path
        `path`, once the complete file is in place.
    """
    path = Path(path)
    if path.suffix.lower() != ".mp4":
        raise ClipError(f"{path}: write_video writes .mp4 files only")
    fps = check_fps(fps, path)
    if audio is not None:
        audio = np.asarray(audio, dtype=np.float32)
        if audio.ndim != 1 or not np.all(np.isfinite(audio)):
            raise ClipError(f"{path}: audio must be a finite mono (S,) array, got {audio.shape}")
        audio = np.clip(audio, -1.0, 1.0)
    frame_iter = iter(frames)
    first = next(frame_iter, None)
    if first is None:
        raise ClipError(f"{path}: no frames to write (zero frames)")
    first = np.asarray(first)
    if first.ndim != 3 or first.shape[-1] != 3:
        raise ClipError(f"{path}: frames must be (H, W, 3) RGB, got {first.shape}")
    height, width = first.shape[:2]
    if height % 2 or width % 2:
        raise ClipError(f"{path}: frame size {width}x{height} must be even for yuv420p H.264")

    rate = Fraction(fps).limit_denominator(1001)
    with atomic_path(path) as tmp, av.open(str(tmp), mode="w", format="mp4") as container:
        video = container.add_stream("libx264", rate=rate)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.options = {"crf": str(crf), "preset": "medium", "threads": "1"}
        sound = None
        if audio is not None:
            sound = container.add_stream("aac", rate=sample_rate)
            sound.layout = "mono"
        sent = 0  # audio samples encoded so far; audio is interleaved frame by frame
        for index, frame in enumerate(itertools.chain([first], frame_iter)):
            pixels = _check_frame(frame, first.shape, index, path)
            picture = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            picture.pts, picture.time_base = index, 1 / rate
            container.mux(video.encode(picture))
            if sound is not None:
                upto = min(len(audio), round((index + 1) / fps * sample_rate))
                sent = _encode_audio(container, sound, audio, sent, upto, sample_rate)
        container.mux(video.encode(None))
        if sound is not None:
            _encode_audio(container, sound, audio, sent, len(audio), sample_rate)
            container.mux(sound.encode(None))
    return path


def _encode_audio(
    container: av.container.OutputContainer,
    stream: av.AudioStream,
    audio: np.ndarray,
    begin: int,
    end: int,
    sample_rate: int,
) -> int:
    """Encode ``audio[begin:end]`` (PyAV re-chunks it into AAC frames); return `end`."""
    if end > begin:
        chunk = av.AudioFrame.from_ndarray(audio[None, begin:end], format="flt", layout="mono")
        chunk.sample_rate, chunk.pts = sample_rate, begin
        chunk.time_base = Fraction(1, sample_rate)
        container.mux(stream.encode(chunk))
    return max(begin, end)
