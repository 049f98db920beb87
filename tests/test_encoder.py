"""The composed encoder on a real sample: evidence -> per-span visual and audio tokens."""
import numpy as np
import pytest
import torch

from microemo_ref.config import DATA_SAMPLES
from microemo_ref.io.clip import Clip, load_clip
from microemo_ref.model.encoder import EncoderConfig, MicroEmoEncoder
from microemo_ref.model.visual_encoder import VisualEncoderConfig, sample_frames
from microemo_ref.pipeline.evidence import encoder_inputs, gather_evidence

VIDEO = DATA_SAMPLES / "shift_grace_hopper_s0005.mp4"  # 7.96 s, 4 utterances


@pytest.fixture(scope="module")
def inputs():
    clip = load_clip(VIDEO)
    ev = gather_evidence(clip)
    assert ev.notes == [] and ev.local is not None and ev.audio is not None
    return clip, ev, encoder_inputs(ev)


def build(cfg=EncoderConfig()):
    torch.manual_seed(0)
    return MicroEmoEncoder(cfg).eval()


def test_sampling_is_uniform_and_capped():
    idx, times = sample_frames(199, 25.0, 4.0, 96)
    assert len(idx) == 32 and idx[0] == 3 and np.allclose(np.diff(times), 0.25, atol=0.05)
    assert len(sample_frames(2500, 25.0, 4.0, 96)[0]) == 96
    assert len(sample_frames(3, 25.0, 4.0, 96)[0]) == 1


def test_inputs_of_a_sample(inputs):
    clip, _, x = inputs
    assert x.images.shape == (32, 3, 112, 112) and x.frame_times.shape == (32,)
    assert x.dynamics.shape == (6, clip.n_frames, 4) and bool(x.local_mask.all())
    assert x.audio.shape[1] == 68 and len(x.utterances) == 4


def test_tokens_per_utterance_and_determinism(inputs):
    _, _, x = inputs
    with torch.no_grad():
        a, b = build()(x), build()(x)
    assert a.visual.tokens.shape == (5 * 8, 64) and a.audio.tokens.shape == (5 * 8, 64)
    assert [s.kind for s in a.visual.spans] == ["video"] + ["utterance"] * 4
    assert torch.equal(a.visual.tokens, b.visual.tokens) and torch.equal(a.audio.tokens, b.audio.tokens)


def test_window_mode_ignores_utterances(inputs):
    _, _, x = inputs
    with torch.no_grad():
        out = build(EncoderConfig(span_mode="window", window=8, stride=8))(x)
    assert [s.kind for s in out.visual.spans] == ["window"] * 4  # 32 frames / 8
    assert out.audio.tokens.shape == (8, 64)  # the whole clip only, as Video-LLaMA


def test_local_dynamics_change_the_frame_tokens_near_them_only(inputs):
    _, _, x = inputs
    model = build()
    with torch.no_grad():
        base = model.visual(x.images, x.frame_times, x.dynamics, x.local_times, x.local_mask).tokens
        bumped = x.dynamics.clone()
        bumped[:, 50:55] += 3.0  # a 200-ms burst at 2.0-2.2 s in every region
        after = model.visual(x.images, x.frame_times, bumped, x.local_times, x.local_mask).tokens
    changed = (after - base).abs().amax(dim=(1, 2)) > 1e-6  # (T,)
    frame_times = x.frame_times
    # window 0.5 s + the convolution's reach (2 steps = 0.08 s) + 0.1-s time rounding
    assert changed.any() and torch.all((frame_times[changed] > 1.3) & (frame_times[changed] < 2.9))


def test_no_face_and_no_audio(inputs):
    clip, _, _ = inputs
    blank = Clip(frames=np.full((50, 64, 64, 3), 90, np.uint8), fps=25.0, audio=None, utterances=[])
    ev = gather_evidence(blank)
    assert ev.local is None and ev.audio is None
    assert any("no face" in n for n in ev.notes) and any("no audio" in n for n in ev.notes)
    with torch.no_grad():
        out = build()(encoder_inputs(ev))
    assert out.visual.tokens.shape == (8, 64) and out.audio is None  # whole video only
