"""The whole pipeline on real videos (data_samples/real/: a silent Pexels clip, and a real voice
with subtitles): it must run on real talking-face videos too, with or without speech, and the
explanation must stay grounded in the evidence measured.

Neither clip has labels, so nothing is scored; what is checked is what needs no labels.
"""
import json

from microemo_ref.cli import main
from microemo_ref.config import DATA_SAMPLES
from microemo_ref.metrics.grounding import check_explanation
from microemo_ref.text.utterances import segment_video

REAL = DATA_SAMPLES / "real" / "pexels_wolfgang_langer.mp4"


def test_emer_on_a_real_silent_video(capsys):
    assert main(["emer", str(REAL), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    # The face is measured: FaceMesh found it, the spotter found events, the cue line says so.
    assert out["events"] and out["cues"].startswith("face: ") and "voice: no speech." in out["cues"]
    # Her hand is over her mouth and nose from about 2.5 s to 9.5 s (seen by eye): MediaPipe Hands
    # finds it, the notes say so, and no mouth or nose event comes from there (before the
    # occlusion gate, four "micro-expressions" did: the hand moving).
    assert any("a hand covers part of the face" in n for n in out["notes"])
    assert not [e for e in out["events"] if 3.0 <= e["apex_s"] <= 9.0 and {"lips", "nose", "mouth_corners"} & set(e["regions"])]
    # At 18.3-18.8 s she tips her head down and sideways (seen by eye): the head gate drops the
    # nose "micro-expression" that the turn made (face.head_pose), and the notes name the turn.
    assert not [e for e in out["events"] if 18.3 <= e["apex_s"] <= 18.8]
    assert any("the head turns more than 10 degrees" in n for n in out["notes"])
    # No utterance is invented over a silent track, and the notes say why the voice is missing.
    assert out["utterances"] == [] and any("no speech found in the audio" in n for n in out["notes"])
    # Whatever the model wrote, what is returned claims nothing the evidence lacks ...
    assert check_explanation(out["explanation"], out["events"], [], []) == []
    # ... and every sentence dropped is listed with its reasons, taken from the model's own words.
    for p in out["removed"]:
        assert p["reasons"] and p["sentence"] in out["raw_explanation"] and p["sentence"] not in out["explanation"]
    assert out["labels"], "the answer ends with an 'Emotions:' line"


SPEECH = DATA_SAMPLES / "real" / "obama_iran_statement_2015.mp4"


def test_voice_activity_finds_the_phrases_of_a_real_voice():
    # The side .srt was timed from a speech recogniser's word alignment (data_samples/README.md);
    # silero-vad, given no subtitles, must find the same four phrases on its own.
    subs = segment_video(SPEECH)
    vad = segment_video(SPEECH, subtitles=None, recognise=False)
    assert subs.source == "subtitles" and vad.source == "vad"
    assert [u.text for u in subs.utterances][:2] == ["Today,", "after two years of negotiations,"]
    assert len(vad.utterances) == len(subs.utterances) == 4
    for v, s in zip(vad.utterances, subs.utterances):
        assert abs(v.start - s.start) <= 0.1 and abs(v.end - s.end) <= 0.1, (v, s)
    assert all(u.text == "" for u in vad.utterances)   # voice activity hears that, not what, was said


def test_emer_on_a_real_voice_with_subtitles(capsys):
    assert main(["emer", str(SPEECH), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    texts = [u["text"] for u in out["utterances"]]
    assert len(texts) == 4 and all(u["source"] == "subtitles" for u in out["utterances"])
    assert out["cues"].startswith("face: ") and "voice: utterance 1 pitch" in out["cues"]
    # A 44-px face at 12 fps: the notes say its micro events cannot be trusted.
    assert any("the face is only 44 px" in n for n in out["notes"]) and any("12 fps (under 20)" in n for n in out["notes"])
    # What is returned quotes only words that were said, in the utterance it names.
    spans = [(u["start"], u["end"]) for u in out["utterances"]]
    assert check_explanation(out["explanation"], out["events"], spans, texts) == []
    for p in out["removed"]:
        assert p["reasons"] and p["sentence"] in out["raw_explanation"]


def test_emer_on_a_real_voice_without_subtitles(capsys):
    # With speech but no subtitles, voice activity places the utterances and the recogniser
    # fills in their words; the guard then checks quotes against what was recognised.
    assert main(["emer", str(SPEECH), "--no-subtitles", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["utterances"]) == 4 and all(u["source"] == "asr" for u in out["utterances"])
    texts = [u["text"] for u in out["utterances"]]
    assert texts[1] == "after two years of negotiations,"
    spans = [(u["start"], u["end"]) for u in out["utterances"]]
    assert check_explanation(out["explanation"], out["events"], spans, texts) == []
    for p in out["removed"]:
        assert p["reasons"] and p["sentence"] in out["raw_explanation"]


def test_emer_on_a_real_voice_without_words(capsys):
    # With speech recognition off the utterances carry no words: whatever the model quotes,
    # nothing quoted survives the guard.
    assert main(["emer", str(SPEECH), "--no-subtitles", "--no-asr", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["utterances"]) == 4 and all(u["source"] == "vad" and u["text"] == "" for u in out["utterances"])
    spans = [(u["start"], u["end"]) for u in out["utterances"]]
    assert check_explanation(out["explanation"], out["events"], spans, ["" for _ in spans]) == []
    for p in out["removed"]:       # the model quotes anyway; each such sentence is dropped or its quote cut
        assert p["reasons"] and p["sentence"] in out["raw_explanation"]
