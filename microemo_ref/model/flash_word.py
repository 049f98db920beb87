"""The flash word: each video span's tokens read by a straight line, handed to the LLM as a soft word.

**Our addition, not MicroEmo's.** MicroEmo gives the LLM the video Q-Former's tokens of each
span through one linear projection and lets the LLM learn what they mean. On this reference's
generated clips the tokens do carry a micro-expression (a ridge probe on an utterance's frozen
tokens names the flash's emotion on a face training never saw; :mod:`~microemo_ref.pipeline.token_probe`),
but the LLM, trained on a few hundred answers, reads much less of it through the projection.
The flash word gives each video span one more input vector, computed from that span's tokens
alone, that the LLM already knows how to read: a blend of its own input embeddings of the
emotion words.

A ridge classifier (:func:`~microemo_ref.model.probe.fit_ridge_classifier`) on the span's Q
tokens, flattened, scores the flash classes ``c`` of :data:`~microemo_ref.model.token_heads.FLASH_CLASSES`
("none", "angry", ..., "surprise"); a softmax at temperature ``T`` makes them probabilities,
and the span's extra token is

.. math::

    s_k = R\\big(\\mathrm{flat}(t_k)\\big), \\qquad p_k = \\mathrm{softmax}(s_k / T), \\qquad
    w_k = \\sum_c p_{k,c}\\, E[c]

where ``E[c]`` is the frozen LLM's input embedding of the class's word (" sad", " none"; each
is one SmolLM2 token). A sure reader makes ``w_k`` the word itself; an unsure one, a blend
that the LLM learns to weigh. ``w_k`` follows the span's ``Q`` projected tokens inside its
"video" slot of the prompt (:func:`~microemo_ref.model.bridge.assemble`).

What it is and is not:

* It is read from the video tokens and nothing else: no spotter, no measured cue, no text.
  Knocking out the video tokens removes it; knocking out the local branch changes the tokens
  it reads; ``--knockout flash_word`` removes it alone.
* It is fitted in closed form on the training clips once the encoder is trained, and the
  encoder is frozen from then on (:func:`~microemo_ref.pipeline.train.train`), so the reader
  stays true to the tokens it reads. The flash class of a span is the one the token heads
  learn (:func:`~microemo_ref.model.token_heads.span_targets`); "none" weighs
  :data:`~microemo_ref.model.token_heads.NONE_WEIGHT` in the fit, as in the heads.
* It names only the classes the training spans hold (each of the eight on the generated
  training clips).
* The ridge strength and ``T`` are chosen on a fifth of the training clips held out from a
  first fit (accuracy of the flash spans, then log-likelihood); the reader is then refitted on
  every training clip. (With fewer than 5 clips, as in a test, both are chosen on the fitting rows.)

In the lineage: reading a frozen representation with a linear probe is the probing method of
Alain and Bengio (2016); turning a class distribution into a mixture of word embeddings is the
"soft word" input of soft-prompt work. Neither is in MicroEmo's paper.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from microemo_ref.model.probe import RidgeClassifier, fit_ridge_classifier
from microemo_ref.model.token_heads import NONE_WEIGHT

RIDGES = (1.0, 10.0, 100.0, 1000.0)
TEMPERATURES = (0.02, 0.05, 0.1, 0.2, 0.5, 1.0)


@dataclass(frozen=True)
class FlashReader:
    """The fitted reader: a ridge classifier over the flash classes and its softmax temperature."""

    classifier: RidgeClassifier
    temperature: float

    def scores(self, features: Tensor) -> Tensor:
        """(K, Q*D) flattened span tokens -> (K, C) class scores, in torch (differentiable in the tokens)."""
        c = self.classifier
        mean, std, weight = (torch.as_tensor(a, dtype=features.dtype, device=features.device)
                             for a in (c.mean, c.std, c.weight))
        return ((features - mean) / std) @ weight[:-1] + weight[-1]

    def probabilities(self, features: Tensor) -> Tensor:
        return torch.softmax(self.scores(features) / self.temperature, dim=-1)  # (K, C)

    def to_json(self) -> dict:
        return {"classifier": self.classifier.to_json(), "temperature": self.temperature}

    @classmethod
    def from_json(cls, d: dict) -> FlashReader:
        return cls(RidgeClassifier.from_json(d["classifier"]), float(d["temperature"]))


def word_table(tokenizer, embedding: nn.Embedding, classes: Sequence[str]) -> Tensor:
    """(C, W): the LLM's input embedding of each class's word, as it appears mid-sentence."""
    rows = []
    for name in classes:
        ids = tokenizer(" " + name, add_special_tokens=False)["input_ids"]
        if len(ids) != 1:
            raise ValueError(f"flash word {name!r} is {len(ids)} tokens for this tokenizer; it must be one")
        rows.append(embedding.weight[ids[0]])
    return torch.stack(rows).detach()


def per_span(tokens: Tensor, n_queries: int) -> Tensor:
    """(K * Q, D) span tokens -> (K, Q * D): one row per span, as the reader reads them."""
    return tokens.reshape(-1, n_queries * tokens.shape[-1])


def span_probabilities(reader: FlashReader, tokens: Tensor, n_queries: int) -> Tensor:
    """(K * Q, D) span tokens -> (K, C) the reader's class probabilities of each span."""
    return reader.probabilities(per_span(tokens, n_queries))


def flash_words(reader: FlashReader, tokens: Tensor, n_queries: int, table: Tensor) -> Tensor:
    """(K * Q, D) span tokens -> (K, W) one soft word per span: sum_c p_{k,c} E[c]."""
    return span_probabilities(reader, tokens, n_queries) @ table  # (K, C) @ (C, W)


#: Utterances a pointer can name: the digits 1-9 are one SmolLM2 token each ("utterance 12" is two).
POINTER_UTTERANCES = 9


def digit_table(tokenizer, embedding: nn.Embedding, digits: Sequence[int] = range(1, POINTER_UTTERANCES + 1)) -> Tensor:
    """(len(digits), W): the LLM's input embedding of each digit (1-9 by default, as "utterance 3"
    tokenizes the 3; :mod:`~microemo_ref.model.flash_time` asks for 0-9)."""
    rows = []
    for d in digits:
        ids = tokenizer(f"utterance {d}", add_special_tokens=False)["input_ids"]
        if tokenizer.decode(ids[-1:]) != str(d):
            raise ValueError(f"the flash pointer needs the digit {d} as one token of its own; this tokenizer "
                             f"writes 'utterance {d}' as {tokenizer.convert_ids_to_tokens(ids)}")
        rows.append(embedding.weight[ids[-1]])
    return torch.stack(rows).detach()


def pointer_mass(p: Tensor, spans: Sequence, classes: Sequence[str]) -> tuple[list[int], Tensor]:
    """The utterance spans a pointer can name (rows of ``p``) and their flash masses ``q`` (U,):
    ``m_k = 1 - p_{k,none}``, ``q_k = m_k / max(1, sum_j m_j)`` (see :func:`flash_pointer`)."""
    none = list(classes).index("none")
    rows = [k for k, s in enumerate(spans) if s.kind == "utterance" and s.index < POINTER_UTTERANCES]
    mass = 1.0 - p[rows, none]  # (U,)
    return rows, mass / torch.clamp(mass.sum(), min=1.0)


def flash_pointer(p: Tensor, spans: Sequence, classes: Sequence[str], table: Tensor, digits: Tensor) -> Tensor:
    """(K, C) span class probabilities -> (2, W): a soft utterance number and a soft emotion word.

    Our addition (the flash pointer, ``MicroEmoConfig.flash_pointer``). With ``m_k = 1 - p_{k,none}``
    the flash mass of utterance span k (utterances 1-9; the whole clip is not an utterance),
    ``q_k = m_k / max(1, sum_j m_j)``, and ``w_k = sum_c p_{k,c} E[c]`` the span's flash word:

        u = sum_k q_k D[k],        e = sum_k q_k w_k + (1 - sum_k q_k) E[none]

    where ``D[k]`` is the embedding of utterance k's digit. One sure flash in utterance 3 makes
    ``u`` the digit 3 and ``e`` its emotion word; no flash makes ``u`` the zero vector and ``e``
    the word " none".
    """
    none = list(classes).index("none")
    rows, q = pointer_mass(p, spans, classes)
    if not rows:
        return torch.stack([torch.zeros_like(table[none]), table[none]])
    index = torch.tensor([spans[k].index for k in rows], device=p.device)
    u = q @ digits[index]  # (U,) @ (U, W)
    e = q @ (p[rows] @ table) + (1.0 - q.sum()) * table[none]  # (U,) @ (U, W): the utterances' flash words
    return torch.stack([u, e])  # (2, W)


def read_spans(reader: FlashReader, tokens: Tensor, n_queries: int) -> list[str]:
    """The reader's most probable class of each span (for figures and reports)."""
    return reader.classifier.predict(per_span(tokens, n_queries).detach().cpu().numpy())


def _log_likelihood(reader: FlashReader, x: np.ndarray, labels: np.ndarray) -> float:
    """Mean log probability of the true class, over the rows whose class the reader knows.

    With few clips the held-out fifth can hold a class no fitting row has; those rows say
    nothing about the temperature (every one of them would score log 0), so they are left out.
    """
    known = np.isin(labels, reader.classifier.classes)
    if not known.any():
        return 0.0
    p = reader.probabilities(torch.as_tensor(x[known], dtype=torch.float64)).numpy()
    index = np.array([reader.classifier.classes.index(y) for y in labels[known]])
    return float(np.log(p[np.arange(len(index)), index] + 1e-12).mean())


def fit_flash_reader(features: np.ndarray, labels: Sequence[str], clip_of_row: Sequence[int],
                     seed: int = 0) -> tuple[FlashReader, dict]:
    """Fit the reader on (N, Q*D) span features and their flash classes (see the module docstring).

    ``clip_of_row`` groups rows by clip, so the held-out fifth holds whole clips. Returns the
    reader and what the choice saw (ridge, temperature, held-out flash accuracy, rows).
    """
    labels = np.asarray(labels)
    if len(set(labels)) < 2:
        raise ValueError(f"the training spans hold only {sorted(set(labels))}: the flash word needs two classes or more")
    clips = np.asarray(clip_of_row)
    unique = np.unique(clips)
    held = np.random.default_rng(seed).permutation(unique)[: len(unique) // 5]
    val = np.isin(clips, held)
    fit_rows = ~val
    if not val.any():  # fewer than 5 clips: choose on the fitting rows themselves
        val = fit_rows = np.ones(len(labels), dtype=bool)
    weight = np.where(labels == "none", NONE_WEIGHT, 1.0)
    flash = val & (labels != "none")
    best = None
    for lam in RIDGES:
        first = fit_ridge_classifier(features[fit_rows], labels[fit_rows], (lam,), sample_weight=weight[fit_rows])
        accuracy = float(np.mean(np.array(first.predict(features[flash])) == labels[flash])) if flash.any() else 0.0
        if best is None or accuracy > best[0]:
            best = (accuracy, lam, first)
    accuracy, lam, first = best
    temperature = max(TEMPERATURES, key=lambda t: _log_likelihood(FlashReader(first, t), features[val], labels[val]))
    reader = FlashReader(fit_ridge_classifier(features, labels, (lam,), sample_weight=weight), temperature)
    return reader, {"ridge": lam, "temperature": temperature, "heldout_flash_accuracy": round(accuracy, 3),
                    "heldout_flash_spans": int(flash.sum()), "rows": len(labels)}


__all__ = ["FlashReader", "POINTER_UTTERANCES", "RIDGES", "TEMPERATURES", "digit_table", "fit_flash_reader", "flash_pointer",
           "flash_words", "per_span", "pointer_mass", "read_spans", "span_probabilities", "word_table"]
