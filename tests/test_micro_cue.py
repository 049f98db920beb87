"""Global-local attention learns to look at the micro-expression (planted task)."""
import numpy as np
import torch

from microemo_ref.model.micro_cue import MicroCueModel, apex_attention, planted_dynamics, train_micro_cue


def _mass(model, seed=1, n=40):
    x, y, apex = planted_dynamics(n, np.random.default_rng(seed))
    with torch.no_grad():
        logits, out, ft, lt = model(x, 25.0)
    pairs = [apex_attention(out, ft, lt, apex[i] / 25.0, index=i) for i in range(n)]
    return (logits.argmax(1) == y).float().mean().item(), np.mean([p[0] for p in pairs]), np.mean([p[1] for p in pairs])


def test_training_lowers_loss_and_focuses_attention_on_the_apex():
    torch.manual_seed(0)
    model = MicroCueModel()
    _, before, chance = _mass(model)
    losses = train_micro_cue(model, 120, np.random.default_rng(0))
    acc, after, _ = _mass(model)
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:10])
    assert acc > 0.8
    assert before < 2 * chance < after, (before, chance, after)


def test_planted_data_is_deterministic():
    a = planted_dynamics(4, np.random.default_rng(3))
    b = planted_dynamics(4, np.random.default_rng(3))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and np.array_equal(a[2], b[2])


def test_class_regions_agree_with_the_generator():
    from microemo_ref.model.micro_cue import CLASS_REGIONS
    from microemo_ref.samples.expressions import ExpressionEvent

    for emotion, regions in CLASS_REGIONS.items():
        assert tuple(ExpressionEvent("micro", emotion, 0, 1, 2, 1.0).regions()) == regions
