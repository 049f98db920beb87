"""Measured cues as text: what the local branch and the voice analysis found, with times.

**Our choice, beyond MicroEmo.** MicroEmo hands the LLM tokens only. A 135M-parameter LLM
trained on a few hundred clips cannot be trusted to read exact times back out of tokens, and
the explanation must never claim a cue that was not measured. So the prompt also carries the
measured cues as one line of text: every spotted facial event (micro or macro, its onset,
apex and offset in seconds, the utterance it falls in, its regions and the direction of the
strongest one) and each utterance's prosody. The explanation can then quote times that
really were measured; an ablation (issue #7) can drop the line and keep the tokens.

Directions come from the local branch's apex displacement (x outward from the face's
midline, y downward, px at a 256-px face); a component is named when it is at least a third
of the larger one.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

from microemo_ref.face.spotting import SpottedEvent
from microemo_ref.io.clip import Utterance

REGION_WORDS: dict[str, str] = {
    "brows": "brows", "inner_brows": "inner brows", "lids": "lids", "nose": "nose",
    "mouth_corners": "mouth corners", "lips": "lips",
}


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


def where_in_dialogue(t: float, utterances: Sequence[Utterance]) -> str:
    """'utterance 2' when t falls inside one, else 'after utterance 1', 'before utterance 1' or 'no speech'."""
    for i, u in enumerate(utterances):
        if u.start <= t <= u.end:
            return f"utterance {i + 1}"
    if not utterances:
        return "no speech"
    before = [i for i, u in enumerate(utterances) if u.end < t]
    return f"after utterance {before[-1] + 1}" if before else "before utterance 1"


def describe_event(ev: SpottedEvent, fps: float, utterances: Sequence[Utterance]) -> str:
    kind = "micro-expression" if ev.type == "micro" else "expression"  # (kept short: prompt tokens cost time)
    onset, apex, offset = ev.onset / fps, ev.apex / fps, ev.offset / fps
    regions = ", ".join(REGION_WORDS.get(r, r) for r in ev.regions)
    strongest = REGION_WORDS.get(ev.regions[0], ev.regions[0]) if ev.regions else "face"
    moving = direction_words(*ev.direction)
    motion = f"{strongest} moving {moving}" if moving else strongest
    where = f"{kind} {onset:.1f}-{offset:.1f} s, apex {apex:.1f} s ({where_in_dialogue(apex, utterances)})"
    if len(ev.regions) > 1:
        return f"{where}, {regions}; strongest {motion} {ev.peak_px:.1f} px"
    return f"{where}, {motion} {ev.peak_px:.1f} px"


def describe_voice(i: int, summary: dict[str, float]) -> str:
    if math.isnan(summary["f0_st"]):
        return f"utterance {i + 1} unvoiced"
    return (f"utterance {i + 1} pitch {summary['f0_st']:+.0f} st, {summary['energy_db']:.0f} dB, "
            f"{summary['rate']:.1f} syllables/s")


def cue_text(events: Sequence[SpottedEvent] | None, fps: float, utterances: Sequence[Utterance],
             voice: Sequence[dict[str, float]] | None) -> str:
    """The 'Measured cues' line of the prompt (see the module docstring)."""
    if events is None:
        face = "no face found."
    elif events:
        face = "; ".join(describe_event(e, fps, utterances) for e in sorted(events, key=lambda e: e.onset)) + "."
    else:
        face = "no facial movement spotted."
    if voice is None:
        sound = "no audio."
    elif voice:
        sound = "; ".join(describe_voice(i, s) for i, s in enumerate(voice)) + "."
    else:
        sound = "no speech."
    return f"face: {face} voice: {sound}"


__all__ = ["REGION_WORDS", "cue_text", "describe_event", "describe_voice", "direction_words", "where_in_dialogue"]
