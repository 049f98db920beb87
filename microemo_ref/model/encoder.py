"""MicroEmo's multimodal encoder: visual and audio token sequences per span, and their budget.

Composes the pieces (MicroEmo, Zhang et al., 2024; TimeChat; Video-LLaMA):

    frames + face dynamics --VisualEncoder--> fused frame tokens (T, Q, D)
        --utterance-aware video Q-Former--> [whole clip ; utterance 1 ; ...]  (K x Q_v tokens)
    audio features --AudioEncoder--> audio steps (S', D)
        --utterance-aware audio Q-Former--> [whole clip ; utterance 1 ; ...]  (K x Q_a tokens)

``span_mode="window"`` swaps the utterance spans for TimeChat's fixed sliding windows over
the sampled frames (the comparison of notebook 05); audio keeps the utterance spans only in
``"utterance"`` mode and uses the whole clip alone in ``"window"`` mode, as Video-LLaMA does.
``span_mode="whole"`` (an ablation) keeps only the whole-clip sequence of both.

Token budget (what the LLM must read, before the text that wraps each span):
``K * Q_v`` visual plus ``K * Q_a`` audio, K = 1 + number of utterances. TimeChat's is
``ceil((96 - 32) / 32 + 1) * 32 = 96`` visual tokens for any clip. :func:`token_budget`
computes both.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from torch import Tensor, nn

from microemo_ref.model.audio_encoder import AudioEncoder, AudioEncoderConfig
from microemo_ref.model.frame_encoder import FrameEncoderConfig
from microemo_ref.model.global_local import GlobalLocalConfig
from microemo_ref.model.local_encoder import LocalEncoderConfig
from microemo_ref.model.qformer import QFormerConfig
from microemo_ref.model.time_encoder import TimeEncoderConfig
from microemo_ref.model.utterance_qformer import (
    Span, SpanTokens, UtteranceQFormer, UtteranceQFormerConfig, frame_keys, utterance_spans, window_spans)
from microemo_ref.model.visual_encoder import VisualEncoder, VisualEncoderConfig, VisualTokens

#: TimeChat's video setting (Ren et al., 2024): frames, window, stride, queries per window.
TIMECHAT_FRAMES, TIMECHAT_WINDOW, TIMECHAT_STRIDE, TIMECHAT_QUERIES = 96, 32, 32, 32


@dataclass(frozen=True)
class EncoderConfig:
    visual: VisualEncoderConfig = field(default_factory=VisualEncoderConfig)
    video_qformer: UtteranceQFormerConfig = field(default_factory=UtteranceQFormerConfig)
    audio: AudioEncoderConfig = field(default_factory=AudioEncoderConfig)
    audio_qformer: UtteranceQFormerConfig = field(default_factory=UtteranceQFormerConfig)
    span_mode: str = "utterance"  # "utterance" (MicroEmo) | "window" (TimeChat) | "whole" (one sequence)
    window: int = TIMECHAT_WINDOW  # frames per window, "window" mode
    stride: int = TIMECHAT_STRIDE

    @classmethod
    def paper(cls) -> "EncoderConfig":
        """Paper-scale sizes (BLIP-2 / TimeChat / Video-LLaMA): for counting, not for a CPU."""
        d = 768
        visual = VisualEncoderConfig(
            frame=FrameEncoderConfig(image_size=224, patch=14, width=1408),
            time=TimeEncoderConfig(QFormerConfig(encoder_width=1408), max_frames=TIMECHAT_FRAMES),
            local=LocalEncoderConfig(hidden=d), fusion=GlobalLocalConfig(hidden=d, heads=12),
            sample_fps=TIMECHAT_FRAMES)  # capped at 96 frames: TimeChat's setting
        big = dict(hidden=d, key_width=d, heads=12, ffn=3072)
        return cls(visual=visual, video_qformer=UtteranceQFormerConfig(n_queries=32, **big),
                   audio=AudioEncoderConfig(hidden=d),
                   audio_qformer=UtteranceQFormerConfig(n_queries=8, **big))

    def with_mode(self, span_mode: str) -> "EncoderConfig":
        return replace(self, span_mode=span_mode)

    def with_local_features(self, features: int) -> "EncoderConfig":
        """The same encoder with its local branch reading the first ``features`` dynamics features
        (4: with the asymmetry channel, ``spotting.DYNAMICS_FEATURES``)."""
        visual = replace(self.visual, local=replace(self.visual.local, features=features))
        return replace(self, visual=visual)


SPAN_MODES = ("utterance", "window", "whole")


def token_budget(cfg: EncoderConfig, n_utterances: int, *, has_audio: bool = True,
                 n_frames: int = TIMECHAT_FRAMES) -> dict:
    """Tokens the LLM reads for a clip: visual and audio sequences, and TimeChat's for comparison.

    ``n_frames`` (sampled frames) matters only in "window" mode.
    """
    if cfg.span_mode == "utterance":
        visual_spans = 1 + n_utterances
    elif cfg.span_mode == "whole":
        visual_spans = 1
    else:
        visual_spans = len(window_spans(range(n_frames), cfg.window, cfg.stride))
    audio_spans = (1 + n_utterances if cfg.span_mode == "utterance" else 1) if has_audio else 0
    visual = visual_spans * cfg.video_qformer.n_queries
    audio = audio_spans * cfg.audio_qformer.n_queries
    timechat = len(window_spans(range(TIMECHAT_FRAMES), TIMECHAT_WINDOW, TIMECHAT_STRIDE)) * TIMECHAT_QUERIES
    return {"mode": cfg.span_mode, "utterances": n_utterances,
            "visual": {"sequences": visual_spans, "per_sequence": cfg.video_qformer.n_queries,
                       "total": visual},
            "audio": {"sequences": audio_spans, "per_sequence": cfg.audio_qformer.n_queries,
                      "total": audio},
            "total": visual + audio, "timechat_visual": timechat}


@dataclass
class EncoderInputs:
    """One clip, ready for the encoder (see microemo_ref.pipeline.evidence.prepare_inputs)."""

    duration: float  # seconds
    images: Tensor  # (T, 3, H, W) sampled frames in [0, 1]
    frame_times: Tensor  # (T,) seconds
    utterances: list[tuple[float, float]]  # (start, end) seconds
    dynamics: Tensor | None = None  # (R, S, F) local-branch dynamics at the frame rate
    local_times: Tensor | None = None  # (S,) seconds
    local_mask: Tensor | None = None  # (S,) True where the face was tracked
    audio: Tensor | None = None  # (S_a, F_a) audio features (AudioFeatures.matrix())
    audio_times: Tensor | None = None  # (S_a,) seconds

    def to(self, device) -> "EncoderInputs":
        """The same inputs with every tensor on ``device``."""
        return replace(self, **{k: v.to(device) for k, v in vars(self).items() if isinstance(v, Tensor)})


@dataclass
class EncoderOutput:
    visual: SpanTokens  # video Q-Former tokens per span
    audio: SpanTokens | None  # audio Q-Former tokens per span, None without audio
    frames: VisualTokens  # the fused frame tokens the video Q-Former read


class MicroEmoEncoder(nn.Module):
    """Clip inputs -> per-span visual and audio tokens (``model.bridge`` projects them into the LLM)."""

    def __init__(self, cfg: EncoderConfig = EncoderConfig(), tokenizer=None) -> None:
        super().__init__()
        if cfg.video_qformer.key_width != cfg.visual.hidden:
            raise ValueError(f"video Q-Former key_width {cfg.video_qformer.key_width} != visual "
                             f"hidden {cfg.visual.hidden}")
        if cfg.audio_qformer.key_width != cfg.audio.hidden:
            raise ValueError(f"audio Q-Former key_width {cfg.audio_qformer.key_width} != audio "
                             f"hidden {cfg.audio.hidden}")
        if cfg.span_mode not in SPAN_MODES:
            raise ValueError(f"span_mode must be one of {SPAN_MODES}, got {cfg.span_mode!r}")
        self.cfg = cfg
        self.visual = VisualEncoder(cfg.visual, tokenizer)
        self.video_qformer = UtteranceQFormer(cfg.video_qformer)
        self.audio = AudioEncoder(cfg.audio)
        self.audio_qformer = UtteranceQFormer(cfg.audio_qformer)

    def spans(self, x: EncoderInputs) -> tuple[list[Span], list[Span]]:
        """The visual and the audio spans of a clip under the configured mode."""
        by_utterance = utterance_spans(x.duration, x.utterances)
        if self.cfg.span_mode == "utterance":
            return by_utterance, by_utterance
        if self.cfg.span_mode == "whole":  # ablation: one sequence over the whole clip
            return by_utterance[:1], by_utterance[:1]
        windows = window_spans(x.frame_times.tolist(), self.cfg.window, self.cfg.stride)
        return windows, by_utterance[:1]  # TimeChat: windows only; audio: the whole clip

    def forward(self, x: EncoderInputs, *, return_attention: bool = False) -> EncoderOutput:
        frames = self.visual(x.images, x.frame_times, x.dynamics, x.local_times, x.local_mask)
        visual_spans, audio_spans = self.spans(x)
        keys, key_times = frame_keys(frames.tokens, frames.times)  # (T*Q, D), (T*Q,)
        visual = self.video_qformer(keys, key_times, visual_spans, return_attention=return_attention)
        audio = None
        if x.audio is not None:
            steps, step_times = self.audio(x.audio, x.audio_times)  # (S', D), (S',)
            audio = self.audio_qformer(steps, step_times, audio_spans,
                                       return_attention=return_attention)
        return EncoderOutput(visual, audio, frames)


__all__ = ["EncoderConfig", "EncoderInputs", "EncoderOutput", "MicroEmoEncoder",
           "TIMECHAT_FRAMES", "token_budget"]
