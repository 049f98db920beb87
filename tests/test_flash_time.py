"""The flash time (model.flash_time, our addition): the apex inside a span by hand, the soft time
digits by hand, a fit that finds a planted apex, its place in the pointer's line, its
checkpoint file and its knock-out."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from microemo_ref.model.flash_time import (FlashTimeReader, fit_flash_time_reader, frame_rows, span_apex,
                                           time_digits)


def test_frame_rows_stand_each_frame_beside_its_neighbours() -> None:
    flat = torch.arange(6.0).reshape(3, 2)  # frames [0 1], [2 3], [4 5]
    rows = frame_rows(flat, 1)
    torch.testing.assert_close(rows[0], torch.tensor([0.0, 1, 0, 1, 2, 3]))  # the first frame repeats on its left
    torch.testing.assert_close(rows[1], torch.tensor([0.0, 1, 2, 3, 4, 5]))
    torch.testing.assert_close(rows[2], torch.tensor([2.0, 3, 4, 5, 4, 5]))


def test_span_apex_is_the_best_frame_moved_by_its_parabola() -> None:
    times = torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0, 1.25])
    # a parabola with its vertex at 0.6 s, sampled every 0.25 s: the vertex is recovered exactly
    scores = -((times - 0.6) ** 2)
    assert span_apex(scores, times, 0.0, 1.25) == pytest.approx(0.6)
    # only the span's frames count: the best frame inside [0.9, 1.3] is 1.0 s; its left neighbour
    # (outside) is higher, the vertex falls at 0.6 s, and the apex stops at the span's start
    assert span_apex(scores, times, 0.9, 1.3) == pytest.approx(0.9)
    # a flat score has no peak: the first frame of the span, unmoved
    assert span_apex(torch.zeros(6), times, 0.3, 1.0) == pytest.approx(0.5)
    # a span between two frames: its nearest frame (0.25 s), kept inside the span
    assert span_apex(scores, times, 0.3, 0.4) == pytest.approx(0.3)


def test_time_digits_by_hand() -> None:
    digits = torch.randn(10, 4, dtype=torch.float64)
    # a sure flash in the first utterance at 1.76 s: "1" and "8"
    a, b = time_digits(torch.tensor([1.0, 0.0], dtype=torch.float64), [1.76, 3.0], digits)
    torch.testing.assert_close(a, digits[1])
    torch.testing.assert_close(b, digits[8])
    # shared between 2.04 s and 3.96 s: half "2" half "4", then half "0" half "0"
    a, b = time_digits(torch.tensor([0.5, 0.5], dtype=torch.float64), [2.04, 3.96], digits)
    torch.testing.assert_close(a, (digits[2] + digits[4]) / 2)
    torch.testing.assert_close(b, digits[0])
    # later than two digits can say: capped at 9.9 s; no flash: blank digits
    a, b = time_digits(torch.tensor([1.0], dtype=torch.float64), [12.3], digits)
    torch.testing.assert_close(torch.stack([a, b]), digits[[9, 9]])
    a, b = time_digits(torch.tensor([0.0], dtype=torch.float64), [4.2], digits)
    torch.testing.assert_close(a, torch.zeros(4, dtype=torch.float64))
    # no utterance the pointer can name (a whole-clip-only model): two blank digits
    torch.testing.assert_close(time_digits(torch.zeros(0, dtype=torch.float64), [], digits),
                               torch.zeros(2, 4, dtype=torch.float64))
    # halves round as "{:.1f}" writes them: 0.25 s -> "0.2", 0.75 s -> "0.8"
    assert [f"{t:.1f}" for t in (0.25, 0.75)] == ["0.2", "0.8"]
    _, b = time_digits(torch.tensor([1.0, 1.0], dtype=torch.float64) / 2, [0.25, 0.75], digits)
    torch.testing.assert_close(b, (digits[2] + digits[8]) / 2)


def planted_clips(n: int, seed: int) -> list[tuple]:
    """Clips of 24 frames at 4 fps, (T, Q=2, D=3) tokens, one flash whose apex frame lights dim 0."""
    rng = np.random.default_rng(seed)
    clips = []
    for _ in range(n):
        times = torch.arange(24) * 0.25
        tokens = torch.tensor(rng.normal(scale=0.3, size=(24, 2, 3)))
        apex = int(rng.integers(4, 20))
        tokens[apex, 0, 0] += 3.0
        clips.append((tokens, times, [(float(times[apex]), float(times[apex - 3]), float(times[apex + 3]))]))
    return clips


def test_the_fit_finds_a_planted_apex_on_clips_it_never_saw() -> None:
    reader, fit = fit_flash_time_reader(planted_clips(40, 0), seed=0)
    assert fit["heldout_flashes"] == 8 and fit["heldout_placed_within_0.3"] == 8
    errors = []
    for tokens, times, [(apex, start, end)] in planted_clips(20, 1):
        errors.append(abs(span_apex(reader.scores(tokens), times, start, end) - apex))
    assert max(errors) <= 0.3
    again = FlashTimeReader.from_json(json.loads(json.dumps(reader.to_json())))
    tokens = planted_clips(1, 2)[0][0]
    torch.testing.assert_close(again.scores(tokens), reader.scores(tokens))
    with pytest.raises(ValueError, match="no training clip holds a micro-expression"):
        fit_flash_time_reader([(tokens, torch.arange(24) * 0.25, [])])


def test_the_pointer_line_states_the_time_and_the_checkpoint_keeps_its_reader(tiny_llm_dir, example, tmp_path) -> None:
    from microemo_ref.model.bridge import POINTER_TIME_LINE
    from microemo_ref.model.flash_word import FlashReader, digit_table
    from microemo_ref.model.llm import load_llm
    from microemo_ref.model.checkpoint import load_checkpoint, save_checkpoint
    from microemo_ref.model.microemo import MicroEmo, MicroEmoConfig
    from microemo_ref.model.probe import RidgeClassifier
    from microemo_ref.pipeline.ablations import knock_out

    llm = load_llm(tiny_llm_dir)
    torch.manual_seed(0)
    cfg = MicroEmoConfig(llm=str(tiny_llm_dir), cue_text=False, flash_word=True, flash_pointer=True, flash_time=True)
    model = MicroEmo(cfg, llm).eval()
    enc = model.cfg.encoder
    width = enc.video_qformer.n_queries * enc.video_qformer.hidden
    weight = np.zeros((width + 1, 3))
    weight[-1] = [0.0, 0.0, 5.0]  # every span reads "sad", surely
    model.flash_reader = FlashReader(RidgeClassifier(("angry", "none", "sad"), np.zeros(width), np.ones(width), weight, 1.0),
                                     0.1)
    with pytest.raises(ValueError, match="no reader"):
        model.prompt(example.inputs, example.subtitles, None)
    frame_width = 3 * enc.visual.n_queries * enc.visual.hidden
    model.flash_time_reader = FlashTimeReader(np.zeros(frame_width), np.ones(frame_width), np.zeros(frame_width + 1))
    a, out = model.prompt(example.inputs, example.subtitles, None)
    text = model.tokenizer.decode([i for i in a.ids.tolist() if i >= 0])
    assert POINTER_TIME_LINE.count("<|mm:pointer:") == 4
    assert "Flash in the video tokens: utterance  at . s,." in text  # four vectors where the markers were
    where = {what: first for what, first, _ in a.parts if what.startswith("pointer")}
    assert sorted(where) == [f"pointer {k}" for k in range(4)]
    # a flat frame score: each utterance's apex is its first sampled frame; every utterance is
    # surely "sad", so the pointer shares its weight evenly between them
    digits = digit_table(model.tokenizer, model.llm.get_input_embeddings(), range(10))
    times = out.frames.times
    first = [float(times[times >= s.start - 1e-6][0]) for s in out.visual.spans if s.kind == "utterance"]
    tenths = [int(round(t * 10)) for t in first]
    torch.testing.assert_close(a.embeds[where["pointer 2"]], digits[[t // 10 for t in tenths]].mean(0), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(a.embeds[where["pointer 3"]], digits[[t % 10 for t in tenths]].mean(0), atol=1e-4, rtol=1e-4)
    folder = save_checkpoint(model, tmp_path / "ft")
    assert "flash_time.json" in json.loads((folder / "checksum.json").read_text())
    b, _ = load_checkpoint(folder, load_llm(tiny_llm_dir)).prompt(example.inputs, example.subtitles, None)
    torch.testing.assert_close(b.embeds, a.embeds, atol=2e-3, rtol=2e-3)  # the tensors are stored as float16
    c, _ = knock_out(model, ["flash_word"]).prompt(example.inputs, example.subtitles, None)
    assert not any(what.startswith("pointer") for what, _, _ in c.parts)
    (folder / "flash_time.json").write_text("{}")
    with pytest.raises(ValueError, match="checksum mismatch"):
        load_checkpoint(folder, load_llm(tiny_llm_dir))


def test_the_answer_path_names_the_pointer_and_its_time() -> None:
    from microemo_ref.model.microemo import MicroEmoConfig, answer_path

    cfg = MicroEmoConfig(cue_text=False, flash_word=True, flash_pointer=True, flash_time=True)
    assert answer_path(cfg) == ("MicroEmo's path: video (+ flash word, pointer with its time, our additions) and audio "
                                "tokens + subtitles")
    assert "(+ flash word, our addition)" in answer_path(MicroEmoConfig(cue_text=False, flash_word=True))


def test_the_time_needs_the_pointer(capsys) -> None:
    from microemo_ref.cli import main

    assert main(["train", "--flash-word", "--flash-time", "--out", "/nonexistent/never"]) == 2
    assert "needs --flash-pointer" in capsys.readouterr().err


def test_training_fits_the_time_reader(tiny_llm_dir, example_dir, tmp_path) -> None:
    from microemo_ref.model.checkpoint import load_checkpoint
    from microemo_ref.model.microemo import MicroEmoConfig
    from microemo_ref.model.llm import load_llm
    from microemo_ref.pipeline.train import TrainConfig, train

    cfg = TrainConfig(data=(str(example_dir),), out=str(tmp_path / "run"), align_epochs=0, emer_epochs=1, warmup_steps=1,
                      concealed_repeat=1, target="labels")
    model_cfg = MicroEmoConfig(llm=str(tiny_llm_dir), cue_text=False, flash_word=True, flash_pointer=True, flash_time=True)
    lines: list[str] = []
    folder = train(cfg, model_cfg, progress=lines.append)
    fitted = [json.loads(line) for line in lines if line.startswith("{") and "flash_time" in line]
    assert fitted and fitted[0]["heldout_flashes"] >= 1
    assert load_checkpoint(folder, load_llm(tiny_llm_dir)).flash_time_reader is not None


def test_the_shipped_pointer_checkpoint_has_both_readers_and_the_asymmetry_encoder() -> None:
    from microemo_ref.face.spotting import DYNAMICS_FEATURES
    from microemo_ref.model.flash_word import FlashReader
    from microemo_ref.model.checkpoint import checkpoint_config, load_trainable
    from microemo_ref.model.microemo import answer_path
    from microemo_ref.pipeline.emer import default_checkpoint

    folder = default_checkpoint("pointer")
    cfg = checkpoint_config(folder)
    assert cfg.flash_word and cfg.flash_pointer and cfg.flash_time and not cfg.cue_text and not cfg.readout
    assert answer_path(cfg).startswith("MicroEmo's path") and "pointer with its time" in answer_path(cfg)
    state = load_trainable(folder)  # every checksum is checked, both readers' too
    FlashReader.from_json(json.loads((folder / "flash_word.json").read_text()))
    timer = FlashTimeReader.from_json(json.loads((folder / "flash_time.json").read_text()))
    enc = cfg.encoder.visual
    assert timer.mean.shape == ((2 * timer.context + 1) * enc.n_queries * enc.hidden,)
    # its local branch reads the 4th dynamics feature, the left-right asymmetry (train --asymmetry),
    # and the grown row of the region weights has moved off its zeros
    assert enc.local.features == len(DYNAMICS_FEATURES) == 4
    region = state["encoder.visual.local.region_weight"]
    assert tuple(region.shape) == (enc.local.regions, 4, enc.local.region_width)
    assert region[:, 3].abs().max() > 0
    # the encoder was retrained from the tokens checkpoint's (on two identities): not the same weights
    tokens = load_trainable(default_checkpoint("tokens"))
    assert not torch.equal(state["encoder.visual.local.region_weight"][:, :3], tokens["encoder.visual.local.region_weight"])


def test_a_resumed_run_refuses_a_frame_reader_of_another_width(tiny_llm_dir, tmp_path) -> None:
    from microemo_ref.model.llm import load_llm
    from microemo_ref.model.microemo import MicroEmo, MicroEmoConfig
    from microemo_ref.pipeline.train import flash_time_reader_for

    model = MicroEmo(MicroEmoConfig(llm=str(tiny_llm_dir), cue_text=False, flash_word=True, flash_pointer=True,
                                    flash_time=True), load_llm(tiny_llm_dir))
    enc = model.cfg.encoder.visual
    width = 3 * enc.n_queries * enc.hidden
    good = FlashTimeReader(np.zeros(width), np.ones(width), np.zeros(width + 1))
    (tmp_path / "flash_time.json").write_text(json.dumps(good.to_json()))
    assert flash_time_reader_for(model, [], tmp_path).mean.shape == (width,)  # reloaded, not refitted
    bad = FlashTimeReader(np.zeros(12), np.ones(12), np.zeros(13))
    (tmp_path / "flash_time.json").write_text(json.dumps(bad.to_json()))
    with pytest.raises(ValueError, match="frame reader of width 12"):
        flash_time_reader_for(model, [], tmp_path)
