"""Test-wide settings: offline, headless, quiet MediaPipe, a seeded world."""
import os

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["MPLBACKEND"] = "Agg"
os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")



@pytest.fixture(scope="session")
def cached_sample(tmp_path_factory):
    """cached_sample(NAME): a temporary folder holding a copy of one committed sample, measured
    once (its evidence cached beside it)."""
    import shutil

    from microemo_ref.config import DATA_SAMPLES
    from microemo_ref.pipeline.dataset import cache_example

    def make(name: str):
        folder = tmp_path_factory.mktemp(name)
        for f in DATA_SAMPLES.glob(f"{name}.*"):
            shutil.copy(f, folder / f.name)
        cache_example(folder / f"{name}.mp4")
        return folder

    return make


@pytest.fixture(scope="session")
def tiny_llm_dir(tmp_path_factory):
    """A tiny random LLaMA (2 layers, width 32) with SmolLM2's real tokenizer, saved to a folder."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from microemo_ref.model.llm import smollm_gguf

    gguf = smollm_gguf()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                      tie_word_embeddings=True, initializer_range=0.3)  # 0.02 would cap the logits near uniform
    folder = tmp_path_factory.mktemp("tiny_llama")
    LlamaForCausalLM(cfg).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def example_dir(cached_sample):
    """The concealed astronaut sample, measured once."""
    return cached_sample("concealed_astronaut_s0002")


@pytest.fixture(scope="session")
def example(example_dir):
    from microemo_ref.pipeline.dataset import load_example

    return load_example(example_dir / "concealed_astronaut_s0002.evidence.npz")
