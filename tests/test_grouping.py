"""User-supplied emotion-wheel groupings (MERTools' layout), on hand-made fixtures."""
from pathlib import Path

import pytest

from microemo_ref.metrics.emotion_sets import heads, hit_rate, ov_scores, sample_scores
from microemo_ref.metrics.grouping import (GroupingError, load_grouping, load_groupings, read_formats,
                                          read_synonyms, read_wheel, split_list)

FIX = Path(__file__).parent / "fixtures" / "grouping"
WHEEL_A, WHEEL_B = FIX / "wheel_a.csv", FIX / "wheel_b.csv"
SYN, FMT = FIX / "synonyms.csv", FIX / "formats.csv"


def full(path: Path):
    return load_grouping(path, synonyms=SYN, formats=FMT)


def test_wheel_is_filled_down_and_grouped_at_both_levels():
    assert read_wheel(WHEEL_A) == {
        "joy": {"content": ["peaceful", "satisfied"], "proud": ["confident"]},
        "sadness": {"lonely": ["forsaken"], "grief": ["mourning"]},
        "anger": {"irritated": ["annoyed", "grumpy"]},
    }
    w1 = load_grouping(WHEEL_A)  # wheel only: the word itself is looked up, lower-cased and stripped
    assert (w1.name, w1.level, w1.heads) == ("wheel_a", "level1", {"joy", "sadness", "anger"})
    assert [w1.head_of(w) for w in ("Satisfied ", "grief", "anger", "glad", "pride")] == [
        "joy", "sadness", "anger", None, None]
    w2 = load_grouping(WHEEL_A, level="level2")
    # a level1 word goes to the alphabetically first of its level2 words
    assert [w2.head_of(w) for w in ("joy", "sadness", "anger", "forsaken", "MOURNING", "confident")] == [
        "content", "grief", "irritated", "lonely", "grief", "proud"]


def test_synonym_runs_merge_and_formats_map_to_names():
    syn = read_synonyms(SYN)
    assert syn["glad"] == {"content"} and syn["bothered"] == {"annoyed"} and syn["content"] == {"content"}
    assert syn["moved"] == {"content", "mourning"}  # run1 says mourning, run2 content: union
    fmt = read_formats(FMT)
    assert fmt["contentment"] == {"content"} and fmt["content"] == {"content"} and fmt["alone"] == {"alone"}
    assert split_list("['a', \"B \", c,,]") == ["a", "b", "c"] and split_list("") == []


def test_full_lookup_form_then_synonym_then_wheel():
    a, b = full(WHEEL_A), full(WHEEL_B)
    # contentment -> content -> content -> joy; gladness -> glad -> content -> joy; pride -> proud (no synonyms row)
    assert [a.head_of(w) for w in ("Contentment", "gladness", "pride", "bothered", "bereaved")] == [
        "joy", "joy", "joy", "anger", "sadness"]
    # moved -> {content, mourning}: the alphabetically first on the wheel decides
    assert a.head_of("moved") == "joy" and b.head_of("moved") == "positive"
    # with a format file, a word that is no form or name there is dropped, even a wheel word
    assert a.head_of("elated") is None and a.head_of("joy") is None and a.head_of("pleased") is None
    assert b.head_of("grumpy") is None and b.head_of("annoyance") == "negative"


GOLD = [["contented", "pride"], ["loneliness"], ["grumpy"]]
PRED = [["gladness", "annoying", "elated"], ["bereaved", "moved"], ["annoyance"]]


def test_ov_scores_with_one_wheel_by_hand():
    a, b = full(WHEEL_A), full(WHEEL_B)
    # wheel A: 1. G {joy}, P {joy, anger} (elated dropped) -> 1/2, 1;  2. G {sadness}, P {sadness, joy} -> 1/2, 1
    #          3. G {anger}, P {anger} -> 1, 1.  P = 2/3, R = 1, F = 2(2/3)/(5/3) = 4/5; mapped 5 of 6 words
    assert sample_scores(GOLD[0], PRED[0], a) == (0.5, 1.0)
    s = ov_scores(GOLD, PRED, a)
    assert (s.precision, s.recall, s.f, s.coverage, s.samples) == pytest.approx((2 / 3, 1.0, 0.8, 5 / 6, 3))
    # wheel B: 1. G {positive}, P {positive, negative} -> 1/2, 1;  2. G {negative}, P {negative, positive} -> 1/2, 1
    #          3. grumpy is not on B: G empty -> 0, 0.  P = 1/3, R = 2/3, F = 4/9; mapped 5 of 6
    s = ov_scores(GOLD, PRED, b)
    assert (s.precision, s.recall, s.f, s.coverage, s.samples) == pytest.approx((1 / 3, 2 / 3, 4 / 9, 5 / 6, 3))
    # MERTools leaves sample 3 out on B instead: P = 1/2, R = 1, F = 2/3 over 2 samples
    s = ov_scores(GOLD, PRED, b, skip_unmapped_gold=True)
    assert (s.precision, s.recall, s.f, s.samples) == pytest.approx((0.5, 1.0, 2 / 3, 2))
    assert ov_scores([["grumpy"]], [["peace"]], b, skip_unmapped_gold=True).to_json() == {
        "precision": 0.0, "recall": 0.0, "f": 0.0, "coverage": 1.0, "samples": 0}


def test_ov_scores_averaged_over_wheels_by_hand():
    wheels = load_groupings([WHEEL_A, WHEEL_B], synonyms=SYN, formats=FMT)
    # mean of the per-wheel scores above: P = (2/3 + 1/3)/2 = 1/2, R = (1 + 2/3)/2 = 5/6,
    # F = (4/5 + 4/9)/2 = 28/45 (not 2PR/(P+R) = 5/8 of the means), coverage 5/6
    s = ov_scores(GOLD, PRED, groupings=wheels)
    assert (s.precision, s.recall, s.f, s.coverage, s.samples) == pytest.approx((0.5, 5 / 6, 28 / 45, 5 / 6, 3))
    # skipping as MERTools does: P = (2/3 + 1/2)/2 = 7/12, R = 1, F = (4/5 + 2/3)/2 = 11/15
    s = ov_scores(GOLD, PRED, groupings=wheels, skip_unmapped_gold=True)
    assert (s.precision, s.recall, s.f, s.samples) == pytest.approx((7 / 12, 1.0, 11 / 15, 3))
    with pytest.raises(ValueError, match="not both"):
        ov_scores(GOLD, PRED, wheels[0], groupings=wheels)
    with pytest.raises(ValueError, match="empty"):
        ov_scores(GOLD, PRED, groupings=[])


def test_hit_rate_and_heads_with_a_grouping_and_default_unchanged():
    a = full(WHEEL_A)
    assert hit_rate(["pride", "loneliness"], [["gladness"], ["annoyance"]], a) == 0.5
    assert heads(["gladness", "moved", "elated"], a) == ({"joy"}, 2)
    assert heads(["glad", "downcast"]) == ({"happy", "sad"}, 2)  # no grouping: the project's lexicon
    assert ov_scores([["sad"]], [["gloomy"]]).f == 1.0


def write(tmp_path: Path, text: str, name: str = "w.csv") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


@pytest.mark.parametrize("text, match", [
    ("", "empty file"),
    ("\n\n", "empty file"),
    ("level1,level2,level3\n,,\n", "header only"),
    ("level1,level2,level4\njoy,content,glad\n", r"unknown column\(s\) \['level4'\]"),
    ("level1,level2\njoy,content\n", r"missing column\(s\) \['level3'\]"),
    ("level1,level1,level3\n", "repeated column"),
    ("level1,level2,level3\n,,glad\n", "line 2: no level1"),
    ("level1,level2,level3\njoy,content,glad\n,,\nsad,,blue\n", "line 4: a new level1"),
    ("level1,level2,level3\njoy,content,glad\n,proud,\n", "line 3: empty level3"),
    ("level1,level2,level3\njoy,content,glad,extra\n", "line 2: a value in a column without a header"),
])
def test_bad_wheel_files_name_file_and_line(tmp_path, text, match):
    p = write(tmp_path, text)
    with pytest.raises(GroupingError, match=match) as e:
        load_grouping(p)
    assert str(p) in str(e.value) and isinstance(e.value, ValueError)


def test_excel_missing_and_bad_companion_files(tmp_path):
    with pytest.raises(GroupingError, match="save the sheet as CSV"):
        load_grouping(write(tmp_path, "x", "wheel1.xlsx"))
    with pytest.raises(GroupingError, match="zip/Excel"):
        load_grouping(write(tmp_path, "PK\x03\x04rest", "wheel1.csv"))
    with pytest.raises(GroupingError, match="no such file"):
        load_grouping(tmp_path / "absent.csv")
    bad = write(tmp_path, "word_run1,synonym_run1,word_run2\na,b,c\n", "s.csv")
    with pytest.raises(GroupingError, match=r"run\(s\) \['run2'\]"):
        load_grouping(WHEEL_A, synonyms=bad)
    bad = write(tmp_path, "word_run1,synonym_run1\nglad,happy\n,cheerful\n", "s.csv")
    with pytest.raises(GroupingError, match="line 3: synonym_run1 given but word_run1 is empty"):
        read_synonyms(bad)
    with pytest.raises(GroupingError, match="unknown column"):
        read_synonyms(write(tmp_path, "word,synonym\na,b\n", "s.csv"))
    with pytest.raises(GroupingError, match="line 3: empty name"):
        read_formats(write(tmp_path, "name,format\nglad,gladness\n,gladly\n", "f.csv"))
    with pytest.raises(ValueError, match="level must be"):
        load_grouping(WHEEL_A, level="level3")
