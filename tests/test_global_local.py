"""The local encoder and the global-local attention: window masking, locality in time, empty
windows, gradients, attention mass, a planted micro-expression, determinism and speed."""
from __future__ import annotations

import math
import time

import numpy as np
import pytest
import torch

from microemo_ref.face.spotting import RegionSignal, dynamics_tensor
from microemo_ref.model.global_local import (GlobalLocalAttention, GlobalLocalConfig, attention_mass_near,
                                             window_mask)
from microemo_ref.model.local_encoder import LocalEncoder, LocalEncoderConfig, step_times, time_embedding

B, T, Q, S, D = 2, 8, 4, 50, 64  # batch, frames, queries per frame, local steps, width
STEP_S = 0.04  # 25 steps per second


def local_times(batch: int = B, steps: int = S) -> torch.Tensor:
    return (torch.arange(steps) * STEP_S + STEP_S / 2).expand(batch, steps).clone()  # (B, S)


def frame_times(batch: int = B, frames: int = T) -> torch.Tensor:
    return torch.linspace(0.0, 2.0, frames).expand(batch, frames).clone()  # (B, T), step 0.286 s


def models(seed: int = 0, **attn: object) -> tuple[LocalEncoder, GlobalLocalAttention]:
    torch.manual_seed(seed)
    return LocalEncoder(LocalEncoderConfig(hidden=D)), GlobalLocalAttention(GlobalLocalConfig(hidden=D, **attn))


def inputs(seed: int = 1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    dynamics = torch.randn(B, 6, S, 3, generator=g)  # (B, R, S, F)
    global_tokens = torch.randn(B, T, Q, D, generator=g)  # (B, T, Q, D)
    local_tokens = torch.randn(B, S, D, generator=g)  # (B, S, D)
    return dynamics, global_tokens, local_tokens


def test_window_mask_and_weights() -> None:
    _, attn = models(window_s=0.3)
    _, g, l = inputs()
    lt, ft = local_times(), frame_times()
    valid = torch.ones(B, S, dtype=torch.bool)
    valid[1, 20:30] = False  # face lost for 10 steps in the second clip
    with torch.no_grad():
        out = attn(g, ft, l, lt, valid)
    expected = ((lt[:, None, :] - ft[:, :, None]).abs() <= 0.3) & valid[:, None, :]  # (B, T, S)
    assert torch.equal(out.window_mask, expected)
    assert torch.equal(window_mask(ft, lt, 0.3, valid), expected)
    outside = ~expected[:, :, None, :].expand_as(out.weights)  # (B, T, Q, S)
    assert (out.weights[outside] == 0).all()  # exactly zero, not just small
    assert (out.weights[~outside] > 0).all()
    rows = out.weights.sum(-1)  # (B, T, Q)
    assert torch.allclose(rows, torch.ones_like(rows), atol=1e-6)  # every frame here has steps in its window


def test_locality_in_time() -> None:
    _, attn = models(window_s=0.3)
    _, g, l = inputs()
    lt, ft = local_times(), frame_times()
    with torch.no_grad():
        before = attn(g, ft, l, lt).fused
        frame = 2  # at 0.571 s: its window holds steps 7..21
        inside = (lt[0] - ft[0, frame]).abs() <= 0.3  # (S,)
        far = int(torch.nonzero(~inside)[-1])  # a step outside frame 2's window
        near = int(torch.nonzero(inside)[0])
        l_far, l_near = l.clone(), l.clone()
        l_far[0, far] += 5.0
        l_near[0, near] += 5.0
        after_far, after_near = attn(g, ft, l_far, lt).fused, attn(g, ft, l_near, lt).fused
    assert torch.equal(after_far[0, frame], before[0, frame])  # bit-for-bit unchanged
    assert (after_near[0, frame] - before[0, frame]).abs().max() > 1e-3
    assert torch.equal(after_far[1], before[1]) and torch.equal(after_near[1], before[1])  # other clip


def test_empty_window_passes_through() -> None:
    _, attn = models(window_s=0.1)
    _, g, l = inputs()
    lt = local_times()
    ft = frame_times()
    ft[:, -1] = 10.0  # the last frame is 8 s past the local tokens: empty window
    valid = torch.ones(B, S, dtype=torch.bool)
    valid[1] = False  # the second clip has no valid local step at all
    with torch.no_grad():  # bias the output projection so a leak could not hide
        attn.out.bias.fill_(3.0)
        out = attn(g, ft, l, lt, valid)
    assert not out.fused.isnan().any()
    assert torch.equal(out.fused[0, -1], attn.norm(g[0, -1]))
    assert torch.equal(out.fused[1], attn.norm(g[1]))
    assert (out.weights[0, -1] == 0).all() and (out.weights[1] == 0).all()
    assert not torch.equal(out.fused[0, 0], attn.norm(g[0, 0]))  # a frame with local tokens does change


def test_gradients_reach_encoder_and_projections() -> None:
    encoder, attn = models()
    dynamics, g, _ = inputs()
    tokens, times = encoder(dynamics, local_times())
    attn(g, frame_times(), tokens, times).fused.square().mean().backward()
    for name, param in [("encoder.region_weight", encoder.region_weight), ("encoder.conv", encoder.conv.weight),
                        ("encoder.proj", encoder.proj.weight), ("attn.q", attn.q.weight), ("attn.k", attn.k.weight),
                        ("attn.v", attn.v.weight), ("attn.out", attn.out.weight)]:
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_attention_mass_near_by_hand() -> None:
    lt = torch.tensor([[0.0, 0.1, 0.2, 0.3]])  # (1, S=4)
    weights = torch.zeros(1, 3, 1, 4)  # (B=1, T=3, Q=1, S=4)
    weights[0, 0, 0] = torch.tensor([0.1, 0.2, 0.3, 0.4])
    weights[0, 1, 0] = torch.tensor([0.0, 0.0, 0.5, 0.5])
    # frame 2: empty window (all zeros) -> not counted
    # near 0.25 +- 0.06: steps 0.2 and 0.3 -> frame 0: 0.7, frame 1: 1.0; mean 0.85
    assert attention_mass_near(weights, lt, 0.25, 0.06) == pytest.approx(0.85)
    assert math.isnan(attention_mass_near(torch.zeros(1, 2, 1, 4), lt, 0.25, 0.06))


def test_hand_set_attention_finds_planted_token() -> None:
    """Constant query u, identity keys: the score of step s is c * u.l[s] / sqrt(d) per head.
    Local tokens are zero but one (= u) at step k, so its weight is e^a / (e^a + n - 1)."""
    _, attn = models(window_s=0.3)
    heads, d = attn.cfg.heads, D // attn.cfg.heads
    u = torch.ones(D) / math.sqrt(D)  # unit, same norm in every head: |u_h|^2 = 1 / H
    c = 80.0  # score a = c / H / sqrt(d) = 5
    with torch.no_grad():
        attn.q.weight.zero_()
        attn.q.bias.copy_(c * u)
        attn.k.weight.copy_(torch.eye(D))
        attn.k.bias.zero_()
    lt, ft = local_times(1), frame_times(1)
    k = 14  # 0.58 s, inside frame 2's window (0.571 +- 0.3 s)
    l = torch.zeros(1, S, D)
    l[0, k] = u
    with torch.no_grad():
        out = attn(torch.randn(1, T, Q, D), ft, l, lt)
    a = c / heads / math.sqrt(d)  # the planted step's score in each head, others score 0
    n = int(out.window_mask[0, 2].sum())
    assert out.weights[0, 2, :, k] == pytest.approx(torch.full((Q,), math.exp(a) / (math.exp(a) + n - 1)), abs=1e-6)
    assert attention_mass_near(out.weights[:, 2:3], lt, float(lt[0, k]), 0.01) > 0.9


def test_planted_event_changes_only_nearby_tokens() -> None:
    """A 5-step, 2-px rise-and-fall in one region (a ~200-ms micro-expression at 25 steps/s):
    tokens differ from the no-motion tokens at the bump, and only within the kernel's reach."""
    encoder, _ = models()
    k, reach = 25, encoder.cfg.kernel // 2
    quiet = torch.zeros(1, 6, S, 3)
    bump = quiet.clone()
    shape = torch.tensor([0.5, 1.0, 2.0, 1.0, 0.5])
    bump[0, 1, k - 2:k + 3, 0] = shape  # magnitude
    bump[0, 1, k - 2:k + 3, 2] = 0.8 * shape  # mostly downward
    with torch.no_grad():
        base, _ = encoder(quiet, local_times(1))
        moved, _ = encoder(bump, local_times(1))
    change = (moved - base).norm(dim=-1)[0]  # (S,)
    touched = torch.zeros(S, dtype=torch.bool)
    touched[k - 2 - reach:k + 3 + reach] = True
    assert (change[~touched] == 0).all()  # receptive field: bump +- kernel // 2, no further
    assert change[k] > 0.1  # a 2-px event is clearly visible in the token at its apex
    assert change[k] > 3 * change[touched].min()  # and most visible near the apex


def test_masked_steps_leak_nothing() -> None:
    encoder, _ = models()
    dynamics, _, _ = inputs()
    valid = torch.ones(B, S, dtype=torch.bool)
    valid[:, 30:] = False
    noisy = dynamics.clone()
    noisy[:, :, 30:] += 100.0  # garbage where the face was lost
    with torch.no_grad():
        a, _ = encoder(dynamics, local_times(), mask=valid)
        b, _ = encoder(noisy, local_times(), mask=valid)
    assert torch.equal(a, b)
    assert (a[:, 30:] == 0).all()


def test_time_embedding_and_appearance() -> None:
    emb = time_embedding(torch.tensor([0.0, 0.05, 1000.0]), 8)
    assert torch.allclose(emb[0], torch.tensor([0.0] * 4 + [1.0] * 4))  # sin 0, cos 0
    assert emb[1, 0] == pytest.approx(0.0, abs=1e-5)  # half the 0.1-s period: sin(pi) = 0
    assert emb[1, 4] == pytest.approx(-1.0, abs=1e-5)  # cos(pi) = -1
    torch.manual_seed(0)
    encoder = LocalEncoder(LocalEncoderConfig(hidden=16, appearance_width=10))
    dynamics = torch.randn(1, 6, 7, 3)
    appearance = torch.randn(1, 7, 10)
    with torch.no_grad():
        with_app, times = encoder(dynamics, local_times(1, 7), appearance)
        without, _ = encoder(dynamics, local_times(1, 7))
    assert torch.allclose(with_app - without, encoder.appearance(appearance), atol=1e-6)
    assert torch.equal(times, local_times(1, 7))
    with pytest.raises(ValueError):
        LocalEncoder(LocalEncoderConfig(hidden=16))(dynamics, local_times(1, 7), appearance)


def test_reads_the_local_branch_tensor() -> None:
    """spotting.dynamics_tensor (R, steps, 3) -> a batch for the encoder, with step_times."""
    fps, n_frames, n_steps = 30.0, 90, 20
    rng = np.random.default_rng(0)
    signals = {f"r{i}": RegionSignal(rng.random(n_frames), rng.random(n_frames), rng.normal(size=(n_frames, 4, 2)),
                                     np.array([1.0, -1.0, 1.0, -1.0])) for i in range(6)}
    dyn = torch.from_numpy(dynamics_tensor(signals, n_steps))[None]  # (1, R, S, F)
    times = step_times(n_frames, fps, n_steps)
    edges = np.linspace(0, n_frames, n_steps + 1).round().astype(int)
    assert times[3].item() == pytest.approx((edges[3] + edges[4] - 1) / 2 / fps)
    encoder, _ = models()
    tokens, _ = encoder(dyn, times[None])
    assert tokens.shape == (1, n_steps, D) and not tokens.isnan().any()


def test_deterministic_with_seed() -> None:
    dynamics, g, _ = inputs()
    outs = []
    for _ in range(2):
        encoder, attn = models(seed=7)
        with torch.no_grad():
            tokens, times = encoder(dynamics, local_times())
            outs.append(attn(g, frame_times(), tokens, times))
    assert torch.equal(outs[0].fused, outs[1].fused) and torch.equal(outs[0].weights, outs[1].weights)


def test_micro_scale_run_is_fast() -> None:
    encoder, attn = models()
    dynamics, g, _ = inputs()

    def step() -> None:
        tokens, times = encoder(dynamics, local_times())
        attn(g, frame_times(), tokens, times).fused.sum().backward()

    step()  # warm-up
    timings = []
    for _ in range(3):  # best of three: the machine is shared
        start = time.perf_counter()
        step()
        timings.append(time.perf_counter() - start)
    assert min(timings) < 1.0  # forward + backward, B=2, T=8, Q=4, S=50 (about 0.02 s on 2 CPU cores)
