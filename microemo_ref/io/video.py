"""Reading and writing video and audio with PyAV (the FFmpeg libraries, no ``ffmpeg`` binary).

Why PyAV: it decodes every container FFmpeg knows, gives frames as numpy arrays, and encodes
H.264 + AAC, so the same library reads licensed MER clips and writes the generated samples.

Reading
    `probe_video` checks a file and returns its `VideoInfo`; `iter_frames` streams RGB frames
    one at a time (a long clip never sits in memory whole); `read_audio` decodes an audio
    track, averages the channels to mono and resamples to 16 kHz with soxr.

Frames as they are shown
    Phones store a portrait video as landscape pixels with a display matrix (the old
    ``rotate`` tag) saying how to turn them, and a front camera's clip may be stored mirrored
    with a matrix that mirrors it back; `iter_frames` shows every frame as the matrix says, as
    players do. Variable-frame-rate files (phones, screen recorders, editors) show frame
    ``k`` at its own presentation time, not at ``k / fps``; the whole package counts time as
    ``index / fps``, so `iter_frames` resamples such a file to a constant rate: frames evenly
    spaced from the first presentation time to the last, each the decoded frame nearest in
    time (`VideoInfo.variable_rate` says it did). The grid's rate is the median of the file's
    own rates, so where the file runs at its usual rate every frame is kept; where it slows,
    frames repeat.

Frame count policy
    MP4/MOV store an exact sample table, so ``stream.frames`` is trusted when it is positive and
    agrees (within one frame) with the stream duration times the frame rate.  Otherwise (e.g.
    Matroska, which stores no count) the frames are counted by decoding the whole stream.

Writing
    `write_video` encodes H.264 (libx264, yuv420p, constant quality `crf`, preset ``medium``)
    and, optionally, AAC mono audio into an ``.mp4``.  The encoder runs single-threaded; on an
    idle machine the same input gives the same bytes, but under load one write in a few differs
    slightly, so what is promised (and tested) is that it decodes to the same content within a
    few grey levels.  The file is written beside the target and renamed on success
    (`atomic_path`), so a failure leaves nothing behind.

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
    width: int  # as shown, after the display rotation
    height: int
    duration: float
    has_audio: bool
    rotation: int = 0  # degrees counter-clockwise that turn the stored pixels upright (0, 90, 180, 270)
    mirrored: bool = False  # the display matrix also mirrors them (left-right, before the rotation)
    variable_rate: bool = False  # frames resampled to a constant rate (see the module docstring)
    start_time: float = 0.0  # presentation time of the first frame, seconds


#: Frame intervals that differ from their median by more than this fraction mark a variable rate
#: (containers with a millisecond time base round 29.97 fps to 33/34 ms, a 3 % wobble).
VFR_TOLERANCE: float = 0.2
#: Containers that hold a single still image (a photo renamed .mp4 opens as one of these).
IMAGE_FORMATS: tuple[str, ...] = ("image2", "png_pipe", "jpeg_pipe", "bmp_pipe", "webp_pipe", "gif", "tiff_pipe")


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


def _presentation_times(container: av.container.InputContainer, stream: av.VideoStream) -> np.ndarray:
    """Sorted presentation times (s) of the stream's packets, read without decoding."""
    times = [float(p.pts * p.time_base) for p in container.demux(stream) if p.pts is not None and p.size]
    return np.sort(np.asarray(times, dtype=np.float64))


def is_variable_rate(times: np.ndarray) -> bool:
    """Whether frame intervals vary by more than :data:`VFR_TOLERANCE` of their median."""
    if len(times) < 3:
        return False
    steps = np.diff(times)
    median = float(np.median(steps))
    return median > 0 and float(np.max(np.abs(steps - median))) > VFR_TOLERANCE * median


def probe_video(path: str | Path) -> VideoInfo:
    """Check that `path` is a decodable video and return its `VideoInfo`.

    The first frame is always decoded, so a file whose header is fine but whose data is
    missing (a truncated download) is caught here rather than halfway through a clip; it also
    gives the display rotation. The packets' presentation times are read (no decoding) to tell a
    variable frame rate; then ``fps`` is the median rate (see the module docstring).
    """
    path = Path(path)
    with _open_input(path) as container:
        if container.format.name in IMAGE_FORMATS:
            raise ClipError(f"{path}: a still image ({container.format.name}), not a video")
        stream = _video_stream(container, path)
        fps = _stream_fps(stream, path)
        first = next(container.decode(stream), None)
        if first is None:
            raise ClipError(f"{path}: the video stream has zero frames")
        rotation, mirrored = display_orientation(first)
        width, height = stream.codec_context.width, stream.codec_context.height
        has_audio, n_frames = bool(container.streams.audio), _metadata_frame_count(stream, fps)
    with _open_input(path) as container:
        times = _presentation_times(container, _video_stream(container, path))
    variable = is_variable_rate(times)
    if variable:  # the grid runs at the median rate, so no stretch at the usual rate loses frames
        step = float(np.median(np.diff(times)))
        fps = check_fps(float(Fraction(1 / step).limit_denominator(1001)), path)
        n_frames = round((times[-1] - times[0]) / step) + 1
    elif n_frames is None:
        with _open_input(path) as container:
            n_frames = sum(1 for _ in container.decode(_video_stream(container, path)))
    if rotation in (90, 270):
        width, height = height, width
    return VideoInfo(path=path, fps=fps, n_frames=n_frames, width=width, height=height, duration=n_frames / fps,
                     has_audio=has_audio, rotation=rotation, mirrored=mirrored, variable_rate=variable,
                     start_time=float(times[0]) if len(times) else 0.0)


#: A quarter turn counter-clockwise, and a left-right mirror, as maps of pixel coordinates
#: (x right, y down): a pixel at (x, y) is shown at M @ (x, y) (translation left out).
_QUARTER = np.array([[0, 1], [-1, 0]])
_MIRROR = np.array([[-1, 0], [0, 1]])


def display_orientation(frame: av.VideoFrame) -> tuple[int, bool]:
    """(rotation, mirrored) of a decoded frame's display matrix: the frame is shown mirrored
    left-right if ``mirrored``, then turned ``rotation`` degrees counter-clockwise.

    FFmpeg's matrix (``libavutil/display.h``) maps a stored pixel (p, q) to the shown one
    (a p + c q + x, b p + d q + y) over its common denominator; for the axis-aligned matrices
    that phones and editors write, [[a, c], [b, d]] is one of the eight quarter turns, each
    mirrored or not, which are tried in turn. Any other angle is rounded to the nearest
    quarter turn; FFmpeg's own command line rotates by the exact angle.
    """
    nearest = round((frame.rotation or 0) / 90) * 90 % 360
    matrix = next((np.frombuffer(bytes(d), np.int32) for d in frame.side_data
                   if d.type == av.sidedata.sidedata.Type.DISPLAYMATRIX), None)
    if matrix is None:
        return nearest, False
    shown = np.array([[matrix[0], matrix[3]], [matrix[1], matrix[4]]], float) / 65536.0
    for mirrored in (False, True):
        for k in range(4):
            if np.allclose(np.linalg.matrix_power(_QUARTER, k) @ (_MIRROR if mirrored else np.eye(2)), shown,
                           atol=1e-3):
                return 90 * k, mirrored
    return nearest, bool(np.linalg.det(shown) < 0)


def upright(pixels: np.ndarray, rotation: int, mirrored: bool = False) -> np.ndarray:
    """``pixels`` as shown: mirrored left-right if ``mirrored``, then turned ``rotation`` degrees
    counter-clockwise (a multiple of 90)."""
    k = rotation // 90 % 4
    if mirrored:
        pixels = pixels[:, ::-1]
    return np.ascontiguousarray(np.rot90(pixels, k)) if k or mirrored else pixels


def _on_grid(container, stream, info: VideoInfo) -> Iterator[av.VideoFrame]:
    """The decoded frames in display order; for a variable-rate file, on the constant-rate grid
    (each grid time takes the frame nearest to it, so frames repeat or drop). Not converted
    to arrays: the caller converts only the frames it keeps."""
    if not info.variable_rate:
        yield from container.decode(stream)
        return
    grid = info.start_time + np.arange(info.n_frames) / info.fps  # (n_frames,) seconds
    i, previous, t_prev = 0, None, info.start_time
    for frame in container.decode(stream):
        t = float(frame.time) if frame.time is not None else t_prev + 1 / info.fps
        if previous is not None:
            while i < len(grid) and grid[i] < (t_prev + t) / 2:  # nearer the previous frame
                yield previous
                i += 1
        previous, t_prev = frame, t
    while previous is not None and i < len(grid):
        yield previous
        i += 1


def decoded_frames(path: str | Path, *, stop: int | None = None,
                   info: VideoInfo | None = None) -> Iterator[tuple[int, av.VideoFrame]]:
    """``(index, frame)`` for every frame below ``stop``, decoded but not converted (see
    :func:`pixels`): a pass that keeps few frames converts only those."""
    path = Path(path)
    info = info or probe_video(path)
    with _open_input(path) as container:
        stream = _video_stream(container, path)
        for index, frame in enumerate(_on_grid(container, stream, info)):
            if stop is not None and index >= stop:
                break
            yield index, frame


def pixels(frame: av.VideoFrame, info: VideoInfo, grey: bool = False) -> np.ndarray:
    """A decoded frame as ``(H, W, 3)`` uint8 RGB (``(H, W)`` luma with ``grey``), upright."""
    return upright(frame.to_ndarray(format="gray" if grey else "rgb24"), info.rotation, info.mirrored)


def iter_frames(
    path: str | Path, *, start: int = 0, stop: int | None = None, step: int = 1, grey: bool = False,
    info: VideoInfo | None = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(index, frame)`` for frames ``start, start + step, ...`` below `stop`.

    Frames are ``(H, W, 3)`` uint8 RGB (or ``(H, W)`` luma with ``grey=True``, which skips the
    colour conversion), upright, decoded one at a time; only the current frame is held.
    Indices count frames in display order from 0, and frame ``index`` is shown at
    ``index / fps`` after the first (a variable-rate file is resampled, see the module
    docstring). Decoding always begins at frame 0 (exact, no keyframe seeking), so reaching
    frame ``start`` costs ``start`` decodes; the frames skipped are not converted. ``info``:
    the file's `probe_video`, if known.
    """
    if start < 0 or step < 1 or (stop is not None and stop < start):
        raise ValueError(f"need 0 <= start <= stop and step >= 1, got {start=}, {stop=}, {step=}")
    info = info or probe_video(path)
    for index, frame in decoded_frames(path, stop=stop, info=info):
        if index >= start and (index - start) % step == 0:
            yield index, pixels(frame, info, grey)


def audio_seconds(path: str | Path) -> float | None:
    """Length of the first audio stream of `path` from its metadata (nothing decoded); None
    without an audio stream, or when the container does not say."""
    path = Path(path)
    with _open_input(path) as container:
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        if stream.duration is not None and stream.time_base is not None:
            return float(stream.duration * stream.time_base)
        return float(container.duration) / av.time_base if container.duration else None


def read_audio(path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray | None:
    """Decode the first audio stream of `path` (a video or a ``.wav``) to mono float32.

    Channels are averaged, the signal is resampled to `sample_rate` with soxr and clipped to
    ``[-1, 1]``.  Returns None when the file has no audio stream.  AAC decoders emit whole
    1024-sample frames, so the decoded signal is cut to the duration the container declares.
    Each decoded block is averaged to mono as it comes, into one array of the declared length
    where the container gives one, so memory holds the mono signal once rather than every
    channel's blocks and their concatenation (on the 600-s benchmark loop: 117 MB of peak growth
    instead of 156 MB).
    """
    path = Path(path)
    with _open_input(path) as container:
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        to_planar_float = av.AudioResampler(format="fltp")  # keeps layout and rate
        in_rate = stream.rate
        declared = None
        if stream.duration is not None and stream.time_base is not None:
            declared = round(float(stream.duration * stream.time_base) * in_rate)
        blocks = (block.to_ndarray() for frame in itertools.chain(container.decode(stream), [None])
                  for block in to_planar_float.resample(frame))  # (channels, n) float32; None flushes
        signal = _mono(blocks, declared)
    if signal.size == 0:
        return np.zeros(0, dtype=np.float32)
    if in_rate != sample_rate:
        signal = soxr.resample(signal, in_rate, sample_rate)
    return np.clip(signal, -1.0, 1.0).astype(np.float32)


def _mono(blocks: Iterable[np.ndarray], length: int | None) -> np.ndarray:
    """(channels, n) blocks averaged over channels and joined, cut to ``length`` samples if given
    (filled in place then, without a list of blocks)."""
    if length is None:
        return np.concatenate([b.mean(axis=0) for b in blocks] or [np.zeros(0, np.float32)])
    out, filled = np.empty(length, np.float32), 0
    for b in blocks:
        m = b.mean(axis=0)[: length - filled]
        out[filled:filled + len(m)] = m
        filled += len(m)
    return out[:filled]


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
    preset: str = "medium",
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
    preset
        x264 speed preset; ``"ultrafast"`` writes long test videos several times faster, in
        larger files.

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
        video.options = {"crf": str(crf), "preset": preset, "threads": "1"}
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
