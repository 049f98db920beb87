"""Grounding: is every claim of an explanation backed by what was measured?

An EMER explanation must stay grounded in the evidence measured (no cue claimed that the
evidence lacks), on real videos too. MicroEmo (Zhang et al., 2024) and AffectGPT
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
measured, and lists what it dropped and why. A sentence whose only fault is a quote in
parentheses from the wrong utterance is repaired instead: the quote is cut, the rest kept.

The checks read words, not meaning, and they err towards dropping: a negation counts only
within two words of the speech word ("does not speak", "nothing is said"), so "no spoken words
are heard" over silence is dropped, while "she does not smile when she says ..." is checked
as speech. A duration ("lasts 1.5 s") reads as a time.
"""
from __future__ import annotations

import re
from collections.abc import Sequence

from microemo_ref.metrics.clues import measured_spans, ungrounded_times, unsupported_flashes

#: Words that claim something was heard: speech, words, a voice and its qualities, and the
#: training answers' 'The person opens with "..."'.
SPEECH = re.compile(r"\b(?:say(?:s|ing)?|said|speak(?:s|ing)?|spoke(?:n)?|speech|voice[sd]?|pitch(?:ed)?|heard|"
                    r"words?|utterances?|ask(?:s|ed)?|repl(?:y|ies|ied)|told|talk(?:s|ing|ed)?|"
                    r"open(?:s|ed)?\s+with(?=\s*[\"\u201c]))\b", re.IGNORECASE)   # 'opens with "..."'
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


def _speech_check(sentence: str, texts: Sequence[str]) -> tuple[list[str], list[str]]:
    """(reasons, the quotes that are not an utterance's words): see :func:`speech_problems`."""
    claim = NO_SPEECH.sub(" ", sentence)
    if not SPEECH.search(claim):
        return [], []
    if not texts:
        return ["speech: no utterance was found"], []
    named = [int(k) for group in UTTERANCE_NO.findall(claim) for k in re.findall(r"\d+", group)]
    out = [f"utterance {k}: there are only {len(texts)}" for k in named if not 1 <= k <= len(texts)]
    valid = [k for k in named if 1 <= k <= len(texts)]
    pool = [texts[k - 1] for k in valid] or list(texts)
    where = "utterance " + ", ".join(map(str, valid)) if valid else "any utterance"
    bad = [q for q in (a or b for a, b in QUOTE.findall(claim))
           if _words(q).strip() and not any(_words(q) in _words(t) for t in pool if t)]
    return out + [f'quote "{q.strip()}": not the words of {where}' for q in bad], bad


def speech_problems(sentence: str, texts: Sequence[str]) -> list[str]:
    """Why a sentence's claims about speech lack support (empty: none do).

    ``texts`` holds the clip's utterances in order, their words or "" where none were
    transcribed (utterances found by voice activity alone); an empty ``texts`` means no
    utterance was found at all. A quoted phrase counts as quoted words only in a sentence that
    speaks of speech (a 'polite "smile"' is not a quote).
    """
    return _speech_check(sentence, texts)[0]


def without_quotes(sentence: str, quotes: Sequence[str]) -> str | None:
    """``sentence`` with each quote removed where it stands in parentheses, as in 'during
    utterance 3 ("...")' or '(5.9-7.2 s, "...")'; None when a quote stands elsewhere (in 'she
    says "..."' nothing can be cut without breaking the sentence)."""
    for q in quotes:
        quoted = r"[\"\u201c']" + re.escape(q) + r"[\"\u201d']"
        cut, n = re.subn(r"\s*\(\s*" + quoted + r"\s*\)", "", sentence, count=1)
        if not n:
            cut, n = re.subn(r",\s*" + quoted + r"(?=\s*\))", "", sentence, count=1)
        if not n:
            return None
        sentence = cut
    return sentence


def check_explanation(explanation: str, events: Sequence[dict], spans: Sequence[tuple[float, float]],
                      texts: Sequence[str], tolerance_s: float = 0.3) -> list[dict]:
    """Each sentence that claims something the evidence lacks, with the reasons.

    ``events``: spotted facial events (``to_json`` form: type, onset_s, apex_s, offset_s);
    ``spans``: utterance (start, end) seconds; ``texts``: the same utterances' words ("" if
    none). Returns ``[{"sentence": ..., "reasons": [...], "repair": ...}, ...]`` in reading
    order; ``repair`` is the sentence with its wrong quotes cut out when that alone makes it
    pass (a flash placed right but quoted from the neighbouring utterance keeps its claim),
    else None.
    """
    measured = measured_spans(events, spans)
    micro = [e["apex_s"] for e in events if e["type"] == "micro"]

    def reasons_of(sentence: str) -> tuple[list[str], list[str]]:
        reasons = [f"time {a:g} s: nothing measured there" if a == b else f"time {a:g}-{b:g} s: nothing measured there"
                   for a, b in ungrounded_times(sentence, measured, tolerance_s)]
        if unsupported_flashes(sentence, micro, tolerance_s):
            reasons.append("flash: no spotted micro-expression there")
        speech, bad = _speech_check(sentence, texts)
        return reasons + speech, bad

    out = []
    for sentence in sentences(explanation):
        reasons, bad = reasons_of(sentence)
        if reasons:
            repair = without_quotes(sentence, bad) if bad and len(bad) == len(reasons) else None
            if repair is not None and reasons_of(repair)[0]:
                repair = None
            out.append({"sentence": sentence, "reasons": reasons, "repair": repair})
    return out


def guard(explanation: str, problems: Sequence[dict]) -> str:
    """The explanation with the sentences :func:`check_explanation` found unsupported repaired
    (wrong quotes cut) where it could, dropped where it could not."""
    if not problems:
        return explanation
    fix = {p["sentence"]: p.get("repair") for p in problems}
    kept = [fix[s] if s in fix else s for s in sentences(explanation)]
    return " ".join(s for s in kept if s)


__all__ = ["check_explanation", "guard", "sentences", "speech_problems", "without_quotes"]
