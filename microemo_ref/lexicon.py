"""The project's own open-vocabulary emotion lexicon: words grouped under a head emotion.

MER2024's open-vocabulary (OV) track scores predicted emotion words after mapping each word to
a group (DESIGN.md section 5). The public emotion-wheel files are non-commercial research
data, so this project writes its own, smaller grouping: eight heads (the seven prototypical
facial emotions of EMFACS plus neutral) and common English synonyms under each. It is used by
the sample generator (gold labels) and by the metrics (mapping predicted words to heads).
"""
from __future__ import annotations

#: Head emotion -> synonyms (the head itself first). Lower-case, one word each.
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

#: Word -> head. Built once from LEXICON.
WORD_TO_HEAD: dict[str, str] = {w: head for head, words in LEXICON.items() for w in words}


def head_of(word: str) -> str | None:
    """Group head of an emotion word (case and surrounding punctuation ignored), or None."""
    return WORD_TO_HEAD.get(word.strip().strip(".,;:!?\"'").lower())
