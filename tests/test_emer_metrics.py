"""OV emotion-set metrics and clue recall, against hand-computed vectors."""
import pytest

from microemo_ref.metrics.clues import clue_recall, clue_recalled, flash_claim, mentioned_times, ungrounded_times
from microemo_ref.metrics.emotion_sets import hit_rate, ov_scores, sample_scores


def test_sample_scores_map_synonyms_to_heads():
    # gold heads {sad}; predicted heads {sad, happy}: precision 1/2, recall 1/1
    assert sample_scores(["sad", "hurt", "gloomy"], ["downcast", "glad"]) == (0.5, 1.0)
    assert sample_scores(["sad"], []) == (0.0, 0.0)  # empty prediction scores 0
    assert sample_scores(["happy", "afraid"], ["cheerful"]) == (1.0, 0.5)


def test_nouns_and_phrases_map_to_heads_but_are_never_gold():
    from microemo_ref.lexicon import LEXICON, NOUNS, head_of
    assert [head_of(w) for w in ("disgust", "Fear.", "anger", "sadness", "surprise")] == [
        "disgust", "fear", "angry", "sad", "surprise"]
    assert head_of("gloomy-eyed") == "sad" and head_of("afraid to speak") == "fear"
    assert head_of("gloomy-sad") == "sad"  # two words, one head
    assert head_of("happy but afraid") is None and head_of("elated") is None  # two heads; unknown word
    gold_words = {w for words in LEXICON.values() for w in words}
    assert not gold_words & set(NOUNS)  # the generator draws gold labels from LEXICON only
    # a noun answer now earns its head: gold {disgust}, predicted {disgust, angry}
    assert sample_scores(["disgusted", "averse"], ["disgust", "angry"]) == (0.5, 1.0)


def test_ov_scores_by_hand():
    gold = [["sad", "hurt"], ["happy", "afraid"], ["angry"]]
    pred = [["sad", "wistful"], ["glad"], ["calm", "irritated"]]
    # per sample (P, R): (1, 1) [wistful unmapped], (1, 0.5), (0.5, 1)
    s = ov_scores(gold, pred)
    assert s.precision == pytest.approx(2.5 / 3) and s.recall == pytest.approx(2.5 / 3)
    assert s.f == pytest.approx(2.5 / 3)
    assert s.coverage == pytest.approx(4 / 5) and s.samples == 3


def test_ov_scores_f_from_averages_not_average_of_f():
    s = ov_scores([["sad"], ["sad", "happy"]], [["sad", "angry"], ["sad"]])
    # (0.5, 1) and (1, 0.5): P = R = 0.75, F = 0.75 (the mean of per-sample F would be 0.667)
    assert s.f == pytest.approx(0.75)


def test_hit_rate_and_errors():
    assert hit_rate(["sad", "happy"], [["gloomy"], ["angry"]]) == 0.5
    with pytest.raises(ValueError):
        ov_scores([["sad"]], [])


def test_times_are_found_in_text():
    assert mentioned_times("around 5.2 s, then 6.0-6.4 seconds and 7 to 8 s") == [(5.2, 5.2), (6.0, 6.4), (7.0, 8.0)]


def test_clue_recall_needs_time_and_utterance_in_one_sentence():
    text = ("The voice is bright. During utterance 3, around 5.2 s, the inner brows rise briefly. "
            "Utterance 4 is calm.")
    assert clue_recalled(text, 5.3, 2)
    assert not clue_recalled(text, 5.6, 2)  # 0.4 s away
    assert not clue_recalled(text, 5.2, 3)  # wrong utterance
    assert not clue_recalled("Utterance 3 is calm. At 5.2 s the brows rise.", 5.2, 2)  # split across sentences
    assert clue_recalled("A flicker at 5.0-5.4 s in utterance 3.", 5.2, 2)
    # An utterance's span holds the apex but does not say when the flash came.
    assert not clue_recalled("A micro-expression appears during utterance 3 (4.1-6.0 s).", 5.2, 2)
    assert clue_recalled("A flicker in utterance 3 (4.9-5.5 s).", 5.2, 2)      # 0.6 s: twice the tolerance
    assert clue_recall([text, "nothing"], [[{"apex_s": 5.2, "utterance": 2}], [{"apex_s": 1.0, "utterance": None}]]) == 0.5


def test_ungrounded_times():
    measured = [(0.6, 1.8), (5.0, 5.4)]  # an utterance and a spotted event
    text = "Utterance 1 (0.6-1.8 s) is bright. Around 5.2 s the brows rise. At 7.5 s the lips press."
    assert ungrounded_times(text, measured) == [(7.5, 7.5)]
    assert ungrounded_times("From 0.4 s to 8.9 s it smiles.", measured) == [(8.9, 8.9)]


def test_measured_spans_and_sentences_citing():
    from microemo_ref.metrics.clues import measured_spans, sentences_citing

    assert measured_spans([{"onset_s": 5.0, "offset_s": 5.4}], [(0.6, 1.8)]) == [(5.0, 5.4), (0.6, 1.8)]
    text = "Utterance 1 (0.6-1.8 s) is bright. Around 5.2 s the brows rise."
    assert sentences_citing(text, 4.5, 6.3) == ["Around 5.2 s the brows rise."]


def test_labels_at():
    from microemo_ref.metrics.spans import labels_at

    events = [{"kind": "macro", "emotion": "fear", "onset_s": 0.5, "offset_s": 2.0},
              {"kind": "micro", "emotion": "sad", "onset_s": 1.0, "offset_s": 1.2}]
    assert labels_at(events, [0.1, 1.1, 3.0]) == [None, "fear", None]


def test_failure_kinds_by_hand():
    from microemo_ref.pipeline.evaluate import confusion, error_summary, failure_kind

    base = {"scenario": "concealed", "gold": ["sad", "hurt"], "cues": [{"apex_s": 5.2, "utterance": 2}],
            "surface": ["happy"], "spotted": [True]}
    assert failure_kind({**base, "labels": ["gloomy"]}) == "right"            # same head, other word
    assert failure_kind({**base, "labels": []}) == "no labels"
    assert failure_kind({**base, "labels": ["happy"], "spotted": [False]}) == "missed by the spotter"
    assert failure_kind({**base, "labels": ["cheerful", "glad"]}) == "surface emotion"
    assert failure_kind({**base, "labels": ["angry"]}) == "wrong emotion"
    assert failure_kind({**base, "scenario": "congruent", "cues": [], "labels": ["happy"]}) == "wrong emotion"
    rows = [{**base, "labels": ["gloomy"]}, {**base, "labels": ["happy", "sad"]}]
    assert failure_kind(rows[1]) == "partly right"
    assert error_summary(rows) == {"concealed": {"partly right": 1, "right": 1}}
    assert confusion(rows) == {"sad": {"sad": 2, "happy": 1}}


def test_a_flash_needs_a_spotted_micro_event():
    from microemo_ref.metrics.clues import unsupported_flashes

    text = ("At 1.8 s the face shows a smile. Around 6.9 s there is a brief flash of a one-sided mouth corner. "
            "A micro-expression appears during utterance 2.")
    # no micro event spotted: both flash sentences are claims the evidence lacks; the smile is not a flash
    assert unsupported_flashes(text, []) == ["Around 6.9 s there is a brief flash of a one-sided mouth corner.",
                                             "A micro-expression appears during utterance 2."]
    assert unsupported_flashes(text, [6.7]) == []          # within 0.3 s; the timeless one passes
    assert unsupported_flashes(text, [6.5]) == ["Around 6.9 s there is a brief flash of a one-sided mouth corner."]


def test_per_utterance_mood_reads_the_utterance_a_sentence_names():
    import json

    from microemo_ref.config import DATA_SAMPLES
    from microemo_ref.metrics.moods import mood_hits, mood_phrases, named_utterances
    from microemo_ref.pipeline.evaluate import _cue_phrases

    phrases = mood_phrases(_cue_phrases())
    assert named_utterances("Through utterances 1-3 and then utterance 5.") == {0, 1, 2, 4}
    assert named_utterances("In utterances 2 and 3 the voice turns loud.") == {1, 2}
    for name in ("shift_astronaut_s0006", "shift_grace_hopper_s0005"):
        truth = json.loads((DATA_SAMPLES / f"{name}.json").read_text())
        moods = [u["voice_emotion"] for u in truth["utterances"]]
        assert len(set(moods)) == 2 and all(mood_hits(truth["explanation"], moods, phrases)), name
    moods = ["happy", "happy", "angry"]
    swapped = "In utterance 1 the face shows a brow lowering. In utterances 2-3 the voice is bright, with a lively pitch."
    assert mood_hits(swapped, moods, phrases) == [False, True, False]
    assert mood_hits("The person is happy at first and angry by the end.", moods, phrases) == [False] * 3


def test_flash_claim_splits_clue_recall_into_where_and_when():
    text = ('In utterance 1 (0.8-2.6 s) the person says "It is okay.", and the voice is bright. '
            'During utterance 2 ("That is fine, really."), around 3.8 s, there is a brief 200-ms flash '
            'of raised inner brows. Emotions: afraid.')
    assert flash_claim(text) == (1, 3.8)  # the utterance span of the first sentence is not the flash's time
    assert clue_recalled(text, 3.7, 1) and not clue_recalled(text, 3.7, 0)
    assert flash_claim("A micro-expression (5.0-5.4 s) flickers in utterance 3.") == (2, pytest.approx(5.2))
    assert flash_claim("The face shows a smile throughout utterance 1 (0.8-2.6 s).") == (None, None)
    assert flash_claim("A brief flash of disgust appears.") == (None, None)
