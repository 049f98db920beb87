"""Grounding: is every claim of an explanation backed by what was measured?

Issue #6 asks that an EMER explanation "stay grounded in the evidence measured (no cue claimed
that the evidence lacks)", on real videos too. MicroEmo (Zhang et al., 2024) and AffectGPT
(Lian et al., 2024) score explanations against gold clues; they do not check a free answer
against the evidence of the clip it came from. **This project's rule**, one sentence at a time
(the checks are ours; an LLM judge could do more, see :mod:`.judge`):

* **time**: every time it cites lies within ``tolerance_s`` of a measured span, a spotted
  facial event or an utterance (:func:`~.clues.ungrounded_times`);
* **flash**: a claimed flash or micro-expression has a spotted *micro* event behind it
  (:func:`~.clues.unsupported_flashes`);
* **speech**: a sentence that says someone spoke, or describes their voice, needs an
  utterance; words it quotes must be words of an utterance (of the one it names, if it
  names one); and an utterance it names by number must exist (:func:`speech_problems`).

The first real videos run through the pipeline (a silent clip, a clip with no audio track)
showed why the speech rule is needed: the model, trained on dialogues that always have speech,
wrote 'the person says "Crystal"' over silence. :func:`guard` drops the sentences that fail,
so that what :func:`microemo_ref.pipeline.emer.run_emer` returns claims only what was
measured, and lists what it dropped and why.

The checks read words, not meaning, and they err towards dropping: a negation counts only
within two words of the speech word ("does not speak", "nothing is said"), so "no spoken words
are heard" over silence is dropped, while "she does not smile when she says ..." is checked
as speech. A duration ("lasts 1.5 s") reads as a time.
"""
from __future__ import annotations

import re
from collections.abc import Sequence

from microemo_ref.metrics.clues import measured_spans, ungrounded_times, unsupported_flashes

#: Words that claim something was heard: speech, words, a voice and its qualities.
SPEECH = re.compile(r"\b(?:say(?:s|ing)?|said|speak(?:s|ing)?|spoke(?:n)?|speech|voice[sd]?|pitch(?:ed)?|heard|"
                    r"words?|utterances?|ask(?:s|ed)?|repl(?:y|ies|ied)|told|talk(?:s|ing|ed)?)\b", re.IGNORECASE)
#: "no speech", "does not speak", "nothing is said", "in other words": not claims of speech.
NO_SPEECH = re.compile(r"\b(?:no|not|never|nothing|without|silent|silence)\b(?:\W+\w+){0,2}\W+(?:speech|voices?|"
                       r"words?|sounds?|utterances?|spoken|said|says?|speak(?:s|ing)?|talk\w*|heard)\b"
                       r"|\bin other words\b", re.IGNORECASE)
QUOTE = re.compile(r"[\"\u201c]([^\"\u201c\u201d]+)[\"\u201d]|(?<!\w)'([^']+?)'(?!\w)")
DOUBLE_QUOTED = re.compile(r"[\"\u201c][^\"\u201c\u201d]*[\"\u201d]")
UTTERANCE_NO = re.compile(r"\butterances?\s+(\d+(?![.\d])(?:\s*(?:,|and)\s*\d+(?![.\d]))*)", re.IGNORECASE)
#: The end of a sentence: ". ", '." ', or a line break.
BREAK = re.compile(r"(?<=[.!?])[\"\u201d]?(\s+)|\n")


def sentences(text: str) -> list[str]:
    """Split ``text`` into sentences, never inside a double-quoted passage ('says "Fine. Thanks."')."""
    quoted = [m.span() for m in DOUBLE_QUOTED.finditer(text)]
    out, start = [], 0
    for m in BREAK.finditer(text):
        cut = m.start(1) if m.group(1) is not None else m.start()
        if not any(a < cut < b for a, b in quoted):
            out.append(text[start:cut])
            start = m.end()
    out.append(text[start:])
    return [s.strip() for s in out if s.strip()]


def _words(text: str) -> str:
    """Lower-case words only, space-padded, so that punctuation, spacing and partial words do
    not decide a quote."""
    return " " + " ".join(re.findall(r"[a-z0-9']+", text.lower())) + " "


def speech_problems(sentence: str, texts: Sequence[str]) -> list[str]:
    """Why a sentence's claims about speech lack support (empty: none do).

    ``texts`` holds the clip's utterances in order, their words or "" where none were
    transcribed (utterances found by voice activity alone); an empty ``texts`` means no
    utterance was found at all. A quoted phrase counts as quoted words only in a sentence that
    speaks of speech (a 'polite "smile"' is not a quote).
    """
    claim = NO_SPEECH.sub(" ", sentence)
    if not SPEECH.search(claim):
        return []
    if not texts:
        return ["speech: no utterance was found"]
    named = [int(k) for group in UTTERANCE_NO.findall(claim) for k in re.findall(r"\d+", group)]
    out = [f"utterance {k}: there are only {len(texts)}" for k in named if not 1 <= k <= len(texts)]
    valid = [k for k in named if 1 <= k <= len(texts)]
    pool = [texts[k - 1] for k in valid] or list(texts)
    where = "utterance " + ", ".join(map(str, valid)) if valid else "any utterance"
    for q in (a or b for a, b in QUOTE.findall(claim)):
        if _words(q).strip() and not any(_words(q) in _words(t) for t in pool if t):
            out.append(f'quote "{q.strip()}": not the words of {where}')
    return out


def check_explanation(explanation: str, events: Sequence[dict], spans: Sequence[tuple[float, float]],
                      texts: Sequence[str], tolerance_s: float = 0.3) -> list[dict]:
    """Each sentence that claims something the evidence lacks, with the reasons.

    ``events``: spotted facial events (``to_json`` form: type, onset_s, apex_s, offset_s);
    ``spans``: utterance (start, end) seconds; ``texts``: the same utterances' words ("" if
    none). Returns ``[{"sentence": ..., "reasons": [...]}, ...]`` in reading order.
    """
    measured = measured_spans(events, spans)
    micro = [e["apex_s"] for e in events if e["type"] == "micro"]
    out = []
    for sentence in sentences(explanation):
        reasons = [f"time {a:g} s: nothing measured there" if a == b else f"time {a:g}-{b:g} s: nothing measured there"
                   for a, b in ungrounded_times(sentence, measured, tolerance_s)]
        if unsupported_flashes(sentence, micro, tolerance_s):
            reasons.append("flash: no spotted micro-expression there")
        reasons += speech_problems(sentence, texts)
        if reasons:
            out.append({"sentence": sentence, "reasons": reasons})
    return out


def guard(explanation: str, problems: Sequence[dict]) -> str:
    """The explanation without the sentences :func:`check_explanation` found unsupported."""
    if not problems:
        return explanation
    drop = {p["sentence"] for p in problems}
    return " ".join(s for s in sentences(explanation) if s not in drop)


__all__ = ["check_explanation", "guard", "sentences", "speech_problems"]
