"""Scripts of the sample dialogues: what is said, how it sounds, what the face does, and why.

A scenario decides, per utterance, the words, the voice's emotion (prosody), the face's
macro expression, and where a micro-expression flashes; :mod:`generate` turns that into media.

* ``congruent``: words, face and voice agree on one emotion.
* ``concealed``: words, voice and a macro expression say one thing (polite, pleased or calm);
  a brief micro-expression reveals another. This is the case MicroEmo's local branch exists for.
* ``shift``: the emotion changes between utterances.
* ``neutral``: no expression at all, only head motion, blinks and speech (a false-alarm test).

The gold explanation names the cues with their times and utterances, in varied phrasing, and
ends on the felt emotion; the gold labels are several words from :mod:`microemo_ref.lexicon`.
All wording is ours.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from microemo_ref.lexicon import LEXICON
from microemo_ref.samples.expressions import CUE_WORDS

SCENARIOS: tuple[str, ...] = ("congruent", "concealed", "shift", "neutral")
FACE_EMOTIONS: tuple[str, ...] = ("happy", "angry", "sad", "surprise", "fear", "disgust")
HIDDEN_EMOTIONS: tuple[str, ...] = ("angry", "sad", "disgust", "contempt", "fear")

#: What people say when they feel (or claim to feel) an emotion.
LINES: dict[str, tuple[str, ...]] = {
    "happy": ("This is wonderful news.", "I am so glad you came.", "We finally did it!",
              "That made my whole day.", "I love how this turned out."),
    "angry": ("You never listen to me.", "This is the third time you did that.",
              "I told you to stop.", "Do not touch my things again.", "That is completely unfair."),
    "sad": ("I miss how things used to be.", "Nobody called me back.", "It just did not work out.",
            "I thought we had more time.", "She left without saying goodbye."),
    "surprise": ("Wait, you are here already?", "I did not see that coming.",
                 "Is that really for me?", "You changed everything overnight?"),
    "fear": ("Did you hear that noise?", "I do not want to go down there.",
             "What if they find out?", "Please do not leave me alone."),
    "disgust": ("That smell is awful.", "Who left this mess in the sink?",
                "I cannot eat this, it is rotten.", "That is just gross."),
    "neutral": ("The meeting starts at ten.", "I took the bus this morning.",
                "The report is on your desk.", "We can talk about it later.",
                "It is supposed to rain tomorrow."),
    # Polite cover lines for the concealed scenario.
    "polite": ("That is fine, really.", "No, it is no trouble at all.", "Sure, whatever works for you.",
               "Of course, I am happy to help.", "It is okay, do not worry about it."),
}

#: How each voice sounds, for the explanations (matches the prosody table in samples.speech).
VOICE_WORDS: dict[str, str] = {
    "neutral": "even and unhurried", "happy": "bright, with a lively pitch",
    "angry": "loud and clipped", "sad": "slow, low and quiet", "surprise": "high and rising",
    "fear": "fast and high-pitched", "disgust": "low and drawn out", "contempt": "flat and slow",
}


@dataclass(frozen=True)
class UtterancePlan:
    text: str
    voice: str                    # emotion of the prosody
    face: str | None = None       # macro expression during this utterance
    micro: str | None = None      # micro-expression flashed during this utterance


@dataclass(frozen=True)
class ScenarioPlan:
    scenario: str
    utterances: tuple[UtterancePlan, ...]
    felt: tuple[str, ...]         # emotions the person really feels, in time order
    shown: str                    # emotion the person shows (words, voice, macro face)


def _pick(rng: np.random.Generator, options, k: int = 1) -> list:
    idx = rng.choice(len(options), size=k, replace=False)
    return [options[i] for i in idx]


def plan_scenario(scenario: str, rng: np.random.Generator) -> ScenarioPlan:
    """Draw one dialogue script for ``scenario``."""
    n = int(rng.integers(2, 5))   # 2-4 utterances
    if scenario == "congruent":
        emo = _pick(rng, FACE_EMOTIONS)[0]
        lines = _pick(rng, LINES[emo], min(n, len(LINES[emo])))
        faces = rng.random(len(lines)) < 0.6
        faces[int(rng.integers(len(lines)))] = True          # at least one macro expression
        # A micro-expression must stand out against the face: plant it only in an utterance
        # without the (same-emotion) macro expression, if there is one.
        bare = np.flatnonzero(~faces)
        micro_at = int(rng.choice(bare)) if len(bare) and rng.random() < 0.7 else -1
        utts = [UtterancePlan(t, emo, emo if f else None, emo if i == micro_at else None)
                for i, (t, f) in enumerate(zip(lines, faces))]
        return ScenarioPlan(scenario, tuple(utts), (emo,), emo)
    if scenario == "concealed":
        hidden = _pick(rng, HIDDEN_EMOTIONS)[0]
        shown = "happy" if rng.random() < 0.6 else "neutral"
        lines = _pick(rng, LINES["polite"], n)
        reveal = int(rng.integers(len(lines)))
        # A polite smile (if shown) holds through every utterance; the micro-expression
        # flashes on top of it.
        utts = [UtterancePlan(t, shown, "happy" if shown == "happy" else None,
                              hidden if i == reveal else None) for i, t in enumerate(lines)]
        return ScenarioPlan(scenario, tuple(utts), (hidden,), shown)
    if scenario == "shift":
        first, second = _pick(rng, FACE_EMOTIONS, 2)
        n = max(n, 2)
        k = int(rng.integers(1, n))                           # first k utterances in `first`
        emos = [first] * k + [second] * (n - k)
        used: dict[str, list[str]] = {e: _pick(rng, LINES[e], emos.count(e)) for e in (first, second)}
        utts = [UtterancePlan(used[e].pop(), e, e) for e in emos]
        return ScenarioPlan(scenario, tuple(utts), (first, second), second)
    if scenario == "neutral":
        lines = _pick(rng, LINES["neutral"], n)
        return ScenarioPlan(scenario, tuple(UtterancePlan(t, "neutral") for t in lines), ("neutral",), "neutral")
    raise ValueError(f"unknown scenario {scenario!r}; choose from {SCENARIOS}")


def gold_labels(plan: ScenarioPlan, rng: np.random.Generator) -> list[str]:
    """Several open-vocabulary words: the last felt emotion with two synonyms, then earlier ones."""
    last = LEXICON[plan.felt[-1]]
    labels = [last[0], *_pick(rng, last[1:], 2)]
    labels += [LEXICON[emo][0] for emo in plan.felt[:-1] if LEXICON[emo][0] not in labels]
    return labels


def _span(u: dict) -> str:
    return f"{u['start']:.1f}-{u['end']:.1f} s"


def _merge_macros(events: list[dict]) -> list[dict]:
    """Macro events of one emotion less than 1 s apart become one cue spanning them all."""
    merged: list[dict] = []
    for ev in sorted(events, key=lambda e: e["onset"]):
        if ev["kind"] != "macro":
            merged.append(ev)
            continue
        last = next((m for m in reversed(merged) if m["kind"] == "macro"), None)
        if last is not None and last["emotion"] == ev["emotion"] and ev["onset_s"] - last["offset_s"] <= 1.0:
            last.update(offset=ev["offset"], offset_s=ev["offset_s"])
            last["utterances"] += [ev["utterance"]] if ev["utterance"] is not None else []
        else:
            merged.append({**ev, "utterances": [ev["utterance"]] if ev["utterance"] is not None else []})
    return sorted(merged, key=lambda e: e["onset"])


def gold_explanation(plan: ScenarioPlan, utterances: list[dict], events: list[dict],
                     labels: list[str], rng: np.random.Generator) -> str:
    """An explanation that cites the cues with their times and utterances (varied phrasing).

    ``utterances`` and ``events`` are the ground-truth dicts written to the clip's JSON.
    """
    parts: list[str] = []
    first = utterances[0]
    opener = _pick(rng, ("In utterance 1 ({span}) the person says \"{text}\"",
                         "The person opens with \"{text}\" (utterance 1, {span})",
                         "At {start:.1f} s the person says \"{text}\""))[0]
    parts.append(opener.format(span=_span(first), text=first["text"], start=first["start"])
                 + f", and the voice is {VOICE_WORDS[plan.utterances[0].voice]}.")
    for ev in _merge_macros(events):
        u = ev.get("utterance")
        cue = CUE_WORDS[ev["emotion"]]
        if ev["kind"] == "micro":
            where = f"during utterance {u + 1} (\"{utterances[u]['text']}\")" if u is not None else "between utterances"
            ms = int(round(ev["duration_s"] * 1000))
            parts.append(_pick(rng, (
                f"At {ev['apex_s']:.1f} s, {where}, {cue} flashes across the face for only about {ms} ms.",
                f"A micro-expression appears {where}: {cue}, peaking at {ev['apex_s']:.1f} s and gone within {ms} ms.",
                f"{where[0].upper() + where[1:]}, around {ev['apex_s']:.1f} s, there is a brief {ms}-ms flash of {cue}."))[0])
        else:
            us = ev["utterances"]
            where = f"utterance {us[0] + 1}" if len(us) == 1 else f"utterances {us[0] + 1}-{us[-1] + 1}"
            parts.append(_pick(rng, (
                f"From {ev['onset_s']:.1f} s to {ev['offset_s']:.1f} s, through {where}, the face shows {cue}.",
                f"The face holds {cue} through {where} ({ev['onset_s']:.1f}-{ev['offset_s']:.1f} s)."))[0])
    if not events:
        parts.append("The face stays relaxed throughout, apart from blinks and small head movements.")
    for i, (u, p) in enumerate(zip(utterances[1:], plan.utterances[1:]), start=2):
        if p.voice != plan.utterances[i - 2].voice:
            parts.append(f"In utterance {i} ({_span(u)}, \"{u['text']}\") the voice turns {VOICE_WORDS[p.voice]}.")
    words = ", ".join(labels[:-1]) + (f" and {labels[-1]}" if len(labels) > 1 else labels[0])
    if plan.scenario == "concealed":
        parts.append(_pick(rng, (
            f"The polite words and {('smile' if plan.shown == 'happy' else 'calm voice')} mask the feeling that the brief expression gives away: the person is {words}.",
            f"So behind the courteous surface the person is most likely {words}."))[0])
    elif plan.scenario == "shift":
        before = LEXICON[plan.felt[0]][0]
        now = [w for w in labels if w != before]
        now_words = ", ".join(now[:-1]) + (f" and {now[-1]}" if len(now) > 1 else now[0])
        parts.append(f"The mood shifts between utterances: the person is {before} at first, and {now_words} by the end.")
    else:
        parts.append(_pick(rng, (f"Words, face and voice agree: the person is {words}.",
                                 f"Taken together, the person seems {words}."))[0])
    return " ".join(parts)
