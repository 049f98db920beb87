"""Word anchors (model.word_anchor): the loss by hand, the word vectors, and the token stage with them."""
from __future__ import annotations

import json

import torch
import torch.nn.functional as F

from microemo_ref.config import DATA_SAMPLES
from microemo_ref.model.token_heads import FLASH_CLASSES, NONE_WEIGHT, span_targets
from microemo_ref.model.utterance_qformer import utterance_spans
from microemo_ref.model.word_anchor import TAU, WordAnchor

SAMPLE = "concealed_astronaut_s0002"


def test_anchor_loss_by_hand() -> None:
    torch.manual_seed(0)
    words = torch.randn(3, 6)
    anchor = WordAnchor(words, n_queries=2, threshold=True)
    with torch.no_grad():
        anchor.none.fill_(1.5)
    projected = torch.randn(4 * 2, 6)  # 4 spans of 2 queries
    target = [0, 2, 0, 1]
    cos = F.normalize(projected, dim=-1) @ F.normalize(words, dim=-1).T  # (8, 3)
    best = torch.stack([torch.maximum(cos[2 * k], cos[2 * k + 1]) for k in range(4)]) / TAU  # the nearer query per span
    logits = torch.cat([torch.full((4, 1), 1.5), best], dim=1)
    weight = torch.tensor([NONE_WEIGHT, 1.0, 1.0, 1.0])
    ce = F.cross_entropy(logits, torch.tensor(target), weight=weight)
    pull = ((1 - best[1, 1] * TAU) + (1 - best[3, 0] * TAU)) / 2  # spans 1 and 3 hold a flash: class 2, class 1
    torch.testing.assert_close(anchor.loss(projected, target), ce + pull)
    torch.testing.assert_close(anchor.loss(projected, [0, 0, 0, 0]), F.cross_entropy(logits, torch.zeros(4, dtype=torch.long),
                                                                                        weight=weight))
    # the length of a token does not matter, only its direction
    torch.testing.assert_close(anchor.logits(3.0 * projected), anchor.logits(projected))
    # a span whose token is exactly the word of class 2 names it, far above the others
    exact = torch.cat([words[1:2], torch.zeros(1, 6) + 1e-3])
    assert anchor.logits(exact).argmax(-1).item() == 2


def test_word_vectors_are_unit_and_distinct(tiny_llm_dir) -> None:
    from microemo_ref.model.llm import load_llm
    from microemo_ref.model.word_anchor import word_vectors

    llm = load_llm(tiny_llm_dir)
    vectors = word_vectors(llm.tokenizer, llm.model.get_input_embeddings(), FLASH_CLASSES[1:])
    assert vectors.shape == (7, llm.width)
    torch.testing.assert_close(vectors.norm(dim=-1), torch.ones(7))
    assert (vectors @ vectors.T - torch.eye(7)).abs().max() < 0.999  # no two heads share a vector


def test_token_stage_with_anchors_trains_the_projection(tiny_llm_dir, example_dir, tmp_path) -> None:
    from microemo_ref.model.llm import load_llm
    from microemo_ref.model.microemo import MicroEmo, MicroEmoConfig
    from microemo_ref.pipeline.dataset import load_example
    from microemo_ref.pipeline.train import TrainConfig, align_tokens

    torch.manual_seed(0)
    model = MicroEmo(MicroEmoConfig(llm=str(tiny_llm_dir), cue_text=False), load_llm(tiny_llm_dir))
    bridge = {k: v.clone() for k, v in model.bridge.state_dict().items()}
    examples = [load_example(example_dir / f"{SAMPLE}.evidence.npz")]
    history, _, anchors = align_tokens(model, examples, TrainConfig(token_epochs=4, lr=3e-3, warmup_steps=1, anchor=True),
                                       tmp_path, progress=lambda m: None)
    assert history[-1]["loss_anchor_flash"] < history[0]["loss_anchor_flash"]
    assert history[-1]["loss_anchor_voice"] < history[0]["loss_anchor_voice"]
    assert all(not torch.equal(v, bridge[k]) for k, v in model.bridge.state_dict().items())
    t = json.loads((DATA_SAMPLES / f"{SAMPLE}.json").read_text())
    enc = model.eval().encode(examples[0].inputs)
    assert len(anchors.predict(model.bridge, enc.visual.tokens)) == len(span_targets(t, enc.visual.spans, None).flash)
    # without anchors the projection is left alone
    model = MicroEmo(MicroEmoConfig(llm=str(tiny_llm_dir), cue_text=False), load_llm(tiny_llm_dir))
    bridge = {k: v.clone() for k, v in model.bridge.state_dict().items()}
    (tmp_path / "plain").mkdir()
    align_tokens(model, examples, TrainConfig(token_epochs=1, lr=3e-3, warmup_steps=1), tmp_path / "plain",
                 progress=lambda m: None)
    assert all(torch.equal(v, bridge[k]) for k, v in model.bridge.state_dict().items())
