"""Frame-level audio features for the audio branch: log-mel spectrogram and prosody contours.

Video-LLaMA (Zhang et al., 2023) and AffectGPT (Lian et al., 2024) hear a clip through a
spectrogram encoder (ImageBind's audio encoder over 2-s clips of 128 log-mel bins). Emotion
in a voice lives largely in prosody (pitch, loudness, tempo: Scherer 2003, "Vocal
communication of emotion"), which a small encoder trained on little data would struggle to
extract from mel bins alone, so **our choice** is to hand it both, on one 20-ms clock:

* **log-mel**: ``n_mels`` = 64 mel bands of the power spectrum (25-ms Hann window, 512-point
  FFT, 60-7600 Hz), in dB relative to full scale, floored at -80 dB. One frame per 20-ms hop,
  the hop of the prosody contours (speech features usually hop 10 ms; 20 ms halves the steps
  and keeps 160-ms events at 8 frames).
* **prosody** (4 channels):
    - ``voiced``: pYIN's voicing decision (0/1), see :mod:`microemo_ref.audio.prosody`;
    - ``f0_st``: pitch in semitones relative to 100 Hz, 0 where unvoiced;
    - ``energy_db``: frame RMS in dBFS, floored at -80;
    - ``rate``: a speaking-rate proxy, syllable nuclei per second in a 1-s window. Nuclei are
      peaks of the voiced energy contour at least 2 dB above their surroundings and 100 ms
      apart, after de Jong & Wempe (2009, "Praat script to detect syllable nuclei and
      measure speech rate automatically", Behavior Research Methods 41).

:meth:`AudioFeatures.matrix` stacks them, each scaled by a fixed affine map to about unit
range (fixed, not per clip: a loud clip must still look loud to the model).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from microemo_ref.audio.prosody import HOP_S, _frame_sizes, pitch_track
from microemo_ref.config import SAMPLE_RATE

N_MELS: int = 64
WINDOW_S: float = 0.025
F_MIN: float = 60.0
F_MAX: float = 7600.0
FLOOR_DB: float = -80.0
#: Syllable-nucleus detection: peak prominence (dB), spacing (s), counting window (s).
NUCLEUS_PROMINENCE_DB: float = 2.0
NUCLEUS_SPACING_S: float = 0.1
RATE_WINDOW_S: float = 1.0
PROSODY_CHANNELS: tuple[str, ...] = ("voiced", "f0_st", "energy_db", "rate")


@dataclass
class AudioFeatures:
    """Features of one track on a 20-ms clock."""

    times: np.ndarray  # (S,) seconds at the centre of each frame
    log_mel: np.ndarray  # (S, M) dBFS
    prosody: np.ndarray  # (S, 4) voiced, f0_st, energy_db, rate (see PROSODY_CHANNELS)

    def matrix(self) -> np.ndarray:
        """(S, M + 4) float32 model input, every channel mapped to roughly [-2, 2]."""
        mel = (self.log_mel + 40.0) / 20.0  # -80..0 dB -> -2..2
        voiced, f0_st, energy, rate = self.prosody.T
        scaled = np.stack([voiced, f0_st / 12.0, (energy + 40.0) / 20.0, rate / 5.0], axis=1)
        return np.concatenate([mel, scaled], axis=1).astype(np.float32)

    @property
    def width(self) -> int:
        return self.log_mel.shape[1] + len(PROSODY_CHANNELS)


def log_mel(audio: np.ndarray, sample_rate: int = SAMPLE_RATE, n_mels: int = N_MELS) -> np.ndarray:
    """(S, n_mels) log-mel power in dBFS, one row per 20-ms hop (centred frames)."""
    import librosa

    _, hop = _frame_sizes(sample_rate)
    win = int(round(WINDOW_S * sample_rate))
    n_fft = 1 << int(np.ceil(np.log2(win)))
    mel = librosa.feature.melspectrogram(
        y=np.asarray(audio, dtype=np.float32), sr=sample_rate, n_fft=n_fft, win_length=win,
        hop_length=hop, window="hann", n_mels=n_mels, fmin=F_MIN, fmax=F_MAX, power=2.0)
    # A full-scale sine has mean power 0.5 per sample; normalising by the window energy puts
    # it within a few dB of 0 in its band (measured at 16 kHz: +3.5 to +5.6 dB from 100 Hz to
    # 2 kHz, +0.9 dB at 4 kHz, -2.0 dB at 7 kHz: librosa's mel filters are area-normalised, so
    # the level depends on the band's width).
    mel = mel / (0.5 * np.sum(np.hanning(win) ** 2))
    return np.maximum(10.0 * np.log10(np.maximum(mel, 1e-12)), FLOOR_DB).T


def speaking_rate(energy_db: np.ndarray, voiced: np.ndarray, hop_s: float = HOP_S) -> np.ndarray:
    """Syllable nuclei per second in a centred 1-s window, per frame (de Jong & Wempe 2009)."""
    from scipy.signal import find_peaks

    contour = np.where(voiced, energy_db, FLOOR_DB)
    peaks, _ = find_peaks(contour, prominence=NUCLEUS_PROMINENCE_DB,
                          distance=max(1, int(round(NUCLEUS_SPACING_S / hop_s))))
    nuclei = np.zeros(contour.size)
    nuclei[peaks] = 1.0
    width = int(round(RATE_WINDOW_S / hop_s)) | 1  # odd: centred
    counts = np.convolve(nuclei, np.ones(width), mode="full")  # "same" misbehaves when width > size
    return counts[width // 2: width // 2 + contour.size] / RATE_WINDOW_S


def audio_features(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> AudioFeatures:
    """Log-mel and prosody contours of a mono track (see the module docstring)."""
    import librosa

    y = np.asarray(audio, dtype=np.float32).ravel()
    frame, hop = _frame_sizes(sample_rate)
    if y.size < frame:
        raise ValueError(f"audio of {y.size / sample_rate:.3f} s is shorter than one "
                         f"{frame / sample_rate:.3f}-s analysis frame")
    mel = log_mel(y, sample_rate)
    times, f0, voiced = pitch_track(y, sample_rate)
    rms = librosa.feature.rms(y=y, frame_length=frame, hop_length=hop)[0]
    n = min(mel.shape[0], f0.size, rms.size)  # all centred on the same hops
    voiced = voiced[:n] & np.isfinite(f0[:n])
    f0_st = np.where(voiced, 12.0 * np.log2(np.where(voiced, f0[:n], 100.0) / 100.0), 0.0)
    energy = np.maximum(20.0 * np.log10(np.maximum(rms[:n], 1e-12)), FLOOR_DB)
    rate = speaking_rate(energy, voiced)
    prosody = np.stack([voiced.astype(float), f0_st, energy, rate], axis=1)
    return AudioFeatures(times=times[:n], log_mel=mel[:n], prosody=prosody)


def span_summary(feats: AudioFeatures, start: float, end: float) -> dict[str, float]:
    """Prosody of one span: median pitch (semitones re 100 Hz, voiced frames only), median
    energy of the voiced frames (dBFS), mean speaking rate (nuclei/s), voiced fraction."""
    inside = (feats.times >= start) & (feats.times <= end)
    voiced, f0_st, energy, rate = feats.prosody[inside].T
    on = voiced > 0
    nan = float("nan")
    return {"f0_st": float(np.median(f0_st[on])) if on.any() else nan,
            "energy_db": float(np.median(energy[on])) if on.any() else nan,
            "rate": float(rate.mean()) if rate.size else nan,
            "voiced": float(on.mean()) if on.size else 0.0}


__all__ = ["AudioFeatures", "N_MELS", "PROSODY_CHANNELS", "audio_features", "log_mel", "span_summary", "speaking_rate"]
