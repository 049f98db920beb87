"""Measured cues as text: what the local branch and the voice analysis found, with times.

**Our choice, beyond MicroEmo.** MicroEmo hands the LLM tokens only. A 135M-parameter LLM
trained on a few hundred clips cannot be trusted to read exact times back out of tokens, and
the explanation must never claim a cue that was not measured. So the prompt also carries the
measured cues as one line of text: every spotted facial event (micro or macro, its onset,
apex and offset in seconds, the utterance it falls in) with *how each region moved*, and
each utterance's prosody. The explanation can then quote times that really were measured;
an ablation (``cue_text=False``) can drop the line and keep the tokens.

How a region moved is read from the local branch's dynamics (per region and frame: distance
from rest, mean outward and mean downward landmark displacement, px at a 256-px face):

* a macro event is measured against the rest shape;
* a micro event against the median of the half-second around it (its own frames left out),
  so a brief flash riding on a held smile is described by its own motion, not the smile's.

Each moving region is then named in the descriptive words of FACS action units (Ekman &
Friesen, 1978), which the gold explanations also use: "inner brows raised" (AU1), "brows
lowered" (AU4), "nose wrinkled" (AU9), "lip corners pulled up" (AU12), "pulled down" (AU15),
"lips stretched sideways" (AU20), "lips pressed" (AU23/24: distance grows, no net direction),
"jaw dropped" (AU26). The words name movements only; which emotion they add up to is left
to the model, unless the model was trained with a *readout* (``MicroEmoConfig.readout``, our
addition, on in the default cue-text checkpoint): a linear classifier fitted on the training clips' micro
events (:mod:`microemo_ref.pipeline.evidence_probe`) whose answer is appended, "reads as sad".
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from microemo_ref.face.regions import REGIONS
from microemo_ref.face.spotting import SpottedEvent
from microemo_ref.io.clip import Utterance

#: (region, direction) -> FACS-style words; direction as given by :func:`direction_words`.
MOVE_WORDS: dict[tuple[str, str], str] = {
    ("brows", "up"): "brows raised", ("brows", "down"): "brows lowered",
    ("inner_brows", "up"): "inner brows raised", ("inner_brows", "down"): "inner brows lowered",
    ("inner_brows", "in"): "brows drawn together", ("inner_brows", "down and in"): "brows lowered and drawn together",
    ("inner_brows", "up and in"): "inner brows raised and drawn together",
    ("lids", "up"): "lids raised", ("lids", "down"): "lids lowered",
    ("nose", "up"): "nose wrinkled", ("nose", "up and out"): "nose wrinkled",
    ("mouth_corners", "up"): "lip corners pulled up", ("mouth_corners", "up and out"): "lip corners pulled up",
    ("mouth_corners", "down"): "lip corners pulled down", ("mouth_corners", "down and out"): "lip corners pulled down",
    ("mouth_corners", "out"): "lips stretched sideways", ("mouth_corners", "in"): "lip corners drawn in",
    ("lips", "down"): "jaw dropped",
}
REGION_WORDS: dict[str, str] = {
    "brows": "brows", "inner_brows": "inner brows", "lids": "lids", "nose": "nose",
    "mouth_corners": "lip corners", "lips": "lips",
}
MIN_PX = 0.25            # a region moving less than this (px at a 256-px face) is not named
RELATIVE = 0.35          # ... nor one moving less than this fraction of the event's strongest region
CONTEXT_S = 0.5          # half-width of the window a micro event is measured against
#: An emotion read from a micro event's (regions, 3) displacement (see MicroEmo.cue_readout).
Readout = Callable[[np.ndarray], str]


def direction_words(dx_out: float, dy_down: float) -> str:
    """'up', 'down and out', ... from an (outward, downward) displacement; '' when tiny."""
    big = max(abs(dx_out), abs(dy_down))
    if big < 1e-6:
        return ""
    words = []
    if abs(dy_down) >= big / 3:
        words.append("down" if dy_down > 0 else "up")
    if abs(dx_out) >= big / 3:
        words.append("out" if dx_out > 0 else "in")
    return " and ".join(words)


def event_displacement(ev: SpottedEvent, dynamics: np.ndarray, fps: float) -> np.ndarray:
    """(regions, 3): each region's (distance change, outward, downward) px at the event's apex;
    a micro event's measured against the median of the half-second around it.

    ``dynamics``: (regions, frames, F >= 3) = (distance from rest, outward, downward, ...) per
    frame; the first three are read.
    """
    dynamics = dynamics[..., :3]
    apex = min(ev.apex, dynamics.shape[1] - 1)
    at = dynamics[:, apex, :].astype(np.float64)                                 # (R, 3)
    if ev.type == "micro":
        half = int(round(CONTEXT_S * fps))
        frames = np.arange(max(apex - half, 0), min(apex + half + 1, dynamics.shape[1]))
        frames = frames[(frames < ev.onset - 1) | (frames > ev.offset + 1)]
        if len(frames):
            at = at - np.median(dynamics[:, frames, :], axis=1)
    return at


def region_moves(ev: SpottedEvent, dynamics: np.ndarray, fps: float,
                 regions: Sequence[str] = tuple(REGIONS)) -> list[tuple[str, float, float, float]]:
    """How each region moved at the event's apex (:func:`event_displacement`): (region, outward
    px, downward px, distance change px), strongest first, for the regions that moved enough
    to be named."""
    at = event_displacement(ev, dynamics, fps)
    moved = np.hypot(at[:, 1], at[:, 2])
    size = np.maximum(moved, at[:, 0])
    keep = [i for i in np.argsort(-size)
            if size[i] >= MIN_PX and (size[i] >= RELATIVE * size.max() or regions[i] in ev.regions)]
    return [(regions[i], float(at[i, 1]), float(at[i, 2]), float(at[i, 0])) for i in keep]


def move_phrase(region: str, dx_out: float, dy_down: float, grow: float) -> str:
    """FACS-style words for one region's movement, with its size: 'inner brows raised 1.2 px'."""
    net = math.hypot(dx_out, dy_down)
    if region == "lips" and net < 0.5 * grow:
        return f"lips pressed {grow:.1f} px"           # the lips close in on each other: no net direction
    way = direction_words(dx_out, dy_down)
    words = MOVE_WORDS.get((region, way), f"{REGION_WORDS.get(region, region)} moving {way}".rstrip())
    return f"{words} {max(net, grow):.1f} px"


def where_in_dialogue(t: float, utterances: Sequence[Utterance]) -> str:
    """'utterance 2' when t falls inside one, else 'after utterance 1', 'before utterance 1' or 'no speech'."""
    for i, u in enumerate(utterances):
        if u.start <= t <= u.end:
            return f"utterance {i + 1}"
    if not utterances:
        return "no speech"
    before = [i for i, u in enumerate(utterances) if u.end < t]
    return f"after utterance {before[-1] + 1}" if before else "before utterance 1"


def describe_event(ev: SpottedEvent, fps: float, utterances: Sequence[Utterance],
                   dynamics: np.ndarray | None = None, readout: Readout | None = None) -> str:
    """One event: kind, times, place in the dialogue and, given the dynamics, how each region
    moved; with a ``readout``, a micro event also gets the emotion it reads as."""
    kind = "micro-expression" if ev.type == "micro" else "expression"
    onset, apex, offset = ev.onset / fps, ev.apex / fps, ev.offset / fps
    where = f"{kind} {onset:.1f}-{offset:.1f} s, apex {apex:.1f} s ({where_in_dialogue(apex, utterances)})"
    moves = region_moves(ev, dynamics, fps) if dynamics is not None else []
    if not moves:   # no dynamics (or nothing above the floor): the spotter's strongest region and direction
        region = ev.regions[0] if ev.regions else "face"
        moves = [(region, *ev.direction, ev.peak_px)]
    text = f"{where}: " + ", ".join(move_phrase(*m) for m in moves)
    if readout is not None and ev.type == "micro" and dynamics is not None:
        text += f", reads as {readout(event_displacement(ev, dynamics, fps))}"
    return text


def describe_voice(i: int, summary: dict[str, float]) -> str:
    if math.isnan(summary["f0_st"]):
        return f"utterance {i + 1} unvoiced"
    return (f"utterance {i + 1} pitch {summary['f0_st']:+.0f} st, {summary['energy_db']:.0f} dB, "
            f"{summary['rate']:.1f} syllables/s")


def cue_text(events: Sequence[SpottedEvent] | None, fps: float, utterances: Sequence[Utterance],
             voice: Sequence[dict[str, float]] | None, dynamics: np.ndarray | None = None,
             readout: Readout | None = None) -> str:
    """The 'Measured cues' line of the prompt (see the module docstring)."""
    if events is None:
        face = "no face found."
    elif events:
        face = "; ".join(describe_event(e, fps, utterances, dynamics, readout)
                         for e in sorted(events, key=lambda e: e.onset)) + "."
    else:
        face = "no facial movement spotted."
    if voice is None:
        sound = "no audio."
    elif voice:
        sound = "; ".join(describe_voice(i, s) for i, s in enumerate(voice)) + "."
    else:
        sound = "no speech."
    return f"face: {face} voice: {sound}"


__all__ = ["MOVE_WORDS", "REGION_WORDS", "cue_text", "describe_event", "describe_voice", "direction_words",
           "Readout", "event_displacement", "move_phrase", "region_moves", "where_in_dialogue"]
