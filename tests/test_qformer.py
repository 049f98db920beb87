"""The Q-Former's maths: weight-for-weight equal to transformers' Blip2QFormerModel, masks,
gradients, attention maps, determinism and the paper-scale parameter count."""
from __future__ import annotations

import pytest
import torch
from transformers import Blip2QFormerModel
from transformers.models.blip_2.modeling_blip_2 import Blip2TextEmbeddings

from microemo_ref.model.qformer import QFormer, QFormerConfig, load_hf_qformer_weights, to_hf_config

B, N, L = 2, 10, 5  # batch, image tokens, text tokens


def hf_pair(cfg: QFormerConfig, attn: str = "eager", seed: int = 0):
    """A seeded HF Q-Former (+ text embeddings, query tokens) and our copy of it, both eval."""
    hf_cfg = to_hf_config(cfg)
    hf_cfg._attn_implementation = attn
    torch.manual_seed(seed)
    hf = Blip2QFormerModel(hf_cfg).eval()
    text_embeddings = Blip2TextEmbeddings(hf_cfg).eval() if cfg.text_input else None
    # HF's N(0, 0.02) init keeps GELU and softmax nearly linear, hiding small mistakes (a tanh
    # GELU passes). Bolder random weights make every nonlinearity count.
    with torch.no_grad():
        for module in [hf] + ([text_embeddings] if text_embeddings is not None else []):
            for name, p in module.named_parameters():
                is_norm_gain = name.endswith(("LayerNorm.weight", "layernorm.weight"))
                p.normal_(1.0 if is_norm_gain else 0.0, 0.2)
    query_tokens = torch.randn(1, cfg.n_queries, cfg.hidden) * 0.02  # HF itself zero-inits these
    ours = QFormer(cfg).eval()
    load_hf_qformer_weights(ours, hf, query_tokens, text_embeddings)
    return ours, hf, text_embeddings, query_tokens


def inputs(cfg: QFormerConfig, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    image = torch.randn(B, N, cfg.encoder_width, generator=g)
    image_mask = torch.ones(B, N, dtype=torch.long)
    image_mask[1, 6:] = 0  # the second sample has 4 padded image tokens
    text_ids = torch.randint(1, cfg.vocab_size, (B, L), generator=g)
    text_mask = torch.ones(B, L, dtype=torch.long)
    text_mask[0, 3:] = 0  # the first sample has 2 padded text tokens
    return image, image_mask, text_ids, text_mask


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
@pytest.mark.parametrize("cross_every, layers", [(1, 2), (2, 3)])
def test_query_path_matches_hf(cross_every: int, layers: int, attn: str) -> None:
    cfg = QFormerConfig.tiny(cross_every=cross_every, layers=layers)
    ours, hf, _, query_tokens = hf_pair(cfg, attn)
    cross_layers = [l.cross_attn is not None for l in ours.layers]
    assert cross_layers == [l.has_cross_attention for l in hf.encoder.layer]  # i % k == 0
    image, image_mask, _, _ = inputs(cfg)
    with torch.no_grad():
        theirs = hf(query_embeds=query_tokens.expand(B, -1, -1), encoder_hidden_states=image,
                    encoder_attention_mask=image_mask, output_attentions=attn == "eager")
        out = ours(image, image_mask, return_attentions=True)
    assert (out.queries - theirs.last_hidden_state).abs().max() < 1e-5
    if attn == "eager":  # HF records attention maps only in eager mode...
        # ...and its `attentions` holds the cross-attention maps too (its recorder matches the
        # module name ".attention", which "crossattention.attention" also contains).
        hf_self = [a for a in theirs.attentions if a.shape[-1] == cfg.n_queries]
        assert len(theirs.attentions) == len(out.self_attentions) + len(out.cross_attentions)
        pairs = [(out.self_attentions, hf_self), (out.cross_attentions, theirs.cross_attentions)]
        for mine, hfs in pairs:
            assert len(mine) == len(hfs)
            assert all((a - b).abs().max() < 1e-6 for a, b in zip(mine, hfs))


@pytest.mark.parametrize("cross_every, layers", [(1, 2), (2, 3)])
def test_text_path_matches_hf(cross_every: int, layers: int) -> None:
    # HF runs text through its Q-Former as query_embeds=[queries; text embeddings] with
    # query_length=Q. (It crashes when text is combined with a padded encoder_attention_mask,
    # transformers 5.24, so the image here is unpadded; the mask tests cover ours.)
    cfg = QFormerConfig.tiny(cross_every=cross_every, layers=layers)
    ours, hf, text_embeddings, query_tokens = hf_pair(cfg)
    image, _, text_ids, text_mask = inputs(cfg)
    with torch.no_grad():
        embeds = text_embeddings(input_ids=text_ids, query_embeds=query_tokens.expand(B, -1, -1))
        full_mask = torch.cat([torch.ones(B, cfg.n_queries, dtype=torch.long), text_mask], dim=1)
        theirs = hf(query_embeds=embeds, query_length=cfg.n_queries, attention_mask=full_mask,
                    encoder_hidden_states=image).last_hidden_state
        out = ours(image, None, text_ids, text_mask)
    assert (out.queries - theirs[:, : cfg.n_queries]).abs().max() < 1e-5
    assert (out.text - theirs[:, cfg.n_queries :]).abs().max() < 1e-5


def test_padding_is_invisible() -> None:
    cfg = QFormerConfig.tiny(cross_every=2, layers=3)
    torch.manual_seed(0)
    model = QFormer(cfg).eval()
    image, image_mask, text_ids, text_mask = inputs(cfg)
    with torch.no_grad():
        out = model(image, image_mask, text_ids, text_mask, return_attentions=True)
        for probs in out.cross_attentions:  # (B, H, Q, N)
            assert probs[1, :, :, 6:].abs().max() < 1e-12
        # Scribble over the padded image tokens and padded text tokens: nothing real moves.
        image2, text_ids2 = image.clone(), text_ids.clone()
        image2[1, 6:] = 100 * torch.randn(4, cfg.encoder_width)
        text_ids2[0, 3:] = (text_ids2[0, 3:] + 7) % cfg.vocab_size
        out2 = model(image2, image_mask, text_ids2, text_mask)
    assert torch.allclose(out.queries, out2.queries, atol=1e-6)
    assert torch.allclose(out.text[0, :3], out2.text[0, :3], atol=1e-6)
    assert torch.allclose(out.text[1], out2.text[1], atol=1e-6)
    # ...whereas a real image token does change the queries.
    image2[1, 0] += 1.0
    with torch.no_grad():
        assert not torch.allclose(model(image2, image_mask).queries[1], out.queries[1], atol=1e-4)


def test_gradients_and_attention_maps() -> None:
    cfg = QFormerConfig.tiny(cross_every=2, layers=3)
    torch.manual_seed(0)
    model = QFormer(cfg)
    image, image_mask, text_ids, text_mask = inputs(cfg)
    image.requires_grad_(True)
    out = model(image, image_mask, text_ids, text_mask, return_attentions=True)
    (out.queries.square().sum() + out.text.square().sum()).backward()

    assert model.query_tokens.grad.abs().sum() > 0
    cross_layers = [l for l in model.layers if l.cross_attn is not None]
    assert len(cross_layers) == 2  # layers 0 and 2
    for layer in cross_layers:
        for lin in (layer.cross_attn.q, layer.cross_attn.k, layer.cross_attn.v):
            assert lin.weight.grad.abs().sum() > 0
    assert image.grad[0].abs().sum() > 0 and image.grad[1, :6].abs().sum() > 0
    assert image.grad[1, 6:].abs().max() == 0  # padded tokens get no gradient

    Q, H = cfg.n_queries, cfg.heads
    assert [tuple(a.shape) for a in out.self_attentions] == [(B, H, Q + L, Q + L)] * cfg.layers
    assert [tuple(a.shape) for a in out.cross_attentions] == [(B, H, Q, N)] * 2
    for probs in out.self_attentions + out.cross_attentions:
        assert torch.allclose(probs.sum(-1), torch.ones(()), atol=1e-5)
    assert model(image, image_mask).self_attentions is None  # only on request


def test_same_seed_same_model() -> None:
    cfg = QFormerConfig.tiny(n_queries=32)
    image, image_mask, _, _ = inputs(cfg)

    def run(seed: int) -> torch.Tensor:
        torch.manual_seed(seed)
        with torch.no_grad():
            return QFormer(cfg).eval()(image, image_mask).queries

    assert torch.equal(run(3), run(3))
    assert not torch.allclose(run(3), run(4))
    torch.manual_seed(0)
    std = QFormer(cfg).query_tokens.std().item()  # queries start as N(0, 0.02)
    assert 0.018 < std < 0.022


@pytest.mark.parametrize("cfg, expected", [
    (QFormerConfig.tiny(), 138_880),
    (QFormerConfig.tiny(text_input=False), 97_024),
    (QFormerConfig(), 185_683_968),  # BLIP-2 with its BERT text path: 23.8M of it embeddings
    (QFormerConfig(text_input=False), 105_162_240),  # what Blip2ForConditionalGeneration holds
], ids=["tiny-text-139k", "tiny-queries-97k", "paper-text-185.7M", "paper-queries-105.2M"])
def test_parameter_count_matches_hf(cfg: QFormerConfig, expected: int) -> None:
    def count(m: torch.nn.Module) -> int:
        return sum(p.numel() for p in m.parameters())

    with torch.device("meta"):  # shapes only, no memory, no init time
        ours = QFormer(cfg)
        hf_cfg = to_hf_config(cfg)
        hf = count(Blip2QFormerModel(hf_cfg)) + cfg.n_queries * cfg.hidden  # + query_tokens
        if cfg.text_input:
            hf += count(Blip2TextEmbeddings(hf_cfg))
    assert count(ours) == hf == expected


def test_loader_names_every_problem() -> None:
    cfg = QFormerConfig.tiny(cross_every=1, text_input=False)
    hf = Blip2QFormerModel(to_hf_config(QFormerConfig.tiny(cross_every=2, text_input=False)))
    with pytest.raises(ValueError, match=r"ours left unset: layers\.1\.cross_attn\.q\.weight"):
        load_hf_qformer_weights(QFormer(cfg), hf, torch.zeros(1, cfg.n_queries, cfg.hidden))
    hf = Blip2QFormerModel(to_hf_config(cfg))
    with pytest.raises(ValueError, match=r"shape mismatch for query_tokens"):
        load_hf_qformer_weights(QFormer(cfg), hf, torch.zeros(1, cfg.n_queries + 1, cfg.hidden))
    with pytest.raises(ValueError, match=r"text_input=False"):
        text_ids = torch.ones(1, 3, dtype=torch.long)
        QFormer(cfg)(torch.zeros(1, N, cfg.encoder_width), text_ids=text_ids)
