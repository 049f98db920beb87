"""Generate sample dialogues: an animated face, synthesised speech, subtitles, ground truth.

``generate_clip`` turns a scenario script (:mod:`scenarios`) into media:

1. each utterance is spoken with its emotion's prosody (:mod:`speech`) and laid on a
   timeline with pauses; its ground-truth start and end are where the voiced audio lies;
2. expression events are planted: a macro expression around each utterance that has one,
   a micro-expression (160-400 ms, 1-3 px at a 256-px face) inside the revealing utterance;
3. blinks, slow head motion and the mouth moving with speech are added;
4. frames are rendered with :class:`warp.FaceAnimator` at 25 fps.

``write_clip`` stores ``NAME.mp4`` (H.264 + AAC), ``NAME.srt`` and ``NAME.json`` (the ground
truth: ``utterances``, ``events``, ``scenario``, ``explanation``, ``labels`` at the top level,
plus blinks, prosody, face and head-motion details). All three are written to a temporary
folder first and moved into place together, so a failure leaves nothing half-written.

Everything is drawn from one seed: the same seed gives the same ground truth and media.
"""
from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from microemo_ref.audio.prosody import measure_prosody
from microemo_ref.config import FPS, SAMPLE_RATE
from microemo_ref.io.clip import Utterance
from microemo_ref.io.subtitles import write_srt
from microemo_ref.io.video import write_video
from microemo_ref.samples.expressions import ExpressionEvent
from microemo_ref.samples.faces import FaceCanvas
from microemo_ref.samples.scenarios import ScenarioPlan, gold_explanation, gold_labels, plan_scenario
from microemo_ref.samples.speech import PROSODY_BY_EMOTION, speech_bounds, synthesize
from microemo_ref.samples.warp import FaceAnimator, RenderConfig, render_sequence

FORMAT_VERSION = 1


@dataclass(frozen=True)
class GenerateConfig:
    """Timing and amplitude ranges of generated clips (uniform draws within each range)."""

    fps: int = FPS
    lead_s: tuple[float, float] = (0.5, 0.9)        # silence before the first utterance
    pause_s: tuple[float, float] = (0.5, 0.9)       # silence between utterances
    tail_s: tuple[float, float] = (0.6, 1.0)        # silence after the last one
    max_duration_s: float = 12.0
    micro_px: tuple[float, float] = (1.2, 3.0)      # micro-expression peak, px at a 256-px face
    micro_frames: tuple[int, int] = (4, 10)         # inclusive length: 160-400 ms at 25 fps
    macro_px: tuple[float, float] = (4.0, 7.0)
    blink_every_s: float = 3.5                      # mean interval between blinks
    room_noise_db: float = -60.0                    # background hiss under the speech (dBFS RMS)
    render: RenderConfig = field(default_factory=RenderConfig)


@dataclass
class GeneratedClip:
    frames: np.ndarray      # (T, H, W, 3) uint8 RGB
    audio: np.ndarray       # (S,) float32 at SAMPLE_RATE
    truth: dict             # the ground-truth JSON

    @property
    def utterances(self) -> list[Utterance]:
        return [Utterance(u["start"], u["end"], u["text"], "generated") for u in self.truth["utterances"]]


def _speak(plan: ScenarioPlan, rng: np.random.Generator, cfg: GenerateConfig) -> tuple[np.ndarray, list[dict]]:
    """Synthesise and lay out the utterances; drop trailing ones that would overflow the clip."""
    pieces = []
    for u in plan.utterances:
        wav = synthesize(u.text, PROSODY_BY_EMOTION[u.voice])
        s, e = speech_bounds(wav)
        pieces.append(wav[int(s * SAMPLE_RATE):int(np.ceil(e * SAMPLE_RATE))])
    t = rng.uniform(*cfg.lead_s)
    spans, keep = [], []
    for i, wav in enumerate(pieces):
        end = t + len(wav) / SAMPLE_RATE
        if i >= 2 and end + cfg.tail_s[1] > cfg.max_duration_s:
            break
        spans.append((t, end))
        keep.append(wav)
        t = end + rng.uniform(*cfg.pause_s)
    total = spans[-1][1] + rng.uniform(*cfg.tail_s)
    n_frames = int(np.ceil(total * cfg.fps))
    audio = np.zeros(int(round(n_frames / cfg.fps * SAMPLE_RATE)), np.float32)
    audio += (10 ** (cfg.room_noise_db / 20) * rng.standard_normal(len(audio))).astype(np.float32)
    utts = []
    for i, ((s, _), wav, p) in enumerate(zip(spans, keep, plan.utterances)):
        a = int(round(s * SAMPLE_RATE))
        audio[a:a + len(wav)] += wav
        pros = PROSODY_BY_EMOTION[p.voice]
        measured = {k: round(float(v), 2) for k, v in measure_prosody(wav).items()}
        utts.append({"index": i, "start": round(a / SAMPLE_RATE, 3), "end": round((a + len(wav)) / SAMPLE_RATE, 3),
                     "text": p.text, "voice_emotion": p.voice, "face_emotion": p.face,
                     "prosody": {"emotion": p.voice, "rate_wpm": pros.rate_wpm, "pitch": pros.pitch,
                                 "pitch_range": pros.pitch_range, "volume": pros.volume, **measured}})
    return audio, utts


def _plant_events(plan: ScenarioPlan, utts: list[dict], n_frames: int, rng: np.random.Generator,
                  cfg: GenerateConfig) -> list[ExpressionEvent]:
    """Macro expressions around utterances, micro-expressions inside them (frames inclusive)."""
    fps, events = cfg.fps, []
    prev_offset = -fps
    for u, p in zip(utts, plan.utterances):
        if p.face is None:
            continue
        # The expression spans the utterance: it starts as the person starts speaking and is
        # gone soon after they stop, so the face rests (>= 6 frames) between utterances.
        onset = max(int(round((u["start"] - rng.uniform(0.0, 0.15)) * fps)), prev_offset + 6, 0)
        offset = min(int(round((u["end"] + rng.uniform(0.0, 0.15)) * fps)), onset + 4 * fps - 1, n_frames - 1)
        apex = onset + int(round(rng.uniform(0.25, 0.45) * fps))
        hold_end = max(offset - int(round(rng.uniform(0.3, 0.5) * fps)), apex)
        events.append(ExpressionEvent("macro", p.face, onset, apex, offset,
                                      round(float(rng.uniform(*cfg.macro_px)), 2), hold_end))
        prev_offset = offset
    for u, p in zip(utts, plan.utterances):
        if p.micro is None:
            continue
        length = int(rng.integers(cfg.micro_frames[0], cfg.micro_frames[1] + 1))
        # Keep clear of the macro expression's rise at the utterance start (if there is one) ...
        # ... and of its fall at the end.
        margin = 0.6 if p.face else 0.25
        lo = u["start"] + margin
        hi = max(u["end"] - margin, lo + 0.01)
        apex = int(round(rng.uniform(lo, hi) * fps))
        rise = int(round(length * rng.uniform(0.4, 0.6)))
        onset = max(apex - rise, 0)
        events.append(ExpressionEvent("micro", p.micro, onset, apex, onset + length - 1,
                                      round(float(rng.uniform(*cfg.micro_px)), 2)))
    return sorted(events, key=lambda ev: ev.onset)


def _plant_blinks(events: list[ExpressionEvent], n_frames: int, rng: np.random.Generator,
                  cfg: GenerateConfig) -> list[ExpressionEvent]:
    """Blinks (3-5 frames, nearly full closure), kept 0.4 s away from micro-expressions
    and out of the first 0.3 s (where a spotter takes its first reference frame)."""
    blinks, t = [], 0.3 + rng.exponential(cfg.blink_every_s)      # none in the first 0.3 s
    guard = int(0.4 * cfg.fps)
    while t * cfg.fps < n_frames - 6:
        onset = int(t * cfg.fps)
        length = int(rng.integers(3, 6))
        clash = any(ev.kind == "micro" and onset - guard <= ev.offset and ev.onset <= onset + length + guard
                    for ev in events)
        if not clash:
            blinks.append(ExpressionEvent("blink", "neutral", onset, onset + length // 2, onset + length - 1,
                                          round(float(rng.uniform(0.85, 1.0)), 2)))
        t += max(rng.exponential(cfg.blink_every_s), 0.6)
    return blinks


def _talk_curve(audio: np.ndarray, n_frames: int, fps: float) -> np.ndarray:
    """Mouth opening with speech, (n_frames,) in [0, 1]: the audio's RMS per frame, normalised."""
    hop = SAMPLE_RATE / fps
    rms = np.array([np.sqrt(np.mean(audio[int(i * hop):int((i + 1) * hop)] ** 2) + 1e-12) for i in range(n_frames)])
    scale = np.percentile(rms[rms > 1e-3], 95) if np.any(rms > 1e-3) else 1.0
    return np.clip(rms / scale, 0, 1)


def generate_clip(scenario: str, seed: int, canvas: FaceCanvas, cfg: GenerateConfig = GenerateConfig(),
                  animator: FaceAnimator | None = None) -> GeneratedClip:
    """One sample dialogue for ``scenario`` on ``canvas``, fully determined by ``seed``."""
    rng = np.random.default_rng(seed)
    plan = plan_scenario(scenario, rng)
    audio, utts = _speak(plan, rng, cfg)
    plan = ScenarioPlan(plan.scenario, plan.utterances[:len(utts)], plan.felt, plan.shown)
    n_frames = int(round(len(audio) / SAMPLE_RATE * cfg.fps))
    events = _plant_events(plan, utts, n_frames, rng, cfg)
    blinks = _plant_blinks(events, n_frames, rng, cfg)
    animator = animator or FaceAnimator(canvas, cfg.render)
    frames, head = render_sequence(animator, events, n_frames, cfg.fps, rng, blinks=blinks,
                                   talk=_talk_curve(audio, n_frames, cfg.fps))

    def utterance_of(frame: int) -> int | None:
        t = frame / cfg.fps
        return next((u["index"] for u in utts if u["start"] <= t <= u["end"]), None)

    ev_json = [{**ev.to_json(cfg.fps), "utterance": utterance_of(ev.apex)} for ev in events]
    labels = gold_labels(plan, rng)
    truth = {
        "version": FORMAT_VERSION, "seed": int(seed), "scenario": plan.scenario,
        "fps": cfg.fps, "n_frames": n_frames, "duration": round(n_frames / cfg.fps, 3),
        "size": list(frames.shape[1:3]),
        "face": {"identity": canvas.identity, "split": canvas.split, "face_px": round(canvas.face_px, 1)},
        "emotions": {"felt": list(plan.felt), "shown": plan.shown},
        "utterances": utts, "events": ev_json,
        "blinks": [{"onset": b.onset, "apex": b.apex, "offset": b.offset} for b in blinks],
        "head_motion": {"max_shift_px": round(float(np.abs(head[:, :2]).max()), 2),
                        "max_rot_deg": round(float(np.abs(head[:, 2]).max()), 2)},
        "talking_px": cfg.render.talk_px,
        "labels": labels,
        "explanation": gold_explanation(plan, utts, ev_json, labels, rng),
    }
    return GeneratedClip(frames, audio, truth)


def write_clip(clip: GeneratedClip, out_dir: str | Path, name: str) -> Path:
    """Write NAME.mp4, NAME.srt, NAME.json into ``out_dir`` (all or nothing); return the mp4 path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.glob(f".{name}.*"):  # left by a run killed while writing this clip
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=f".{name}.") as tmp:
        tmp = Path(tmp)
        write_video(tmp / f"{name}.mp4", clip.frames, clip.truth["fps"], clip.audio, SAMPLE_RATE)
        write_srt(tmp / f"{name}.srt", clip.utterances)
        (tmp / f"{name}.json").write_text(json.dumps({"name": name, **clip.truth}, indent=1) + "\n")
        for suffix in (".srt", ".json", ".mp4"):
            shutil.move(str(tmp / f"{name}{suffix}"), out_dir / f"{name}{suffix}")
    return out_dir / f"{name}.mp4"
