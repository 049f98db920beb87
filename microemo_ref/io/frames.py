"""A video file's frames as a lazy array: decoded when read, never all held at once.

A 10-minute 1080p clip is 15 000 frames of 6.2 MB, 93 GB as one uint8 array; even 3 minutes
at 384 px is 4 GB. The pipeline needs the frames only in passes (FaceMesh, optical flow and
the hand finder each read them in order, one at a time) and a few sampled ones for the frame
encoder, downscaled at once. `VideoFrames` gives it exactly that, with the look of the
``(T, H, W, 3)`` uint8 array that a `~microemo_ref.io.clip.Clip` holds for a short clip:

* ``len(frames)``, ``frames.shape``, ``frames.dtype``, ``frames.ndim``;
* ``for frame in frames``: one decoding pass, one frame in memory;
* ``frames[t]``, ``frames[a:b]``, ``frames[[t1, t2, ...]]``: one pass that keeps only those;
* :meth:`VideoFrames.resized`: the given frames, each resized as soon as it is decoded.

Every pass decodes from the first frame (exact, no keyframe seeking; see
:func:`~microemo_ref.io.video.iter_frames`). The length is the container's frame count
(`VideoInfo.n_frames`); a pass yields exactly that many frames: if the decoder gives out
early, the last decoded frame is repeated to the end (with a warning, once), so the frame
count, the time axis and every per-frame array of the pipeline agree.

One more thing keeps a streamed pass bounded: :func:`bound_heap`. glibc's ``malloc`` serves a
block of at least ``M_MMAP_THRESHOLD`` bytes with its own ``mmap`` and gives it back whole on
``free``, but it raises that threshold to the size of each such block freed (up to 32 MiB). After
the first 25-MB float copy of a 1080p frame is freed, every 6-MB decoded frame comes from the
heap instead, and the small arrays kept between them pin the heap's pages: on 60 s of 1080p,
the frame encoder's sampling pass left 774 MB held, 15 MB with the threshold fixed at 1 MiB, and
the ``emer`` command peaks at 1596 MB, 1430 MB with it (``benchmarks/memory.py``; docs/cli.md).
"""
from __future__ import annotations

import ctypes
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from microemo_ref.io.video import VideoInfo, decoded_frames, pixels, probe_video


class VideoFrames:
    """The frames of ``path`` (RGB uint8, upright, on the constant-rate grid), decoded on demand."""

    def __init__(self, path: str | Path, info: VideoInfo | None = None, stop: int | None = None) -> None:
        self.path = Path(path)
        self.info = info or probe_video(self.path)
        self._n = self.info.n_frames if stop is None else min(stop, self.info.n_frames)
        self._warned = False

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """``(T, H, W, 3)``, as the array would have."""
        return self._n, self.info.height, self.info.width, 3

    dtype = np.dtype(np.uint8)
    ndim = 4

    def __len__(self) -> int:
        return self._n

    def __repr__(self) -> str:
        return f"VideoFrames({str(self.path)!r}, shape={self.shape})"

    def __iter__(self) -> Iterator[np.ndarray]:
        return (frame for _, frame in self._pass(lambda t: True))

    def _pass(self, keep: Callable[[int], bool]) -> Iterator[tuple[int, np.ndarray]]:
        """(t, frame) for every t < len(self) with ``keep(t)``, in order, from one decoding pass."""
        last, t = None, -1
        for t, frame in decoded_frames(self.path, stop=self._n, info=self.info):
            last = frame  # converted only if kept: a sampling pass keeps a few frames in hundreds
            if keep(t):
                yield t, pixels(frame, self.info)
        if t + 1 < self._n and last is not None:
            if not self._warned:
                warnings.warn(f"{self.path}: the container lists {self._n} frames, only {t + 1} decode; "
                              "the last one is repeated to the end", stacklevel=3)
                self._warned = True
            repeated = None
            for t in range(t + 1, self._n):
                if keep(t):
                    repeated = pixels(last, self.info) if repeated is None else repeated
                    yield t, repeated

    def __getitem__(self, key) -> np.ndarray:
        picked = np.arange(self._n)[key]  # slices, ints, int arrays, negative numbers as numpy reads them
        if picked.size == 0:
            return np.zeros((0, *self.shape[1:]), np.uint8)
        out = np.stack(self.resized(np.atleast_1d(picked), lambda frame: frame))  # (N, H, W, 3)
        return out[0] if picked.ndim == 0 else out

    def resized(self, index: np.ndarray, resize: Callable[[np.ndarray], object]) -> list:
        """``[resize(frame_t) for t in index]``, each frame resized as soon as it is decoded
        (so only one full-size frame is ever held); a repeated index repeats the frame."""
        index = np.atleast_1d(np.arange(self._n)[index])
        wanted = set(index.tolist())
        got = {t: resize(frame) for t, frame in self._pass(wanted.__contains__)}
        return [got[int(t)] for t in index]

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        """All frames as one array (what a short clip is; a long one should not be)."""
        out = np.stack(list(self))
        return out if dtype is None else out.astype(dtype)


#: Blocks of at least this many bytes get their own mapping, returned to the system when freed.
HEAP_MMAP_BYTES: int = 1 << 20
_M_MMAP_THRESHOLD = -3  # mallopt's parameter number in glibc's malloc.h


def _glibc() -> ctypes.CDLL | None:
    """The C library where it is glibc on Linux (the only allocator these calls tune), else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


def bound_heap(threshold: int = HEAP_MMAP_BYTES) -> bool:
    """Fix glibc's mmap threshold at ``threshold`` bytes (which also stops it from rising), so
    that freed frames go back to the system (see the module docstring). True where it took
    effect; False off Linux or without glibc (other allocators do not raise a threshold)."""
    libc = _glibc()
    return libc is not None and bool(libc.mallopt(_M_MMAP_THRESHOLD, int(threshold)))


def trim_heap() -> bool:
    """Hand the heap's free pages back to the system now (glibc's ``malloc_trim``), after a large
    model or buffer is dropped; True where it ran, False off Linux or without glibc."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)  # its return says only whether pages were freed
    return libc is not None


__all__ = ["HEAP_MMAP_BYTES", "VideoFrames", "bound_heap", "trim_heap"]
