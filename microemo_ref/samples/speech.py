"""Speech for the generated samples: eSpeak NG driven through ctypes, with emotional prosody.

What it does
    ``synthesize(text, prosody)`` speaks a sentence and returns 16 kHz float32 audio;
    ``speech_bounds(audio)`` finds where the sound starts and ends (ground-truth utterance
    times for a dialogue track); ``PROSODY_BY_EMOTION`` says how each emotion should sound.

Where the facts come from
    * eSpeak NG's C API (``speak_lib.h``, API revision 12, library 1.52 shipped in the
      ``espeakng-loader`` wheel together with its ``espeak-ng-data`` folder). The header's
      values used below:
      ``AUDIO_OUTPUT_SYNCHRONOUS = 2``, ``POS_CHARACTER = 1``, ``espeakCHARS_UTF8 = 1``
      (``espeakSSML = 0x10`` left off), parameters ``espeakRATE = 1`` (words per minute,
      80-450), ``espeakVOLUME = 2`` (0-200, 100 normal), ``espeakPITCH = 3`` (0-100),
      ``espeakRANGE = 4`` (0-100, 0 is a monotone). In synchronous mode ``espeak_Synth``
      hands 16-bit samples at the library's rate (22050 Hz) to a callback and returns when
      done. The callback returns 0 to go on (1 would abort).
    * Determinism (measured here, explained by eSpeak NG's ``wavegen.c``): three pieces of
      state in the waveform generator outlive a call, so the same sentence spoken twice
      in one process can differ. (1) Pitch "flutter" is read from a table through a
      function-static index; (2) "roughness" lowers the amplitude every n-th glottal cycle,
      counted by a static cycle counter (at some rates every other call differed);
      (3) an automatic gain control, also static, turns the level down after a 16-bit
      overflow and recovers only while voicing. Our voice variant sets ``flutter 0`` and
      ``roughness 0``, and eSpeak always renders at volume 50 (peaks at most about
      -8 dBFS in our trials, far from overflow); ``Prosody.volume`` is then applied here
      as a linear gain, volume / 100. eSpeak's own volume is linear too
      (``GetAmplitude``), so loudness ratios are the same as eSpeak's.
      The bundled data has no such variant for the default voice, so we make one: a
      private folder of symbolic links to the bundled data plus our small variant file.
    * Emotional prosody: directions from the reviews of Murray & Arnott (1993, JASA 93,
      1097-1108), Banse & Scherer (1996, J. Pers. Soc. Psychol. 70, 614-636) and Juslin &
      Laukka (2003, Psychol. Bull. 129, 770-814); surprise from Cahn (1990, J. American
      Voice I/O Society 8, 1-19). The magnitudes are our choice (see ``PROSODY_BY_EMOTION``).
"""
from __future__ import annotations

import ctypes
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soxr

from microemo_ref.config import SAMPLE_RATE

# Values from eSpeak NG's speak_lib.h.
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_RATE, _VOLUME, _PITCH, _RANGE = 1, 2, 3, 4
_EE_OK = 0
#: eSpeak volume used for every rendering: loud enough, and never overflowing (see above).
_ENGINE_VOLUME = 50
#: Our voice variant without flutter and roughness (used as "en-us+<name>").
_STEADY_VARIANT = "microemo-steady"


@dataclass(frozen=True)
class Prosody:
    """eSpeak NG prosody settings (the units are eSpeak's own)."""

    rate_wpm: int = 165  # espeakRATE, words per minute
    pitch: int = 50  # espeakPITCH, 0-100 (base pitch)
    pitch_range: int = 50  # espeakRANGE, 0-100 (0: monotone)
    volume: int = 100  # espeakVOLUME scale, 0-200 (100: normal); applied as a gain


#: How each emotion is spoken. Directions follow the literature:
#: anger and joy are faster, higher, wider and louder than neutral; fear is the fastest
#: and high-pitched, at about normal loudness (Murray & Arnott 1993; Juslin & Laukka 2003);
#: sadness is slower, lower, narrower and softer (all three reviews); disgust is much slower
#: and lower, slightly wider and softer (Murray & Arnott 1993); contempt is lower, flatter
#: and a little slower and softer (Banse & Scherer 1996); surprise is high with the widest
#: range (Cahn 1990). Magnitudes are ours: large enough to survive synthesis and be
#: measured (tests/test_speech.py), small enough to stay natural.
PROSODY_BY_EMOTION: dict[str, Prosody] = {
    "neutral": Prosody(rate_wpm=165, pitch=50, pitch_range=50, volume=100),
    "happy": Prosody(rate_wpm=185, pitch=66, pitch_range=80, volume=120),
    "angry": Prosody(rate_wpm=190, pitch=70, pitch_range=85, volume=140),
    "sad": Prosody(rate_wpm=130, pitch=34, pitch_range=20, volume=70),
    "surprise": Prosody(rate_wpm=175, pitch=74, pitch_range=95, volume=115),
    "fear": Prosody(rate_wpm=205, pitch=72, pitch_range=60, volume=100),
    "disgust": Prosody(rate_wpm=125, pitch=36, pitch_range=60, volume=85),
    "contempt": Prosody(rate_wpm=150, pitch=40, pitch_range=30, volume=90),
}


def _steady_data_dir(bundled: Path) -> tempfile.TemporaryDirectory:
    """A private eSpeak data folder: links to the bundled files plus our flutter-free variant.

    The folder lives as long as the returned object (eSpeak reads voice files whenever
    the voice changes, so the engine keeps it).
    """
    holder = tempfile.TemporaryDirectory(prefix="microemo-espeak-")
    data = Path(holder.name) / "espeak-ng-data"
    variants = data / "voices" / "!v"
    variants.mkdir(parents=True)
    for entry in bundled.iterdir():
        if entry.name != "voices":
            os.symlink(entry, data / entry.name)
    for entry in (bundled / "voices").iterdir():  # other voice folders, if any
        if entry.name != "!v":
            os.symlink(entry, data / "voices" / entry.name)
    for entry in (bundled / "voices" / "!v").iterdir():
        os.symlink(entry, variants / entry.name)
    (variants / _STEADY_VARIANT).write_text(
        f"language variant\nname {_STEADY_VARIANT}\nflutter 0\nroughness 0\n", encoding="utf-8"
    )
    return holder


class _Engine:
    """One initialised libespeak-ng and the list its synth callback fills."""

    def __init__(self) -> None:
        try:
            import espeakng_loader

            self.lib = ctypes.CDLL(espeakng_loader.get_library_path())
            bundled = Path(espeakng_loader.get_data_path())
        except (ImportError, OSError, RuntimeError) as err:
            raise RuntimeError(
                "Cannot load eSpeak NG: the 'espeakng-loader' wheel (libespeak-ng and its "
                f"data) is missing or broken ({err})."
            ) from err
        self._data = _steady_data_dir(bundled)
        lib = self.lib
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [
            ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
            ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]
        self.rate = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, self._data.name.encode(), 0
        )
        if self.rate <= 0:
            raise RuntimeError(f"espeak_Initialize failed (returned {self.rate}).")
        # int callback(short *wav, int numsamples, espeak_EVENT *events)
        callback_type = ctypes.CFUNCTYPE(
            ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
        )
        self._chunks: list[np.ndarray] = []
        self._callback = callback_type(self._collect)  # keep a reference: C holds a pointer
        lib.espeak_SetSynthCallback(self._callback)

    def _collect(self, wav, n_samples: int, events) -> int:
        if wav and n_samples > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n_samples,)).copy())
        return 0  # 0: keep synthesising

    def speak(self, text: str, prosody: Prosody, voice: str) -> np.ndarray:
        """int16 samples at ``self.rate`` for ``text`` spoken with ``prosody``."""
        name = voice if "+" in voice else f"{voice}+{_STEADY_VARIANT}"
        if self.lib.espeak_SetVoiceByName(name.encode()) != _EE_OK:
            raise ValueError(f"eSpeak NG has no voice {voice!r}")
        for parameter, value in (
            (_RATE, prosody.rate_wpm),
            (_PITCH, prosody.pitch),
            (_RANGE, prosody.pitch_range),
            (_VOLUME, _ENGINE_VOLUME),  # prosody.volume is applied by synthesize()
        ):
            self.lib.espeak_SetParameter(parameter, int(value), 0)  # 0: absolute value
        data = text.encode("utf-8") + b"\0"
        self._chunks = []
        status = self.lib.espeak_Synth(
            data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None
        )
        self.lib.espeak_Synchronize()
        if status != _EE_OK:
            raise RuntimeError(f"espeak_Synth failed (status {status}).")
        return np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)


_engine: _Engine | None = None
_lock = threading.Lock()


def _get_engine() -> _Engine:
    """The process-wide engine, initialised on first use (eSpeak itself is a singleton)."""
    global _engine
    if _engine is None:
        _engine = _Engine()
    return _engine


def synthesize(
    text: str,
    prosody: Prosody = Prosody(),
    *,
    sample_rate: int = SAMPLE_RATE,
    voice: str = "en-us",
) -> np.ndarray:
    """Speak ``text`` with eSpeak NG; float32 mono in [-1, 1] at ``sample_rate``.

    ``voice`` is an eSpeak language voice ("en-us", "en-gb", ...); our flutter-free variant
    is added, which makes the output deterministic. A voice that already names a variant
    ("en-us+m1") is used as given and may then vary slightly from call to call.
    Leading and trailing silence from eSpeak is kept; use ``speech_bounds`` to find the speech.
    """
    with _lock:
        engine = _get_engine()
        samples = engine.speak(text, prosody, voice)
    audio = samples.astype(np.float32) * np.float32(prosody.volume / 100.0 / 32768.0)
    if sample_rate != engine.rate and audio.size:
        audio = soxr.resample(audio, engine.rate, sample_rate).astype(np.float32)
    return np.clip(audio, -1.0, 1.0)


def speech_bounds(
    audio: np.ndarray,
    sample_rate: int = SAMPLE_RATE,
    *,
    threshold_db: float = -35.0,
) -> tuple[float, float]:
    """Start and end (seconds) of the sounding part of ``audio``.

    The signal is cut into 10-ms frames; a frame sounds when its RMS level is within
    ``threshold_db`` of the loudest frame. The span runs from the first sounding frame's
    start to the last one's end, so it is accurate to one frame. Relative levels make the
    answer the same for loud and soft voices. Raises ValueError for an all-silent signal.
    """
    audio = np.asarray(audio, dtype=np.float64).ravel()
    frame = max(1, int(round(0.010 * sample_rate)))
    n_frames = int(np.ceil(audio.size / frame))
    padded = np.zeros(n_frames * frame)
    padded[: audio.size] = audio
    rms = np.sqrt(np.mean(padded.reshape(n_frames, frame) ** 2, axis=1))
    if n_frames == 0 or not np.any(rms > 0.0):
        raise ValueError("speech_bounds: the signal is empty or silent")
    level_db = 20.0 * np.log10(np.maximum(rms, 1e-12) / rms.max())
    sounding = np.flatnonzero(level_db >= threshold_db)
    start = sounding[0] * frame / sample_rate
    end = min((sounding[-1] + 1) * frame, audio.size) / sample_rate
    return float(start), float(end)
