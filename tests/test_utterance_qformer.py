"""The utterance-aware Q-Former: each span reads exactly its own keys, with shared weights."""
import pytest
import torch

from microemo_ref.model.encoder import EncoderConfig, token_budget
from microemo_ref.model.qformer import QFormer
from microemo_ref.model.utterance_qformer import (
    Span, UtteranceQFormer, UtteranceQFormerConfig, frame_keys, per_frame, span_masks, utterance_spans,
    window_spans)

FPS_SAMPLED = 4.0


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    model = UtteranceQFormer(UtteranceQFormerConfig()).eval()
    frames = torch.randn(40, 8, 64)  # (T, Q, D): 10 s at 4 sampled frames per second
    times = torch.arange(40) / FPS_SAMPLED
    keys, key_times = frame_keys(frames, times)
    spans = utterance_spans(10.0, [(0.5, 2.0), (3.0, 5.25), (7.0, 9.0)])
    return model, keys, key_times, spans


def test_token_count_per_span(setup):
    model, keys, key_times, spans = setup
    out = model(keys, key_times, spans)
    assert out.tokens.shape == (4 * 8, 64)  # [whole; 3 utterances] x 8 queries
    assert out.span_of_token.tolist() == [k for k in range(4) for _ in range(8)]
    assert [s.kind for s in out.spans] == ["video", "utterance", "utterance", "utterance"]


def test_a_span_equals_the_qformer_run_on_its_keys_alone(setup):
    """Masking keys out is the same as not giving them: the maths of 'reads only its span'."""
    model, keys, key_times, spans = setup
    out = model(keys, key_times, spans)
    for k, span in enumerate(spans):
        inside = (key_times >= span.start) & (key_times <= span.end)
        alone = model.qformer(keys[inside][None]).queries[0]  # (Q, D), no mask needed
        torch.testing.assert_close(out.tokens[out.span_of_token == k], alone, atol=1e-5, rtol=1e-5)


def test_keys_outside_a_span_do_not_change_its_tokens(setup):
    model, keys, key_times, spans = setup
    before = model(keys, key_times, spans).tokens
    changed = keys.clone()
    changed[key_times > 5.5] += 10.0 * torch.randn_like(changed[key_times > 5.5])
    after = model(changed, key_times, spans).tokens
    same = torch.isin(model(keys, key_times, spans).span_of_token, torch.tensor([1, 2]))
    assert torch.equal(before[same], after[same])  # utterances 1-2 end before 5.5 s
    assert not torch.allclose(before[~same], after[~same])  # the whole clip and utterance 3 see it


def test_weights_are_shared_across_spans(setup):
    model, keys, key_times, _ = setup
    same = [Span(1.0, 3.0, "utterance", 0), Span(1.0, 3.0, "utterance", 1)]
    out = model(keys, key_times, same)
    torch.testing.assert_close(out.tokens[:8], out.tokens[8:])
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params == sum(p.numel() for p in QFormer(model.cfg.qformer()).parameters())


def test_attention_stays_inside_each_span(setup):
    model, keys, key_times, spans = setup
    att = model(keys, key_times, spans, return_attention=True).key_attention  # (K, N)
    torch.testing.assert_close(att.sum(dim=1), torch.ones(len(spans)))
    frames = per_frame(att, 8)  # (K, T)
    times = key_times[::8]
    for k, span in enumerate(spans):
        outside = (times < span.start) | (times > span.end)
        assert torch.all(frames[k, outside] == 0) and frames[k, ~outside].sum() > 0.99


def test_short_utterance_between_frames_gets_the_nearest_frame():
    times = torch.arange(10) / 4.0  # frames at 0, 0.25, 0.5, ...
    key_times = times.repeat_interleave(3)
    masks = span_masks(key_times, [Span(1.05, 1.1, "utterance")])
    assert masks.sum() == 3 and torch.all(key_times[masks[0]] == 1.0)


def test_gradient_from_one_span_reaches_the_shared_queries(setup):
    model, keys, key_times, spans = setup
    model.zero_grad()
    (model(keys, key_times, spans[1:2]).tokens * torch.randn(8, 64)).sum().backward()  # not .sum(): LayerNorm
    assert model.qformer.query_tokens.grad.abs().sum() > 0


def test_timechat_windows():
    spans = window_spans(range(96), 32, 32)
    assert [(s.start, s.end) for s in spans] == [(0, 31), (32, 63), (64, 95)]
    assert len(window_spans(range(40), 32, 32)) == 2  # 32 + a last window of 8
    assert len(window_spans(range(20), 32, 32)) == 1
    assert len(window_spans(range(40), 32, 16)) == 2  # a third would add no frame


def test_token_budget_for_a_ten_second_clip():
    paper = token_budget(EncoderConfig.paper(), 3)
    assert paper["visual"]["total"] == 4 * 32 and paper["audio"]["total"] == 4 * 8
    assert paper["timechat_visual"] == 96
    windows = token_budget(EncoderConfig.paper().with_mode("window"), 3, n_frames=96)
    assert windows["visual"]["total"] == 96 and windows["audio"]["total"] == 8
    silent = token_budget(EncoderConfig(), 0, has_audio=False)
    assert silent["visual"]["total"] == 8 and silent["audio"]["total"] == 0
