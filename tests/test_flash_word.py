"""The flash word (model.flash_word, our addition): the reader by hand, its place in the prompt,
its checkpoint file, its knock-out, and a training run that fits it and freezes the encoder."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from microemo_ref.model.flash_word import (TEMPERATURES, FlashReader, digit_table, fit_flash_reader, flash_pointer,
                                          flash_words, read_spans, word_table)
from microemo_ref.model.probe import RidgeClassifier

SAMPLE = "concealed_astronaut_s0002"


def planted(n_clips: int, seed: int) -> tuple[np.ndarray, list[str], list[int]]:
    """Rows of 4 spans per clip; the class is written into dimension 0..2 (plus noise)."""
    rng = np.random.default_rng(seed)
    classes = ["none", "sad", "angry"]
    labels = [classes[k] for k in rng.integers(0, 3, size=4 * n_clips)]
    x = rng.normal(size=(len(labels), 12))
    for i, y in enumerate(labels):
        x[i, classes.index(y)] += 3.0
    return x, labels, [i // 4 for i in range(len(labels))]


def test_reader_reads_a_planted_class_and_is_a_softmax_of_ridge_scores() -> None:
    x, y, clips = planted(60, 0)
    reader, fit = fit_flash_reader(x, y, clips)
    assert fit["rows"] == 240 and fit["heldout_flash_spans"] > 0
    xt, yt, _ = planted(20, 1)
    assert np.mean(np.array(read_spans(reader, torch.tensor(xt), 1)) == np.array(yt)) > 0.9  # Q = 1: a row is a span
    # by hand: standardise, score, softmax at T
    c = reader.classifier
    z = np.c_[(xt - c.mean) / c.std, np.ones(len(xt))] @ c.weight
    p = np.exp(z / reader.temperature - (z / reader.temperature).max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    torch.testing.assert_close(reader.probabilities(torch.tensor(xt)), torch.tensor(p))
    # the soft word is the probability-weighted sum of the word rows
    table = torch.randn(len(c.classes), 5, dtype=torch.float64)
    torch.testing.assert_close(flash_words(reader, torch.tensor(xt), 1, table), torch.tensor(p) @ table)
    # noise carries nothing: held-out accuracy near chance
    rng = np.random.default_rng(2)
    _, fit = fit_flash_reader(rng.normal(size=(240, 12)), y, clips)
    assert fit["heldout_flash_accuracy"] < 0.75
    with pytest.raises(ValueError, match="two classes"):
        fit_flash_reader(x, ["none"] * len(y), clips)


def test_a_class_only_in_the_held_out_fifth_does_not_stop_the_fit() -> None:
    x, y, clips = planted(10, 4)
    for rare_clip in range(10):  # wherever the one "fear" clip falls, in the fitting rows or the held-out fifth
        labels = ["fear" if c == rare_clip and k != "none" else k for k, c in zip(y, clips)]
        reader, fit = fit_flash_reader(x, labels, clips)
        assert "fear" in reader.classifier.classes  # the final fit uses every row
        assert fit["temperature"] in TEMPERATURES


def test_json_round_trip() -> None:
    x, y, clips = planted(30, 3)
    reader, _ = fit_flash_reader(x, y, clips)
    again = FlashReader.from_json(json.loads(json.dumps(reader.to_json())))
    torch.testing.assert_close(again.probabilities(torch.tensor(x)), reader.probabilities(torch.tensor(x)))


def test_prompt_gets_one_word_per_video_span_and_the_knockout_removes_it(tiny_llm_dir, example, tmp_path) -> None:
    from microemo_ref.model.llm import load_llm
    from microemo_ref.model.checkpoint import load_checkpoint, save_checkpoint
    from microemo_ref.model.microemo import MicroEmo, MicroEmoConfig
    from microemo_ref.pipeline.ablations import knock_out

    llm = load_llm(tiny_llm_dir)
    torch.manual_seed(0)
    model = MicroEmo(MicroEmoConfig(llm=str(tiny_llm_dir), cue_text=False, flash_word=True), llm).eval()
    with pytest.raises(ValueError, match="no reader"):
        model.prompt(example.inputs, example.subtitles, None)
    q = model.cfg.encoder.video_qformer.n_queries
    width = q * model.cfg.encoder.video_qformer.hidden
    classes = ("angry", "none", "sad")
    weight = np.zeros((width + 1, 3))
    weight[-1] = [0.0, 0.0, 5.0]  # every span reads "sad", surely
    model.flash_reader = FlashReader(RidgeClassifier(classes, np.zeros(width), np.ones(width), weight, 1.0), 0.1)
    a, out = model.prompt(example.inputs, example.subtitles, None)
    sad = model.llm.get_input_embeddings().weight[model.tokenizer(" sad", add_special_tokens=False)["input_ids"][0]]
    table = word_table(model.tokenizer, model.llm.get_input_embeddings(), classes)
    torch.testing.assert_close(table[2], sad)
    visual = [(first, end) for what, first, end in a.parts if what.startswith("visual")]
    assert len(visual) == len(out.visual.spans) and all(end - first == q + 1 for first, end in visual)
    for first, end in visual:  # the span's last input vector is (almost exactly) the word " sad"
        torch.testing.assert_close(a.embeds[end - 1], sad, atol=1e-4, rtol=1e-4)
    folder = save_checkpoint(model, tmp_path / "fw")
    assert "flash_word.json" in json.loads((folder / "checksum.json").read_text())
    again = load_checkpoint(folder, load_llm(tiny_llm_dir))
    b, _ = again.prompt(example.inputs, example.subtitles, None)
    torch.testing.assert_close(b.embeds, a.embeds, atol=2e-3, rtol=2e-3)  # the tensors are stored as float16
    c, _ = knock_out(again, ["flash_word"]).prompt(example.inputs, example.subtitles, None)
    assert len(c.ids) == len(a.ids) - len(visual)
    (folder / "flash_word.json").write_text("{}")
    with pytest.raises(ValueError, match="checksum mismatch"):
        load_checkpoint(folder, load_llm(tiny_llm_dir))


def test_pointer_by_hand() -> None:
    """The flash pointer (our addition): flash mass per utterance, normalised when above 1."""
    from microemo_ref.model.utterance_qformer import Span

    classes = ("angry", "none", "sad")
    table, digits = torch.randn(3, 4, dtype=torch.float64), torch.randn(9, 4, dtype=torch.float64)
    spans = [Span(0, 9, "video"), Span(0, 2, "utterance", 0), Span(2, 5, "utterance", 1), Span(5, 9, "utterance", 2)]
    none, sad, angry = torch.tensor([0.0, 1, 0]), torch.tensor([0.0, 0, 1]), torch.tensor([1.0, 0, 0])
    # a sure sad flash in utterance 2 (span 2); the whole clip's own flash is not an utterance's
    u, e = flash_pointer(torch.stack([sad, none, sad, none]).double(), spans, classes, table, digits)
    torch.testing.assert_close(u, digits[1])
    torch.testing.assert_close(e, table[2])
    # no flash anywhere: a blank digit and the word " none"
    u, e = flash_pointer(torch.stack([none] * 4).double(), spans, classes, table, digits)
    torch.testing.assert_close(u, torch.zeros(4, dtype=torch.float64))
    torch.testing.assert_close(e, table[1])
    # two sure flashes share the pointer; a half-sure one leaves half to " none"
    u, e = flash_pointer(torch.stack([none, angry, none, sad]).double(), spans, classes, table, digits)
    torch.testing.assert_close(u, (digits[0] + digits[2]) / 2)
    torch.testing.assert_close(e, (table[0] + table[2]) / 2)
    half = torch.tensor([0.0, 0.5, 0.5]).double()
    u, e = flash_pointer(torch.stack([none.double(), none.double(), half, none.double()]), spans, classes, table, digits)
    torch.testing.assert_close(u, digits[1] / 2)
    torch.testing.assert_close(e, 0.5 * (half @ table) + 0.5 * table[1])


def test_prompt_with_the_pointer_and_its_knockout(tiny_llm_dir, example) -> None:
    from microemo_ref.model.bridge import POINTER_LINE
    from microemo_ref.model.llm import load_llm
    from microemo_ref.model.microemo import MicroEmo, MicroEmoConfig
    from microemo_ref.pipeline.ablations import knock_out

    llm = load_llm(tiny_llm_dir)
    torch.manual_seed(0)
    model = MicroEmo(MicroEmoConfig(llm=str(tiny_llm_dir), cue_text=False, flash_word=True, flash_pointer=True), llm).eval()
    q = model.cfg.encoder.video_qformer.n_queries
    width = q * model.cfg.encoder.video_qformer.hidden
    weight = np.zeros((width + 1, 3))
    weight[-1] = [0.0, 0.0, 5.0]  # every span reads "sad", surely
    model.flash_reader = FlashReader(RidgeClassifier(("angry", "none", "sad"), np.zeros(width), np.ones(width), weight, 1.0),
                                     0.1)
    a, out = model.prompt(example.inputs, example.subtitles, None)
    text = model.tokenizer.decode([i for i in a.ids.tolist() if i >= 0])
    assert POINTER_LINE.startswith("Flash in the video tokens: utterance <|mm:pointer:0|>")
    assert "Flash in the video tokens: utterance ,." in text  # the two vectors stand where the markers were
    where = {what: first for what, first, _ in a.parts if what.startswith("pointer")}
    assert sorted(where) == ["pointer 0", "pointer 1"] and where["pointer 1"] == where["pointer 0"] + 2  # "," between
    embed = model.llm.get_input_embeddings()
    utterances = [s.index for s in out.visual.spans if s.kind == "utterance"]
    digits = digit_table(model.tokenizer, embed)
    # every utterance flashes "sad" surely: the digit is their mean, the word is " sad"
    torch.testing.assert_close(a.embeds[where["pointer 0"]], digits[utterances].mean(0), atol=1e-4, rtol=1e-4)
    sad = word_table(model.tokenizer, embed, ("sad",))[0]
    torch.testing.assert_close(a.embeds[where["pointer 1"]], sad, atol=1e-4, rtol=1e-4)
    b, _ = knock_out(model, ["flash_word"]).prompt(example.inputs, example.subtitles, None)
    assert not any(what.startswith("pointer") for what, _, _ in b.parts)
    assert "Flash in the video tokens" not in model.tokenizer.decode([i for i in b.ids.tolist() if i >= 0])


def test_the_pointer_needs_the_flash_word(capsys) -> None:
    from microemo_ref.cli import main

    assert main(["train", "--flash-pointer", "--out", "/nonexistent/never"]) == 2
    assert "needs --flash-word" in capsys.readouterr().err


def test_training_fits_the_reader_and_freezes_the_encoder(tiny_llm_dir, example_dir, tmp_path) -> None:
    from microemo_ref.model.llm import load_llm
    from microemo_ref.model.checkpoint import load_trainable
    from microemo_ref.model.microemo import MicroEmo, MicroEmoConfig
    from microemo_ref.pipeline.train import TrainConfig, train

    out = tmp_path / "run"
    cfg = TrainConfig(data=(str(example_dir),), out=str(out), align_epochs=0, emer_epochs=2, warmup_steps=1, lr=1e-2,
                      concealed_repeat=1, target="labels")
    model_cfg = MicroEmoConfig(llm=str(tiny_llm_dir), cue_text=False, flash_word=True)
    torch.manual_seed(0)
    start = MicroEmo(model_cfg, load_llm(tiny_llm_dir)).trainable_state()
    lines: list[str] = []
    folder = train(cfg, model_cfg, progress=lines.append)
    fitted = json.loads(lines[0])
    assert fitted["stage"] == "flash_word" and fitted["rows"] >= 2
    state = load_trainable(folder)
    assert (folder / "flash_word.json").is_file()
    for k, v in start.items():
        if k.startswith("encoder."):
            torch.testing.assert_close(state[k], v.float(), atol=2e-3, rtol=2e-3)  # frozen (float16 on disk)
    assert any(not torch.allclose(state[k], v.float(), atol=2e-3) for k, v in start.items() if k.startswith("bridge."))


def test_the_shipped_flash_word_checkpoint_reads_no_cue_line_and_has_its_reader() -> None:
    from microemo_ref.model.flash_word import FlashReader
    from microemo_ref.model.checkpoint import checkpoint_config, load_trainable
    from microemo_ref.model.microemo import answer_path
    from microemo_ref.model.token_heads import FLASH_CLASSES
    from microemo_ref.pipeline.emer import default_checkpoint

    folder = default_checkpoint("flashword")
    cfg = checkpoint_config(folder)
    assert cfg.flash_word and not cfg.cue_text and not cfg.readout and cfg.video and cfg.local_branch
    assert answer_path(cfg).startswith("MicroEmo's path") and "our addition" in answer_path(cfg)
    load_trainable(folder)  # every checksum is checked, flash_word.json's too
    reader = FlashReader.from_json(json.loads((folder / "flash_word.json").read_text()))
    assert sorted(reader.classifier.classes) == sorted(FLASH_CLASSES)
    # the encoder is the tokens checkpoint's: frozen while the flash word's model trained
    tokens = load_trainable(default_checkpoint("tokens"))
    state = load_trainable(folder)
    assert all(torch.equal(v, tokens[k]) for k, v in state.items() if k.startswith("encoder."))


def test_emer_on_the_flash_word_path_names_it(capsys) -> None:
    from microemo_ref.cli import main
    from microemo_ref.config import DATA_SAMPLES

    video = DATA_SAMPLES / "concealed_grace_hopper_s0036.mp4"
    assert main(["emer", str(video), "--path", "flashword", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["path"].startswith("MicroEmo's path: video (+ flash word, our addition)")
    assert out["labels"] and "Measured" not in out["explanation"]
