"""MicroEmo, composed: encoder -> bridge -> frozen LLM (with optional LoRA).

The whole model of the paper's figure, in our reconstruction: the multimodal encoder of
:mod:`~microemo_ref.model.encoder` (global-local visual encoder, utterance-aware video and
audio Q-Formers), the projections and prompt of :mod:`~microemo_ref.model.bridge`, and a
frozen causal LM (:mod:`~microemo_ref.model.llm`). What trains: the encoder, the projections
and, if ``lora_rank > 0``, low-rank adapters on the LLM's query and value projections
(:mod:`~microemo_ref.model.lora`).

Four checkpoints ship (``pipeline.emer.SHIPPED``): one that also reads the measured-cue line, our
addition; one on MicroEmo's own path, with no cue text (``cue_text=False``); that path with
the flash word, our addition, read from the video tokens (``flash_word=True``, no cue text); and
that with the flash pointer and its time too (``flash_pointer=True, flash_time=True``);
:func:`answer_path` says in words which inputs a configuration lets the answer come from.

Saving and loading a trained model is :mod:`~microemo_ref.model.checkpoint`'s.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from torch import Tensor, nn

from microemo_ref.model.bridge import Assembled, Bridge, BridgeConfig, answer_loss, assemble, user_text
from microemo_ref.model.content_weight import content_weights, weighted_answer_loss
from microemo_ref.model.encoder import EncoderConfig, EncoderInputs, EncoderOutput, MicroEmoEncoder
from microemo_ref.model.flash_time import FlashTimeReader, span_apex, time_digits
from microemo_ref.model.flash_word import (FlashReader, digit_table, flash_pointer, pointer_mass, span_probabilities,
                                           word_table)
from microemo_ref.model.llm import LLM, check_fits, context_length
from microemo_ref.model.lora import add_lora, lora_state
from microemo_ref.model.probe import RidgeClassifier
from microemo_ref.model.utterance_qformer import Span


@dataclass(frozen=True)
class MicroEmoConfig:
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    lora_rank: int = 8  # 0: no adapters, the LLM is untouched
    lora_alpha: float = 16.0
    cue_text: bool = True  # give the LLM the measured cues as text (our addition, pipeline.cues); off: MicroEmo's own path
    llm: str = "smollm2"  # the frozen LLM: "smollm2" or a local folder
    # Switches for the ablations (all on = MicroEmo):
    local_branch: bool = True  # off: no face dynamics into the encoder, no face events in the cue line
    time_text: bool = True  # off: no timestamp text, in the frame Q-Former or anywhere in the prompt
    video: bool = True  # off: no video tokens in the prompt
    audio: bool = True  # off: no audio tokens in the prompt
    # Our addition, beyond MicroEmo (on in the default cue-text checkpoint): fit a linear readout of a micro
    # event's emotion from its region displacements on the training clips and write its answer
    # into the cue line ("reads as sad"); see pipeline.evidence_probe for why.
    readout: bool = False
    # Our addition, beyond MicroEmo (on in the flashword and pointer checkpoints): after each video span's tokens, one
    # soft word read from them by a ridge classifier (model.flash_word); fitted by training.
    flash_word: bool = False
    # Our addition on top of the flash word (on in the pointer checkpoint): one more prompt line,
    # "Flash in the video tokens: utterance <u>,<e>.", with a soft digit and a soft word pointing
    # at the utterance whose flash word carries a flash (model.flash_word.flash_pointer).
    flash_pointer: bool = False
    # Our addition on top of the pointer (on in the pointer checkpoint): the pointer's line also
    # states the flash's time, "utterance <u> at <s>.<t> s,<e>.", two soft digits read from the
    # fused frame tokens by a ridge regression (model.flash_time); fitted by training.
    flash_time: bool = False


def answer_path(cfg: MicroEmoConfig) -> str:
    """Which inputs can carry a model's answer, in words (``emer`` and ``evaluate`` print it)."""
    extras = ["flash word"] + (["pointer" + (" with its time" if cfg.flash_time else "")] if cfg.flash_pointer else [])
    video = f"video (+ {', '.join(extras)}, our addition{'s' if len(extras) > 1 else ''})" if cfg.flash_word else "video"
    tokens = [name for name, on in ((video, cfg.video), ("audio", cfg.audio)) if on]
    parts = [f"{' and '.join(tokens)} tokens"] if tokens else []
    if cfg.cue_text:
        parts.append("measured-cue text" + (" with readout" if cfg.readout else ""))
    parts.append("subtitles")
    path = " + ".join(parts)
    if cfg.video and not cfg.cue_text:
        return f"MicroEmo's path: {path}"
    if cfg.cue_text:
        return f"{path} (the cue text is our addition, not MicroEmo's)"
    return path


def without_face(cues: str) -> str:
    """The cue line with its face part replaced (the local branch is switched off)."""
    return "face: not measured. voice: " + cues.split(" voice: ", 1)[1] if " voice: " in cues else cues


class MicroEmo(nn.Module):
    """Encoder + bridge around a frozen LLM."""

    def __init__(self, cfg: MicroEmoConfig, llm: LLM) -> None:
        super().__init__()
        self.cfg = cfg
        encoder_cfg = cfg.encoder
        if not cfg.time_text:
            visual = encoder_cfg.visual
            encoder_cfg = replace(encoder_cfg, visual=replace(visual, time=replace(visual.time, use_time_text=False)))
        self.encoder = MicroEmoEncoder(encoder_cfg)
        self.bridge = Bridge(BridgeConfig(cfg.encoder.video_qformer.hidden, cfg.encoder.audio_qformer.hidden,
                                          llm.width))
        self.llm = llm.model
        self.tokenizer = llm.tokenizer
        self.llm.requires_grad_(False)
        self.readout: RidgeClassifier | None = None  # fitted by training when cfg.readout
        self.flash_reader: FlashReader | None = None  # fitted by training when cfg.flash_word
        self.flash_time_reader: FlashTimeReader | None = None  # fitted by training when cfg.flash_time
        self._flash_table: tuple | None = None  # (classes, (C, W) word rows, (9, W) digit rows)
        # A fast greedy decoder for generate() (model.gguf_decoder.attach); None: transformers.
        self.decoder = None
        if cfg.lora_rank > 0:
            add_lora(self.llm, rank=cfg.lora_rank, alpha=cfg.lora_alpha)

    def encode(self, x: EncoderInputs) -> EncoderOutput:
        """The encoder's span tokens, with the parts the config switches off left out."""
        if not self.cfg.local_branch:
            x = replace(x, dynamics=None, local_times=None, local_mask=None)
        if not self.cfg.audio:
            x = replace(x, audio=None, audio_times=None)
        return self.encoder(x, return_attention=not self.training)

    def prompt(self, x: EncoderInputs, subtitles: list[str], cues: str | None,
               answer: str | None = None) -> tuple[Assembled, EncoderOutput]:
        cfg = self.cfg
        if not cfg.local_branch:
            cues = without_face(cues) if cues else cues
        if cues and cfg.cue_text:
            self._check_readout(cues)
        out = self.encode(x)
        user = self.user_turn(out.visual.spans, out.audio.spans if out.audio else None, subtitles, cues)
        embed = self.llm.get_input_embeddings()
        reads = cfg.video and cfg.flash_word
        extra, pointer = self.flash_inputs(out, embed, reads and cfg.flash_pointer) if reads else (None, None)
        return assemble(self.tokenizer, embed, self.bridge, user, out.visual, out.audio, answer, extra, pointer), out

    def user_turn(self, visual: list[Span], audio: list[Span] | None, subtitles: list[str], cues: str | None) -> str:
        """The user turn this configuration writes for these visual and audio spans
        (:func:`~microemo_ref.model.bridge.user_text`, with the parts it switches off left out)."""
        cfg = self.cfg
        return user_text(visual if cfg.video else [], audio, subtitles, cues if cfg.cue_text else None,
                         times=cfg.time_text, pointer=cfg.video and cfg.flash_word and cfg.flash_pointer,
                         pointer_time=cfg.flash_time)

    def _flash_tables(self, embed: nn.Embedding) -> tuple[Tensor, Tensor | None]:
        """(C, W) class words and (10, W) digits 0-9 (None without the pointer), built once (the embedding is frozen)."""
        if self.flash_reader is None:
            raise ValueError("this model's configuration has the flash word, but no reader was fitted or loaded")
        classes = self.flash_reader.classifier.classes
        if self._flash_table is None or self._flash_table[0] != classes:
            digits = digit_table(self.tokenizer, embed, range(10)) if self.cfg.flash_pointer else None
            self._flash_table = (classes, word_table(self.tokenizer, embed, classes), digits)
        return self._flash_table[1], self._flash_table[2]

    def flash_inputs(self, out: EncoderOutput, embed: nn.Embedding, pointer: bool) -> tuple[Tensor, Tensor | None]:
        """(K, W) the flash word of each video span (:mod:`~microemo_ref.model.flash_word`) and, with
        ``pointer``, (2, W) the flash pointer's soft digit and word, then its two time digits with
        ``cfg.flash_time`` ((4, W), :mod:`~microemo_ref.model.flash_time`); the reader runs once for all."""
        table, digits = self._flash_tables(embed)
        visual = out.visual
        p = span_probabilities(self.flash_reader, visual.tokens, self.cfg.encoder.video_qformer.n_queries)  # (K, C)
        if not pointer:
            return p @ table, None
        classes = self.flash_reader.classifier.classes
        points = flash_pointer(p, visual.spans, classes, table, digits[1:])  # (2, W)
        if self.cfg.flash_time:
            if self.flash_time_reader is None:
                raise ValueError("this model's configuration has the flash time, but no reader was fitted or loaded")
            rows, q = pointer_mass(p, visual.spans, classes)
            scores = self.flash_time_reader.scores(out.frames.tokens)  # (T,)
            apexes = [span_apex(scores, out.frames.times, visual.spans[k].start, visual.spans[k].end) for k in rows]
            points = torch.cat([points, time_digits(q.to(digits.dtype), apexes, digits)])  # (4, W)
        return p @ table, points

    def _check_readout(self, cues: str) -> None:
        """A model with a readout was trained on cue lines that say what each micro event reads
        as; one written without it (or a model without one given such a line) answers from a
        prompt it never saw, silently. Fail loudly instead."""
        micro, read = "micro-expression" in cues, ", reads as " in cues
        if self.readout is not None and micro and not read:
            raise ValueError("this model has a readout, but the cue line was written without it: "
                             "pass model.cue_readout() to load_example() or describe()")
        if self.readout is None and read:
            raise ValueError("the cue line carries a readout ('reads as ...') but this model has none")

    @torch.no_grad()
    def generate(self, x: EncoderInputs, subtitles: list[str], cues: str | None,
                 max_new_tokens: int = 224) -> tuple[str, EncoderOutput, Assembled]:
        """Greedy decoding (deterministic) of the answer, by ``self.decoder`` if one is attached;
        :class:`~microemo_ref.model.llm.PromptTooLong` for a prompt past the LLM's context."""
        was = self.training
        self.eval()
        try:
            a, out = self.prompt(x, subtitles, cues)
            check_fits(len(a.ids), max_new_tokens, context_length(self.llm))
            if self.decoder is not None:
                ids = self.decoder.greedy(a.embeds, max_new_tokens)
            else:
                mask = torch.ones(1, len(a.ids), dtype=torch.long, device=a.embeds.device)
                ids = self.llm.generate(inputs_embeds=a.embeds[None], attention_mask=mask,
                                        max_new_tokens=max_new_tokens, do_sample=False,
                                        pad_token_id=self.tokenizer.pad_token_id,
                                        eos_token_id=self.tokenizer.eos_token_id)[0]
        finally:
            self.train(was)
        return self.tokenizer.decode(ids, skip_special_tokens=True).strip(), out, a

    def forward(self, batch: list[tuple[EncoderInputs, list[str], str | None, str]],
                return_encoded: bool = False,
                content: tuple[re.Pattern, float] | None = None) -> Tensor | tuple[Tensor, list[EncoderOutput]]:
        """Training loss of a batch of (inputs, subtitle lines, cue line or None, target answer);
        with ``return_encoded``, also each example's encoder output (for the token heads' loss).
        With ``content`` = (pattern, c), answer tokens in a content word weigh c
        (:mod:`microemo_ref.model.content_weight`, our addition).

        A ``forward`` (rather than a loop calling :meth:`prompt`) so that a DistributedDataParallel
        wrapper, as ``accelerate launch`` makes on several GPUs, sees the call and syncs gradients.
        """
        device = self.llm.get_input_embeddings().weight.device
        made = [self.prompt(x.to(device), subtitles, cues, answer) for x, subtitles, cues, answer in batch]
        assembled = [a for a, _ in made]
        if content is None or content[1] == 1.0:
            loss = answer_loss(self.llm, assembled)
        else:
            pattern, c = content
            loss = weighted_answer_loss(self.llm, assembled,
                                        [content_weights(self.tokenizer, a, pattern, c) for a in assembled])
        return (loss, [out for _, out in made]) if return_encoded else loss

    def cue_readout(self) -> Callable[[np.ndarray], str] | None:
        """The readout as the cue line uses it, (regions, 3) displacement -> emotion; None without one."""
        readout = self.readout
        if readout is None:
            return None
        return lambda displacement: readout.predict(displacement.reshape(1, -1))[0]

    def trainable_state(self) -> dict[str, Tensor]:
        state = {f"encoder.{k}": v for k, v in self.encoder.state_dict().items()}
        state |= {f"bridge.{k}": v for k, v in self.bridge.state_dict().items()}
        state |= {f"llm.{k}": v for k, v in lora_state(self.llm).items()}
        return state

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]


__all__ = ["MicroEmo", "MicroEmoConfig", "answer_path", "without_face"]
