"""The project's own open-vocabulary emotion lexicon: words grouped under a head emotion.

MER2024's open-vocabulary (OV) track scores predicted emotion words after mapping each word to
a group (Lian et al., 2024, "MER 2024", arXiv 2404.17113). The public emotion-wheel files are
non-commercial research data, so this project writes its own, smaller grouping: eight heads
(the seven prototypical facial emotions of EMFACS plus neutral) and common English synonyms
under each. It is used by the sample generator (gold labels) and by the metrics (mapping
predicted words to heads).

Gold labels are adjectives ("disgusted"), but a model may answer with the noun ("disgust").
The nouns of the heads are therefore accepted when scoring (:data:`NOUNS`) and never drawn as
gold, so adding them leaves every generated sample unchanged. A phrase ("gloomy-eyed",
"afraid to speak") maps to a head when it is not itself a word of the lexicon but its words,
split at spaces and hyphens, name exactly one head between them.
"""
from __future__ import annotations

import re

#: Head emotion -> synonyms (the gold-label form first). Lower-case adjectives, one word each.
LEXICON: dict[str, tuple[str, ...]] = {
    "neutral": ("neutral", "calm", "composed", "indifferent", "relaxed"),
    "happy": ("happy", "pleased", "cheerful", "delighted", "glad", "joyful", "content", "amused"),
    "angry": ("angry", "irritated", "annoyed", "frustrated", "resentful", "furious", "indignant"),
    "sad": ("sad", "disappointed", "dejected", "hurt", "downcast", "sorrowful", "gloomy"),
    "surprise": ("surprised", "astonished", "amazed", "startled", "shocked"),
    "fear": ("afraid", "anxious", "nervous", "worried", "scared", "uneasy", "fearful"),
    "disgust": ("disgusted", "repulsed", "revolted", "averse", "sickened"),
    "contempt": ("contemptuous", "scornful", "disdainful", "dismissive", "condescending"),
}

#: Noun forms of the heads -> head. Accepted when scoring; the generator never uses them.
NOUNS: dict[str, str] = {
    "neutrality": "neutral", "happiness": "happy", "joy": "happy", "anger": "angry", "sadness": "sad",
    "surprise": "surprise", "fear": "fear", "disgust": "disgust", "contempt": "contempt",
}

#: Word -> head. Built once from LEXICON and NOUNS.
WORD_TO_HEAD: dict[str, str] = {**{w: head for head, words in LEXICON.items() for w in words}, **NOUNS}


def head_of(word: str) -> str | None:
    """Group head of an emotion word or phrase (case and surrounding punctuation ignored), or None.

    >>> head_of("Disgust."), head_of("gloomy-eyed"), head_of("happy but afraid"), head_of("elated")
    ('disgust', 'sad', None, None)
    """
    cleaned = word.strip().strip(".,;:!?\"'").lower()
    if cleaned in WORD_TO_HEAD:
        return WORD_TO_HEAD[cleaned]
    named = {WORD_TO_HEAD[w] for w in re.split(r"[\s-]+", cleaned) if w in WORD_TO_HEAD}
    return named.pop() if len(named) == 1 else None
