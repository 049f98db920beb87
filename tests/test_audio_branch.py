"""Audio features (log-mel, pitch, energy, speaking rate) and the audio encoder, on signals with known answers."""
import numpy as np
import pytest
import torch

from microemo_ref.audio.features import FLOOR_DB, N_MELS, audio_features, log_mel
from microemo_ref.config import SAMPLE_RATE
from microemo_ref.model.audio_encoder import AudioEncoder, AudioEncoderConfig

SR = SAMPLE_RATE


def tone(freq: float, seconds: float, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.fixture(scope="module")
def sine():
    return audio_features(tone(200.0, 1.0))


def test_pitch_of_a_200_hz_tone_is_an_octave_above_100_hz(sine):
    voiced, f0_st, _, _ = sine.prosody[5:-5].T  # away from the edges
    assert voiced.mean() > 0.9
    assert np.median(f0_st[voiced > 0]) == pytest.approx(12.0, abs=0.3)


def test_energy_of_a_sine_in_dbfs(sine):
    energy = sine.prosody[5:-5, 2]
    assert np.median(energy) == pytest.approx(20 * np.log10(0.5 / np.sqrt(2)), abs=0.5)  # -9.0 dBFS


def test_log_mel_peaks_in_the_band_of_the_tone():
    import librosa

    mel = log_mel(tone(1000.0, 0.5))
    assert mel.shape[1] == N_MELS
    centres = librosa.mel_frequencies(N_MELS + 2, fmin=60.0, fmax=7600.0)[1:-1]
    peak = int(np.argmax(mel[10:-10].mean(axis=0)))
    assert abs(centres[peak] - 1000.0) < 0.1 * 1000.0


def test_silence_is_floored_and_unvoiced():
    feats = audio_features(np.zeros(SR // 2, np.float32))
    assert np.all(feats.prosody[:, 0] == 0) and np.all(feats.prosody[:, 2] == FLOOR_DB)
    assert np.all(feats.log_mel == FLOOR_DB) and np.all(feats.prosody[:, 3] == 0)


def test_speaking_rate_counts_syllable_like_bursts():
    """Voiced bursts of 150 ms every 250 ms: 4 nuclei per second."""
    burst, gap = tone(180.0, 0.15), np.zeros(int(0.1 * SR), np.float32)
    track = np.concatenate([np.concatenate([burst, gap]) for _ in range(12)])  # 3 s
    rate = audio_features(track).prosody[:, 3]
    middle = rate[len(rate) // 3: 2 * len(rate) // 3]
    assert np.median(middle) == pytest.approx(4.0, abs=1.0)


def test_matrix_is_scaled_and_clock_is_20_ms(sine):
    m = sine.matrix()
    assert m.shape == (len(sine.times), N_MELS + 4) and m.dtype == np.float32
    assert -2.01 <= m.min() and m.max() <= 2.5
    assert np.allclose(np.diff(sine.times), 0.02)


def test_too_short_audio_is_refused():
    with pytest.raises(ValueError, match="shorter than one"):
        audio_features(np.zeros(100, np.float32))


def test_audio_encoder_steps_and_times():
    torch.manual_seed(0)
    enc = AudioEncoder(AudioEncoderConfig())
    feats = torch.randn(101, 68)
    times = torch.arange(101) * 0.02
    steps, step_times = enc(feats, times)
    assert steps.shape == (26, 64)  # 101 -> 51 -> 26 steps of 80 ms
    torch.testing.assert_close(step_times, times[torch.arange(26) * 4])
    with pytest.raises(ValueError, match="features must be"):
        enc(torch.randn(10, 5), times[:10])
