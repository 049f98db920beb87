"""Content-weighted answer loss: the words that only the tokens can tell, weighted up (our addition).

MicroEmo, like AffectGPT and Video-LLaMA, trains the LLM with the plain answer-only
cross-entropy: every answer token counts the same. In a gold EMER explanation most tokens can
be written without looking at the video at all: the template ("The person opens with"), the
quoted subtitles and their times, all of which the prompt holds. The few that cannot (which
face movement flashed, when, and what emotion it gives away) are what the visual tokens must
carry, and they are a small share of the loss. A model can bring its mean loss down by writing
the form well and guessing the content.

This module is not in the paper. It gives each answer token a weight

    w_t = c  if token t overlaps a content word of the answer, else 1,

and the loss becomes the weighted mean of the per-token cross-entropies,

    L = sum_t w_t * CE_t / sum_t w_t      (over answer tokens t),

which is the plain answer-only loss when c = 1. Content words are whole words of a given
vocabulary (emotion words, face-movement words) and numbers ("4.0", "2"), matched on the
answer's text, case-insensitive; a token counts when its characters overlap one.

``train --content-weight C`` uses it; the training notebook shows which tokens a gold answer
weights.
"""
from __future__ import annotations

import re
from collections.abc import Iterable

import torch
from torch import Tensor

from microemo_ref.model.bridge import IGNORE, Assembled, padded

NUMBER = r"\d+(?:\.\d+)?"


def content_pattern(words: Iterable[str]) -> re.Pattern:
    """One regex that matches any of ``words`` as a whole word, or a number."""
    alternatives = sorted({w.lower() for w in words if w.strip()}, key=len, reverse=True)
    body = "|".join([re.escape(w) for w in alternatives] + [NUMBER])
    return re.compile(rf"(?<![\w.])(?:{body})(?!\w)", re.IGNORECASE)


def piece_offsets(tokenizer, ids: list[int]) -> tuple[str, list[tuple[int, int]]]:
    """The text of ``ids`` and each token's (start, end) characters in it.

    Each token is decoded on its own and the pieces are laid end to end, which is exact for a
    byte-level BPE on ASCII text (the gold answers are ASCII); a character split across two
    tokens would decode to a replacement mark, and is still counted to both.
    """
    spans, text = [], ""
    for i in ids:
        piece = tokenizer.decode([i])
        spans.append((len(text), len(text) + len(piece)))
        text += piece
    return text, spans


def content_weights(tokenizer, a: Assembled, pattern: re.Pattern, weight: float) -> Tensor:
    """(L,) weights for ``a.labels``: ``weight`` on answer tokens in a content word, 1 elsewhere
    (and 0 where the label is IGNORE, so the weights can be summed as they are)."""
    w = (a.labels != IGNORE).to(torch.float32)
    first, end = next((f, e) for what, f, e in a.parts if what == "answer")
    text, spans = piece_offsets(tokenizer, a.ids[first:end].tolist())
    hits = [m.span() for m in pattern.finditer(text)]
    for k, (s, e) in enumerate(spans):
        if any(s < he and hs < e for hs, he in hits):
            w[first + k] = weight
    return w


def weighted_answer_loss(model, batch: list[Assembled], weights: list[Tensor]) -> Tensor:
    """sum(w * CE) / sum(w) over the answer tokens of a right-padded batch (see the module docstring)."""
    embeds, labels, mask = padded(batch)
    w = torch.zeros(labels.shape, device=labels.device)  # (B, L), 0 on the padding
    for i, wi in enumerate(weights):
        w[i, :len(wi)] = wi
    logits = model(inputs_embeds=embeds, attention_mask=mask).logits.float()  # (B, L, V)
    # position t predicts token t + 1
    ce = torch.nn.functional.cross_entropy(logits[:, :-1].transpose(1, 2), labels[:, 1:],
                                           ignore_index=IGNORE, reduction="none")  # (B, L - 1)
    w = w[:, 1:] * (labels[:, 1:] != IGNORE)
    return (w * ce).sum() / w.sum()


__all__ = ["content_pattern", "content_weights", "piece_offsets", "weighted_answer_loss"]
