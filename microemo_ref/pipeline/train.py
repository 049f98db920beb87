"""Two-stage training of MicroEmo on cached EMER examples: align, then answer.

Video-LLaMA and AffectGPT train in two stages with the LLM frozen: first the projections
learn to turn Q-Former tokens into something the LLM can talk about (captioning data), then
everything trainable is tuned on the target task (for AffectGPT, EMER answers). Ours, with an
optional stage before them:

0. **Tokens** (``token_epochs``, our addition, as BLIP-2 aligns its Q-Former before the LLM
   is attached): the encoder alone, with linear heads reading each span's tokens for the
   flash's emotion, its apex, the held expression and the voice
   (:mod:`microemo_ref.model.token_heads`). No LLM runs; minutes, not hours.
1. **Align**: the prompt holds the tokens and subtitles but *not* the measured-cue line; the
   target is that line's face part ("face: micro-expression 5.0-5.4 s ..."; :func:`face_line`).
   The tokens must carry what the local branch measured.
2. **EMER**: the full prompt (with the cue line, see :mod:`microemo_ref.pipeline.cues`); the
   target is the gold explanation followed by "Emotions: a, b, c.".

Loss on answer tokens only (:func:`~microemo_ref.model.bridge.answer_loss`). AdamW, linear
warm-up then cosine decay, gradient clipping at 1.0. Seeded: the same data, config and seed
give the same weights. Resumable: a ``state.pt`` after every epoch (trainable weights,
optimiser, scheduler, RNG, position) is picked up by the next run with the same ``out``.
Only the trainable weights go into the final checkpoint. ``init`` starts the run from another
checkpoint's trainable weights (checksums checked), e.g. the paper's path fine-tuned from the
cue-text model, whose adapters already write the answer's form. With ``MicroEmoConfig.readout`` the
micro-expression readout is fitted first, in closed form, on the same clips (see
:mod:`microemo_ref.pipeline.evidence_probe`), and every cue line is written with it.
"""
from __future__ import annotations

import functools
import json
import math
import random
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from microemo_ref.model.llm import load_llm
from microemo_ref.model.content_weight import content_pattern
from microemo_ref.model.checkpoint import load_weights, save_checkpoint
from microemo_ref.model.microemo import MicroEmo, MicroEmoConfig
from microemo_ref.model.flash_time import FlashTimeReader, fit_flash_time_reader
from microemo_ref.model.flash_word import FlashReader, fit_flash_reader
from microemo_ref.model.token_heads import FLASH_CLASSES, SpanTargets, TokenHeads, span_targets
from microemo_ref.model.word_anchor import Anchors
from microemo_ref.pipeline.dataset import Example, find_examples, load_example
from microemo_ref.pipeline.evidence_probe import fit_readout


@dataclass(frozen=True)
class TrainConfig:
    data: tuple[str, ...] = (".cache/train",)  # folders searched for *.evidence.npz
    out: str = ".cache/runs/default"
    align_epochs: int = 1
    emer_epochs: int = 3
    batch: int = 1  # measured: 1 was faster per example than 2 on a 2-core CPU
    lr: float = 1e-3  # encoder, projections and LoRA alike
    warmup_steps: int = 20
    seed: int = 0
    concealed_repeat: int = 2  # EMER stage: each concealed-emotion clip is seen this many times per epoch
    balance: bool = False  # EMER stage: repeat concealed clips so each hidden emotion is seen about as often
    target: str = "explanation"  # EMER target: "explanation" (+ labels) or "labels" only (cheap ablations)
    accelerate: bool = False  # run through accelerate (GPUs, several processes: `accelerate launch`)
    limit: int | None = None  # use only the first N examples (quick runs, tests)
    token_epochs: int = 0  # stage 0: token heads on the encoder alone (model.token_heads), before the LLM stages
    token_weight: float = 0.0  # the token heads' loss kept beside the answer loss in the LLM stages, this much
    init: str | None = None  # a checkpoint folder whose trainable weights start the run
    init_partial: bool = False  # ablations: tensors the init lacks (a variant's own parts) keep their seeded start
    anchor: bool = False  # add the word-anchor losses (model.word_anchor) to the token heads' loss
    content_weight: float = 1.0  # LLM stages: answer tokens in an emotion, face-movement or number word weigh this much


def content_words() -> frozenset[str]:
    """The words whose answer tokens ``content_weight`` weighs: every emotion word of the lexicon
    and every word of the generator's face-cue descriptions ("brows", "wrinkled", ...) but
    "a", "of", "with" and "the"; numbers are matched besides (:mod:`microemo_ref.model.content_weight`)."""
    from microemo_ref.lexicon import WORD_TO_HEAD
    from microemo_ref.samples.expressions import CUE_WORDS

    face = {w for phrase in CUE_WORDS.values() for w in re.findall(r"[a-z-]+", phrase)} - {"a", "of", "with", "the"}
    return frozenset(WORD_TO_HEAD) | face


def face_line(cues: str) -> str:
    """The face part of a cue line: the stage-1 target."""
    return cues.split(" voice: ")[0]


def hidden_emotion(ex: Example) -> str | None:
    """The concealed emotion of a concealed-emotion clip (its ground truth), else None."""
    truth = ex.truth or {}
    return truth["emotions"]["felt"][0] if truth.get("scenario") == "concealed" else None


def stage_examples(examples: list[Example], stage: str, concealed_repeat: int = 1,
                   balance: bool = False) -> list[Example]:
    """One epoch's examples. In the EMER stage, clips whose ground truth is a concealed emotion
    are repeated: they are the rarest and hardest answers (a brief flash against the words).

    With ``balance`` (our choice) the repeats even out the hidden emotions: a clip whose hidden
    emotion has ``n`` clips is repeated ``round(concealed_repeat * mean / n)`` times (at least
    once), ``mean`` being the clips per hidden emotion. Without it, the commonest hidden emotion
    of the training clips becomes the LLM's guess when it cannot read the flash.
    """
    if stage == "align" or (concealed_repeat <= 1 and not balance):
        return list(examples)
    hidden = [hidden_emotion(ex) for ex in examples]
    counts = Counter(h for h in hidden if h is not None)
    mean = sum(counts.values()) / max(len(counts), 1)

    def repeat(h: str | None) -> int:
        if h is None:
            return 1
        return max(1, round(concealed_repeat * mean / counts[h])) if balance else concealed_repeat

    return [ex for ex, h in zip(examples, hidden) for _ in range(repeat(h))]


def labels_line(answer: str) -> str:
    """The last line of a gold answer: "Emotions: a, b, c." (the labels-only target)."""
    return answer.rstrip().rsplit("\n", 1)[-1]


def stage_batches(examples: list[Example], stage: str, batch: int, rng: random.Random, target: str = "explanation",
                  rank: int = 0, world: int = 1):
    """(example, cue line or None, target) batches of one epoch; with ``world`` processes, this
    process's equal share of the shuffled order (the remainder is dropped so all take as many steps)."""
    order = list(range(len(examples)))
    rng.shuffle(order)
    if world > 1:
        share = len(order) // (world * batch) * batch
        order = order[rank * share:(rank + 1) * share]
    for i in range(0, len(order), batch):
        chunk = [examples[j] for j in order[i:i + batch]]
        if stage == "align":
            yield [(ex, None, face_line(ex.cues)) for ex in chunk]
        else:
            yield [(ex, ex.cues, ex.answer if target == "explanation" else labels_line(ex.answer)) for ex in chunk]


def token_heads_for(model: MicroEmo) -> TokenHeads:
    """Fresh token heads sized for ``model``'s encoder."""
    e = model.cfg.encoder
    return TokenHeads(e.video_qformer.n_queries, e.video_qformer.hidden, e.audio_qformer.n_queries,
                      e.audio_qformer.hidden)


def anchors_for(model: MicroEmo) -> Anchors:
    """Word anchors (:mod:`~microemo_ref.model.word_anchor`) for ``model``'s encoder and LLM."""
    e = model.cfg.encoder
    return Anchors(model.tokenizer, model.llm.get_input_embeddings(), e.video_qformer.n_queries,
                   e.audio_qformer.n_queries)


def clip_losses(model: MicroEmo, heads: TokenHeads, anchors: Anchors | None, enc, targets: SpanTargets) -> dict:
    """The token heads' losses of one encoded clip, and the word anchors' if there are any."""
    audio = enc.audio.tokens if enc.audio is not None else None
    losses = heads.loss(enc.visual.tokens, audio, targets)
    if anchors is not None:
        losses |= anchors.loss(model.bridge, enc.visual.tokens, audio, targets)
    return losses


def align_tokens(model: MicroEmo, examples: list[Example], cfg: TrainConfig, out: Path,
                 progress=print) -> tuple[list[dict], TokenHeads, Anchors | None]:
    """Stage 0: train the encoder with :class:`TokenHeads` on the clips' ground truth (no LLM).
    With ``cfg.anchor`` the word anchors join, and the bridge's projections train too (the
    LLM's embeddings are read, the LLM is not run).

    Resumable per epoch (``out/tokens.pt``); returns the epoch history, the heads and the anchors.
    """
    heads = token_heads_for(model)
    anchors = anchors_for(model) if cfg.anchor else None
    examples = [ex for ex in examples if ex.truth and "events" in ex.truth]
    targets = []
    for ex in examples:
        visual, audio = model.encoder.spans(ex.inputs)
        targets.append(span_targets(ex.truth, visual, audio if ex.inputs.audio is not None and model.cfg.audio
                                    else None))
    params = list(model.encoder.parameters()) + list(heads.parameters())
    if anchors is not None:
        params += list(model.bridge.parameters()) + list(anchors.parameters())
    optimiser = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.01)
    total = cfg.token_epochs * len(examples)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda s: _lr_at(s, total, cfg.warmup_steps))
    history: list[dict] = []
    state_file = out / "tokens.pt"
    if state_file.is_file():
        state = torch.load(state_file, weights_only=False)
        model.encoder.load_state_dict(state["encoder"])
        heads.load_state_dict(state["heads"])
        if anchors is not None:
            model.bridge.load_state_dict(state["bridge"])
            anchors.load_state_dict(state["anchors"])
        optimiser.load_state_dict(state["optimiser"])
        scheduler.load_state_dict(state["scheduler"])
        history = state["history"]
    model.train()
    for epoch in range(len(history), cfg.token_epochs):
        rng = random.Random(cfg.seed * 1000 + 500 + epoch)
        torch.manual_seed(cfg.seed * 1000 + 500 + epoch)
        order = list(range(len(examples)))
        rng.shuffle(order)
        began, sums = time.time(), {}
        for i in order:
            losses = clip_losses(model, heads, anchors, model.encode(examples[i].inputs), targets[i])
            loss = sum(losses.values())
            optimiser.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimiser.step()
            scheduler.step()
            for k, v in losses.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach())
        history.append({"epoch": epoch + 1, "stage": "tokens", "seconds": round(time.time() - began, 1),
                        "examples": len(examples), **{f"loss_{k}": round(v / len(examples), 4) for k, v in sums.items()}})
        progress(json.dumps(history[-1]))
        torch.save({"encoder": model.encoder.state_dict(), "heads": heads.state_dict(),
                    **({"bridge": model.bridge.state_dict(), "anchors": anchors.state_dict()} if anchors else {}),
                    "optimiser": optimiser.state_dict(), "scheduler": scheduler.state_dict(), "history": history},
                   state_file)
    return history, heads, anchors


def token_loss(model: MicroEmo, heads: TokenHeads, anchors: Anchors | None, batch: list[Example],
               encoded: list) -> torch.Tensor:
    """The token heads' (and word anchors') loss of a batch (mean over its clips with ground
    truth), from the encoder outputs the answer loss already computed."""
    total = []
    for ex, enc in zip(batch, encoded):
        if not (ex.truth and "events" in ex.truth):
            continue
        audio = enc.audio.spans if enc.audio is not None else None
        losses = clip_losses(model, heads, anchors, enc, span_targets(ex.truth, enc.visual.spans, audio))
        total.append(sum(losses.values()))
    return torch.stack(total).mean() if total else torch.zeros(())


@torch.no_grad()
def labelled_outputs(model: MicroEmo, examples: list[Example]) -> list[tuple[int, Example, object]]:
    """(index, example, encoder output) of every clip with ground truth, in eval mode: one encoder
    pass that both closed-form readers (the flash word's and the flash time's) fit on."""
    was = model.training
    model.eval()
    out = [(i, ex, model.encode(ex.inputs)) for i, ex in enumerate(examples) if ex.truth and "events" in ex.truth]
    model.train(was)
    return out


def flash_rows(labelled: list[tuple]) -> tuple[np.ndarray, list[str], list[int]]:
    """Every video span of every clip of :func:`labelled_outputs`: its flattened tokens (K, Q*D),
    its flash class, and the clip it belongs to (the flash word's training rows)."""
    features, labels, clips = [], [], []
    for i, ex, out in labelled:
        targets = span_targets(ex.truth, out.visual.spans, None)
        features.append(out.visual.tokens.reshape(len(out.visual.spans), -1).double().numpy())
        labels += [FLASH_CLASSES[k] for k in targets.flash]
        clips += [i] * len(targets.flash)
    return np.concatenate(features), labels, clips


def flash_time_clips(labelled: list[tuple]) -> list[tuple]:
    """Every clip of :func:`labelled_outputs`: its fused frame tokens (T, Q, D), their times (T,)
    and its micro-expressions inside utterances as (apex, utterance start, utterance end) seconds
    (the flash time's training rows, :func:`~microemo_ref.model.flash_time.fit_flash_time_reader`)."""
    clips = []
    for _, ex, out in labelled:
        spans = {s.index: s for s in out.visual.spans if s.kind == "utterance"}
        flashes = [(float(e["apex_s"]), spans[e["utterance"]].start, spans[e["utterance"]].end)
                   for e in ex.truth["events"] if e["kind"] == "micro" and e.get("utterance") in spans]
        clips.append((out.frames.tokens, out.frames.times, flashes))
    return clips


def flash_reader_for(model: MicroEmo, examples: list[Example], out: Path, seed: int = 0,
                     progress=print, labelled: Callable[[], list] | None = None) -> FlashReader:
    """Fit the flash word's reader on the encoder as it is (or load the one a resumed run fitted,
    ``out/flash_word.json``). ``labelled`` gives :func:`labelled_outputs`, shared with the flash time."""
    saved = out / "flash_word.json"
    if saved.is_file():
        return FlashReader.from_json(json.loads(saved.read_text()))
    began = time.time()
    rows = labelled() if labelled else labelled_outputs(model, examples)
    reader, fit = fit_flash_reader(*flash_rows(rows), seed=seed)
    progress(json.dumps({"stage": "flash_word", "seconds": round(time.time() - began, 1), **fit}))
    saved.write_text(json.dumps(reader.to_json()))
    return reader


def flash_time_reader_for(model: MicroEmo, examples: list[Example], out: Path, seed: int = 0,
                          progress=print, labelled: Callable[[], list] | None = None) -> FlashTimeReader:
    """Fit the flash time's frame reader on the frozen encoder (or load a resumed run's, ``out/flash_time.json``)."""
    saved = out / "flash_time.json"
    if saved.is_file():
        reader = FlashTimeReader.from_json(json.loads(saved.read_text()))
        enc = model.cfg.encoder.visual
        width = (2 * reader.context + 1) * enc.n_queries * enc.hidden
        if reader.mean.shape != (width,):
            raise ValueError(f"{saved}: a frame reader of width {reader.mean.shape[0]}, this encoder's frames give "
                             f"{width}; start the run in a new --out folder")
        return reader
    began = time.time()
    rows = labelled() if labelled else labelled_outputs(model, examples)
    reader, fit = fit_flash_time_reader(flash_time_clips(rows), seed=seed)
    progress(json.dumps({"stage": "flash_time", "seconds": round(time.time() - began, 1), **fit}))
    saved.write_text(json.dumps(reader.to_json()))
    return reader


def _lr_at(step: int, total: int, warmup: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def _accelerator(cfg: TrainConfig):
    if not cfg.accelerate:
        return None
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs

    # Ablations leave some parameters unused (no video tokens, ...): DDP must be told.
    return Accelerator(kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)])


def train(cfg: TrainConfig, model_cfg: MicroEmoConfig = MicroEmoConfig(), *, llm=None, progress=print) -> Path:
    """Run both stages; return the checkpoint folder (``cfg.out``/checkpoint).

    With ``cfg.accelerate`` the model and optimiser go through ``accelerate`` (device placement,
    mixed precision, DistributedDataParallel over the processes of ``accelerate launch``); each
    process trains on its share of every epoch and only the main process writes files.
    """
    from tqdm.auto import tqdm

    if cfg.target not in ("explanation", "labels"):
        raise ValueError(f'target must be "explanation" or "labels", got {cfg.target!r}')
    accelerator = _accelerator(cfg)
    rank, world = (accelerator.process_index, accelerator.num_processes) if accelerator else (0, 1)
    main = rank == 0
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    llm = llm or load_llm(model_cfg.llm)
    model = MicroEmo(model_cfg, llm)
    if cfg.init:
        fresh = load_weights(model, cfg.init, missing_ok=cfg.init_partial)
        if fresh and main:
            progress(json.dumps({"stage": "init", "not_in_init": fresh}))
    paths = find_examples(cfg.data, cfg.limit)
    if model_cfg.readout:  # closed form, from the same clips, before any gradient step
        model.readout = fit_readout(paths)
    examples = [load_example(p, model.cue_readout()) for p in paths]
    examples = [ex for ex in examples if ex.answer]
    token_history: list[dict] = []
    heads, anchors = None, None
    if cfg.token_epochs and not (out / "state.pt").is_file():  # a later stage's state holds the encoder already
        token_history, heads, anchors = align_tokens(model, examples, cfg, out, progress if main else (lambda _: None))
    elif cfg.token_epochs:
        token_history = torch.load(out / "tokens.pt", weights_only=False)["history"]
    if model_cfg.flash_word:  # the reader reads the encoder's tokens: both stay fixed from here on
        labelled = functools.cache(lambda: labelled_outputs(model, examples))  # one encoder pass for both readers
        say = progress if main else (lambda _: None)
        model.flash_reader = flash_reader_for(model, examples, out, cfg.seed, say, labelled)
        if model_cfg.flash_time:
            model.flash_time_reader = flash_time_reader_for(model, examples, out, cfg.seed, say, labelled)
        model.encoder.requires_grad_(False)
    if cfg.token_weight and heads is None:
        heads = token_heads_for(model)
    if cfg.token_weight and cfg.anchor and anchors is None:
        anchors = anchors_for(model)
    model.train()
    extra_params = (list(heads.parameters()) + (list(anchors.parameters()) if anchors else [])
                    if cfg.token_weight else [])
    params = model.trainable_parameters() + extra_params
    optimiser = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.01)
    stages = [("align", cfg.align_epochs), ("emer", cfg.emer_epochs)]
    epochs = [stage for stage, n in stages for _ in range(n)]
    per_stage = {stage: stage_examples(examples, stage, cfg.concealed_repeat, cfg.balance) for stage, _ in stages}
    steps = {stage: (len(ex) // (world * cfg.batch) if world > 1 else math.ceil(len(ex) / cfg.batch))
             for stage, ex in per_stage.items()}
    total = sum(steps[stage] for stage in epochs)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda s: _lr_at(s, total, cfg.warmup_steps))
    history: list[dict] = []
    start_epoch = 0
    state_file = out / "state.pt"
    if state_file.is_file():  # resume
        state = torch.load(state_file, weights_only=False)
        model.load_state_dict(state["model"], strict=False)
        if cfg.token_weight:
            heads.load_state_dict(state["heads"])
            if anchors is not None:
                anchors.load_state_dict(state["anchors"])
        optimiser.load_state_dict(state["optimiser"])
        scheduler.load_state_dict(state["scheduler"])
        history, start_epoch = state["history"], state["epoch"]
        progress(f"resuming after epoch {start_epoch} of {sum(n for _, n in stages)}")
    content = (content_pattern(content_words()), cfg.content_weight) if cfg.content_weight != 1.0 else None
    core = model
    if accelerator:  # the scheduler stays on the plain optimiser: one step per optimiser step
        model, optimiser = accelerator.prepare(model, optimiser)
    for epoch in range(start_epoch, len(epochs)):
        stage = epochs[epoch]
        rng = random.Random(cfg.seed * 1000 + epoch)  # the order of epoch e does not depend on resuming
        torch.manual_seed(cfg.seed * 1000 + epoch)
        began, losses, token_losses = time.time(), [], []
        seen = per_stage[stage]
        bar = tqdm(stage_batches(seen, stage, cfg.batch, rng, cfg.target, rank, world), total=steps[stage],
                   desc=f"epoch {epoch + 1} {stage}", disable=not main)
        for batch in bar:
            items = [(ex.inputs, ex.subtitles, cues, answer) for ex, cues, answer in batch]
            if cfg.token_weight:
                answer_part, encoded = model(items, return_encoded=True, content=content)
                token_part = token_loss(core, heads, anchors, [ex for ex, _, _ in batch], encoded)
                loss = answer_part + cfg.token_weight * token_part
                token_losses.append(float(token_part.detach()))
            else:
                loss = answer_part = model(items, content=content)
            optimiser.zero_grad()
            if accelerator:
                accelerator.backward(loss)
                accelerator.clip_grad_norm_(params, 1.0)
            else:
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimiser.step()
            scheduler.step()
            losses.append(float(answer_part.detach()))
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
        history.append({"epoch": epoch + 1, "stage": stage, "loss": float(np.mean(losses)),
                        "seconds": round(time.time() - began, 1), "examples": len(seen),
                        **({"token_loss": round(float(np.mean(token_losses)), 4)} if token_losses else {})})
        if main:
            progress(json.dumps(history[-1]))
            torch.save({"model": core.trainable_state(), "optimiser": optimiser.state_dict(),
                        **({"heads": heads.state_dict()} if cfg.token_weight else {}),
                        **({"anchors": anchors.state_dict()} if cfg.token_weight and anchors else {}),
                        "scheduler": scheduler.state_dict(), "history": history, "epoch": epoch + 1}, state_file)
        if accelerator:
            accelerator.wait_for_everyone()
    extra = {"train": asdict(cfg), "history": token_history + history, **({"processes": world} if world > 1 else {})}
    folder = out / "checkpoint"
    if main:
        save_checkpoint(core, folder, extra)
    if accelerator:
        accelerator.wait_for_everyone()
    return folder


__all__ = ["TrainConfig", "align_tokens", "anchors_for", "clip_losses", "content_words", "face_line", "flash_reader_for",
           "flash_rows", "flash_time_clips", "flash_time_reader_for", "hidden_emotion", "labelled_outputs", "labels_line",
           "stage_examples", "token_heads_for", "token_loss", "train"]
