"""The published spotting sheets (CASME II, CAS(ME)^2, SAMM, SAMM Long Videos) exported to CSV/TSV.

The fixtures in ``tests/fixtures/spotting_sheets/`` are hand-written in each set's published
column layout (the real sheets are licensed); the expected annotations below are worked out
by hand from them.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from microemo_ref.cli import main
from microemo_ref.io.casme import SpotAnnotation as A
from microemo_ref.io.casme import detect_layout, load_spotting_annotations
from microemo_ref.io.clip import ClipError

SHEETS = Path(__file__).parent / "fixtures" / "spotting_sheets"
SAMPLE = Path(__file__).parent.parent / "data_samples" / "shift_astronaut_s0006.mp4"


def test_casme2_layout_is_micro_only_and_keyed_like_its_folders():
    path = SHEETS / "casme2.csv"
    assert detect_layout(path) == "casme2"
    anns = load_spotting_annotations(path)   # no default_type needed: CASME II is micro-only
    assert anns == {
        "sub01/EP02_01f": [A("sub01/EP02_01f", 46, 59, 86, "micro")],
        "sub01/EP03_02": [A("sub01/EP03_02", 10, 25, 40, "micro")],      # apex "/" -> middle
        "sub26/EP18_51": [A("sub26/EP18_51", 1, 11, 21, "micro")],       # apex 0 -> middle
        "sub26/EP02_01f": [A("sub26/EP02_01f", 100, 112, 130, "micro")],
    }


def test_casme_sq_headerless_sheet_uses_the_naming_rules():
    path = SHEETS / "casme_sq.csv"
    assert detect_layout(path) == "casme_sq"
    anns = load_spotting_annotations(path)
    key = "15_0101disgustingteeth"          # participant 1 = s15, disgust1 = 0101disgustingteeth
    assert sorted(anns) == ["15_0101disgustingteeth", "15_0401girlcrashing",
                            "23_0502funnyerrors", "40_0503unnyfarting"]
    assert anns[key] == [A(key, 18, 28, 53, "macro"), A(key, 71, 82, 98, "macro"),
                         A(key, 110, 117, 162, "macro")]
    assert anns["15_0401girlcrashing"] == [A("15_0401girlcrashing", 557, 563, 568, "micro")]
    assert anns["23_0502funnyerrors"] == [A("23_0502funnyerrors", 100, 110, 120, "macro")]
    assert anns["40_0503unnyfarting"][0].type == "micro"


def test_samm_sheet_skips_the_preamble_and_pads_the_subject():
    path = SHEETS / "samm.csv"
    assert detect_layout(path) == "samm"
    anns = load_spotting_annotations(path)
    assert anns == {
        "006/006_1_2": [A("006/006_1_2", 5562, 5588, 5632, "micro")],
        "006/006_1_3": [A("006/006_1_3", 3912, 3948, 3988, "micro")],   # quoted cells with commas
        "037/037_2_4": [A("037/037_2_4", 1027, 1040, 1060, "micro")],
    }


@pytest.mark.parametrize("name", ["samm_long.csv", "samm_long.tsv"])
def test_samm_long_videos_group_expressions_by_long_video(name):
    path = SHEETS / name
    assert detect_layout(path) == "samm_long"
    anns = load_spotting_annotations(path)
    assert anns == {
        "006_1": [A("006_1", 5562, 5588, 5632, "micro"), A("006_1", 6370, 6400, 6457, "micro"),
                  A("006_1", 7012, 7100, 7360, "macro")],
        "011_2": [A("011_2", 300, 330, 360, "macro")],
    }


@pytest.mark.parametrize("name, line, needle", [
    ("casme2_bad_frame.csv", 3, "onset must be a non-negative integer frame, got '12a'"),
    ("casme_sq_bad_offset0.csv", 2, "offset 0 (missing) and no apex to stand in"),
    ("samm_bad_order.csv", 3, "onset <= apex <= offset, got 1200, 1260, 1230"),
    ("samm_long_bad_order.csv", 3, "onset <= apex <= offset, got 8000, 7990, 7950"),
    ("samm_long_missing_offset.csv", 1, "missing column(s) offset"),
    ("unknown_header.csv", 1, "no header row found"),
])
def test_bad_sheets_name_file_and_line(name, line, needle):
    path = SHEETS / name
    with pytest.raises(ClipError) as info:
        load_spotting_annotations(path)
    message = str(info.value)
    assert message.startswith(f"{path}: line {line}: ")
    assert needle in message


@pytest.mark.parametrize("text, needle", [
    ("23,disgust1_1,18,28,53,4,disgust,macro-expression,\n", "participant must be 1-22"),
    ("1,sad1_1,18,28,53,4,sadness,macro-expression,\n", "unknown CAS(ME)^2 video 'sad1'"),
    ("1,disgust1_1,18,28,53,4,disgust,blink,\n", "unknown expression type 'blink'"),
])
def test_casme_sq_bad_cells(tmp_path, text, needle):
    path = tmp_path / "code_final.csv"
    path.write_text("1,anger1_1,5,6,7,4,anger,micro-expression,\n" + text, encoding="utf-8")
    with pytest.raises(ClipError, match="line 2: ") as info:
        load_spotting_annotations(path)
    assert needle in str(info.value)


def test_samm_long_filename_without_expression_number(tmp_path):
    path = tmp_path / "sammlv.csv"
    path.write_text("Subject,Filename,Inducement Code,Onset,Apex,Offset,Duration,Type\n"
                    "6,006_1,1,10,12,14,5,Macro\n", encoding="utf-8")
    with pytest.raises(ClipError, match=r"line 2: SAMM Long Videos filename .* '006_1'"):
        load_spotting_annotations(path)


def test_spot_eval_end_to_end_on_a_casme_sq_sheet(tmp_path, capsys):
    # the sample's own true events are the three disgust1 rows of the fixture
    shutil.copy(SAMPLE, tmp_path / "15_0101disgustingteeth.mp4")
    code = main(["spot-eval", str(tmp_path), "--annotations", str(SHEETS / "casme_sq.csv"),
                 "--json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["clips"] == 1 and result["macro"]["n_gt"] == 3 and result["micro"]["n_gt"] == 0
    assert 0.0 <= result["overall"]["f1"] <= 1.0
    assert set(result["iou_sweep"]) >= {"0.5"}


def test_a_missing_offset_takes_the_apex_with_a_warning(tmp_path):
    path = tmp_path / "code_final.csv"
    path.write_text("3,anger2_2,377,385,0,4+7,anger,macro-expression,anger\n", encoding="utf-8")
    with pytest.warns(UserWarning, match=r"line 1: offset 0 marks a missing offset; the apex frame 385"):
        anns = load_spotting_annotations(path)
    [(key, [ann])] = anns.items()
    assert (ann.onset, ann.apex, ann.offset, ann.type) == (377, 385, 385, "macro")
