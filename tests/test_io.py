"""Tests of the clip I/O layer: video/audio round trips, subtitles policy, `load_clip`, bad input.

Every medium is synthesised in ``tmp_path`` (20 frames of 64x48, 0.8 s of audio), so the whole
file runs in a few seconds.  Thresholds were measured on this content and leave a margin:
PSNR of H.264 crf 20 is 33.5 dB (the yuv420p chroma subsampling alone caps it at 35.9 dB for
these saturated colours; a grey version reaches 43.6 dB), AAC audio correlates at 0.9994.
"""
from __future__ import annotations

import types
import warnings
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile

from microemo_ref.config import FPS, SAMPLE_RATE
from microemo_ref.io.clip import Clip, ClipError, Utterance, load_clip
from microemo_ref.io.subtitles import load_subtitles, validate_utterances, write_srt
from microemo_ref.io.video import iter_frames, probe_video, read_audio, write_video

T, H, W = 20, 48, 64
DURATION = T / FPS  # 0.8 s


def make_frames(n: int = T) -> np.ndarray:
    """Smoothly drifting colour waves, ``(n, H, W, 3)`` uint8."""
    yy, xx = np.mgrid[:H, :W]
    waves = [
        np.stack(
            [
                128 + 100 * np.sin(xx / 9 + t / 4),
                128 + 100 * np.cos(yy / 7 - t / 5),
                128 + 80 * np.sin((xx + yy) / 11 + t / 3),
            ],
            axis=-1,
        )
        for t in range(n)
    ]
    return np.stack(waves).astype(np.uint8)


def make_audio(seconds: float = DURATION, rate: int = SAMPLE_RATE) -> np.ndarray:
    """A linear chirp 200 -> 1160 Hz (no periodicity, so correlation means alignment)."""
    t = np.arange(round(seconds * rate)) / rate
    return (0.4 * np.sin(2 * np.pi * (200 * t + 600 * t**2))).astype(np.float32)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255**2 / mse))


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict:
    """One video with audio and one without, written once for the module."""
    folder = tmp_path_factory.mktemp("media")
    frames, audio = make_frames(), make_audio()
    return {
        "frames": frames,
        "audio": audio,
        "av": write_video(folder / "talk.mp4", frames, FPS, audio),
        "silent": write_video(folder / "mute.mp4", frames, FPS),
    }


def put(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def copy_to(src: Path, dst: Path) -> Path:
    return put(dst, src.read_bytes())


# ---------------------------------------------------------------- video round trip


def test_probe_after_write(media):
    info = probe_video(media["av"])
    assert (info.n_frames, info.fps, info.width, info.height) == (T, FPS, W, H)
    assert info.duration == pytest.approx(DURATION)
    assert info.has_audio and not probe_video(media["silent"]).has_audio


def test_decoded_frames_are_close(media):
    decoded = np.stack([frame for _, frame in iter_frames(media["av"])])
    assert decoded.shape == (T, H, W, 3) and decoded.dtype == np.uint8
    assert psnr(decoded, media["frames"]) > 31.0  # measured 33.5 dB
    assert min(psnr(d, f) for d, f in zip(decoded, media["frames"])) > 30.0


def test_audio_round_trip(media):
    audio = read_audio(media["av"])
    assert audio.dtype == np.float32 and audio.shape == media["audio"].shape
    assert np.corrcoef(audio, media["audio"])[0, 1] > 0.99  # measured 0.9994
    assert read_audio(media["silent"]) is None


def test_write_is_deterministic_in_what_it_decodes_to(tmp_path, media):
    """The same frames and audio, written three times (from a list, an iterator, and earlier in
    the module), decode to the same content. Neither the bytes nor the pixels are compared
    exactly: on a loaded machine one write in a few comes out different (measured: 1.8 grey
    levels on average, 18 at most, on these 64x48 frames; never on an idle machine), so the
    check is on what a reader gets back, within 3 grey levels on average (neighbouring frames differ
    by 15) and 1e-3 in the audio."""
    a = write_video(tmp_path / "a.mp4", media["frames"], FPS, media["audio"])
    b = write_video(tmp_path / "b.mp4", iter(media["frames"]), FPS, media["audio"])
    decoded = {p: np.stack([frame for _, frame in iter_frames(p)]).astype(np.int16) for p in (a, b, media["av"])}
    for p in (b, media["av"]):
        assert decoded[p].shape == decoded[a].shape
        assert np.abs(decoded[p] - decoded[a]).mean() < 3.0, p
        np.testing.assert_allclose(read_audio(p), read_audio(a), atol=1e-3)


def test_iter_frames_streams_a_slice(media):
    full = [frame for _, frame in iter_frames(media["silent"])]
    stream = iter_frames(media["silent"], start=3, stop=15, step=4)
    assert isinstance(stream, types.GeneratorType)
    picked = list(stream)
    assert [i for i, _ in picked] == [3, 7, 11]
    for i, frame in picked:
        np.testing.assert_array_equal(frame, full[i])
    first = next(iter_frames(media["silent"], start=T - 1))
    assert first[0] == T - 1
    with pytest.raises(ValueError):
        next(iter_frames(media["silent"], step=0))


def test_read_audio_from_stereo_wav(tmp_path):
    mono = make_audio(rate=44_100)
    path = tmp_path / "voice.wav"
    soundfile.write(path, np.stack([mono, mono], axis=1), 44_100)
    audio = read_audio(path)
    assert audio.dtype == np.float32 and audio.shape == (round(DURATION * SAMPLE_RATE),)
    assert np.corrcoef(audio, make_audio())[0, 1] > 0.999



def test_read_audio_averages_the_channels_of_each_block_as_one_signal(tmp_path):
    """Two different channels come out as their mean, whether or not the length is declared."""
    import soxr

    from microemo_ref.io.video import _mono

    left, right = make_audio(rate=44_100), 0.3 * np.sin(np.linspace(0, 900, round(DURATION * 44_100)))
    path = tmp_path / "two_voices.wav"
    soundfile.write(path, np.stack([left, right], axis=1).astype(np.float32), 44_100, subtype="FLOAT")
    expected = np.clip(soxr.resample(((left + right) / 2).astype(np.float32), 44_100, SAMPLE_RATE), -1, 1)
    np.testing.assert_allclose(read_audio(path), expected, atol=1e-6)

    blocks = [np.arange(6, dtype=np.float32).reshape(2, 3), np.ones((2, 4), np.float32)]
    unknown, declared = _mono(iter(blocks), None), _mono(iter(blocks), 5)   # 7 samples decoded, 5 declared
    np.testing.assert_array_equal(unknown, [1.5, 2.5, 3.5, 1, 1, 1, 1])
    np.testing.assert_array_equal(declared, [1.5, 2.5, 3.5, 1, 1])

# ---------------------------------------------------------------- subtitles

SRT_TEXT = """1
00:00:00,100 --> 00:00:00,400
I am fine,
really.

2
00:00:00,450 --> 00:00:00,780
Thanks.
"""
VTT_TEXT = """WEBVTT

00:00.100 --> 00:00.400
I am fine,
really.

00:00.450 --> 00:00.780
<v Ann>Thanks.</v>
"""
EXPECTED = [Utterance(0.1, 0.4, "I am fine, really."), Utterance(0.45, 0.78, "Thanks.")]


@pytest.mark.parametrize("suffix, text", [(".srt", SRT_TEXT), (".vtt", VTT_TEXT)])
def test_load_subtitles(tmp_path, suffix, text):
    path = tmp_path / f"cues{suffix}"
    path.write_text(text, encoding="utf-8")
    assert load_subtitles(path) == EXPECTED


def test_write_srt_round_trip(tmp_path):
    path = write_srt(tmp_path / "out.srt", EXPECTED)
    assert load_subtitles(path) == EXPECTED
    assert not list(tmp_path.glob(".*.part"))


def test_policy_sorts_and_trims_small_overlaps():
    cues = [Utterance(1.0, 2.0, "b"), Utterance(0.0, 1.1, "a")]
    with pytest.warns(UserWarning) as record:
        fixed = validate_utterances(cues, duration=None, path="x.srt")
    assert fixed == [Utterance(0.0, 1.0, "a"), Utterance(1.0, 2.0, "b")]
    messages = " ".join(str(w.message) for w in record)
    assert "sorted" in messages and "trimmed" in messages


def test_policy_clips_the_last_cue_to_the_clip():
    fixed = validate_utterances([Utterance(0.5, 1.3, "x")], duration=1.0, path="x.srt")
    assert fixed == [Utterance(0.5, 1.0, "x")]


@pytest.mark.parametrize(
    "cues, duration",
    [
        ([Utterance(0.0, 1.0, "a"), Utterance(0.5, 1.5, "b")], None),  # overlap 0.5 s
        ([Utterance(1.0, 1.0, "a")], None),  # end <= start
        ([Utterance(-0.5, 1.0, "a")], None),  # negative time
        ([Utterance(0.2, 0.5, "a"), Utterance(1.2, 1.5, "late")], 1.0),  # starts after end
        ([Utterance(0.2, 1.8, "long")], 1.0),  # ends too far after the end
    ],
)
def test_policy_refuses(cues, duration):
    with pytest.raises(ClipError, match=r"cues\.srt: cue \d"):
        validate_utterances(cues, duration=duration, path="cues.srt")


def test_empty_cues_are_dropped(tmp_path):
    path = tmp_path / "blank.srt"
    path.write_text(SRT_TEXT + "\n3\n00:00:00,790 --> 00:00:00,800\n\n\n", encoding="utf-8")
    with pytest.warns(UserWarning, match="empty text"):
        assert load_subtitles(path) == EXPECTED


@pytest.mark.parametrize(
    "name, text",
    [
        ("bad.srt", "1\n00:00:01,000 --> nonsense\nhello\n"),
        ("bad.vtt", "this is not WebVTT\n"),
        ("cue.vtt", "WEBVTT\n\n00:00.500 --> garbage\nhello\n"),
        ("bad.txt", "1\n00:00:01,000 --> 00:00:02,000\nhello\n"),
    ],
)
def test_malformed_subtitles(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ClipError, match=name):
        load_subtitles(path)


# ---------------------------------------------------------------- load_clip


def test_load_clip_with_side_srt(tmp_path, media):
    video = copy_to(media["av"], tmp_path / "talk.mp4")
    (tmp_path / "talk.srt").write_text(SRT_TEXT, encoding="utf-8")
    clip = load_clip(video)
    assert isinstance(clip, Clip) and clip.path == video
    assert (clip.n_frames, clip.size, clip.fps) == (T, (H, W), FPS)
    assert clip.duration == pytest.approx(DURATION)
    np.testing.assert_allclose(clip.timestamps, np.arange(T) / FPS)
    assert clip.utterances == EXPECTED
    assert clip.audio.shape == (round(DURATION * SAMPLE_RATE),)


def test_load_clip_with_side_vtt_and_wav(tmp_path, media):
    video = copy_to(media["silent"], tmp_path / "mute.mp4")
    (tmp_path / "mute.vtt").write_text(VTT_TEXT, encoding="utf-8")
    soundfile.write(tmp_path / "mute.wav", make_audio(), SAMPLE_RATE)
    clip = load_clip(video)
    assert clip.utterances == EXPECTED
    assert np.corrcoef(clip.audio, make_audio())[0, 1] > 0.999


def test_load_clip_without_audio_warns(tmp_path, media):
    video = copy_to(media["silent"], tmp_path / "quiet.mp4")
    with pytest.warns(UserWarning, match=r"quiet\.mp4: no audio track"):
        clip = load_clip(video)
    assert clip.audio is None and clip.utterances == []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_clip(video, audio=None).audio is None


def test_load_clip_max_frames_crops_everything(tmp_path, media):
    video = copy_to(media["av"], tmp_path / "talk.mp4")
    (tmp_path / "talk.srt").write_text(SRT_TEXT, encoding="utf-8")
    clip = load_clip(video, max_frames=10)  # 0.4 s: cue 1 ends exactly there, cue 2 is dropped
    assert clip.n_frames == 10 and clip.audio.shape == (round(0.4 * SAMPLE_RATE),)
    assert clip.utterances == EXPECTED[:1]


def test_load_clip_subtitles_past_the_end(tmp_path, media):
    video = copy_to(media["av"], tmp_path / "talk.mp4")
    late = tmp_path / "late.srt"
    late.write_text("1\n00:00:02,000 --> 00:00:03,000\nToo late.\n", encoding="utf-8")
    with pytest.raises(ClipError, match=r"late\.srt: cue 1 .*Too late"):
        load_clip(video, subtitles=late)


# ---------------------------------------------------------------- bad input


def write_raw(path: Path, fps: int, fmt: str = "mp4", options: dict | None = None) -> Path:
    """A video written with PyAV directly, bypassing write_video's checks and choices."""
    with av.open(str(path), "w", format=fmt, options=options or {}) as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        for frame in make_frames(5):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode(None))
    return path


def audio_only(path: Path) -> Path:
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=SAMPLE_RATE)
        stream.layout = "mono"
        chunk = av.AudioFrame.from_ndarray(make_audio()[None], format="flt", layout="mono")
        chunk.sample_rate = SAMPLE_RATE
        container.mux(stream.encode(chunk))
        container.mux(stream.encode(None))
    return path


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda d, m: d / "missing.mp4", id="missing"),
        pytest.param(lambda d, m: d, id="directory"),
        pytest.param(lambda d, m: put(d / "empty.mp4", b""), id="empty"),
        pytest.param(lambda d, m: put(d / "notes.mp4", b"not a video\n" * 50), id="text"),
        pytest.param(lambda d, m: put(d / "cut.mp4", m["av"].read_bytes()[:3000]), id="truncated"),
        pytest.param(lambda d, m: audio_only(d / "voice.mp4"), id="zero-frames"),
        pytest.param(lambda d, m: write_raw(d / "fast.mp4", 1000), id="absurd-fps"),
    ],
)
def test_bad_videos(tmp_path, media, make):
    path = make(tmp_path, media)
    for reader in (probe_video, load_clip, lambda p: list(iter_frames(p))):
        with pytest.raises(ClipError, match=path.name):
            reader(path)


def test_frames_are_counted_by_decoding_without_metadata(tmp_path):
    path = write_raw(tmp_path / "clip.mkv", FPS, fmt="matroska")  # Matroska stores no count
    with av.open(str(path)) as container:
        assert container.streams.video[0].frames == 0
    assert probe_video(path).n_frames == 5


def test_truncated_data_behind_a_good_header(tmp_path):
    path = write_raw(tmp_path / "front.mp4", FPS, options={"movflags": "faststart"})
    put(path, path.read_bytes()[:-100])  # the last two packets lose their data
    assert probe_video(path).n_frames == 5  # the index is intact and frame 0 decodes...
    with pytest.raises(ClipError, match=r"front\.mp4: decoding failed"):
        load_clip(path, audio=None)  # ...but the data of the last frames is gone


def test_bad_video_is_still_tried_whatever_the_suffix(tmp_path, media):
    assert probe_video(copy_to(media["av"], tmp_path / "clip.data")).n_frames == T


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("zero-fps.mp4", {"fps": 0}),
        ("nan-fps.mp4", {"fps": float("nan")}),
        ("fast.mp4", {"fps": 500}),
        ("odd.mp4", {"frames": np.zeros((3, 47, 64, 3), np.uint8)}),
        ("none.mp4", {"frames": []}),
        ("float.mp4", {"frames": np.zeros((3, 48, 64, 3), np.float32)}),
        ("stereo.mp4", {"audio": np.zeros((2, 100), np.float32)}),
        ("video.avi", {}),
    ],
)
def test_write_video_refuses(tmp_path, name, kwargs):
    args = {"frames": make_frames(3), "fps": FPS} | kwargs
    with pytest.raises(ClipError, match=name.replace(".", r"\.")):
        write_video(tmp_path / name, **args)
    assert list(tmp_path.iterdir()) == []


def test_failed_write_leaves_nothing(tmp_path, media):
    target = tmp_path / "partial.mp4"

    def frames_then_crash():
        yield from make_frames(5)
        raise RuntimeError("renderer died")

    with pytest.raises(RuntimeError, match="renderer died"):
        write_video(target, frames_then_crash(), FPS, make_audio())
    assert list(tmp_path.iterdir()) == []

    copy_to(media["silent"], target)  # an existing file survives a failed overwrite
    bad = list(make_frames(4)) + [np.zeros((H, W + 2, 3), np.uint8)]
    with pytest.raises(ClipError, match=r"partial\.mp4: frame 4"):
        write_video(target, bad, FPS)
    assert target.read_bytes() == media["silent"].read_bytes()
    assert [p.name for p in tmp_path.iterdir()] == ["partial.mp4"]


def test_in_memory_clip_is_checked():
    clip = Clip(frames=make_frames(5), fps=FPS, audio=np.zeros(100), utterances=[])
    assert clip.audio.dtype == np.float32 and clip.size == (H, W)
    with pytest.raises(ClipError, match="in-memory"):
        Clip(frames=make_frames(5).astype(np.float32), fps=FPS, audio=None, utterances=[])


def write_shown_as(path: Path, frames: list[np.ndarray], times: list[float] | None = None,
                   rotation: int = 0, matrix: list[int] | None = None) -> Path:
    """Frames written with PyAV directly: at presentation times ``times`` (s, a millisecond time
    base; default 25 fps) and with a display rotation (degrees counter-clockwise) or a whole
    display ``matrix`` (FFmpeg's layout), as phones and editors write them."""
    from fractions import Fraction

    times = times if times is not None else [k / 25 for k in range(len(frames))]
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=25)
        h, w = frames[0].shape[:2]
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        if rotation:
            stream.set_display_rotation(rotation)
        if matrix:
            stream.set_display_matrix(matrix)
        for frame, t in zip(frames, times):
            picture = av.VideoFrame.from_ndarray(frame, format="rgb24")
            picture.pts, picture.time_base = round(t * 1000), Fraction(1, 1000)
            container.mux(stream.encode(picture))
        container.mux(stream.encode(None))
    return path


def test_a_rotated_video_is_read_upright(tmp_path):
    """A phone's portrait clip: landscape pixels, and a display matrix that turns them 90 degrees
    clockwise (the old ``rotate=90`` tag; -90 counter-clockwise). A marker stored top-left is shown
    top-right, and the frame is as tall as the stored one is wide."""
    stored = np.zeros((48, 96, 3), np.uint8)
    stored[:16, :16] = 255
    path = write_shown_as(tmp_path / "portrait.mp4", [stored] * 3, rotation=-90)
    info = probe_video(path)
    assert (info.rotation, info.width, info.height) == (270, 48, 96)
    shown = next(iter_frames(path))[1]
    assert shown.shape == (96, 48, 3)
    assert shown[:16, -16:].mean() > 200 and shown[:16, :16].mean() < 50
    assert load_clip(path).size == (96, 48)


@pytest.mark.parametrize("matrix, rotation, corner", [
    ([-1, 0, 0, 0, 1, 0], 0, "top right"),             # a front camera's mirror: left-right
    ([0, -1, 0, -1, 0, 0], 270, "bottom right"),       # mirrored, then a quarter turn clockwise
    ([1, 0, 0, 0, -1, 0], 180, "bottom left"),         # mirrored, then a half turn: upside down
])
def test_a_mirrored_video_is_shown_as_its_display_matrix_says(tmp_path, matrix, rotation, corner):
    """A mirror in the display matrix used to read as a half turn, which shows a mirrored
    selfie upside down. A marker stored top-left lands where FFmpeg's own player puts it."""
    stored = np.zeros((48, 96, 3), np.uint8)
    stored[:16, :16] = 255
    u = 65536
    path = write_shown_as(tmp_path / "mirrored.mp4", [stored] * 3, matrix=[v * u for v in matrix] + [0, 0, 1 << 30])
    info = probe_video(path)
    assert (info.rotation, info.mirrored) == (rotation, True)
    shown = next(iter_frames(path))[1]
    assert shown.shape == ((96, 48, 3) if rotation in (90, 270) else (48, 96, 3))
    rows = slice(None, 16) if corner.startswith("top") else slice(-16, None)
    cols = slice(None, 16) if corner.endswith("left") else slice(-16, None)
    assert shown[rows, cols].mean() > 200 and shown.mean() < 255 * 0.12


def test_a_variable_rate_video_is_resampled_on_its_real_time_axis(tmp_path):
    """Ten frames at 25 fps, ten at 10 fps, ten at 25 fps again: frame k is grey level 8k. Read by
    index / fps, the last frames would come 0.6 s early; resampled at the median rate (25 fps),
    each grid time shows the frame nearest to it, and no frame is lost."""
    times = [k * 0.04 for k in range(10)] + [0.4 + k * 0.1 for k in range(1, 11)] + [1.4 + k * 0.04 for k in range(1, 11)]
    frames = [np.full((32, 32, 3), 8 * k, np.uint8) for k in range(30)]
    path = write_shown_as(tmp_path / "vfr.mp4", frames, times)
    info = probe_video(path)
    assert info.variable_rate and info.fps == 25.0 and info.n_frames == round(1.8 / 0.04) + 1
    shown = [int(round(f.mean() / 8)) for _, f in iter_frames(path)]
    assert len(shown) == info.n_frames
    for i, k in enumerate(shown):  # each grid time shows the frame nearest to it in time
        assert abs(i / info.fps - times[k]) <= min(abs(i / info.fps - t) for t in times) + 1e-6, (i, k)
    assert set(shown) == set(range(30))  # no frame lost where the rate is the median one
    clip = load_clip(path)
    assert clip.n_frames == info.n_frames and clip.fps == 25.0


def test_a_constant_rate_video_is_not_resampled(media):
    info = probe_video(media["av"])
    assert not info.variable_rate and info.rotation == 0


def test_a_still_image_renamed_mp4_is_refused(tmp_path):
    import cv2

    path = tmp_path / "photo.mp4"
    ok, png = cv2.imencode(".png", np.zeros((32, 32, 3), np.uint8))
    path.write_bytes(png.tobytes())
    with pytest.raises(ClipError, match="photo.mp4: a still image"):
        probe_video(path)
