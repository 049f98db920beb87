"""Loaders for EMER v1/v2 and MER OV label files, on fixture files in exactly those formats."""
from pathlib import Path

import pytest

from microemo_ref.io.clip import ClipError
from microemo_ref.io.emer import load_emer_v1, load_emer_v2, load_mer_ov, parse_openset

FIX = Path(__file__).parent / "fixtures" / "emer"


def test_emer_v1(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "sample_00000002.mp4").write_bytes(b"")
    rows = load_emer_v1(FIX / "emer_v1.csv", videos=tmp_path)
    assert [r.name for r in rows] == ["sample_00000001", "sample_00000002"]
    assert rows[0].labels == ["happy"] and rows[0].subtitle == "Really? That is great news!"
    assert rows[0].explanation.endswith("the person is happy.")
    assert rows[0].video is None and rows[1].video == tmp_path / "sub" / "sample_00000002.mp4"


def test_emer_v2_keeps_the_english():
    rows = load_emer_v2(FIX / "emer_v2.csv")
    assert rows[0].explanation == "The mouth corners rise and the tone is light, suggesting joy."
    assert rows[1].name == "sample_00000003" and rows[1].labels == []


def test_mer_ov_lists_and_commas():
    rows = load_mer_ov(FIX / "mer_ov.csv")
    assert [r.labels for r in rows] == [["happy", "excited"], ["worried", "nervous"], []]


@pytest.mark.parametrize("loader, text, message", [
    (load_mer_ov, "name,labels\na,b\n", "missing column"),
    (load_emer_v1, "names,emotions\na,happy\n", "missing column"),
    (load_mer_ov, "name,openset\na,\"['happy'\"\n", "row 2"),
])
def test_bad_files_name_the_file(tmp_path, loader, text, message):
    bad = tmp_path / "bad.csv"
    bad.write_text(text)
    with pytest.raises(ClipError, match=message) as err:
        loader(bad)
    assert "bad.csv" in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(ClipError, match="not found"):
        load_mer_ov(tmp_path / "nothing.csv")
    assert parse_openset("Happy ,  glad", "x") == ["happy", "glad"]
