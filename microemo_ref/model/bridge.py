"""The bridge into the frozen LLM: projections, the EMER prompt, and the answer-only loss.

Video-LLaMA and AffectGPT project their Q-Former tokens linearly to the LLM width and splice
them into the prompt's embedding sequence where placeholders stand; the LLM stays frozen and
the loss is on the answer tokens only. AffectGPT's EMER prompt gives the sound, then the
video, then the subtitle, then asks "From what clues can we infer the person's emotional
state?". Ours (**our choice** of wording and order, inside the LLM's own chat template):

    system:    You explain a person's emotions in a video from face, voice and words.
    user:      Clip 0.0-8.0 s: video <V x Qv> audio <A x Qa>
               Utterance 1 0.7-2.1 s: video <V x Qv> audio <A x Qa>
               ...
               Measured face: ... voice: ...   (optional; see pipeline.cues)
               Subtitles:
               0.7 - 2.1 seconds, I do not want to go down there.
               ...
               From what clues can we infer the person's emotional state?
    assistant: <explanation> Emotions: a, b, c.

Words that a speech recogniser heard (a clip without subtitles) are headed "Speech recognised
from the audio (words may be wrong):" instead of "Subtitles:".

Each utterance's tokens are wrapped in text naming its time span (MicroEmo: "each utterance
wrapped in text that names its time span"), so the LLM can tie a cue to the moment.

Assembly: the prompt is rendered to text with markers ``<|mm:visual:k|>`` /
``<|mm:audio:k|>`` for span k's tokens, split at the markers, each text piece tokenized on its
own, and the projected tokens spliced in between. Labels are ``-100`` everywhere except the
answer's tokens, so the loss (mean cross-entropy of next-token prediction) is over the answer only.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from microemo_ref.model.utterance_qformer import Span, SpanTokens
from microemo_ref.text.utterances import RECOGNISED_HEADING

IGNORE = -100  # label of positions that carry no loss (transformers' convention)
SYSTEM = "You explain a person's emotions in a video from face, voice and words."
QUESTION = "From what clues can we infer the person's emotional state?"  # AffectGPT's EMER question
MARKER = re.compile(r"<\|mm:(visual|audio|pointer):(\d+)\|>")
#: The flash pointer's line (our addition, model.flash_word.flash_pointer): a soft digit and a soft word.
POINTER_LINE = "Flash in the video tokens: utterance <|mm:pointer:0|>,<|mm:pointer:1|>."
#: The same with the flash's time (our addition, model.flash_time): two more soft digits, seconds and tenths.
POINTER_TIME_LINE = "Flash in the video tokens: utterance <|mm:pointer:0|> at <|mm:pointer:2|>.<|mm:pointer:3|> s,<|mm:pointer:1|>."


def marker(kind: str, k: int) -> str:
    return f"<|mm:{kind}:{k}|>"


def span_heading(span: Span, times: bool = True) -> str:
    name = "Clip" if span.kind == "video" else f"{span.kind.capitalize()} {span.index + 1}"
    return f"{name} {span.start:.1f}-{span.end:.1f} s:" if times else f"{name}:"


#: A time as the prompt writes it: "5.2 s", "0.6-1.8 s", "apex 5.2 s", "0.7 - 2.1 seconds".
TIME_TEXT = re.compile(r"(?:apex )?\d+(?:\.\d+)?(?: ?- ?\d+(?:\.\d+)?)? (?:s|seconds)\b,? ?")


def drop_times(text: str) -> str:
    """``text`` with every written time removed (the "no timestamp text" ablation)."""
    return re.sub(r" ([,:;.)])", r"\1", re.sub(r"  +", " ", TIME_TEXT.sub("", text))).strip()


def user_text(visual_spans: list[Span], audio_spans: list[Span] | None, subtitles: list[str],
              cues: str | None = None, times: bool = True, pointer: bool = False, pointer_time: bool = False) -> str:
    """The user turn with markers where the span tokens go (see the module docstring).
    ``times=False`` writes no time anywhere (an ablation); ``pointer`` adds the flash pointer's
    line after the spans, with the flash's time too if ``pointer_time`` (our additions)."""
    if not times:
        subtitles = [drop_times(line) for line in subtitles]
        cues = drop_times(cues) if cues else cues
    audio_index = {(s.kind, s.index): k for k, s in enumerate(audio_spans or [])}
    lines = []
    for k, span in enumerate(visual_spans):
        line = f"{span_heading(span, times)} video {marker('visual', k)}"
        a = audio_index.pop((span.kind, span.index), None)
        if a is not None:
            line += f" audio {marker('audio', a)}"
        lines.append(line)
    for (kind, index), a in audio_index.items():  # audio spans with no visual twin (window mode)
        lines.append(f"{span_heading(audio_spans[a], times)} audio {marker('audio', a)}")
    if pointer:
        lines.append(POINTER_TIME_LINE if pointer_time and times else POINTER_LINE)
    if cues:
        lines.append(f"Measured {cues}")
    if subtitles and subtitles[0] == RECOGNISED_HEADING:  # words from speech recognition
        lines += subtitles
    else:
        lines.append("Subtitles:" if subtitles else "Subtitles: none.")  # TimeChat: "s - e seconds, text"
        lines += subtitles
    lines.append(QUESTION)
    return "\n".join(lines)


@dataclass(frozen=True)
class BridgeConfig:
    visual_width: int = 64  # D of the video Q-Former tokens
    audio_width: int = 64  # D of the audio Q-Former tokens
    llm_width: int = 576  # SmolLM2-135M's embedding width


class Bridge(nn.Module):
    """Linear projections of visual and audio tokens into the LLM's embedding space."""

    def __init__(self, cfg: BridgeConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.visual = nn.Linear(cfg.visual_width, cfg.llm_width)
        self.audio = nn.Linear(cfg.audio_width, cfg.llm_width)


@dataclass
class Assembled:
    embeds: Tensor  # (L, W) the LLM's input embeddings
    labels: Tensor  # (L,) token ids on the answer, IGNORE elsewhere
    ids: Tensor  # (L,) token ids, -1 where projected tokens stand
    parts: list[tuple[str, int, int]] = field(default_factory=list)  # (what, first, end) positions


def text_length(tokenizer, user: str) -> int:
    """Tokens of the rendered prompt's text around its markers, tokenized piece by piece as
    :func:`assemble` does (the vectors the markers stand for are not counted)."""
    prompt, _ = render(tokenizer, user, None)
    pieces = MARKER.split(prompt)[::3]  # split() also returns the two groups of each marker
    return sum(len(tokenizer(p, add_special_tokens=False)["input_ids"]) for p in pieces if p)


def render(tokenizer, user: str, answer: str | None) -> tuple[str, str]:
    """Prompt text up to the assistant's turn, and the answer text (with the turn's end)."""
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]
    prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    if answer is None:
        return prompt, ""
    full = tokenizer.apply_chat_template(messages + [{"role": "assistant", "content": answer}], tokenize=False)
    if not full.startswith(prompt):
        raise ValueError("the chat template does not extend the prompt with the answer; cannot mask the loss")
    return prompt, full[len(prompt):]


def assemble(tokenizer, embedding: nn.Embedding, bridge: Bridge, user: str, visual: SpanTokens,
             audio: SpanTokens | None, answer: str | None = None, visual_extra: Tensor | None = None,
             pointer: Tensor | None = None) -> Assembled:
    """Splice the projected span tokens into the embedded prompt (+ answer, for training).
    ``visual_extra`` (K, W), if given, adds one input vector after each video span's projected
    tokens (the flash word of :mod:`~microemo_ref.model.flash_word`, our addition); ``pointer``
    (2, W), or (4, W) with the flash's time, fills the flash pointer's markers (our addition)."""
    prompt, answer_text = render(tokenizer, user, answer)
    pieces, ids, labels, parts = [], [], [], []
    position, last = 0, 0

    def add_text(text: str, what: str, train: bool) -> None:
        nonlocal position
        if not text:
            return
        tok = tokenizer(text, add_special_tokens=False)["input_ids"]
        t = torch.tensor(tok, dtype=torch.long, device=embedding.weight.device)
        pieces.append(embedding(t))
        ids.append(t)
        labels.append(t.clone() if train else torch.full_like(t, IGNORE))
        parts.append((what, position, position + len(tok)))
        position += len(tok)

    def add_vectors(chunk: Tensor, what: str) -> None:  # (n, W) input vectors with no token id and no loss
        nonlocal position
        pieces.append(chunk)
        ids.append(torch.full((len(chunk),), -1, dtype=torch.long, device=chunk.device))
        labels.append(torch.full((len(chunk),), IGNORE, dtype=torch.long, device=chunk.device))
        parts.append((what, position, position + len(chunk)))
        position += len(chunk)

    for m in MARKER.finditer(prompt):
        add_text(prompt[last:m.start()], "text", False)
        kind, k = m.group(1), int(m.group(2))
        last = m.end()
        if kind == "pointer":
            if pointer is None:
                raise ValueError("the prompt has the flash pointer's line but no pointer vectors were given")
            add_vectors(pointer[k:k + 1], f"pointer {k}")
            continue
        source = visual if kind == "visual" else audio
        proj = bridge.visual if kind == "visual" else bridge.audio
        chunk = proj(source.tokens[source.span_of_token == k])  # (Q, W)
        if kind == "visual" and visual_extra is not None:
            chunk = torch.cat([chunk, visual_extra[k:k + 1].to(chunk.dtype)])  # (Q + 1, W)
        add_vectors(chunk, f"{kind} {k}")
    add_text(prompt[last:], "text", False)
    add_text(answer_text, "answer", True)
    return Assembled(torch.cat(pieces), torch.cat(labels), torch.cat(ids), parts)


def padded(batch: list[Assembled]) -> tuple[Tensor, Tensor, Tensor]:
    """A batch right-padded to its longest: embeds (B, L, W), labels (B, L) with IGNORE on the
    padding, attention mask (B, L)."""
    length = max(len(a.labels) for a in batch)
    width = batch[0].embeds.shape[-1]
    device = batch[0].embeds.device
    embeds = torch.zeros(len(batch), length, width, device=device, dtype=batch[0].embeds.dtype)
    labels = torch.full((len(batch), length), IGNORE, dtype=torch.long, device=device)
    mask = torch.zeros(len(batch), length, dtype=torch.long, device=device)
    for i, a in enumerate(batch):
        n = len(a.labels)
        embeds[i, :n], labels[i, :n], mask[i, :n] = a.embeds, a.labels, 1
    return embeds, labels, mask


def answer_loss(model, batch: list[Assembled]) -> Tensor:
    """Mean next-token cross-entropy over the answer tokens of a right-padded batch."""
    embeds, labels, mask = padded(batch)
    # transformers shifts the labels: position t predicts token t + 1
    return model(inputs_embeds=embeds, attention_mask=mask, labels=labels).loss


__all__ = ["Assembled", "Bridge", "BridgeConfig", "IGNORE", "POINTER_LINE", "POINTER_TIME_LINE", "QUESTION", "SYSTEM", "answer_loss", "assemble", "padded",
           "drop_times", "marker", "render", "span_heading", "user_text"]
