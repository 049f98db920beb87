"""The grounding check and guard (microemo_ref.metrics.grounding), on answers the shipped model
really wrote: over a silent real video, and with a quote from the wrong utterance."""
from microemo_ref.metrics.grounding import check_explanation, guard, speech_problems

# The model's answer over a real, silent video (the bundled Pexels clip, before the guard).
SILENT = ('At 3.3 s the person says "Crystal", and the voice is fast and high-pitched. The face holds a smile '
          '(lip corners pulled up, cheeks raised) through the story. During the speech (6.0-19.7 s, apex 18.6 s, '
          'no speech), the face has a wrinkled nose with a lowered lip corner.')
EVENTS = [{"type": "micro", "onset_s": 3.2, "apex_s": 3.3, "offset_s": 3.5},
          {"type": "macro", "onset_s": 6.0, "apex_s": 12.9, "offset_s": 19.6}]


def test_speech_over_silence_is_dropped():
    problems = check_explanation(SILENT, EVENTS, [], [])
    assert [p["sentence"][:12] for p in problems] == ["At 3.3 s the", "During the s"]
    assert all(p["reasons"] == ["speech: no utterance was found"] for p in problems)
    assert guard(SILENT, problems) == "The face holds a smile (lip corners pulled up, cheeks raised) through the story."


def test_saying_nothing_was_heard_is_not_a_speech_claim():
    assert speech_problems("There is no speech; the face alone carries it.", []) == []
    assert speech_problems("Without a voice, the brows do the talking.", []) == ["speech: no utterance was found"]


def test_quotes_must_be_the_named_utterances_words():
    texts = ["Sure, whatever works for you.", "No, it is no trouble at all.", "It is okay, do not worry about it."]
    # Held-out clip concealed_grace_hopper_s0100_001: the quote is utterance 2's, not 3's.
    wrong = 'During utterance 3 ("No, it is no trouble at all."), around 6.4 s, there is a brief flash.'
    assert speech_problems(wrong, texts) == ['quote "No, it is no trouble at all.": not the words of utterance 3']
    assert speech_problems(wrong.replace("utterance 3", "utterance 2"), texts) == []
    assert speech_problems('The person says "no trouble AT all"', texts) == []  # any utterance; case, punctuation
    assert speech_problems('The person says "Happy birthday".', texts) == [
        'quote "Happy birthday": not the words of any utterance']
    assert speech_problems("In utterance 5 the voice drops.", texts) == ["utterance 5: there are only 3"]


def test_words_found_by_voice_activity_cannot_be_quoted():
    assert speech_problems("In utterance 1 the voice is even.", [""]) == []
    assert speech_problems('In utterance 1 the person says "fine".', [""]) == [
        'quote "fine": not the words of utterance 1']


def test_times_and_flashes_are_checked_too():
    text = "Around 2.0 s the brows rise. At 12.9 s there is a brief flash of the lips. At 3.3 s a flash crosses the face."
    problems = check_explanation(text, EVENTS, [], [])
    assert [p["reasons"] for p in problems] == [["time 2 s: nothing measured there"],
                                                ["flash: no spotted micro-expression there"]]
    assert guard(text, problems) == "At 3.3 s a flash crosses the face."
    assert check_explanation("", EVENTS, [], []) == [] and guard("", []) == ""


def test_review_cases():
    texts = ["Hi there.", "Fine, thanks.", "For you, anything."]
    # a sentence break inside a quote does not hide a made-up quote
    assert check_explanation('In utterance 2 the person says "Fine. Happy birthday."', [], [(0, 1)] * 3, texts)[0][
        "reasons"] == ['quote "Fine. Happy birthday.": not the words of utterance 2']
    # ... and '." ' ends a sentence
    from microemo_ref.metrics.grounding import sentences
    assert sentences('She says "Hi." She smiles.\nThen "Fine. Thanks." ok.') == [
        'She says "Hi."', "She smiles.", 'Then "Fine. Thanks."', "ok."]
    # statements of silence and idioms are not speech claims
    for s in ["The person does not speak.", "Nothing is said; the face carries it.", "There is no audible speech.",
              "In other words, the smile is polite.", "The brows tell a different story.", "The muscle tone relaxes.",
              'The "polite smile" at 6.4 s looks forced.']:
        assert speech_problems(s, []) == [], s
    # quotes match whole words; single quotes count; lists of utterances are read
    assert speech_problems('The person says "or you".', texts) == ['quote "or you": not the words of any utterance']
    assert speech_problems("The word 'Hi' opens utterance 1.", texts) == []
    assert speech_problems("In utterances 2 and 3 she says \"anything\".", texts) == []
    assert speech_problems("In utterance 2, 3.1 s, the voice drops.", texts) == []  # 3.1 s is a time, not utterance 3


def test_a_wrong_quote_in_parentheses_is_cut_and_the_rest_kept():
    """Held-out clip 041, the shipped model's answer: the flash is placed right, the quote is
    utterance 2's. The guard keeps the flash and cuts the quote; a quote that carries the
    sentence drops it."""
    from microemo_ref.metrics.grounding import without_quotes

    texts = ["Sure, whatever works for you.", "No, it is no trouble at all.", "It is okay, do not worry about it."]
    events = [{"type": "micro", "onset_s": 6.2, "apex_s": 6.4, "offset_s": 6.6}]
    spans = [(0.5, 2.4), (2.8, 4.5), (5.0, 7.0)]
    text = ('During utterance 3 ("No, it is no trouble at all."), around 6.4 s, there is a brief flash. '
            'In utterance 3 (5.0-7.0 s, "Happy days.") the voice drops. The person says "Happy days". '
            'During utterance 3 ("Happy days."), around 9.0 s, the brows rise.')
    problems = check_explanation(text, events, spans, texts)
    assert [p["repair"] for p in problems] == [
        "During utterance 3, around 6.4 s, there is a brief flash.", "In utterance 3 (5.0-7.0 s) the voice drops.",
        None, None]  # the last one also cites a time nothing backs
    assert guard(text, problems) == ("During utterance 3, around 6.4 s, there is a brief flash. "
                                     "In utterance 3 (5.0-7.0 s) the voice drops.")
    assert without_quotes('She says "x".', ["x"]) is None


def test_opening_with_a_quote_is_a_speech_claim():
    # the shipped model's answer over the silent Pexels clip, with the head gate: the sentence split
    # at '.."' left 'opens with "None.."' on its own, with no speech word; the training answers
    # open with 'The person opens with "<utterance 1>"', so that is a claim of speech.
    assert speech_problems('The person opens with "None.."', []) == ["speech: no utterance was found"]
    assert speech_problems('The person opens with "Fine, thanks."', ["Fine, thanks."]) == []
    assert speech_problems('The story opens with a smile.', []) == []
