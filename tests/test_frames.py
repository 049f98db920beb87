"""Streamed frames (io.frames.VideoFrames): the same frames as the in-memory clip, read pass by
pass, and the same evidence from them."""
from __future__ import annotations

import subprocess
import sys
import warnings
from dataclasses import replace

import numpy as np
import pytest
import torch

from microemo_ref.config import DATA_SAMPLES
from microemo_ref.face.local_branch import extract_local_frames
from microemo_ref.io.clip import load_clip
from microemo_ref.io.frames import VideoFrames
from microemo_ref.model.frame_encoder import frames_to_tensor
from microemo_ref.pipeline.evidence import encoder_inputs, gather_evidence, sampled_images

VIDEO = DATA_SAMPLES / "concealed_astronaut_s0002.mp4"


@pytest.fixture(scope="module")
def both():
    return load_clip(VIDEO, max_frames=40), load_clip(VIDEO, max_frames=40, stream=True)


def test_streamed_frames_look_like_the_array(both) -> None:
    memory, streamed = both
    frames = streamed.frames
    assert isinstance(frames, VideoFrames) and not isinstance(memory.frames, VideoFrames)
    assert frames.shape == memory.frames.shape and len(frames) == 40 and frames.dtype == np.uint8
    assert streamed.duration == memory.duration and streamed.size == memory.size
    assert np.array_equal(np.asarray(frames), memory.frames)
    assert np.array_equal(frames[7], memory.frames[7]) and np.array_equal(frames[-1], memory.frames[-1])
    assert np.array_equal(frames[3:9:2], memory.frames[3:9:2])
    assert np.array_equal(frames[[30, 2, 2]], memory.frames[[30, 2, 2]])  # any order, repeats kept
    assert frames[[]].shape == (0, *memory.frames.shape[1:])
    with pytest.raises(IndexError):
        frames[40]
    small = frames.resized(np.array([0, 39]), lambda f: f[::4, ::4].copy())
    assert [s.shape for s in small] == [(96, 96, 3)] * 2 and np.array_equal(small[1], memory.frames[39, ::4, ::4])


def test_a_pass_that_decodes_short_repeats_the_last_frame_and_warns(both) -> None:
    memory, streamed = both
    listed = replace(streamed.frames.info, n_frames=streamed.frames.info.n_frames + 3)
    frames = VideoFrames(VIDEO, listed)
    with pytest.warns(UserWarning, match="only .* decode; the last one is repeated"):
        tail = frames[-4:]
    full = np.asarray(load_clip(VIDEO).frames[-1])
    assert all(np.array_equal(f, full) for f in tail)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once per VideoFrames
        assert len(list(frames)) == listed.n_frames


def test_sampled_images_are_the_same_either_way(both) -> None:
    memory, streamed = both
    index = np.array([0, 5, 17, 39])
    torch.testing.assert_close(sampled_images(streamed.frames, index, 112), frames_to_tensor(memory.frames[index], 112),
                               atol=0, rtol=0)


def test_evidence_of_a_streamed_clip_is_that_of_the_decoded_one(both) -> None:
    memory, streamed = both
    a, b = gather_evidence(memory), gather_evidence(streamed)
    assert a.notes == b.notes and np.array_equal(a.frame_index, b.frame_index)
    np.testing.assert_array_equal(a.local.track.landmarks, b.local.track.landmarks)
    for region, signal in a.local.signals.items():
        np.testing.assert_array_equal(signal.magnitude, b.local.signals[region].magnitude)
    xa, xb = encoder_inputs(a), encoder_inputs(b)
    torch.testing.assert_close(xa.images, xb.images, atol=0, rtol=0)
    torch.testing.assert_close(xa.dynamics, xb.dynamics, atol=0, rtol=0)
    direct = extract_local_frames(streamed.frames, streamed.fps)
    assert [e.to_json(25) for e in direct.events] == [e.to_json(25) for e in extract_local_frames(memory.frames, 25).events]


def test_auto_holds_a_short_clip_and_streams_a_long_one(monkeypatch, both) -> None:
    import microemo_ref.io.clip as clip_module

    memory, _ = both
    held = load_clip(VIDEO, max_frames=40, stream="auto")
    assert not isinstance(held.frames, VideoFrames) and np.array_equal(held.frames, memory.frames)
    monkeypatch.setattr(clip_module, "STREAM_ABOVE_BYTES", 45 * memory.frames[0].nbytes)
    assert not isinstance(load_clip(VIDEO, max_frames=40, stream="auto").frames, VideoFrames)
    assert isinstance(load_clip(VIDEO, stream="auto").frames, VideoFrames)  # the container lists 235
    frame = memory.frames[0]
    endless = ((t, frame) for t in range(10**9))  # a container that claims fewer frames than it has
    assert clip_module._frames_within(endless, 45 * frame.nbytes) is None


def test_frames_within_holds_the_stack_whatever_the_container_lists(both) -> None:
    import microemo_ref.io.clip as clip_module

    memory, _ = both
    frames = memory.frames[:30]
    for listed in (0, 7, 30, 50):  # unknown, under-listed (the room doubles), exact, over-listed
        got = clip_module._frames_within(enumerate(frames), 10**9, listed)
        np.testing.assert_array_equal(got, frames)
    assert clip_module._frames_within(enumerate(frames), 29 * frames[0].nbytes, 30) is None  # one past the limit
    assert clip_module._frames_within(iter(()), 10**9, 5) is None


def test_sampled_images_in_chunks_are_the_images_at_once(both) -> None:
    memory, _ = both
    index = np.arange(0, 40, 2)  # 20 frames: more than one chunk
    torch.testing.assert_close(sampled_images(memory.frames, index, 112), frames_to_tensor(memory.frames[index], 112),
                               atol=0, rtol=0)


_HEAP_PATTERN = r"""
import sys
import numpy as np
from microemo_ref.io.frames import bound_heap

def rss_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024

if sys.argv[1] == "bound" and not bound_heap():
    print("unsupported")
    raise SystemExit
base = rss_mb()
kept = []
for i in range(300):  # a streamed pass over 1080p frames, as the frame encoder's sampling makes it
    frame = np.ones((1080, 1920, 3), np.uint8)  # one decoded frame, freed at once
    if i % 15 == 0:
        as_float = frame.astype(np.float32)  # its float copy before resizing, freed
        kept.append(np.ones(150_000 // 4, np.float32))  # the small resized image, kept
        del as_float
    del frame
print(rss_mb() - base)
"""


def test_bound_heap_gives_freed_frames_back() -> None:
    """The pattern of a streamed pass (a big float copy freed, then 6-MB frames freed between
    small kept arrays) leaves tens of MB held by glibc's heap; with bound_heap it leaves none."""
    def held(mode: str) -> str:
        return subprocess.run([sys.executable, "-c", _HEAP_PATTERN, mode], capture_output=True, text=True,
                              check=True).stdout.strip()

    bound = held("bound")
    if bound == "unsupported":
        pytest.skip("not glibc on Linux")
    free = float(held("free"))
    assert float(bound) < 10.0
    assert free > float(bound) + 15.0  # the effect the mend is for, shown on this machine
