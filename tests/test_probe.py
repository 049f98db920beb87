"""The linear probe recovers what is linearly there, and nothing that is not."""
import numpy as np

from microemo_ref.model.probe import ridge_probe


def test_probe_recovers_a_linear_target_and_not_noise():
    g = np.random.default_rng(0)
    x = g.normal(size=(300, 20))
    y = x @ g.normal(size=20) * 3 + 5
    split = dict(train=slice(0, 200), val=slice(200, 250), test=slice(250, 300))
    good = ridge_probe(x, y, **split)
    assert good.mae < 0.05 * good.baseline_mae
    noise = ridge_probe(x, g.normal(size=300) * 10, **split)
    assert noise.mae > 0.85 * noise.baseline_mae
