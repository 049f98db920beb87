"""Token heads: teach the Q-Former tokens what happened in their span, before the LLM reads them.

**Our addition, an alignment stage in the spirit of the lineage.** BLIP-2 first aligns its
Q-Former to the image with losses of its own (contrastive, matching, captioning) before any
LLM is attached; TimeChat and Video-LLaMA align by description. MicroEmo's paper names no
such stage. Here, on generated clips whose every cue is known, small linear heads read each
span's token sequence and are trained, with the encoder, on what the span holds:

============  ===================  =====================================================
head          reads                target
============  ===================  =====================================================
``flash``     each video span      emotion of the micro-expression whose apex falls in the
                                   span, or "none" (the whole-clip span: any flash)
``apex``      video spans with     where in the span the flash peaks, as a fraction of the
              a flash              span, (apex - start) / (end - start) in [0, 1]
``face``      each video span      the macro expression held longest in the span, or
                                   "neutral"
``voice``     each audio span      the emotion the utterance's voice was synthesised with
                                   (whole-clip span: the last utterance's)
============  ===================  =====================================================

Each head is one linear map of the span's Q tokens, flattened (Q x D -> classes): nothing a
linear probe could not do, so what the heads learn to read, the LLM's linear projection can
read too. The loss is the sum of the three cross-entropies (the flash's with the rare flashes weighted
up against "none", ``NONE_WEIGHT``) and the apex error (squared, as a fraction of the span). Only the encoder and the heads train; the LLM is not run, so an epoch
over 240 clips takes about a minute on a 2-core CPU. The heads are dropped afterwards: the
checkpoint holds the encoder they shaped, not them.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from microemo_ref.model.utterance_qformer import Span

FLASH_CLASSES: tuple[str, ...] = ("none", "angry", "contempt", "disgust", "fear", "happy", "sad", "surprise")
FACE_CLASSES: tuple[str, ...] = ("neutral", "angry", "disgust", "fear", "happy", "sad", "surprise")
VOICE_CLASSES: tuple[str, ...] = FACE_CLASSES
APEX_WEIGHT = 4.0  # the apex error is a squared fraction (at most 1): weighted to count beside the cross-entropies
#: Weight of the "none" class in the flash loss. About 1 utterance in 9 holds a flash in the training
#: clips; unweighted, the head learns to answer "none" (on held-out clips it named 1 flash of 24
#: after 4 epochs), and the tokens get little reason to carry the flash.
NONE_WEIGHT = 0.2


@dataclass
class SpanTargets:
    """What each span of one clip holds (ground truth of a generated clip)."""

    flash: list[int]  # per video span: index into FLASH_CLASSES
    apex: list[float | None]  # per video span: apex position in [0, 1], None without a flash
    face: list[int]  # per video span: index into FACE_CLASSES
    voice: list[int] | None  # per audio span: index into VOICE_CLASSES, None without audio


def _overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))


def span_targets(truth: dict, visual: list[Span], audio: list[Span] | None) -> SpanTargets:
    """The targets of every span from a generated clip's ground truth (its ``NAME.json``).

    A micro event belongs to the span its apex lies in (the whole-clip span holds every one;
    when several do, the strongest counts). A span's face is the macro emotion that covers most
    of it, if any covers a quarter of it. A span's voice is that of the utterance overlapping it
    most.
    """
    micro = [e for e in truth["events"] if e["kind"] == "micro"]
    macro = [e for e in truth["events"] if e["kind"] == "macro"]
    utts = truth["utterances"]
    flash, apex, face = [], [], []
    for span in visual:
        inside = [e for e in micro if span.start <= e["apex_s"] <= span.end]
        if inside:
            e = max(inside, key=lambda e: e["amplitude"])
            flash.append(FLASH_CLASSES.index(e["emotion"]))
            apex.append(min(1.0, max(0.0, (e["apex_s"] - span.start) / max(span.end - span.start, 1e-6))))
        else:
            flash.append(0)
            apex.append(None)
        cover: dict[str, float] = {}
        for e in macro:
            cover[e["emotion"]] = cover.get(e["emotion"], 0.0) + _overlap(span.start, span.end, e["onset_s"], e["offset_s"])
        best = max(cover, key=cover.get, default=None)
        held = best is not None and cover[best] >= 0.25 * (span.end - span.start)
        face.append(FACE_CLASSES.index(best) if held else 0)
    voice = None
    if audio is not None:
        voice = []
        for span in audio:
            if span.kind == "video":
                u = utts[-1]
            else:
                u = max(utts, key=lambda u: _overlap(span.start, span.end, u["start"], u["end"]))
            voice.append(VOICE_CLASSES.index(u["voice_emotion"]))
    return SpanTargets(flash, apex, face, voice)


class TokenHeads(nn.Module):
    """Linear heads on each span's flattened Q tokens (see the module docstring)."""

    def __init__(self, n_queries: int, width: int, audio_queries: int, audio_width: int) -> None:
        super().__init__()
        self.n_queries, self.audio_queries = n_queries, audio_queries
        self.flash = nn.Linear(n_queries * width, len(FLASH_CLASSES))
        self.apex = nn.Linear(n_queries * width, 1)
        self.face = nn.Linear(n_queries * width, len(FACE_CLASSES))
        self.voice = nn.Linear(audio_queries * audio_width, len(VOICE_CLASSES))

    def per_span(self, tokens: Tensor, n_queries: int) -> Tensor:
        """(K * Q, D) span tokens -> (K, Q * D)."""
        return tokens.reshape(-1, n_queries * tokens.shape[-1])

    def loss(self, visual_tokens: Tensor, audio_tokens: Tensor | None, targets: SpanTargets) -> dict[str, Tensor]:
        """The four losses of one clip (apex: mean over the spans with a flash, 0 without)."""
        v = self.per_span(visual_tokens, self.n_queries)  # (K, Q*D)
        device = v.device
        weight = torch.ones(len(FLASH_CLASSES), device=device)
        weight[0] = NONE_WEIGHT
        losses = {"flash": F.cross_entropy(self.flash(v), torch.tensor(targets.flash, device=device), weight=weight),
                  "face": F.cross_entropy(self.face(v), torch.tensor(targets.face, device=device))}
        has = [k for k, a in enumerate(targets.apex) if a is not None]
        if has:
            pred = torch.sigmoid(self.apex(v[has]))[:, 0]
            want = torch.tensor([targets.apex[k] for k in has], device=device)
            losses["apex"] = APEX_WEIGHT * F.mse_loss(pred, want)
        else:
            losses["apex"] = v.sum() * 0.0
        if audio_tokens is not None and targets.voice is not None:
            a = self.per_span(audio_tokens, self.audio_queries)
            losses["voice"] = F.cross_entropy(self.voice(a), torch.tensor(targets.voice, device=device))
        return losses

    @torch.no_grad()
    def predict(self, visual_tokens: Tensor) -> tuple[list[str], list[float]]:
        """Per video span: the flash class and the apex position (fraction of the span)."""
        v = self.per_span(visual_tokens, self.n_queries)
        flash = [FLASH_CLASSES[k] for k in self.flash(v).argmax(-1).tolist()]
        return flash, torch.sigmoid(self.apex(v))[:, 0].tolist()


__all__ = ["APEX_WEIGHT", "FACE_CLASSES", "FLASH_CLASSES", "NONE_WEIGHT", "SpanTargets", "TokenHeads", "VOICE_CLASSES",
           "span_targets"]
