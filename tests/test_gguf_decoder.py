"""The llama.cpp decoder (our addition) against transformers, weight for weight and logit for logit."""
from __future__ import annotations

import os
import types

import numpy as np
import pytest
import torch

from microemo_ref.model import gguf_decoder as G

needs_wheel = pytest.mark.skipif(G.unavailable_reason() is not None, reason=str(G.unavailable_reason()))


@pytest.fixture(scope="module")
def shipped():
    from microemo_ref.model.llm import load_llm
    from microemo_ref.model.checkpoint import load_checkpoint
    from microemo_ref.pipeline.emer import default_checkpoint

    return load_checkpoint(default_checkpoint("cues"), load_llm())


@pytest.fixture(scope="module")
def sample(shipped, example_dir):
    """The concealed sample, its cue line written with the shipped model's readout."""
    from microemo_ref.pipeline.dataset import load_example

    return load_example(example_dir / "concealed_astronaut_s0002.evidence.npz", shipped.cue_readout())


@pytest.fixture(scope="module")
def spliced(shipped, sample):
    """The prompt embeddings (T, D) of a real sample (video, audio, cue line and subtitles) and the
    next-token logits transformers gives for them."""
    with torch.no_grad():
        a, _ = shipped.prompt(sample.inputs, sample.subtitles, sample.cues)
        ref = shipped.llm(inputs_embeds=a.embeds[None]).logits[0, -1].numpy()
    return a.embeds, ref


@needs_wheel
def test_query_rows_are_permuted_as_gguf_stores_them(shipped):
    import gguf

    from microemo_ref.model.llm import smollm_gguf

    reader = gguf.GGUFReader(smollm_gguf())
    t = next(t for t in reader.tensors if t.name == "blk.3.attn_q.weight")
    stored = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)  # (out, in), GGUF's row order
    hf = shipped.llm.model.layers[3].self_attn.q_proj.base.weight.detach().numpy()  # transformers' order
    heads = shipped.llm.config.num_attention_heads
    np.testing.assert_array_equal(G.permute_for_gguf(hf, heads), stored)
    assert not np.array_equal(hf, stored)  # the orders do differ: without the permutation the merge is wrong


@needs_wheel
def test_f16_decoder_matches_transformers_on_a_spliced_prompt(shipped, spliced):
    embeds, ref = spliced
    assert len(embeds) > G.PROMPT_BATCH["f16"]  # the prompt goes in as more than one batch
    dec = G.GGUFDecoder(G.export_gguf(shipped.llm, "f16"), G.DecoderConfig(weights="f16", context=256))
    logits = dec.prompt_logits(embeds)  # longer than the context it started with: the context grows
    assert dec.context >= len(embeds) > 256
    assert np.abs(logits - ref).max() < 0.05
    assert logits.argmax() == ref.argmax()


@needs_wheel
def test_q4_1_prompt_logits(shipped, spliced):
    """4-bit weights drift, but stay near: the wheel's kernel for batches of 32+ positions gives
    logits off by 20-40 here, which this catches if PROMPT_BATCH lets such batches through."""
    embeds, ref = spliced
    dec = G.GGUFDecoder(G.export_gguf(shipped.llm, "q4_1"), G.DecoderConfig(weights="q4_1"))
    logits = dec.prompt_logits(embeds)
    assert np.abs(logits - ref).max() < 3.0
    # Its choice is one transformers ranks (near) first: here the two best tokens ("At", "The")
    # can lie 0.03 apart, and 4-bit drift of about 0.5 may swap them, as it may swap a word.
    assert ref[logits.argmax()] >= ref.max() - 1.0


@needs_wheel
def test_greedy_answers_agree_with_transformers(shipped, sample):
    assert G.attach(shipped, "llama.cpp").startswith("llama.cpp")
    try:
        fast, _, _ = shipped.generate(sample.inputs, sample.subtitles, sample.cues, max_new_tokens=48)
    finally:
        G.attach(shipped, "transformers")
    assert shipped.decoder is None
    slow, _, _ = shipped.generate(sample.inputs, sample.subtitles, sample.cues, max_new_tokens=48)
    assert fast == slow and len(fast) > 40


@needs_wheel
def test_the_merged_file_is_kept_and_named_by_the_adapters(shipped):
    first = G.export_gguf(shipped.llm, "f16")
    assert G.export_gguf(shipped.llm, "f16") == first  # written once
    lora = shipped.llm.model.layers[0].self_attn.v_proj
    with torch.no_grad():
        lora.B[0, 0] += 1.0
    try:
        changed = G.export_gguf(shipped.llm, "f16")
        assert changed != first and changed.parent == first.parent
    finally:
        with torch.no_grad():
            lora.B[0, 0] -= 1.0
        changed.unlink(missing_ok=True)
    assert G.export_gguf(shipped.llm, "f16") == first


def test_the_cache_keeps_the_most_recently_used(tmp_path):
    files = [tmp_path / f"smollm2-f16-{i}.gguf" for i in range(G.KEEP + 2)]
    for i, f in enumerate(files):
        f.write_bytes(b"")
        os.utime(f, (1000 + i, 1000 + i))
    os.utime(files[0])  # used just now
    (tmp_path / "notes.txt").write_text("not ours")
    G.prune(tmp_path)
    assert sorted(tmp_path.iterdir()) == sorted([files[0], *files[-(G.KEEP - 1):], tmp_path / "notes.txt"])


def test_auto_falls_back_to_transformers_and_says_why(monkeypatch, capsys):
    monkeypatch.setattr(G, "unavailable_reason", lambda: "this CPU lacks avx2")
    model = types.SimpleNamespace(decoder=object())
    assert G.attach(model, "auto") == "transformers (float32)"
    assert model.decoder is None
    assert "fast decoding unavailable (this CPU lacks avx2); decoding with transformers" in capsys.readouterr().err
    with pytest.raises(RuntimeError, match="cannot run: this CPU lacks avx2"):
        G.attach(model, "llama.cpp")
    with pytest.raises(ValueError, match="decoder must be one of"):
        G.attach(model, "onnx")


def test_a_model_the_wheel_cannot_run_falls_back(tiny_llm_dir, capsys):
    from microemo_ref.model.llm import load_llm
    from microemo_ref.model.microemo import MicroEmo, MicroEmoConfig

    model = MicroEmo(MicroEmoConfig(llm=str(tiny_llm_dir)), load_llm(tiny_llm_dir))
    assert G.attach(model, "auto") == "transformers (float32)" and model.decoder is None
    assert "runs the wheel's SmolLM2 only" in capsys.readouterr().err


def test_cli_forced_llama_cpp_where_it_cannot_run_exits_2(monkeypatch, capsys):
    from microemo_ref.cli import main
    from microemo_ref.config import DATA_SAMPLES

    monkeypatch.setattr(G, "unavailable_reason", lambda: "this CPU lacks avx2")
    video = DATA_SAMPLES / "congruent_astronaut_s0004.mp4"
    assert main(["emer", str(video), "--decoder", "llama.cpp"]) == 2
    err = capsys.readouterr().err
    assert "emer: error: the llama.cpp decoder cannot run: this CPU lacks avx2" in err
    assert "Traceback" not in err


def test_cli_choices_are_the_modules():
    from microemo_ref.cli import DECODERS

    assert DECODERS == G.CHOICES


def test_prompt_llm_builds_the_same_prompt_as_the_whole_llm(shipped, sample, spliced):
    """load_prompt_llm holds the same embedding table and the adapters under the same names: the
    checkpoint loads into it, the spliced prompt is the same to the bit, and so are the adapters'
    updates (so the merged GGUF, named by their hash, is the same file)."""
    from microemo_ref.model.llm import PromptLM, load_prompt_llm
    from microemo_ref.model.checkpoint import load_checkpoint
    from microemo_ref.pipeline.emer import default_checkpoint

    lean = load_checkpoint(default_checkpoint("cues"), load_prompt_llm())
    assert isinstance(lean.llm, PromptLM)
    full_names = {n: m.base.weight.shape for n, m in shipped.llm.named_modules() if isinstance(m, G.LoRALinear)}
    lean_names = {n: m.base.weight.shape for n, m in lean.llm.named_modules() if isinstance(m, G.LoRALinear)}
    assert lean_names == full_names and len(lean_names) == 60
    with torch.no_grad():
        a, _ = lean.prompt(sample.inputs, sample.subtitles, sample.cues)
    torch.testing.assert_close(a.embeds, spliced[0], rtol=0, atol=0)
    full_deltas, lean_deltas = G._lora_deltas(shipped.llm), G._lora_deltas(lean.llm)
    assert full_deltas.keys() == lean_deltas.keys()
    assert all(np.array_equal(full_deltas[k], lean_deltas[k]) for k in full_deltas)
    assert np.abs(full_deltas[(0, "q")]).max() > 0  # trained adapters, not zeros
    with pytest.raises(RuntimeError, match="only what a prompt needs"):
        lean.llm(inputs_embeds=a.embeds[None])


def test_load_for_answers_loads_the_whole_llm_only_for_transformers(monkeypatch):
    from microemo_ref.model.llm import PromptLM
    from microemo_ref.pipeline.emer import default_checkpoint, load_for_answers

    model, decoder = load_for_answers(default_checkpoint("tokens"), decoder="transformers")
    assert not isinstance(model.llm, PromptLM) and model.decoder is None and decoder == "transformers (float32)"
    if G.unavailable_reason() is None:
        model, decoder = load_for_answers(default_checkpoint("tokens"))
        assert isinstance(model.llm, PromptLM) and model.decoder is not None and decoder.startswith("llama.cpp")
        monkeypatch.setenv("MICROEMO_WHOLE_LLM", "1")  # what benchmarks/emer_command.py compares against
        model, decoder = load_for_answers(default_checkpoint("tokens"))
        assert not isinstance(model.llm, PromptLM) and decoder.startswith("llama.cpp")
