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


def test_ridge_classifier_reads_separable_classes_and_not_shuffled_ones():
    from microemo_ref.model.probe import ridge_classifier

    g = np.random.default_rng(0)
    centres = {"sad": [3, 0, 0], "fear": [0, 3, 0], "angry": [0, 0, 3]}
    labels = [name for name in centres for _ in range(30)]
    x = np.array([centres[name] for name in labels], float) + g.normal(size=(90, 3))
    order = g.permutation(90)
    x, labels = x[order], [labels[i] for i in order]
    train, test = np.arange(60), np.arange(60, 90)
    good = ridge_classifier(x, labels, train=train, test=test)
    assert good.classes == ["angry", "fear", "sad"] and good.accuracy > 0.9 and len(good.predicted) == 30
    shuffled = ridge_classifier(x, list(g.permutation(labels)), train=train, test=test)
    assert shuffled.accuracy < 0.6
    # chance = always the training split's commonest label, scored on the test split
    assert 0.0 < good.chance < 0.6


def test_ridge_classifier_one_feature_by_hand():
    from microemo_ref.model.probe import ridge_classifier

    # one feature: negative values are "sad", positive "fear"; a tiny ridge gives a clean threshold at 0
    x = np.array([[-2.0], [-1.0], [1.0], [2.0], [-0.5], [0.5]])
    labels = ["sad", "sad", "fear", "fear", "sad", "fear"]
    r = ridge_classifier(x, labels, train=np.arange(4), test=np.arange(4, 6), ridges=(1e-6,))
    assert r.predicted == ["sad", "fear"] and r.accuracy == 1.0 and r.ridge == 1e-6 and r.chance == 0.5
