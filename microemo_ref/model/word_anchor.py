"""Word anchors: the projection lands a span's flash next to the word the LLM already reads for it.

**Our addition, a training loss; the model it trains is MicroEmo's unchanged.** At inference
the LLM sees exactly what the paper gives it: the Q-Former tokens of each span through one
linear projection into its embedding space. What this module changes is where training
pushes those projected tokens. The token heads (:mod:`~microemo_ref.model.token_heads`) make
the tokens *carry* the flash (a linear probe reads its emotion), but the LLM still has to
learn, from a few hundred answers, that some direction of a 576-wide vector means "sad". It
already knows one such direction: the embedding of the word itself. The anchor loss asks
that in a span holding a flash of emotion ``c``, one projected video token point (in cosine)
towards the LLM's embedding of ``c``'s words, and that in a flash-free span none does.

With ``P`` the bridge's projection, ``t_{k,q}`` query ``q`` of span ``k`` and ``e_c`` the
emotion's word vector (the mean input embedding of its lexicon words, unit length)

.. math::

    s_{k,c} = \\max_q \\frac{\\cos(P t_{k,q},\\, e_c)}{\\tau}, \\qquad
    \\ell_k = \\mathrm{CE}\\big([\\,b,\\; s_{k,1}, \\dots, s_{k,C}\\,],\\; y_k\\big)

where ``b`` is a learned threshold standing for "no flash" (class 0) and ``y_k`` the span's
flash class (``span_targets``), "none" weighted down as in the token heads. The cross-entropy
only orders the cosines (after it alone, on the generated clips, a flash span's nearest token
sat at a cosine of 0.13 from its word); a pull, ``1 - \\tau s_{k,y_k}`` on the spans with a flash,
makes that token point along the word itself. The maximum over
queries leaves the other queries free for what else the span holds; cosine, not the dot
product, leaves the token's length to the answer loss (every LLaMA layer normalises its input
per position, so the direction is what the first layer reads). The same loss, with no
threshold, anchors each audio span to the words of its voice's emotion.

In the lineage: LLaVA and BLIP-2 train their projection only through the LLM's loss; the
idea of reading a soft token by its nearest word embeddings is the "interpretable prompt"
probe of soft-prompt work (Khashabi et al., 2022), turned here into a training target.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from microemo_ref.lexicon import LEXICON
from microemo_ref.model.token_heads import FLASH_CLASSES, NONE_WEIGHT, VOICE_CLASSES, SpanTargets

TAU = 0.05  # cosine temperature. The emotion words sit close together (cosines 0.7-0.85 in SmolLM2):
# a gap of 0.1 in cosine must be a logit gap of 2


def word_vectors(tokenizer, embedding: nn.Embedding, heads: tuple[str, ...]) -> Tensor:
    """(C, W): for each head emotion, the mean input embedding of its lexicon words, unit length.

    Each word is embedded as it appears mid-sentence (with a leading space), as the mean of its
    tokens' embeddings; a head's vector is the mean over its words.
    """
    rows = []
    with torch.no_grad():
        for head in heads:
            words = []
            for word in LEXICON[head]:
                ids = tokenizer(" " + word, add_special_tokens=False)["input_ids"]
                words.append(embedding.weight[torch.tensor(ids, device=embedding.weight.device)].mean(0))
            rows.append(F.normalize(torch.stack(words).mean(0), dim=-1))
    return torch.stack(rows)


class WordAnchor(nn.Module):
    """The anchor loss of the module docstring, for one kind of span (video or audio)."""

    def __init__(self, words: Tensor, n_queries: int, threshold: bool) -> None:
        super().__init__()
        self.register_buffer("words", F.normalize(words, dim=-1), persistent=False)  # (C, W), frozen
        self.n_queries = n_queries
        self.none = nn.Parameter(torch.zeros(())) if threshold else None

    def logits(self, projected: Tensor) -> Tensor:
        """(K * Q, W) projected span tokens -> (K, C) or (K, 1 + C) with the threshold first."""
        cos = F.normalize(projected, dim=-1) @ self.words.T  # (K*Q, C)
        best = cos.reshape(-1, self.n_queries, cos.shape[-1]).amax(1) / TAU  # (K, C)
        if self.none is None:
            return best
        return torch.cat([self.none.expand(len(best), 1), best], dim=1)

    def loss(self, projected: Tensor, target: list[int]) -> Tensor:
        """The cross-entropy over the span's classes plus the pull: ``1 - cos`` of the nearest
        token to the span's own word, over the spans that have one (the cross-entropy alone
        only orders the cosines; the pull makes the token the word's direction, which the LLM reads)."""
        logits = self.logits(projected)
        y = torch.tensor(target, device=logits.device)
        weight = None
        if self.none is not None:
            weight = torch.ones(logits.shape[-1], device=logits.device)
            weight[0] = NONE_WEIGHT
        ce = F.cross_entropy(logits, y, weight=weight)
        word = y - 1 if self.none is not None else y  # index into self.words; -1: no word
        has = word >= 0
        if not has.any():
            return ce
        scaled = logits[:, 1:] if self.none is not None else logits  # (K, C): nearest-token cosine / TAU
        best = scaled[has].gather(1, word[has, None])[:, 0] * TAU
        return ce + (1 - best).mean()


class Anchors(nn.Module):
    """The flash anchor on video spans and the voice anchor on audio spans, built for one LLM."""

    def __init__(self, tokenizer, embedding: nn.Embedding, n_queries: int, audio_queries: int) -> None:
        super().__init__()
        self.flash = WordAnchor(word_vectors(tokenizer, embedding, FLASH_CLASSES[1:]), n_queries, threshold=True)
        self.voice = WordAnchor(word_vectors(tokenizer, embedding, VOICE_CLASSES), audio_queries, threshold=False)

    def loss(self, bridge, visual_tokens: Tensor, audio_tokens: Tensor | None,
             targets: SpanTargets) -> dict[str, Tensor]:
        """``anchor_flash`` (and ``anchor_voice`` with audio) of one clip; ``bridge`` projects."""
        losses = {"anchor_flash": self.flash.loss(bridge.visual(visual_tokens), targets.flash)}
        if audio_tokens is not None and targets.voice is not None:
            losses["anchor_voice"] = self.voice.loss(bridge.audio(audio_tokens), targets.voice)
        return losses

    @torch.no_grad()
    def predict(self, bridge, visual_tokens: Tensor) -> list[str]:
        """Per video span, the flash class its nearest-word token names ("none" under the threshold)."""
        return [FLASH_CLASSES[k] for k in self.flash.logits(bridge.visual(visual_tokens)).argmax(-1).tolist()]


__all__ = ["Anchors", "TAU", "WordAnchor", "word_vectors"]
