"""MicroEmo's own path: token heads and their targets, the concatenation ablation of the fusion,
the token probes, knock-outs of parts a model does not have, and the answer path in words."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from microemo_ref.config import DATA_SAMPLES
from microemo_ref.model.global_local import GlobalLocalAttention, GlobalLocalConfig
from microemo_ref.model.checkpoint import save_checkpoint
from microemo_ref.model.microemo import MicroEmoConfig, answer_path
from microemo_ref.model.token_heads import (FACE_CLASSES, FLASH_CLASSES, NONE_WEIGHT, VOICE_CLASSES, TokenHeads,
                                            span_targets)
from microemo_ref.model.utterance_qformer import utterance_spans
from microemo_ref.pipeline.token_probe import probe_rows

SAMPLE = "concealed_astronaut_s0002"


def truth() -> dict:
    return json.loads((DATA_SAMPLES / f"{SAMPLE}.json").read_text())


def test_span_targets_of_a_concealed_sample() -> None:
    t = truth()
    spans = utterance_spans(t["duration"], [(u["start"], u["end"]) for u in t["utterances"]])
    targets = span_targets(t, spans, spans)
    sad = FLASH_CLASSES.index("sad")
    # the sad flash peaks at 5.2 s, inside utterance 3 (4.537-6.327 s) and the whole clip
    assert targets.flash == [sad, 0, 0, sad, 0]
    assert targets.apex[3] == pytest.approx((5.2 - 4.537) / (6.327 - 4.537))
    assert targets.apex[0] == pytest.approx(5.2 / 9.4) and targets.apex[1] is None
    happy = FACE_CLASSES.index("happy")
    assert targets.face == [happy] * 5  # the polite smile is held through every utterance
    assert targets.voice == [VOICE_CLASSES.index("happy")] * 5


def test_token_heads_loss_is_the_sum_of_its_parts_by_hand() -> None:
    torch.manual_seed(0)
    heads = TokenHeads(n_queries=2, width=4, audio_queries=2, audio_width=4)
    t = truth()
    spans = utterance_spans(t["duration"], [(u["start"], u["end"]) for u in t["utterances"]])
    targets = span_targets(t, spans, spans)
    visual, audio = torch.randn(5 * 2, 4), torch.randn(5 * 2, 4)
    losses = heads.loss(visual, audio, targets)
    v = visual.reshape(5, 8)
    weight = torch.ones(len(FLASH_CLASSES))
    weight[0] = NONE_WEIGHT  # "none" counts less: flashes are rare
    flash = torch.nn.functional.cross_entropy(heads.flash(v), torch.tensor(targets.flash), weight=weight)
    apex_rows = [0, 3]
    apex = torch.sigmoid(heads.apex(v[apex_rows]))[:, 0]
    want = torch.tensor([targets.apex[k] for k in apex_rows])
    torch.testing.assert_close(losses["flash"], flash)
    torch.testing.assert_close(losses["apex"], 4.0 * ((apex - want) ** 2).mean())
    predicted, where = heads.predict(visual)
    assert len(predicted) == 5 and all(0 <= w <= 1 for w in where)


def test_concat_fusion_by_hand_and_its_empty_window() -> None:
    torch.manual_seed(0)
    fusion = GlobalLocalAttention(GlobalLocalConfig(hidden=8, heads=2, mode="concat"))
    g = torch.randn(1, 3, 2, 8)  # (B, T, Q, D)
    local = torch.randn(1, 5, 8)  # (B, S, D)
    frame_t = torch.tensor([[0.0, 1.0, 9.0]])  # the last frame has no local step within 0.5 s
    local_t = torch.tensor([[0.0, 0.2, 0.4, 0.9, 1.3]])
    out = fusion(g, frame_t, local, local_t)
    mean0 = local[0, :3].mean(0)  # steps within 0.5 s of t = 0
    want = fusion.norm(g[0, 0] + fusion.concat(torch.cat([g[0, 0], mean0.expand(2, 8)], -1)))
    torch.testing.assert_close(out.fused[0, 0], want)
    torch.testing.assert_close(out.fused[0, 2], fusion.norm(g[0, 2]))  # empty window: LayerNorm(g) exactly
    torch.testing.assert_close(out.weights[0, 0, 0], torch.tensor([1 / 3] * 3 + [0.0, 0.0]))
    assert float(out.weights[0, 2].sum()) == 0.0
    with pytest.raises(ValueError, match="fusion mode"):
        GlobalLocalAttention(GlobalLocalConfig(mode="sum"))


def test_probes_read_a_planted_label_and_not_noise() -> None:
    rng = np.random.default_rng(0)
    emotions = ["sad", "angry", "fear"]

    def rows(n: int, planted: bool) -> list[dict]:
        out = []
        for i in range(n):
            flash = "none" if i % 2 else emotions[i % 3]
            x = rng.normal(size=12)
            apex = None if flash == "none" else float(rng.uniform(0, 1.5))
            if planted:
                x[:4] += 3.0 * np.array([flash == e for e in ["none", *emotions]])
                if apex is not None:
                    x[4] = apex * 4
            face = "happy" if i % 4 < 2 else "neutral"
            x[5] += 6.0 * (face == "happy") if planted else 0.0
            out.append({"features": x, "flash": flash, "apex_s": apex, "face": face})
        return out

    good = probe_rows(rows(120, True), rows(60, True))
    assert good["flash_emotion"]["accuracy"] > 0.9 and good["flash_present"]["accuracy"] > 0.9
    assert good["held_expression"]["accuracy"] > 0.9
    assert good["apex_time"]["mae_s"] < 0.5 * good["apex_time"]["baseline_mae_s"]
    noise = probe_rows(rows(120, False), rows(60, False))
    assert noise["flash_emotion"]["accuracy"] < 0.7 and noise["apex_time"]["mae_s"] > 0.8 * noise["apex_time"]["baseline_mae_s"]


def test_answer_path_names_the_inputs() -> None:
    assert answer_path(MicroEmoConfig(cue_text=False)) == "MicroEmo's path: video and audio tokens + subtitles"
    assert "our addition" in answer_path(MicroEmoConfig(readout=True))
    assert answer_path(MicroEmoConfig(video=False, audio=False, cue_text=False)) == "subtitles"


def test_token_stage_trains_the_encoder_and_resumes(tiny_llm_dir, example_dir, tmp_path) -> None:
    from microemo_ref.model.llm import load_llm
    from microemo_ref.model.microemo import MicroEmo
    from microemo_ref.pipeline.dataset import load_example
    from microemo_ref.pipeline.train import TrainConfig, align_tokens

    llm = load_llm(tiny_llm_dir)
    torch.manual_seed(0)
    model = MicroEmo(MicroEmoConfig(llm=str(tiny_llm_dir), cue_text=False), llm)
    before = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    examples = [load_example(example_dir / f"{SAMPLE}.evidence.npz")]
    cfg = TrainConfig(token_epochs=4, lr=3e-3, warmup_steps=1)
    history, _, _ = align_tokens(model, examples, cfg, tmp_path, progress=lambda m: None)
    assert [h["stage"] for h in history] == ["tokens"] * 4
    assert history[-1]["loss_flash"] < history[0]["loss_flash"] and history[-1]["loss_face"] < history[0]["loss_face"]
    after = model.encoder.state_dict()
    changed = {k.split(".")[0] + "." + k.split(".")[1] for k, v in after.items() if not torch.equal(v, before[k])}
    assert {"visual.frames", "visual.local", "visual.fusion", "video_qformer.qformer", "audio_qformer.qformer"} <= changed
    trained = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    again = MicroEmo(MicroEmoConfig(llm=str(tiny_llm_dir), cue_text=False), load_llm(tiny_llm_dir))  # a new run, same folder
    resumed, _, _ = align_tokens(again, examples, cfg, tmp_path, progress=lambda m: None)
    assert resumed == history  # nothing left to train: the saved state is picked up as it is
    assert all(torch.equal(v, trained[k]) for k, v in again.encoder.state_dict().items())


def test_knocking_out_a_part_a_model_lacks_is_a_noop(tiny_llm_dir, example_dir, example, tmp_path, capsys) -> None:
    from microemo_ref.cli import main
    from microemo_ref.model.llm import load_llm
    from microemo_ref.model.microemo import MicroEmo
    from microemo_ref.pipeline.ablations import absent_parts, knock_out

    torch.manual_seed(0)
    model = MicroEmo(MicroEmoConfig(llm=str(tiny_llm_dir), cue_text=False), load_llm(tiny_llm_dir))
    a, _ = model.prompt(example.inputs, example.subtitles, example.cues)
    assert "Measured" not in model.tokenizer.decode(a.ids[a.ids >= 0])  # the paper's prompt: no cue line
    assert absent_parts(model, ["cue_text", "video"]) == ["cue_text"]
    b, _ = knock_out(model, ["cue_text"]).prompt(example.inputs, example.subtitles, example.cues)
    torch.testing.assert_close(a.embeds, b.embeds)
    folder = save_checkpoint(MicroEmo(MicroEmoConfig(llm=str(tiny_llm_dir), cue_text=False), load_llm(tiny_llm_dir)),
                             tmp_path / "tokens")
    common = [str(example_dir), "--checkpoint", str(folder), "--llm", str(tiny_llm_dir), "--limit", "1"]
    assert main(["evaluate", *common, "--knockout", "cue_text", "video", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["knockout_noop"] == ["cue_text"] and report["knocked_out"] == ["cue_text", "video"]
    assert report["answer_path"]["trained"].startswith("MicroEmo's path")
    assert report["answer_path"]["evaluated"] == "audio tokens + subtitles"
    assert main(["evaluate", *common, "--knockout", "cue_text"]) == 0
    assert "knocking it out is a no-op" in capsys.readouterr().out


def test_knockout_table_scores_one_scenario_and_marks_noops() -> None:
    from microemo_ref.pipeline.ablations import knockout_row, knockout_table

    def row(scenario: str, labels: list[str], explanation: str) -> dict:
        return {"scenario": scenario, "gold": ["sad", "hurt"], "labels": labels, "explanation": explanation,
                "cues": [{"apex_s": 5.2, "utterance": 2}] if scenario == "concealed" else [], "surface": ["happy"],
                "spotted": [True]}

    report = {"answer_path": {"trained": "MicroEmo's path: video and audio tokens + subtitles"},
              "knocked_out": ["cue_text"], "knockout_noop": ["cue_text"],
              "answers": [row("concealed", ["sad"], "During utterance 3, at 5.2 s, a flash."),
                          row("concealed", ["happy"], "A smile."), row("shift", ["sad"], "")]}
    r = knockout_row(report)
    assert r["clips"] == 2 and r["ov_f"] == pytest.approx(0.5) and r["clue_recall"] == 0.5
    assert "cue_text (absent: no-op)" in knockout_table([("tokens", report)])
    with pytest.raises(ValueError, match="no neutral clips"):
        knockout_row(report, "neutral")


def test_the_shipped_tokens_checkpoint_reads_no_cue_line() -> None:
    from microemo_ref.model.checkpoint import checkpoint_config, load_trainable
    from microemo_ref.pipeline.emer import default_checkpoint

    folder = default_checkpoint("tokens")
    cfg = checkpoint_config(folder)
    assert not cfg.cue_text and not cfg.readout and cfg.video and cfg.audio and cfg.local_branch
    state = load_trainable(folder)  # every checksum is checked
    assert any(k.startswith("llm.") for k in state) and any(k.startswith("encoder.visual.local") for k in state)
    with pytest.raises(ValueError, match="unknown answer path"):
        default_checkpoint("words")


def test_emer_on_the_paper_path_names_it(capsys) -> None:
    from microemo_ref.cli import main

    video = DATA_SAMPLES / "concealed_grace_hopper_s0036.mp4"
    assert main(["emer", str(video), "--path", "tokens", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["path"] == "MicroEmo's path: video and audio tokens + subtitles"
    assert out["raw_explanation"] and out["labels"]  # an explanation and parsed labels, from the tokens alone


def test_evaluate_json_on_clips_not_yet_measured_prints_only_the_report(tiny_llm_dir, tmp_path, capsys) -> None:
    import shutil

    from microemo_ref.cli import main
    from microemo_ref.model.llm import load_llm
    from microemo_ref.model.microemo import MicroEmo

    for f in DATA_SAMPLES.glob(f"{SAMPLE}.*"):
        shutil.copy(f, tmp_path / f.name)
    torch.manual_seed(0)
    folder = save_checkpoint(MicroEmo(MicroEmoConfig(llm=str(tiny_llm_dir)), load_llm(tiny_llm_dir)), tmp_path / "ckpt")
    assert main(["evaluate", str(tmp_path), "--checkpoint", str(folder), "--llm", str(tiny_llm_dir),
                 "--knockout", "cue_text", "video", "--json"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)  # the measuring progress went to stderr
    assert report["clips"] == 1 and report["knockout_noop"] == [] and f"measured {SAMPLE}.mp4" in captured.err
