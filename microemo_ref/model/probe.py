"""Linear probes: how much of a quantity can a straight line read out of a representation?

A probe is a ridge regression from frozen features to a target: a frame's time in seconds
from its time-aware tokens (notebook 03), or, as a classifier on one-hot targets, a concealed
micro-expression's emotion from the measured region displacements (notebook 10). If a linear
map recovers the target on held-out samples, the representation carries it. The regression
picks its ridge on a validation split and reports the error on a separate test split, next to
the error of always predicting the training mean (the chance baseline); the classifier picks
its ridge by leave-one-out on the training samples.
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
class RidgeClassifier:
    """One-vs-rest ridge regression on one-hot labels; the answer is the largest output."""
    classes: tuple[str, ...]
    mean: np.ndarray    # (D,) training features' mean ...
    std: np.ndarray     # (D,) ... and standard deviation (the features are standardised)
    weight: np.ndarray  # (D + 1, C): one column per class, the last row the bias
    ridge: float

    def predict(self, features: np.ndarray) -> list[str]:
        """(N, D) features -> N labels."""
        z = np.c_[(features - self.mean) / self.std, np.ones(len(features))]
        return [self.classes[k] for k in np.argmax(z @ self.weight, axis=1)]

    def to_json(self) -> dict:
        return {"classes": list(self.classes), "mean": self.mean.tolist(), "std": self.std.tolist(),
                "weight": self.weight.tolist(), "ridge": self.ridge}

    @classmethod
    def from_json(cls, d: dict) -> RidgeClassifier:
        return cls(tuple(d["classes"]), np.array(d["mean"]), np.array(d["std"]), np.array(d["weight"]), d["ridge"])


def fit_ridge_classifier(features: np.ndarray, labels: Sequence[str],
                         ridges: tuple[float, ...] = (0.1, 1.0, 10.0, 100.0),
                         sample_weight: np.ndarray | None = None) -> RidgeClassifier:
    """Fit on (N, D) ``features``, standardised with their own statistics; the ridge is the one
    with the best leave-one-out accuracy (the smallest on ties), or the only one given.
    ``sample_weight`` (N,) weighs each row's squared error (weighted least squares)."""
    labels = np.asarray(labels)
    classes = tuple(sorted(set(labels)))
    mean, std = features.mean(axis=0), features.std(axis=0) + 1e-6
    z = np.c_[(features - mean) / std, np.ones(len(features))]                  # (N, D + 1) with a bias
    onehot = (labels[:, None] == np.array(classes)[None]).astype(np.float64)     # (N, C)
    w = np.ones(len(z)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)

    def solve(rows: np.ndarray, lam: float) -> np.ndarray:
        a, aw = z[rows], z[rows] * w[rows, None]
        return np.linalg.solve(aw.T @ a + lam * np.eye(a.shape[1]), aw.T @ onehot[rows])   # (D + 1, C)

    def leave_one_out(lam: float) -> float:
        every = np.arange(len(z))
        return float(np.mean([np.argmax(z[i] @ solve(np.delete(every, i), lam)) == classes.index(labels[i])
                              for i in every]))

    lam = ridges[0] if len(ridges) == 1 else max(ridges, key=leave_one_out)
    return RidgeClassifier(classes, mean, std, solve(np.arange(len(z)), lam), lam)


@dataclass(frozen=True)
class ClassifierResult:
    predicted: list[str]  # one label per test sample
    accuracy: float       # on the test samples
    chance: float         # accuracy of always answering the training split's commonest label
    ridge: float          # chosen by leave-one-out on the training split
    classes: list[str]


def ridge_classifier(features: np.ndarray, labels: Sequence[str], *, train: np.ndarray, test: np.ndarray,
                     ridges: tuple[float, ...] = (0.1, 1.0, 10.0, 100.0)) -> ClassifierResult:
    """Fit :func:`fit_ridge_classifier` on the ``train`` rows, score it on the ``test`` rows."""
    labels = np.asarray(labels)
    fitted = fit_ridge_classifier(features[train], labels[train], ridges)
    values, counts = np.unique(labels[train], return_counts=True)
    commonest = values[np.argmax(counts)]
    if not len(test):
        return ClassifierResult([], float("nan"), float("nan"), fitted.ridge, list(fitted.classes))
    predicted = fitted.predict(features[test])
    return ClassifierResult(predicted, float(np.mean(np.array(predicted) == labels[test])),
                            float(np.mean(labels[test] == commonest)), fitted.ridge, list(fitted.classes))
