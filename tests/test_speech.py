"""Speech synthesis (eSpeak NG), its prosody, and voice activity detection (Silero VAD).

The foundation requirement: a synthesised dialogue track, with ground-truth utterance times
from ``speech_bounds``, is segmented by ``detect_speech`` utterance for utterance.
Margins in the assertions come from measurements noted beside them.
"""
from __future__ import annotations

import numpy as np
import pytest

from microemo_ref.audio.prosody import measure_prosody
from microemo_ref.audio.vad import detect_speech, interval_iou
from microemo_ref.config import SAMPLE_RATE
from microemo_ref.samples.speech import PROSODY_BY_EMOTION, Prosody, speech_bounds, synthesize

SR = SAMPLE_RATE
SENTENCE = "I can't believe you did that to me."


def _trim(audio: np.ndarray) -> np.ndarray:
    start, end = speech_bounds(audio)
    return audio[int(round(start * SR)) : int(round(end * SR))]


def _noise(seconds: float, rng: np.random.Generator, level: float = 1e-3) -> np.ndarray:
    """Background hiss at -60 dBFS: 'silence' as a microphone records it."""
    return (rng.standard_normal(int(round(seconds * SR))) * level).astype(np.float32)


def test_synthesize_gives_plausible_deterministic_speech():
    audio = synthesize(SENTENCE)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert 1.0 < audio.size / SR < 4.0  # 8 words at 165 wpm: about 2 s (measured 1.9 s)
    assert np.abs(audio).max() <= 1.0
    assert np.sqrt(np.mean(audio**2)) > 0.01  # not silent (measured RMS 0.044)
    # The same text and prosody give identical samples, also after other calls.
    synthesize("Something else entirely.", PROSODY_BY_EMOTION["fear"])
    assert np.array_equal(audio, synthesize(SENTENCE))


def test_volume_is_a_linear_gain():
    soft = synthesize(SENTENCE, Prosody(volume=50))
    loud = synthesize(SENTENCE, Prosody(volume=100))
    np.testing.assert_allclose(loud, 2 * soft, atol=1e-6)


def test_prosody_changes_what_is_measured():
    sad = measure_prosody(_trim(synthesize(SENTENCE, PROSODY_BY_EMOTION["sad"])))
    angry = measure_prosody(_trim(synthesize(SENTENCE, PROSODY_BY_EMOTION["angry"])))
    # Measured for this sentence: f0 median sad 80 Hz, angry 134 Hz; range 2.9 vs 7.7
    # semitones; level -30.3 vs -23.0 dBFS; duration 2.46 vs 1.67 s.
    assert angry["f0_median_hz"] > 1.3 * sad["f0_median_hz"]
    assert angry["f0_range_semitones"] > sad["f0_range_semitones"] + 1.0
    assert angry["rms_db"] > sad["rms_db"] + 4.0
    assert angry["duration_s"] < 0.85 * sad["duration_s"]
    for measures in (sad, angry):
        assert 0.5 < measures["voiced_fraction"] <= 1.0
        assert 65.0 <= measures["f0_median_hz"] <= 400.0


def test_speech_bounds_finds_known_padding():
    rng = np.random.default_rng(0)
    core = _trim(synthesize(SENTENCE))
    padded = np.concatenate([_noise(0.37, rng, 1e-4), core, _noise(0.55, rng, 1e-4)])
    start, end = speech_bounds(padded)
    assert start == pytest.approx(0.37, abs=0.02)
    assert end == pytest.approx(0.37 + core.size / SR, abs=0.02)
    # A plain tone burst from 0.25 s to 0.75 s in hiss.
    t = np.arange(SR) / SR
    burst = np.where((t >= 0.25) & (t < 0.75), 0.5 * np.sin(2 * np.pi * 200 * t), 0.0)
    start, end = speech_bounds(burst + _noise(1.0, rng))
    assert (start, end) == pytest.approx((0.25, 0.75), abs=0.02)
    with pytest.raises(ValueError):
        speech_bounds(np.zeros(SR))


def test_interval_iou():
    assert interval_iou((0.0, 1.0), (0.0, 1.0)) == 1.0
    assert interval_iou((0.0, 1.0), (0.5, 1.5)) == pytest.approx(1 / 3)
    assert interval_iou((0.0, 1.0), (2.0, 3.0)) == 0.0


def test_vad_finds_each_utterance_of_a_dialogue():
    rng = np.random.default_rng(0)
    lines = [
        ("happy", "Oh, that is wonderful news."),
        ("angry", "I can't believe you did that to me."),
        ("sad", "I suppose it does not matter anymore."),
    ]
    # Pauses between utterances; Silero's probability stays up ~0.1 s after speech ends,
    # so a pause must exceed min_silence_s (0.3 s) plus that tail: 0.5 s is safe.
    silences = [0.6, 0.5, 0.9, 0.6]  # before, between, between, after
    parts, truth, clock = [_noise(silences[0], rng)], [], silences[0]
    for (emotion, text), pause in zip(lines, silences[1:]):
        speech = _trim(synthesize(text, PROSODY_BY_EMOTION[emotion]))
        truth.append((clock, clock + speech.size / SR))
        clock += speech.size / SR
        parts += [speech + _noise(speech.size / SR, rng), _noise(pause, rng)]
        clock += pause
    track = np.concatenate(parts)

    import torch

    threads = torch.get_num_threads()
    found = detect_speech(track)
    assert torch.get_num_threads() == threads  # silero_vad's import must not change it
    assert len(found) == len(truth)  # nothing reported in the silences, nothing merged
    unmatched = list(found)
    for utterance in truth:  # one-to-one matching, greedy by IoU
        best = max(unmatched, key=lambda seg: interval_iou(utterance, seg))
        assert interval_iou(utterance, best) >= 0.5
        unmatched.remove(best)
    assert detect_speech(track) == found  # deterministic


def test_vad_reports_nothing_in_hiss():
    assert detect_speech(_noise(2.0, np.random.default_rng(1))) == []
