"""A fast greedy decoder for the frozen LLM: llama.cpp (the ``ik-llama-cpp-python`` wheel) on a GGUF file.

Not part of MicroEmo; an inference backend of ours. ``transformers`` stays the training path
and the readable reference (:meth:`MicroEmo.generate <microemo_ref.model.microemo.MicroEmo.generate>`
without a decoder). Decoding SmolLM2-135M through ``transformers`` costs about 40-60 ms of CPU
per token, most of it per-operation overhead of 30 layers of small matrix products; llama.cpp
runs the same weights in about a quarter of that (``benchmarks/emer_speed.py`` measures both).

What MicroEmo needs from a decoder is that it take *embeddings*, not only token ids: the prompt
splices projected video and audio tokens between text token embeddings
(:func:`~microemo_ref.model.bridge.assemble`). llama.cpp accepts a batch of embeddings
(``llama_batch_init(n, n_embd, 1)``, filled through ``batch.embd``); the answer's own tokens are
then fed back as ids, which llama.cpp embeds with the same table ``transformers`` read from the
same file.

The LoRA adapters of a checkpoint (:mod:`~microemo_ref.model.lora`, on the query and value
projections) are merged into a copy of the wheel's GGUF: ``W + (alpha / r) B A`` for each adapted
projection, written as float32, every other tensor copied as it is. GGUF stores the query
weight with its rows permuted for llama.cpp's rotary layout (pairs of halves interleaved per
head, as llama.cpp's converter writes it), so the LoRA update of the query is permuted the same
way before it is added; the test checks this against the weights ``transformers`` reads.

Two weight choices:

* ``"f16"`` (default): every weight de-quantised to float16 (the merged query and value
  projections float32). Logits within about 0.03 of ``transformers``; the greedy answers agree
  (``benchmarks/decoder_agreement.py`` checks them on held-out clips).
* ``"q4_1"``: the wheel's own 4-bit weights, about 1.5x faster again. llama.cpp multiplies them
  with activations it rounds to 8 bits, so logits differ from ``transformers`` (which computes in
  float32 with the same de-quantised weights) by up to about 1, and a long greedy answer can take
  another word at some point. This wheel's kernel for batches of 32 or more prompt positions on
  these weights gives wrong logits, so the prompt goes in 31 positions at a time
  (:data:`PROMPT_BATCH`).

The merged file is written once per checkpoint and weight choice under
``cache_dir()/llm/gguf/``, named by a hash of the adapters, and reused; the :data:`KEEP` most
recently used files stay there, older ones are removed.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from microemo_ref.config import cache_dir
from microemo_ref.model.llm import smollm_gguf
from microemo_ref.model.lora import LoRALinear

WEIGHTS = ("q4_1", "f16")
KEEP = 4  # merged files kept in the cache folder (each 140-300 MB), the most recently used
EXPORT_VERSION = 1  # bump when the exported file's layout changes: the cached files are then rewritten
_CPU_FLAGS = ("avx2", "fma", "f16c")  # what the wheel's AVX2 build executes
# Prompt positions per llama_decode call. With 4-bit weights, batches of 32 positions or more take
# another matrix kernel in ik-llama-cpp-python 0.1.5 whose logits are wrong (off by 20-40 against
# transformers on a 575-position prompt; batches of up to 31 are within 0.6); the test
# ``test_gguf_decoder.py::test_q4_1_prompt_logits`` catches it if a new wheel changes this.
PROMPT_BATCH = {"q4_1": 31, "f16": 512}


@dataclass(frozen=True)
class DecoderConfig:
    weights: str = "f16"  # "f16" (exact to transformers within 0.03 in logits) or "q4_1" (the wheel's 4-bit weights)
    threads: int = 0  # 0: every core this process may use
    context: int = 4096  # tokens of prompt + answer the KV cache holds at first; it grows for a longer prompt


def unavailable_reason() -> str | None:
    """Why the fast decoder cannot run here, or None if it can."""
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        return f"the ik-llama-cpp-python wheel is built for Linux x86-64 only (this is {platform.system()} {platform.machine()})"
    try:
        flags = set(next(line for line in Path("/proc/cpuinfo").read_text().splitlines()
                         if line.startswith("flags")).split(":", 1)[1].split())
    except (OSError, StopIteration):
        flags = set()
    missing = [f for f in _CPU_FLAGS if f not in flags]
    if missing:
        return f"this CPU lacks {', '.join(missing)}, which the ik-llama-cpp-python wheel needs"
    try:
        import ik_llama_cpp._ctypes_api  # noqa: F401
    except (ImportError, OSError) as e:
        return f"ik-llama-cpp-python does not load ({e})"
    return None


def permute_for_gguf(w: np.ndarray, heads: int) -> np.ndarray:
    """Rows of a query projection (out, in) reordered as GGUF stores them for llama.cpp's rotary layout.

    Within each head the rows come as two halves (the rotary pairs of ``transformers``' rotate-half
    convention); GGUF interleaves them: row ``2k`` is half 0's row ``k``, row ``2k + 1`` is half 1's.
    """
    out = w.shape[0]
    return w.reshape(heads, 2, out // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _lora_deltas(llm_model: torch.nn.Module) -> dict[tuple[int, str], np.ndarray]:
    """{(layer, "q"|"v"): (alpha / r) B A as float32 (out, in)} for every adapted projection."""
    deltas = {}
    for name, module in llm_model.named_modules():
        if isinstance(module, LoRALinear):
            parts = name.split(".")
            layer = int(parts[parts.index("layers") + 1])
            kind = {"q_proj": "q", "v_proj": "v"}.get(parts[-1])
            if kind is None:
                raise ValueError(f"{name}: the GGUF export merges adapters on q_proj and v_proj only")
            with torch.no_grad():
                deltas[(layer, kind)] = (module.scale * module.B.float() @ module.A.float()).numpy()
    return deltas


def export_gguf(llm_model: torch.nn.Module, weights: str = "f16", folder: Path | None = None) -> Path:
    """The wheel's GGUF with this model's LoRA adapters merged, written once; returns its path."""
    import gguf
    from gguf import GGMLQuantizationType as QT
    from gguf import GGUFValueType as VT

    if weights not in WEIGHTS:
        raise ValueError(f"weights must be one of {WEIGHTS}, not {weights!r}")
    source = smollm_gguf()
    deltas = _lora_deltas(llm_model)
    digest = hashlib.sha256(f"{EXPORT_VERSION}:{weights}:{source.stat().st_size}".encode())
    for key in sorted(deltas):
        digest.update(repr(key).encode())
        digest.update(deltas[key].tobytes())
    folder = folder or cache_dir() / "llm" / "gguf"
    target = folder / f"smollm2-{weights}-{digest.hexdigest()[:16]}.gguf"
    if target.is_file():
        os.utime(target)  # used now: pruning keeps the most recently used
        return target
    folder.mkdir(parents=True, exist_ok=True)
    reader = gguf.GGUFReader(source)
    heads = int(reader.fields["llama.attention.head_count"].contents())
    partial = target.with_name(f".{target.name}.{os.getpid()}.part")
    writer = gguf.GGUFWriter(partial, reader.fields["general.architecture"].contents())
    for name, f in reader.fields.items():
        if name.startswith("GGUF.") or name == "general.architecture":
            continue  # the writer adds these itself
        writer.add_key_value(name, f.contents(), f.types[0], f.types[1] if f.types[0] == VT.ARRAY else None)
    for t in reader.tensors:
        parts = t.name.split(".")  # blk.<i>.attn_q.weight
        key = (int(parts[1]), parts[2][len("attn_"):]) if parts[0] == "blk" and parts[2] in ("attn_q", "attn_v") else None
        if key in deltas or (weights == "f16" and t.tensor_type != QT.F32):
            w = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)  # (out, in)
            if key in deltas:
                delta = deltas[key]
                w = w + (permute_for_gguf(delta, heads) if key[1] == "q" else delta)
                writer.add_tensor(t.name, w)  # float32: the merged update is not re-quantised
            else:
                writer.add_tensor(t.name, w.astype(np.float16))
        else:
            writer.add_tensor(t.name, t.data, raw_shape=None if t.tensor_type == QT.F32 else t.data.shape,
                              raw_dtype=t.tensor_type)
    try:
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        partial.replace(target)  # complete or absent
    finally:
        partial.unlink(missing_ok=True)
    prune(folder)
    return target


def prune(folder: Path, keep: int = KEEP) -> None:
    """Remove all but the ``keep`` most recently used merged files in ``folder`` (a file removed is
    written again if its checkpoint comes back)."""
    for old in sorted(folder.glob("smollm2-*.gguf"), key=lambda f: f.stat().st_mtime, reverse=True)[keep:]:
        old.unlink(missing_ok=True)


@contextmanager
def _quiet_fds():
    """Silence the C library's own prints on stdout and stderr (its load report is long)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 1)
        os.dup2(null, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, null):
            os.close(fd)


class GGUFDecoder:
    """Greedy decoding on llama.cpp from a prompt of embeddings (see the module docstring)."""

    def __init__(self, path: Path, cfg: DecoderConfig = DecoderConfig(), eos_id: int | None = None) -> None:
        from ik_llama_cpp import _ctypes_api as C

        self._C, self.path, self.cfg, self.eos_id = C, Path(path), cfg, eos_id
        self._ctx = None
        with _quiet_fds():
            C.llama_backend_init()
            self._model = C.llama_model_load_from_file(str(self.path).encode(), C.llama_model_default_params())
        if not self._model:
            raise RuntimeError(f"{self.path}: llama.cpp could not load this GGUF file")
        self._context(cfg.context)
        self.width = C.llama_model_n_embd(self._model)
        self.vocab = C.llama_vocab_n_tokens(C.llama_model_get_vocab(self._model))

    def _context(self, n: int) -> None:
        """A fresh context (KV cache) of ``n`` positions in place of the current one."""
        C = self._C
        if self._ctx:
            C.llama_free(self._ctx)
        threads = self.cfg.threads or len(os.sched_getaffinity(0))
        params = C.llama_context_default_params()
        params.n_ctx, params.n_batch, params.n_ubatch = n, 512, 512
        params.n_threads, params.n_threads_batch = threads, threads
        with _quiet_fds():
            self._ctx = C.llama_init_from_model(self._model, params)
        if not self._ctx:
            raise RuntimeError(f"{self.path}: llama.cpp could not make a context of {n} tokens")
        self.context = n

    def _decode(self, n: int, fill) -> np.ndarray:
        """Run one batch of ``n`` positions (``fill(batch)`` sets them); the last position's logits."""
        C = self._C
        batch = fill()
        try:
            batch.n_tokens = n
            if C.llama_decode(self._ctx, batch) != 0:
                raise RuntimeError(f"{self.path}: llama_decode failed")
            return np.ctypeslib.as_array(C.llama_get_logits_ith(self._ctx, -1), shape=(self.vocab,))
        finally:
            C.llama_batch_free(batch)

    def _batch(self, n: int, pos0: int, embd: np.ndarray | None = None, token: int | None = None):
        batch = self._C.llama_batch_init(n, 0 if embd is None else self.width, 1)
        if embd is not None:
            ctypes.memmove(batch.embd, embd.ctypes.data, embd.nbytes)
        else:
            batch.token[0] = token
        for i in range(n):
            batch.pos[i], batch.n_seq_id[i], batch.logits[i] = pos0 + i, 1, int(i == n - 1)
            batch.seq_id[i][0] = 0
        return batch

    def prompt_logits(self, embeds: Tensor, room: int = 0) -> np.ndarray:
        """Clear the cache, run a prompt of embeddings ``embeds`` (T, D); the next token's logits (V,).
        ``room``: answer tokens that must still fit after the prompt (the context grows if they do not)."""
        prompt = np.ascontiguousarray(embeds.detach().float().cpu().numpy())  # (T, D)
        if prompt.ndim != 2 or prompt.shape[1] != self.width or len(prompt) == 0:
            raise ValueError(f"prompt embeddings of shape {tuple(prompt.shape)}; this model takes (T, {self.width})")
        if len(prompt) + room > self.context:  # a long clip: grow the cache to fit, as transformers' does
            self._context(max(len(prompt) + room, 2 * self.context))
        self._C.llama_kv_cache_clear(self._ctx)
        step = PROMPT_BATCH[self.cfg.weights]
        for start in range(0, len(prompt), step):  # at most ``step`` positions per call
            chunk = prompt[start:start + step]
            logits = self._decode(len(chunk), lambda: self._batch(len(chunk), start, embd=chunk))
        return logits.copy()

    def greedy(self, embeds: Tensor, max_new_tokens: int) -> list[int]:
        """The argmax answer after a prompt of embeddings ``embeds`` (T, D), stopping at ``eos_id``."""
        logits = self.prompt_logits(embeds, room=max_new_tokens)
        out: list[int] = []
        pos = len(embeds)
        while len(out) < max_new_tokens:
            nxt = int(np.argmax(logits))
            out.append(nxt)
            if nxt == self.eos_id or len(out) == max_new_tokens:
                break
            logits = self._decode(1, lambda: self._batch(1, pos, token=nxt))  # the answer's tokens go in as ids
            pos += 1
        return out

    def close(self) -> None:
        if getattr(self, "_ctx", None):
            self._C.llama_free(self._ctx)
            self._ctx = None
        if getattr(self, "_model", None):
            self._C.llama_free_model(self._model)
            self._model = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown: the library may already be gone
            pass


CHOICES = ("auto", "llama.cpp", "transformers")


def attach(model, choice: str = "auto", cfg: DecoderConfig = DecoderConfig()) -> str:
    """Give a MicroEmo model the decoder ``choice`` names; return it in words.

    ``"auto"`` takes llama.cpp where it can run and says on stderr why not where it cannot;
    ``"llama.cpp"`` insists (a ``RuntimeError`` naming the reason); ``"transformers"`` detaches.
    Attach after the weights are loaded: the merged file is made from the adapters as they are.
    """
    if choice not in CHOICES:
        raise ValueError(f"decoder must be one of {CHOICES}, not {choice!r}")
    model.decoder = None
    if choice == "transformers":
        return describe(None)
    reason = unavailable_reason()
    if reason is None and model.cfg.llm != "smollm2":
        reason = f"the fast decoder runs the wheel's SmolLM2 only, not {model.cfg.llm}"
    if reason is None and any(isinstance(m, LoRALinear) and m.base.weight.dtype != torch.float32
                              for m in model.llm.modules()):
        reason = "the LLM is not float32"
    if reason is not None:
        if choice == "llama.cpp":
            raise RuntimeError(f"the llama.cpp decoder cannot run: {reason}")
        print(f"fast decoding unavailable ({reason}); decoding with transformers", file=sys.stderr)
        return describe(None)
    model.decoder = GGUFDecoder(export_gguf(model.llm, cfg.weights), cfg, eos_id=model.tokenizer.eos_token_id)
    return describe(model.decoder)


def describe(decoder: GGUFDecoder | None) -> str:
    """The decoder in words, for ``emer`` and ``evaluate`` output."""
    if decoder is None:
        return "transformers (float32)"
    return f"llama.cpp via ik-llama-cpp-python ({decoder.cfg.weights} weights, LoRA merged)"


__all__ = ["CHOICES", "DecoderConfig", "attach", "GGUFDecoder", "WEIGHTS", "describe", "export_gguf", "permute_for_gguf",
           "prune", "unavailable_reason"]
