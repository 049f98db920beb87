"""Frame encoders: the small CNN, a local Hugging Face vision model loaded offline, and
TimeChat's time-aware frame encoder (timestamp text, MiniLM initialisation, frame positions)."""
from __future__ import annotations

import re
import time

import numpy as np
import pytest
import torch

from microemo_ref.model.frame_encoder import (FrameEncoderConfig, HFVisionEncoder,
                                              SmallFrameEncoder, build_frame_encoder,
                                              frames_to_tensor)
from microemo_ref.model.qformer import QFormer, QFormerConfig
from microemo_ref.model.time_encoder import (TIME_TEMPLATE, TimeAwareFrameEncoder,
                                             TimeEncoderConfig, init_from_minilm, load_tokenizer,
                                             minilm_folder, minilm_qformer_config)

N, C = 6, 48  # patch tokens per frame and their width, for the time encoder tests


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer()


def tiny_time_encoder(tokenizer, use_time_text: bool = True,
                      seed: int = 0) -> TimeAwareFrameEncoder:
    # vocab_size must hold MiniLM's 30522 ids; everything else is tiny.
    cfg = TimeEncoderConfig(QFormerConfig.tiny(vocab_size=30522, encoder_width=C), max_frames=8,
                            use_time_text=use_time_text)
    torch.manual_seed(seed)
    return TimeAwareFrameEncoder(cfg, tokenizer).eval()


# --- frame encoders --------------------------------------------------------------------------

def test_frames_to_tensor_shapes_range_and_checks() -> None:
    frames = np.random.default_rng(0).integers(0, 256, (3, 40, 60, 3), dtype=np.uint8)
    x = frames_to_tensor(frames, 32)
    assert x.shape == (3, 3, 32, 32) and x.dtype == torch.float32
    assert 0.0 <= x.min() and x.max() <= 1.0
    flat = frames_to_tensor(np.full((1, 50, 50, 3), 255, dtype=np.uint8), 20)
    assert torch.allclose(flat, torch.ones(1, 3, 20, 20))  # a constant stays constant
    with pytest.raises(ValueError, match="uint8"):
        frames_to_tensor(frames.astype(np.float32), 32)
    with pytest.raises(ValueError, match=r"\(T, H, W, 3\)"):
        frames_to_tensor(frames[0], 32)


def test_small_frame_encoder_shapes_and_gradients() -> None:
    cfg = FrameEncoderConfig()  # 112 px, patch 16 -> 7 x 7 = 49 tokens of width 48
    torch.manual_seed(0)
    encoder = build_frame_encoder(cfg)
    assert isinstance(encoder, SmallFrameEncoder) and encoder.n_patches == 49
    images = torch.rand(2, 3, 112, 112)
    features = encoder(images)
    assert features.shape == (2, 49, 48)
    features.pow(2).mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in encoder.parameters())
    # each token depends on its own image only
    with torch.no_grad():
        other = encoder(torch.cat([images[:1], torch.rand(1, 3, 112, 112)]))
    assert torch.allclose(other[0], features[0].detach(), atol=1e-6)


def test_build_frame_encoder_errors() -> None:
    with pytest.raises(ValueError, match="hf_path"):
        build_frame_encoder(FrameEncoderConfig(kind="hf"))
    with pytest.raises(ValueError, match="unknown frame encoder kind"):
        build_frame_encoder(FrameEncoderConfig(kind="vit"))


def test_hf_vision_encoder_loads_offline_by_path(tmp_path) -> None:
    from transformers import CLIPVisionConfig, CLIPVisionModel

    cfg = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                           num_attention_heads=2, image_size=32, patch_size=8)
    torch.manual_seed(0)
    CLIPVisionModel(cfg).save_pretrained(tmp_path)
    encoder = build_frame_encoder(FrameEncoderConfig(kind="hf", hf_path=str(tmp_path)))
    assert isinstance(encoder, HFVisionEncoder)
    assert (encoder.width, encoder.n_patches) == (32, 16)  # CLS dropped: 4 x 4 patches
    images = torch.rand(2, 3, 32, 32)
    features = encoder(images)
    assert features.shape == (2, 16, 32)
    # the patch tokens of the model itself, after CLIP normalisation
    mean = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(1, 3, 1, 1)
    std = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(1, 3, 1, 1)
    with torch.no_grad():
        direct = encoder.model(pixel_values=(images - mean) / std).last_hidden_state
    assert torch.allclose(features, direct[:, 1:], atol=1e-5)
    assert encoder(torch.rand(1, 3, 48, 40)).shape == (1, 16, 32)  # resized to 32 x 32
    assert not any(p.requires_grad for p in encoder.parameters())  # frozen
    assert not encoder.train().model.training  # and stays in eval mode


def test_hf_vision_encoder_missing_path_names_it(tmp_path) -> None:
    missing = tmp_path / "no-such-model"
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
        HFVisionEncoder(missing)


# --- MiniLM tokenizer and weights ------------------------------------------------------------

def test_tokenizer_offline_and_template(tokenizer) -> None:
    assert len(tokenizer) == 30522
    tokens = tokenizer.tokenize(TIME_TEMPLATE.format(t=3.5))
    assert tokens == ["this", "frame", "is", "sampled", "at", "3", ".", "5", "second", "."]
    # [CLS] + 10 + [SEP] for every time below 342 s (from 342 on, some integers split in two)
    sentences = [TIME_TEMPLATE.format(t=t / 10) for t in range(0, 3420, 7)]
    lengths = {len(tokenizer(s)["input_ids"]) for s in sentences}
    assert lengths == {12}


def test_init_from_minilm_copies_bert_weights() -> None:
    from safetensors.torch import load_file

    cfg = minilm_qformer_config(encoder_width=C, n_queries=4)
    assert (cfg.hidden, cfg.layers, cfg.heads, cfg.ffn, cfg.vocab_size) == (384, 6, 12, 1536, 30522)
    qformer = QFormer(cfg)
    copied = init_from_minilm(qformer)
    assert len(copied) == 4 + 6 * (10 + 2 * 6)  # embeddings; per layer self-attn + two FFNs
    assert not any(".cross_attn." in name or name == "query_tokens" for name in copied)
    theirs = load_file(minilm_folder() / "model.safetensors")
    assert torch.equal(qformer.word_embeddings.weight, theirs["embeddings.word_embeddings.weight"])
    assert torch.equal(qformer.layers[5].query_ffn.fc_in.weight,
                       theirs["encoder.layer.5.intermediate.dense.weight"])
    last = qformer.layers[5]
    assert torch.equal(last.text_ffn.fc_in.weight, last.query_ffn.fc_in.weight)
    with pytest.raises(ValueError, match="shape mismatch for word_embeddings.weight"):
        init_from_minilm(QFormer(QFormerConfig.tiny()))


def test_minilm_text_path_matches_bert() -> None:
    """With no queries, the Q-Former's text path *is* BERT: same numbers as MiniLM's BertModel."""
    from transformers import BertModel

    qformer = QFormer(minilm_qformer_config(encoder_width=C, n_queries=0)).eval()
    init_from_minilm(qformer)
    bert = BertModel.from_pretrained(minilm_folder(), local_files_only=True).eval()
    ids = torch.tensor([[101, 2023, 4853, 2003, 18925, 2012, 1017, 1012, 1019, 2117, 1012, 102]])
    with torch.no_grad():
        ours = qformer(torch.zeros(1, 1, C), text_ids=ids, text_mask=torch.ones_like(ids)).text
        reference = bert(input_ids=ids).last_hidden_state
    assert (ours - reference).abs().max() < 1e-4


# --- the time-aware frame encoder ------------------------------------------------------------

def test_timestamp_changes_queries_only_with_time_text(tokenizer) -> None:
    features = torch.randn(1, 1, N, C).expand(2, 1, N, C)  # the same frame, at index 0, twice
    times = torch.tensor([[1.0], [3.5]])
    with torch.no_grad():
        tokens, token_times = tiny_time_encoder(tokenizer, use_time_text=True)(features, times)
        plain, _ = tiny_time_encoder(tokenizer, use_time_text=False)(features, times)
    assert (tokens[0] - tokens[1]).abs().max() > 1e-3  # the text told them apart
    assert torch.allclose(plain[0], plain[1], atol=1e-6)  # without text, time is invisible
    assert torch.equal(token_times, times)


def test_shapes_masks_and_rounding(tokenizer) -> None:
    encoder = tiny_time_encoder(tokenizer)
    features = torch.randn(2, 4, N, C)
    times = torch.tensor([[0.0, 0.52, 1.04, 1.56], [0.0, 2.0, 4.0, 399.96]])
    mask = torch.tensor([[True, True, True, True], [True, True, True, False]])
    with torch.no_grad():
        tokens, token_times = encoder(features, times, mask)
    assert tokens.shape == (2, 4, 8, 64)  # (B, T, Q, D)
    assert torch.allclose(token_times, torch.tensor([[0.0, 0.5, 1.0, 1.6], [0.0, 2.0, 4.0, 400.0]]))
    assert torch.all(tokens[1, 3] == 0)  # the padded frame
    assert set(encoder._ids_cache) == {"0.0", "0.5", "1.0", "1.6", "2.0", "4.0"}
    with pytest.raises(ValueError, match="max_frames"):
        encoder(torch.randn(1, 9, N, C), torch.zeros(1, 9))
    with pytest.raises(ValueError, match="encoder_width"):
        encoder(torch.randn(1, 2, N, C + 1), torch.zeros(1, 2))


def test_gradients_reach_queries_and_frame_positions(tokenizer) -> None:
    encoder = tiny_time_encoder(tokenizer).train()
    tokens, _ = encoder(torch.randn(2, 3, N, C), torch.tensor([[0.0, 1.0, 2.0], [0.5, 1.5, 2.5]]))
    tokens.pow(2).sum().backward()
    assert encoder.qformer.query_tokens.grad.abs().sum() > 0
    grad = encoder.frame_position.weight.grad
    assert grad[:3].abs().sum(dim=1).min() > 0 and torch.all(grad[3:] == 0)  # rows 0-2 only
    assert encoder.qformer.layers[0].cross_attn.k.weight.grad.abs().sum() > 0


def test_deterministic_with_a_seed(tokenizer) -> None:
    features, times = torch.randn(2, 3, N, C), torch.rand(2, 3) * 10
    with torch.no_grad():
        a, _ = tiny_time_encoder(tokenizer, seed=7)(features, times)
        b, _ = tiny_time_encoder(tokenizer, seed=7)(features, times)
        c, _ = tiny_time_encoder(tokenizer, seed=8)(features, times)
    assert torch.equal(a, b) and not torch.allclose(a, c)


def test_tiny_encoder_is_fast(tokenizer) -> None:
    encoder = tiny_time_encoder(tokenizer)
    features, times = torch.randn(2, 4, N, C), torch.arange(8.0).view(2, 4) * 0.5
    with torch.no_grad():
        encoder(features, times)  # warm-up (first tokenisation, allocator)
        start = time.perf_counter()
        encoder(features, times + 0.1)  # new times: tokenised again
        elapsed = time.perf_counter() - start
    assert elapsed < 0.5, f"B=2, T=4 took {elapsed:.3f} s"
