"""Tests of the MEGC spotting scores and the CASME-style annotation loader.

Scores are checked against hand-computed cases and a published MEGC spotting result vector
(TP 130, #pred 6558, #gt 357 -> P 0.0198, R 0.3641, F1 0.0376); annotation files are tiny
fixtures written in ``tmp_path``.
"""
from __future__ import annotations

import pytest

from microemo_ref.io.casme import SpotAnnotation, events_from_truth, load_spotting_annotations
from microemo_ref.io.clip import ClipError
from microemo_ref.metrics.spotting import (SpotCounts, count_clip, interval_iou, iou_sweep,
                                           match_intervals, score_spotting)


def ev(onset: int, offset: int, kind: str = "micro", key: str = "type") -> dict:
    return {"onset": onset, "offset": offset, key: kind}


# --------------------------------------------------------------------------- IoU and matching

@pytest.mark.parametrize("a, b, expected", [
    ((0, 4), (2, 6), 3 / 7),      # overlap 2..4, union 0..6
    ((3, 9), (3, 9), 1.0),
    ((5, 5), (5, 5), 1.0),        # a single frame is a length-1 interval
    ((0, 4), (10, 14), 0.0),
    ((0, 4), (5, 9), 0.0),        # touching, no shared frame
    ((0, 9), (0, 4), 0.5),
])
def test_interval_iou_hand_computed(a, b, expected):
    assert interval_iou(a, b) == pytest.approx(expected)
    assert interval_iou(b, a) == pytest.approx(expected)


def test_interval_iou_rejects_reversed_interval():
    with pytest.raises(ValueError):
        interval_iou((5, 4), (0, 9))


def test_two_preds_on_one_gt_give_one_tp_and_one_fp():
    counts = count_clip([(0, 9), (1, 9)], [(0, 9)])
    assert (counts.tp, counts.n_pred, counts.n_gt) == (1, 2, 1)
    assert counts.precision == 0.5 and counts.recall == 1.0


def test_greedy_takes_best_iou_not_list_order():
    # pred 0 has IoU 0.8, pred 1 is exact: the exact one wins the gt.
    assert match_intervals([(0, 9), (2, 9)], [(2, 9)]) == [(1, 0)]


def test_ties_go_to_lower_pred_index_then_lower_gt_index():
    assert match_intervals([(0, 9), (0, 9)], [(0, 9)]) == [(0, 0)]
    # pred (0, 9) has IoU exactly 0.5 with both gts: the lower gt index is taken.
    assert match_intervals([(0, 9)], [(5, 9), (0, 4)]) == [(0, 0)]


def test_threshold_is_inclusive_and_validated():
    assert match_intervals([(0, 9)], [(0, 4)], iou=0.5) == [(0, 0)]
    assert match_intervals([(0, 9)], [(0, 4)], iou=0.51) == []
    assert match_intervals([(0, 9)], [(0, 2)], iou=0.3) == [(0, 0)]   # 3/10 >= 0.3
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError):
            match_intervals([(0, 1)], [(0, 1)], iou=bad)


def test_one_to_one_matching_many_intervals():
    gt = [(10 * k, 10 * k + 4) for k in range(50)]
    pred = [(10 * k + 1, 10 * k + 4) for k in range(50)] + [(1000, 1100)]
    assert match_intervals(pred, gt) == [(k, k) for k in range(50)]


# --------------------------------------------------------------------------- counts and scores

def test_published_vector_from_counts():
    counts = SpotCounts(tp=130, n_pred=6558, n_gt=357)
    assert counts.to_dict() == {"precision": 0.0198, "recall": 0.3641, "f1": 0.0376,
                                "tp": 130, "n_pred": 6558, "n_gt": 357}
    p, r = counts.precision, counts.recall
    assert counts.f1 == pytest.approx(2 * p * r / (p + r))


def test_published_vector_through_score_spotting():
    """Micro 30/3000/100 and macro 100/3558/257 over three clips pool to 130/6558/357."""
    def clip(n_tp: int, n_fp: int, n_fn: int, kind: str) -> tuple[list[dict], list[dict]]:
        hits = [(10 * k, 10 * k + 4) for k in range(n_tp)]
        misses = [(10 * (n_tp + k), 10 * (n_tp + k) + 4) for k in range(n_fn)]
        far = 10 * (n_tp + n_fn) + 100
        false = [(far + 10 * k, far + 10 * k + 4) for k in range(n_fp)]
        pred = [ev(a, b, kind) for a, b in hits + false]
        gt = [ev(a, b, kind, key="kind") for a, b in hits + misses]
        return pred, gt

    clips = [clip(30, 2970, 70, "micro"), clip(60, 1000, 100, "macro"),
             clip(40, 2458, 57, "macro")]
    scores = score_spotting(clips)
    assert scores["clips"] == 3
    assert scores["micro"] == {"precision": 0.01, "recall": 0.3, "f1": round(60 / 3100, 4),
                               "tp": 30, "n_pred": 3000, "n_gt": 100}
    macro = scores["macro"]
    assert (macro["tp"], macro["n_pred"], macro["n_gt"]) == (100, 3558, 257)
    assert scores["overall"] == SpotCounts(130, 6558, 357).to_dict()
    assert scores["overall"]["f1"] == 0.0376


def test_micro_and_macro_are_scored_separately():
    scores = score_spotting([([ev(0, 9, "micro")], [ev(0, 9, "macro")])])
    assert scores["micro"]["tp"] == 0 and scores["micro"]["n_pred"] == 1   # a false positive
    assert scores["macro"]["tp"] == 0 and scores["macro"]["n_gt"] == 1     # a false negative
    assert scores["overall"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0,
                                 "tp": 0, "n_pred": 1, "n_gt": 1}


def test_empty_cases_are_zero_not_errors():
    no_pred = score_spotting([([], [ev(0, 9)])])["overall"]
    assert (no_pred["precision"], no_pred["recall"], no_pred["f1"]) == (0.0, 0.0, 0.0)
    no_gt = score_spotting([([ev(0, 9)], [])])["overall"]
    assert (no_gt["precision"], no_gt["recall"], no_gt["f1"]) == (0.0, 0.0, 0.0)
    nothing = score_spotting([])
    assert nothing["clips"] == 0 and nothing["overall"]["f1"] == 0.0


def test_counts_are_pooled_not_averaged_over_clips():
    perfect = ([ev(0, 9)], [ev(0, 9)])
    poor = ([ev(100 * k, 100 * k + 9) for k in range(9)], [ev(5000, 5009)])
    micro = score_spotting([perfect, poor])["micro"]
    assert (micro["tp"], micro["n_pred"], micro["n_gt"]) == (1, 10, 2)
    assert micro["precision"] == 0.1          # per-clip average would be (1 + 0) / 2 = 0.5
    assert micro["recall"] == 0.5


def test_bad_events_are_refused():
    with pytest.raises(ValueError, match="micro"):
        score_spotting([([ev(0, 9, "blink")], [])])
    with pytest.raises(ValueError):
        score_spotting([([{"onset": 0, "offset": 9}], [])])
    with pytest.raises(ValueError):
        SpotCounts(tp=3, n_pred=2, n_gt=5)


def test_iou_sweep_is_monotone():
    clips = [([ev(0, 9), ev(20, 23, "macro")], [ev(2, 9), ev(20, 29, "macro")])]
    sweep = iou_sweep(clips)
    assert list(sweep) == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    assert sweep[0.4]["overall"]["tp"] == 2     # IoUs are 0.8 and 0.4
    assert sweep[0.5]["overall"]["tp"] == 1
    assert sweep[0.9]["overall"]["tp"] == 0
    tps = [s["overall"]["tp"] for s in sweep.values()]
    assert tps == sorted(tps, reverse=True)


# --------------------------------------------------------------------------- annotation files

CASME_CSV = """Subject,Filename,OnsetFrame,ApexFrame,OffsetFrame,Action Units,Expression type
01,EP02_01f,46,59,86,12,micro-expression
01,EP02_01f,10,0.0,20,4,Micro
02,EP02_01f,100,/,300,12,macro-expression
02,EP03_02,5,7,9,4,ME
"""


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_load_casme_style_csv(tmp_path):
    anns = load_spotting_annotations(write(tmp_path, "coding.csv", "\ufeff" + CASME_CSV))
    assert sorted(anns) == ["01/EP02_01f", "02/EP02_01f", "02/EP03_02"]
    assert anns["01/EP02_01f"] == [SpotAnnotation("01/EP02_01f", 10, 15, 20, "micro"),
                                   SpotAnnotation("01/EP02_01f", 46, 59, 86, "micro")]
    assert anns["02/EP02_01f"][0].apex == 200 and anns["02/EP02_01f"][0].type == "macro"
    assert anns["02/EP03_02"][0].to_event() == {"onset": 5, "apex": 7, "offset": 9,
                                                "type": "micro"}


def test_load_tsv_with_plain_header(tmp_path):
    text = ("clip\tonset\tapex\toffset\ttype\n"
            "b\t30\t31\t40\tmae\na\t1\t2\t3\tmicro\na\t0\t2.0\t5\tMacro\n")
    path = write(tmp_path, "spots.tsv", text)   # "2.0": a spreadsheet export of an integer
    anns = load_spotting_annotations(path)
    assert [a.onset for a in anns["a"]] == [0, 1]
    assert anns["a"][0] == SpotAnnotation("a", 0, 2, 5, "macro")
    assert anns["b"] == [SpotAnnotation("b", 30, 31, 40, "macro")]


def test_default_type_for_files_without_a_type_column(tmp_path):
    text = "Subject,Filename,OnsetFrame,ApexFrame,OffsetFrame\n1,EP01,3,4,5\n"
    path = write(tmp_path, "casme2.csv", text)
    assert load_spotting_annotations(path, default_type="micro")["1/EP01"][0].type == "micro"
    with pytest.raises(ClipError, match="type"):
        load_spotting_annotations(path)


@pytest.mark.parametrize("body, needle", [
    ("clip,onset,apex,type\na,1,2,micro\n", "offset"),                      # missing column
    ("clip,onset,apex,offset,type\na,1,x,3,micro\n", "apex"),               # non-integer frame
    ("clip,onset,apex,offset,type\na,-1,2,3,micro\n", "onset"),             # negative frame
    ("clip,onset,apex,offset,type\na,5,2,9,micro\n", "onset <= apex"),      # onset > apex
    ("clip,onset,apex,offset,type\na,1,9,5,micro\n", "apex <= offset"),     # apex > offset
    ("clip,onset,apex,offset,type\na,1,0,0,micro\n", "offset 0 (missing)"),           # CAS(ME)^2: no offset
    ("clip,onset,apex,offset,type\na,1,2,3,blink\n", "blink"),              # unknown type
    ("clip,onset,apex,offset,type\n,1,2,3,micro\n", "clip"),                # empty clip name
    ("", "empty"),
])
def test_bad_annotation_files_name_the_file(tmp_path, body, needle):
    path = write(tmp_path, "bad_annotations.csv", body)
    with pytest.raises(ClipError) as info:
        load_spotting_annotations(path)
    message = str(info.value)
    assert message.startswith(str(path)) and needle in message


def test_bad_row_error_gives_line_and_missing_column_lists_found(tmp_path):
    text = "clip,onset,apex,offset,type\na,1,2,3,micro\na,4,x,6,micro\n"
    path = write(tmp_path, "rows.csv", text)
    with pytest.raises(ClipError, match="line 3"):
        load_spotting_annotations(path)
    path = write(tmp_path, "cols.csv", "Video,Start,ApexFrame,OffsetFrame,Label\nv,1,2,3,me\n")
    expected = r"missing column\(s\) onset.*found columns \['Video', 'Start'"
    with pytest.raises(ClipError, match=expected):
        load_spotting_annotations(path)


def test_missing_file(tmp_path):
    path = tmp_path / "nowhere.csv"
    with pytest.raises(ClipError, match="nowhere.csv"):
        load_spotting_annotations(path)


def test_events_from_truth_feeds_the_scorer():
    truth = {"events": [
        {"kind": "micro", "onset": 126, "apex": 131, "offset": 135, "emotion": "sad"},
        {"kind": "macro", "onset": 8, "apex": 19, "offset": 61, "hold_end": 49}],
             "blinks": [{"onset": 50, "offset": 53}]}
    events = events_from_truth(truth)
    assert events == [{"onset": 8, "apex": 19, "offset": 61, "type": "macro"},
                      {"onset": 126, "apex": 131, "offset": 135, "type": "micro"}]
    assert score_spotting([(events, events)])["overall"]["f1"] == 1.0
    with pytest.raises(ValueError):
        events_from_truth({"utterances": []})
