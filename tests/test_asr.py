"""Speech recognition (Whisper tiny.en through faster-whisper) and word error rate."""
import json
import shutil

import numpy as np
import pytest

from microemo_ref.audio import asr
from microemo_ref.audio.asr import (LOGPROB_FLOOR, RecogniserUnavailable, WEIGHTS_SHA256, Word, check_weights,
                                    pieces, recognise, weights_dir)
from microemo_ref.cli import main
from microemo_ref.config import DATA_SAMPLES, SAMPLE_RATE
from microemo_ref.io.clip import Utterance
from microemo_ref.io.subtitles import load_subtitles
from microemo_ref.io.video import read_audio
from microemo_ref.metrics.wer import normalise, word_error_rate, word_errors
from microemo_ref.model.bridge import user_text
from microemo_ref.model.utterance_qformer import Span
from microemo_ref.text.utterances import RECOGNISED_HEADING, attach_words, segment, transcript_lines

SPEECH = DATA_SAMPLES / "real" / "obama_iran_statement_2015.mp4"
GENERATED = DATA_SAMPLES / "concealed_astronaut_s0002.mp4"


def reference(video) -> str:
    return " ".join(u.text for u in load_subtitles(video.with_suffix(".srt")))


# --- word error rate, by hand ---------------------------------------------------------------

def test_normalise_drops_case_and_punctuation():
    assert normalise("Today, after TWO years -- isn't it?") == ["today", "after", "two", "years", "isn't", "it"]


def test_word_errors_count_each_kind_of_edit():
    e = word_errors("the cat sat on the mat", "the cat sat on mat")
    assert (e.substitutions, e.deletions, e.insertions, e.reference_words) == (0, 1, 0, 6)
    e = word_errors("a b c", "a x c d")
    assert (e.substitutions, e.deletions, e.insertions) == (1, 0, 1) and e.wer == pytest.approx(2 / 3)
    assert word_error_rate("same words.", "Same words") == 0.0
    assert word_error_rate("one two", "") == 1.0
    assert word_error_rate("", "") == 0.0 and word_error_rate("", "noise") == 1.0
    # "with our" heard as "were": one substitution and one deletion out of 17 words
    ref = "Today, after two years of negotiations, the United States, together with our international partners, has achieved some-"
    hyp = "Today, after two years of negotiations, the United States, together, were international partners. Has achieved some"
    e = word_errors(ref, hyp)
    assert (e.substitutions, e.deletions, e.insertions, e.reference_words) == (1, 1, 0, 17)


# --- the weights ----------------------------------------------------------------------------

def test_shipped_weights_pass_their_checksums():
    check_weights(weights_dir())


def test_a_changed_weight_file_is_refused(tmp_path):
    for name in WEIGHTS_SHA256:
        if name != "model.bin":
            shutil.copy(weights_dir() / name, tmp_path / name)
    with pytest.raises(RecogniserUnavailable, match="model.bin: speech-recognition weights missing"):
        check_weights(tmp_path)
    (tmp_path / "model.bin").write_bytes(b"not whisper")
    with pytest.raises(RecogniserUnavailable, match=r"model.bin: sha256 .* is not the pinned"):
        check_weights(tmp_path)


# --- recognition ----------------------------------------------------------------------------

def test_recogniser_on_the_real_speech_clip():
    heard = recognise(read_audio(SPEECH))
    # measured: 1 substitution + 1 deletion of 17 words ("together with our" -> "together, were")
    assert word_error_rate(reference(SPEECH), heard.text) <= 0.2, heard.text
    assert heard.dropped == []
    first = heard.words[0]
    assert first.text == "Today," and 0.7 <= first.start <= 1.2      # the subtitles say 1.0 s
    starts = [w.start for w in heard.words]
    assert starts == sorted(starts) and heard.words[-1].end <= heard.seconds + 0.05


def test_recogniser_on_real_read_speech():
    # Five LibriVox recordings (public domain) with their transcripts: measured 8 edits in 71
    # words (0.113), most of them the transcript's spelling ("mister", "ill disposed").
    edits = words = 0
    for wav in sorted((DATA_SAMPLES / "real" / "librivox").glob("*.wav")):
        e = word_errors(wav.with_suffix(".txt").read_text(), recognise(read_audio(wav)).text)
        edits, words = edits + e.substitutions + e.deletions + e.insertions, words + e.reference_words
    assert words == 71 and edits / words <= 0.2


def test_real_german_speech_gives_no_words():
    # EmoDB (real German, one speaker, 7 recordings): Whisper's log-probability floor alone let
    # 2 of the 7 through as English nonsense; the word-probability floor leaves out all 7.
    folder = DATA_SAMPLES / "real" / "emodb"
    heard = [recognise(read_audio(w)) for w in sorted(folder.glob("*.wav"))]
    assert len(heard) == 7 and all(h.words == [] and h.dropped for h in heard)


def test_recogniser_on_a_generated_clip_is_deterministic():
    audio = read_audio(GENERATED)
    a, b = recognise(audio), recognise(audio)
    assert a == b
    assert word_error_rate(reference(GENERATED), a.text) == 0.0, a.text   # measured: word-perfect


def test_pieces_are_cut_at_the_latest_pause_that_fits():
    assert pieces(50.0, [10.0, 30.0]) == [(0.0, 50.0)]  # under MAX_PIECE_S: one piece, as before
    assert pieces(150.0, [20.0, 55.0, 70.0, 118.0, 130.0]) == [(0.0, 55.0), (55.0, 70.0), (70.0, 130.0),
                                                                (130.0, 150.0)]
    assert pieces(130.0, []) == [(0.0, 60.0), (60.0, 120.0), (120.0, 130.0)]  # no pause: cut where it must


def test_a_long_track_is_recognised_piece_by_piece(monkeypatch):
    """Three copies of the generated clip's track, end to end, with pieces one copy long: each
    piece gives the clip's own words, at the clip's own times shifted by the piece's start."""
    audio = read_audio(GENERATED)
    seconds = len(audio) / SAMPLE_RATE
    alone = recognise(audio)
    monkeypatch.setattr(asr, "MAX_PIECE_S", seconds + 0.5)
    cut = recognise(np.tile(audio, 3), pauses=[seconds, 2 * seconds])
    assert [w.text for w in cut.words] == [w.text for w in alone.words] * 3
    shifted = [round(k * seconds + w.start, 3) for k in range(3) for w in alone.words]
    np.testing.assert_allclose([w.start for w in cut.words], shifted, atol=0.002)


def test_silence_gives_no_words():
    assert recognise(np.zeros(SAMPLE_RATE * 3, np.float32)).words == []


def test_speech_that_is_not_english_gives_no_words():
    # tiny.en reads English only: on Mandarin it writes English-sounding words at a low
    # log-probability (measured -1.18), which the confidence floor leaves out.
    from microemo_ref.samples.speech import synthesize

    pause = np.zeros(SAMPLE_RATE // 2, np.float32)
    audio = np.concatenate([pause, synthesize("今天我们谈一谈这个问题，我觉得没有关系。", voice="cmn"), pause])
    heard = recognise(audio)
    assert heard.words == [] and len(heard.dropped) >= 1 and LOGPROB_FLOOR == -1.0
    seg = segment(duration=audio.size / SAMPLE_RATE, audio=audio, subtitles=None, where="mandarin.wav")
    assert seg.source == "vad" and seg.utterances and all(u.text == "" for u in seg.utterances)
    assert any("not confident" in n and n.startswith("mandarin.wav") for n in seg.notes)


# --- words into utterances and the prompt ---------------------------------------------------

def test_attach_words_by_overlap_then_nearest():
    utts = [Utterance(1.0, 2.0, "", "vad"), Utterance(3.0, 4.0, "", "vad")]
    words = [Word("hello", 0.7, 1.1, 1.0), Word("there", 1.9, 2.9, 1.0),   # mostly in the gap: nearest by overlap
             Word("you", 2.4, 2.6, 1.0),                                    # no overlap: 0.4 s from both, first wins
             Word("far", 5.0, 5.2, 1.0)]                                    # 1.0 s away: lost
    out, lost = attach_words(utts, words)
    assert [u.text for u in out] == ["hello there you", ""]
    assert [u.source for u in out] == ["asr", "vad"] and lost == 1
    assert attach_words([], words) == ([], 4)


def test_recognised_words_are_headed_as_such_in_the_prompt():
    asr = [Utterance(0.5, 1.5, "fine, really", "asr"), Utterance(2.0, 2.5, "", "vad")]
    lines = transcript_lines(asr)
    assert lines == [RECOGNISED_HEADING, "0.5 - 1.5 seconds, fine, really"]
    spans = [Span(0.0, 3.0, "video")]
    text = user_text(spans, None, lines)
    assert RECOGNISED_HEADING in text and "Subtitles:" not in text
    assert "Subtitles:\n0.5 - 1.5 seconds, yes" in user_text(spans, None, transcript_lines([Utterance(0.5, 1.5, "yes")]))


def test_cli_utterances_without_subtitles_prints_the_recognised_words(capsys):
    assert main(["utterances", str(SPEECH), "--no-subtitles", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["source"] == "asr" and len(out["utterances"]) == 4
    assert [u["source"] for u in out["utterances"]] == ["asr"] * 4
    assert out["utterances"][0]["text"] == "Today,"
    assert word_error_rate(reference(SPEECH), " ".join(u["text"] for u in out["utterances"])) <= 0.2
    assert any("Whisper tiny.en" in n for n in out["notes"])
