"""Content-weighted answer loss (model.content_weight): which tokens it weighs, and the loss by hand."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from microemo_ref.model.bridge import IGNORE, answer_loss
from microemo_ref.model.content_weight import content_pattern, content_weights, piece_offsets, weighted_answer_loss
from microemo_ref.model.llm import load_llm
from microemo_ref.model.microemo import MicroEmo, MicroEmoConfig
from microemo_ref.pipeline.train import TrainConfig, content_words, train


def build(tiny_llm_dir):
    torch.manual_seed(0)
    return MicroEmo(MicroEmoConfig(llm=str(tiny_llm_dir)), load_llm(tiny_llm_dir))


def test_pattern_matches_whole_words_and_numbers() -> None:
    pattern = content_pattern(content_words())
    text = ("(utterance 1, 0.8-2.7 s). At 4.0 s, raised inner brows with the lip corners pulled down; "
            "a one-sided tightening. The person is Sad, dejected and sadder. Emotions: sad.")
    assert [m.group() for m in pattern.finditer(text)] == [
        "1", "0.8", "2.7", "4.0", "raised", "inner", "brows", "lip", "corners", "pulled", "down", "one-sided",
        "tightening", "Sad", "dejected", "sad"]  # "sadder", "with", "the", "a" are not content words


def test_weights_fall_on_the_content_tokens(tiny_llm_dir, example) -> None:
    model = build(tiny_llm_dir)
    a, _ = model.prompt(example.inputs, example.subtitles, example.cues, example.answer)
    pattern = content_pattern(content_words())
    w = content_weights(model.tokenizer, a, pattern, 5.0)
    first, end = next((f, e) for what, f, e in a.parts if what == "answer")
    assert torch.all(w[:first] == 0) and torch.all(w[end:] == 0)  # nothing outside the answer
    text, spans = piece_offsets(model.tokenizer, a.ids[first:end].tolist())
    assert text == model.tokenizer.decode(a.ids[first:end])  # the pieces lay out the answer exactly
    heavy = "".join(text[s:e] for (s, e), wk in zip(spans, w[first:end]) if wk == 5.0)
    words = [m.group() for m in pattern.finditer(text)]
    assert words and all(word in heavy for word in words)
    light = [text[s:e].strip() for (s, e), wk in zip(spans, w[first:end]) if wk == 1.0]
    assert "person" in light and "opens" in light
    assert set(w[first:end].tolist()) == {1.0, 5.0}


def test_weighted_loss_by_hand_and_plain_when_the_weight_is_one(tiny_llm_dir, example) -> None:
    model = build(tiny_llm_dir)
    a, _ = model.prompt(example.inputs, example.subtitles, example.cues, example.answer)
    ones = (a.labels != IGNORE).float()
    torch.testing.assert_close(weighted_answer_loss(model.llm, [a], [ones]), answer_loss(model.llm, [a]),
                               atol=1e-5, rtol=1e-5)
    w = content_weights(model.tokenizer, a, content_pattern(content_words()), 5.0)
    logits = model.llm(inputs_embeds=a.embeds[None]).logits[0]  # (L, V)
    keep = a.labels[1:] != IGNORE
    ce = F.cross_entropy(logits[:-1][keep], a.labels[1:][keep], reduction="none")
    wk = w[1:][keep]
    torch.testing.assert_close(weighted_answer_loss(model.llm, [a], [w]), (wk * ce).sum() / wk.sum(),
                               atol=1e-5, rtol=1e-5)
    # a batch of two pads the shorter one; padding carries no weight
    b, _ = model.prompt(example.inputs, example.subtitles[:1], example.cues, "Emotions: sad.")
    wb = content_weights(model.tokenizer, b, content_pattern(content_words()), 5.0)
    both = weighted_answer_loss(model.llm, [a, b], [w, wb])
    lb = model.llm(inputs_embeds=b.embeds[None]).logits[0]
    kb = b.labels[1:] != IGNORE
    ceb = F.cross_entropy(lb[:-1][kb], b.labels[1:][kb], reduction="none")
    by_hand = ((wk * ce).sum() + (wb[1:][kb] * ceb).sum()) / (wk.sum() + wb[1:][kb].sum())
    torch.testing.assert_close(both, by_hand, atol=1e-5, rtol=1e-5)


def test_training_with_content_weight_differs_from_plain(tiny_llm_dir, example_dir, tmp_path) -> None:
    def run(weight: float, name: str) -> dict:
        cfg = TrainConfig(data=(str(example_dir),), out=str(tmp_path / name), align_epochs=0, emer_epochs=1, batch=1,
                          lr=1e-2, warmup_steps=1, limit=2, content_weight=weight)
        train(cfg, MicroEmoConfig(llm=str(tiny_llm_dir)), progress=lambda _: None)
        return torch.load(tmp_path / name / "state.pt", weights_only=False)

    plain, weighted = run(1.0, "plain"), run(5.0, "weighted")
    assert plain["history"][0]["loss"] != weighted["history"][0]["loss"]
    key = next(k for k in plain["model"] if k.endswith(".B"))
    assert not torch.equal(plain["model"][key], weighted["model"][key])
