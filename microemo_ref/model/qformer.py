"""The BLIP-2 Q-Former, from scratch: learned queries that read a frozen image encoder.

A BERT-style post-LN transformer (Li et al., 2023). A fixed set of learned query vectors,
optionally followed by text tokens, share one bidirectional self-attention. Only the query
positions then cross-attend to the image features (in layers 0, k, 2k, ... for
``cross_every = k``), and queries and text go through separate feed-forward blocks. The query
slice of the last layer is what the rest of MicroEmo consumes (projected to the LLM width).

Every sub-layer is ``LayerNorm(x + Dropout(sublayer(x)))`` (post-LN, as in BERT). The
embedding LayerNorm is applied to the whole ``[queries; text]`` sequence, queries included.

The module mirrors ``transformers.Blip2QFormerModel`` weight for weight (see
``load_hf_qformer_weights``); the names differ, the arithmetic does not.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from einops import rearrange
from torch import Tensor, nn

if TYPE_CHECKING:
    from transformers import Blip2QFormerConfig, Blip2QFormerModel


@dataclass(frozen=True)
class QFormerConfig:
    hidden: int = 768  # D
    layers: int = 12
    heads: int = 12  # H
    ffn: int = 3072
    n_queries: int = 32  # Q
    encoder_width: int = 1408  # width of the image features (EVA-CLIP ViT-g: 1408)
    cross_every: int = 2  # layer i cross-attends iff i % cross_every == 0
    dropout: float = 0.0  # embeddings, attention probabilities and sub-layer outputs
    layer_norm_eps: float = 1e-12
    vocab_size: int = 30522  # BERT-base uncased
    max_positions: int = 512
    text_input: bool = True  # build the text path (word/position embeddings, text FFNs)

    @classmethod
    def tiny(cls, **overrides: object) -> "QFormerConfig":
        """A ~140k-parameter config for tests and notebooks; keywords override sizes."""
        sizes = dict(hidden=64, layers=2, heads=4, ffn=128, n_queries=8, encoder_width=48,
                     cross_every=1, vocab_size=100, max_positions=32)
        return cls(**{**sizes, **overrides})

    def has_cross_attention(self, layer: int) -> bool:
        return layer % self.cross_every == 0  # HF's `cross_attention_frequency` rule


@dataclass
class QFormerOutput:
    queries: Tensor  # (B, Q, D) the query slice of the last layer
    text: Tensor | None  # (B, L, D) the text slice, when text was given
    self_attentions: list[Tensor] | None  # per layer (B, H, Q+L, Q+L)
    cross_attentions: list[Tensor] | None  # per cross-attention layer (B, H, Q, N)


class AttentionBlock(nn.Module):
    """Multi-head attention, then residual + LayerNorm. Cross-attention when kv_width != hidden."""

    def __init__(self, cfg: QFormerConfig, kv_width: int) -> None:
        super().__init__()
        self.heads = cfg.heads
        self.q = nn.Linear(cfg.hidden, cfg.hidden)
        self.k = nn.Linear(kv_width, cfg.hidden)
        self.v = nn.Linear(kv_width, cfg.hidden)
        self.out = nn.Linear(cfg.hidden, cfg.hidden)
        self.norm = nn.LayerNorm(cfg.hidden, eps=cfg.layer_norm_eps)
        self.attn_dropout = nn.Dropout(cfg.dropout)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: Tensor, context: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor]:
        """x (B, T, D) attends to context (B, S, C); mask (B, S), True = may be attended to."""
        q = rearrange(self.q(x), "b t (h d) -> b h t d", h=self.heads)  # (B, H, T, d)
        k = rearrange(self.k(context), "b s (h d) -> b h s d", h=self.heads)  # (B, H, S, d)
        v = rearrange(self.v(context), "b s (h d) -> b h s d", h=self.heads)  # (B, H, S, d)
        scores = torch.einsum("bhtd,bhsd->bhts", q, k) * q.shape[-1] ** -0.5  # (B, H, T, S)
        if mask is not None:
            keep = rearrange(mask.bool(), "b s -> b 1 1 s")
            scores = scores.masked_fill(~keep, torch.finfo(scores.dtype).min)  # as HF: no NaN rows
        probs = scores.softmax(dim=-1)  # (B, H, T, S), rows sum to 1
        mixed = torch.einsum("bhts,bhsd->bhtd", self.attn_dropout(probs), v)  # (B, H, T, d)
        mixed = rearrange(mixed, "b h t d -> b t (h d)")  # (B, T, D)
        return self.norm(x + self.dropout(self.out(mixed))), probs


class FeedForward(nn.Module):
    """Linear -> GELU -> Linear, then residual + LayerNorm."""

    def __init__(self, cfg: QFormerConfig) -> None:
        super().__init__()
        self.fc_in = nn.Linear(cfg.hidden, cfg.ffn)
        self.act = nn.GELU()  # exact (erf) GELU, as BERT and HF's "gelu"
        self.fc_out = nn.Linear(cfg.ffn, cfg.hidden)
        self.norm = nn.LayerNorm(cfg.hidden, eps=cfg.layer_norm_eps)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: Tensor) -> Tensor:  # (B, T, D) -> (B, T, D)
        return self.norm(x + self.dropout(self.fc_out(self.act(self.fc_in(x)))))


class QFormerLayer(nn.Module):
    """Self-attention over [queries; text]; queries cross-attend; two FFNs."""

    def __init__(self, cfg: QFormerConfig, index: int) -> None:
        super().__init__()
        self.self_attn = AttentionBlock(cfg, kv_width=cfg.hidden)
        cross = cfg.has_cross_attention(index)
        self.cross_attn = AttentionBlock(cfg, kv_width=cfg.encoder_width) if cross else None
        self.query_ffn = FeedForward(cfg)
        self.text_ffn = FeedForward(cfg) if cfg.text_input else None

    def forward(self, x: Tensor, n_queries: int, image: Tensor, self_mask: Tensor | None,
                image_mask: Tensor | None) -> tuple[Tensor, Tensor, Tensor | None]:
        x, self_probs = self.self_attn(x, x, self_mask)  # (B, Q+L, D)
        queries, text = x[:, :n_queries], x[:, n_queries:]  # (B, Q, D), (B, L, D)
        cross_probs = None
        if self.cross_attn is not None:
            queries, cross_probs = self.cross_attn(queries, image, image_mask)  # (B, Q, D)
        queries = self.query_ffn(queries)
        if text.shape[1] > 0:
            if self.text_ffn is None:
                raise ValueError("text given, but the config was built with text_input=False")
            queries = torch.cat([queries, self.text_ffn(text)], dim=1)  # (B, Q+L, D)
        return queries, self_probs, cross_probs


class QFormer(nn.Module):
    """Learned queries (+ optional text) read image features; returns the query states."""

    def __init__(self, cfg: QFormerConfig) -> None:
        super().__init__()
        if cfg.hidden % cfg.heads:
            raise ValueError(f"hidden {cfg.hidden} is not a multiple of heads {cfg.heads}")
        self.cfg = cfg
        self.query_tokens = nn.Parameter(torch.randn(1, cfg.n_queries, cfg.hidden) * 0.02)
        if cfg.text_input:
            self.word_embeddings = nn.Embedding(cfg.vocab_size, cfg.hidden)
            self.position_embeddings = nn.Embedding(cfg.max_positions, cfg.hidden)
        self.embed_norm = nn.LayerNorm(cfg.hidden, eps=cfg.layer_norm_eps)
        self.embed_dropout = nn.Dropout(cfg.dropout)
        self.layers = nn.ModuleList(QFormerLayer(cfg, i) for i in range(cfg.layers))

    def forward(self, image_embeds: Tensor, image_mask: Tensor | None = None,
                text_ids: Tensor | None = None, text_mask: Tensor | None = None, *,
                return_attentions: bool = False) -> QFormerOutput:
        """image_embeds (B, N, C), image_mask (B, N), text_ids and text_mask (B, L); 1 = real."""
        batch, n_queries = image_embeds.shape[0], self.cfg.n_queries
        x = self.query_tokens.expand(batch, -1, -1)  # (B, Q, D)
        self_mask = None
        if text_ids is not None:
            if not self.cfg.text_input:
                raise ValueError("text_ids given, but the config was built with text_input=False")
            positions = torch.arange(text_ids.shape[1], device=text_ids.device)  # (L,)
            text = self.word_embeddings(text_ids) + self.position_embeddings(positions)  # (B, L, D)
            x = torch.cat([x, text], dim=1)  # (B, Q+L, D)
            if text_mask is not None:  # queries are never padding
                ones = text_mask.new_ones(batch, n_queries)
                self_mask = torch.cat([ones, text_mask], dim=1)  # (B, Q+L)
        x = self.embed_dropout(self.embed_norm(x))  # LayerNorm over queries and text alike
        self_attentions: list[Tensor] = []
        cross_attentions: list[Tensor] = []
        for layer in self.layers:
            x, self_probs, cross_probs = layer(x, n_queries, image_embeds, self_mask, image_mask)
            self_attentions.append(self_probs)
            if cross_probs is not None:
                cross_attentions.append(cross_probs)
        return QFormerOutput(
            queries=x[:, :n_queries],
            text=x[:, n_queries:] if text_ids is not None else None,
            self_attentions=self_attentions if return_attentions else None,
            cross_attentions=cross_attentions if return_attentions else None,
        )

    @classmethod
    def from_hf(cls, hf: "Blip2QFormerModel", query_tokens: Tensor,
                text_embeddings: nn.Module | None = None) -> "QFormer":
        """Build a QFormer shaped like `hf` and copy its weights (see load_hf_qformer_weights)."""
        c = hf.config
        cfg = QFormerConfig(
            hidden=c.hidden_size, layers=c.num_hidden_layers, heads=c.num_attention_heads,
            ffn=c.intermediate_size, n_queries=query_tokens.shape[1],
            encoder_width=c.encoder_hidden_size, cross_every=c.cross_attention_frequency,
            dropout=c.hidden_dropout_prob, layer_norm_eps=c.layer_norm_eps,
            vocab_size=c.vocab_size, max_positions=c.max_position_embeddings,
            text_input=text_embeddings is not None)
        model = cls(cfg)
        load_hf_qformer_weights(model, hf, query_tokens, text_embeddings)
        return model


# --- interoperability with transformers' Blip2QFormerModel -----------------------------------

# HF module path inside `encoder.layer.{i}.` -> ours inside `layers.{i}.`
_HF_LAYER_MODULES: dict[str, str] = {
    "intermediate_query.dense": "query_ffn.fc_in",  # the query FFN
    "output_query.dense": "query_ffn.fc_out",
    "output_query.LayerNorm": "query_ffn.norm",
    "intermediate.dense": "text_ffn.fc_in",  # the text FFN (HF: only if use_qformer_text_input)
    "output.dense": "text_ffn.fc_out",
    "output.LayerNorm": "text_ffn.norm",
}
for _hf, _ours in [("attention", "self_attn"), ("crossattention", "cross_attn")]:
    _HF_LAYER_MODULES |= {
        f"{_hf}.attention.query": f"{_ours}.q",
        f"{_hf}.attention.key": f"{_ours}.k",
        f"{_hf}.attention.value": f"{_ours}.v",
        f"{_hf}.output.dense": f"{_ours}.out",
        f"{_hf}.output.LayerNorm": f"{_ours}.norm",
    }


def _hf_to_ours(name: str) -> str:
    """Our parameter name for an HF Blip2QFormerModel one (unchanged if there is none)."""
    m = re.fullmatch(r"encoder\.layer\.(\d+)\.(.+)\.(weight|bias)", name)
    if m and m[2] in _HF_LAYER_MODULES:
        return f"layers.{m[1]}.{_HF_LAYER_MODULES[m[2]]}.{m[3]}"
    if name.startswith("layernorm."):  # the embedding LayerNorm
        return "embed_norm." + name.removeprefix("layernorm.")
    return name


def load_hf_qformer_weights(model: QFormer, hf: "Blip2QFormerModel", query_tokens: Tensor,
                            text_embeddings: nn.Module | None = None) -> None:
    """Copy weights from transformers' Blip2QFormerModel into `model`, in place.

    `query_tokens` (1, Q, D) is the parameter Blip2Model / Blip2ForConditionalGeneration hold
    beside their `.qformer`. The HF Q-Former owns no text embeddings: for the text path pass a
    `Blip2TextEmbeddings` (e.g. `Blip2ForImageTextRetrieval.embeddings`). Raises ValueError
    naming every tensor that has no counterpart or the wrong shape; copies nothing then.
    """
    source = {_hf_to_ours(k): v for k, v in hf.state_dict().items()}
    source["query_tokens"] = query_tokens.detach().reshape(1, *query_tokens.shape[-2:])
    if text_embeddings is not None:
        source |= text_embeddings.state_dict()  # word_embeddings.*, position_embeddings.*
    ours = model.state_dict()
    problems = [f"HF tensor with no counterpart: {k}" for k in source if k not in ours]
    problems += [f"shape mismatch for {k}: ours {tuple(ours[k].shape)}, HF {tuple(v.shape)}"
                 for k, v in source.items() if k in ours and ours[k].shape != v.shape]
    problems += [f"ours left unset: {k}" for k in ours if k not in source]
    if problems:
        raise ValueError("cannot load HF Q-Former weights:\n  " + "\n  ".join(problems))
    with torch.no_grad():
        for k, v in source.items():
            ours[k].copy_(v)


def to_hf_config(cfg: QFormerConfig) -> "Blip2QFormerConfig":
    """The Blip2QFormerConfig of an equivalently shaped transformers Q-Former."""
    from transformers import Blip2QFormerConfig

    return Blip2QFormerConfig(
        vocab_size=cfg.vocab_size, hidden_size=cfg.hidden, num_hidden_layers=cfg.layers,
        num_attention_heads=cfg.heads, intermediate_size=cfg.ffn, hidden_act="gelu",
        hidden_dropout_prob=cfg.dropout, attention_probs_dropout_prob=cfg.dropout,
        max_position_embeddings=cfg.max_positions, layer_norm_eps=cfg.layer_norm_eps,
        cross_attention_frequency=cfg.cross_every, encoder_hidden_size=cfg.encoder_width,
        use_qformer_text_input=cfg.text_input)


__all__ = ["QFormer", "QFormerConfig", "QFormerOutput", "load_hf_qformer_weights", "to_hf_config"]
