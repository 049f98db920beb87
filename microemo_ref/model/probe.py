"""Linear probes: how much of a quantity can a straight line read out of a representation?

A probe is a ridge regression from frozen features to a target (here: a frame's time in
seconds from its time-aware tokens, notebook 03; or, as a classifier on one-hot targets, a
concealed micro-expression's emotion from the measured region displacements, notebook 09). If a linear map recovers the target on
held-out samples, the representation carries it. The ridge strength is chosen on a validation
split, and the error is reported on a separate test split, next to the error of always
predicting the training mean (the chance baseline).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ProbeResult:
    mae: float            # mean absolute error on the test split
    baseline_mae: float   # the same for predicting the training mean
    ridge: float          # the chosen ridge strength
    weights: np.ndarray   # (D,) on standardised features
    bias: float


def ridge_probe(features: np.ndarray, targets: np.ndarray, *, train: slice, val: slice, test: slice,
                ridges: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0, 100.0, 1000.0)) -> ProbeResult:
    """Fit ridge regression on ``train``, pick the ridge on ``val``, report on ``test``.

    ``features`` (N, D), ``targets`` (N,). Features are standardised with the training
    split's mean and standard deviation.
    """
    mu, sd = features[train].mean(axis=0), features[train].std(axis=0) + 1e-6
    z = (features - mu) / sd
    y_mean = float(targets[train].mean())
    a, b = z[train], targets[train] - y_mean
    best = None
    for lam in ridges:
        w = np.linalg.solve(a.T @ a + lam * np.eye(a.shape[1]), a.T @ b)
        err = float(np.abs(z[val] @ w + y_mean - targets[val]).mean())
        if best is None or err < best[0]:
            best = (err, lam, w)
    _, lam, w = best
    mae = float(np.abs(z[test] @ w + y_mean - targets[test]).mean())
    baseline = float(np.abs(y_mean - targets[test]).mean())
    return ProbeResult(mae, baseline, lam, w, y_mean)


@dataclass(frozen=True)
class ClassifierResult:
    predicted: list[str]  # one label per test sample
    accuracy: float       # on the test samples
    chance: float         # accuracy of always answering the training split's commonest label
    ridge: float          # chosen by leave-one-out on the training split
    classes: list[str]


def ridge_classifier(features: np.ndarray, labels: Sequence[str], *, train: np.ndarray, test: np.ndarray,
                     ridges: tuple[float, ...] = (0.1, 1.0, 10.0, 100.0)) -> ClassifierResult:
    """One-vs-rest ridge regression on one-hot labels, answer = the largest output.

    ``features`` (N, D), standardised with the training split's statistics; ``train`` and
    ``test`` index it. The ridge is the one with the best leave-one-out accuracy on ``train``.
    """
    labels = np.asarray(labels)
    classes = sorted(set(labels[train]))
    mu, sd = features[train].mean(axis=0), features[train].std(axis=0) + 1e-6
    z = np.c_[(features - mu) / sd, np.ones(len(features))]                     # (N, D + 1) with a bias
    onehot = (labels[:, None] == np.array(classes)[None]).astype(np.float64)     # (N, C)

    def fit(rows: np.ndarray, lam: float) -> np.ndarray:
        a = z[rows]
        return np.linalg.solve(a.T @ a + lam * np.eye(a.shape[1]), a.T @ onehot[rows])   # (D + 1, C)

    def loo(lam: float) -> float:
        return float(np.mean([np.argmax(z[i] @ fit(np.setdiff1d(train, [i]), lam)) == classes.index(labels[i])
                              for i in train]))

    lam = max(ridges, key=loo)          # first of the best on ties: the smallest ridge
    predicted = [classes[k] for k in np.argmax(z[test] @ fit(train, lam), axis=1)]
    values, counts = np.unique(labels[train], return_counts=True)
    commonest = values[np.argmax(counts)]
    if not len(test):
        return ClassifierResult([], float("nan"), float("nan"), lam, classes)
    return ClassifierResult(predicted, float(np.mean(np.array(predicted) == labels[test])),
                            float(np.mean(labels[test] == commonest)), lam, classes)
