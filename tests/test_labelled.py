"""A real dataset's label file and video folder in `cache`, `evaluate` and `train` (--labels --videos)."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from microemo_ref.cli import main
from microemo_ref.config import DATA_SAMPLES
from microemo_ref.io.clip import ClipError
from microemo_ref.io.emer import detect_format, load_labels
from microemo_ref.model.llm import load_llm
from microemo_ref.model.checkpoint import load_checkpoint, save_checkpoint
from microemo_ref.model.microemo import MicroEmo, MicroEmoConfig
from microemo_ref.pipeline.dataset import gold_answer
from microemo_ref.pipeline.evaluate import score
from microemo_ref.text.utterances import Segmentation, with_label_words
from microemo_ref.io.clip import Utterance
from microemo_ref.metrics.emotion_sets import ov_scores
from microemo_ref.metrics.grouping import load_grouping

FIXTURES = Path(__file__).parent / "fixtures"

CLIPS = {"sample_00000001": "concealed_astronaut_s0002", "sample_00000002": "shift_grace_hopper_s0005"}
EMER_V1 = """names,emotions,subtitles,reasons
sample_00000001,sad,"That is fine, really.","A brief flash of sadness crosses the face while the words stay polite, so the person is sad."
sample_00000002,happy,"I do not want to go down there.","The voice brightens in the last utterance: the person ends up happy."
sample_00000009,angry,"Where is it?","Missing video."
"""


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """A video folder holding two bundled clips under dataset names (no side files: the words
    come from speech recognition), an EMER v1 label file naming them and one missing clip,
    and the cache that `cache --labels` made of them."""
    root = tmp_path_factory.mktemp("real_dataset")
    videos = root / "videos"
    (videos / "part1").mkdir(parents=True)
    for name, sample in CLIPS.items():
        shutil.copy(DATA_SAMPLES / f"{sample}.mp4", videos / "part1" / f"{name}.mp4")
    labels = root / "emer_v1.csv"
    labels.write_text(EMER_V1)
    cache = root / "cache"
    assert main(["cache", "--labels", str(labels), "--videos", str(videos), "--cache", str(cache)]) == 0
    return root, labels, videos, cache


def test_cache_measures_the_listed_videos_into_its_own_folder(dataset, capsys):
    root, labels, videos, cache = dataset
    assert sorted(p.name for p in cache.iterdir()) == [f"{n}.evidence.npz" for n in sorted(CLIPS)]
    assert sorted(p.name for p in (videos / "part1").iterdir()) == [f"{n}.mp4" for n in sorted(CLIPS)]  # untouched
    with np.load(cache / "sample_00000001.evidence.npz") as z:
        meta = json.loads(str(z["meta"]))
    assert meta["truth"]["scenario"] == "emer_v1" and meta["truth"]["labels"] == ["sad"]
    assert meta["truth"]["from"].endswith("emer_v1.csv row 2") and "events" not in meta["truth"]
    assert meta["answer"].endswith("so the person is sad.\nEmotions: sad.")
    # no subtitle file beside the copy: the words were recognised, and the label's subtitle is not needed
    assert [u[3] for u in meta["utterances"]] == ["asr"] * 4 and meta["utterances"][0][2] == "That is fine, really."
    # a second run measures nothing and names the missing row again
    assert main(["cache", "--labels", str(labels), "--videos", str(videos), "--cache", str(cache)]) == 0
    captured = capsys.readouterr()
    assert "measured" not in captured.out and "2 examples cached" in captured.out
    assert "emer_v1.csv row 4: no video named 'sample_00000009'" in captured.err


def test_evaluate_and_train_on_the_label_file(dataset, tiny_llm_dir, tmp_path, capsys):
    root, labels, videos, cache = dataset
    torch.manual_seed(0)
    folder = save_checkpoint(MicroEmo(MicroEmoConfig(llm=str(tiny_llm_dir)), load_llm(tiny_llm_dir)), tmp_path / "ckpt")
    args = ["--labels", str(labels), "--videos", str(videos), "--cache", str(cache)]
    assert main(["evaluate", *args, "--checkpoint", str(folder), "--llm", str(tiny_llm_dir), "--json"]) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert out["clips"] == 2 and out["ov"]["samples"] == 2 and list(out["per_scenario"]) == ["emer_v1"]
    assert sorted(a["gold"] for a in out["answers"]) == [["happy"], ["sad"]]
    assert out["similarity"]["mean"] is not None and out["clue_recall"] is None   # no events: no clue recall
    assert "row 4: no video named" in captured.err
    # the same answers scored by a user's emotion wheel (MERTools' layout), through rescore
    wheel = FIXTURES / "grouping" / "wheel_a.csv"
    out["grouping"] = {"wheels": [str(wheel)], "synonyms": None, "formats": None, "level": "level1"}
    saved = tmp_path / "report.json"
    saved.write_text(json.dumps(out))
    assert main(["rescore", str(saved), "--out", str(tmp_path / "again.json")]) == 0
    again = json.loads((tmp_path / "again.json").read_text())
    want = ov_scores([a["gold"] for a in out["answers"]], [a["labels"] for a in out["answers"]],
                     groupings=[load_grouping(wheel)], skip_unmapped_gold=True).to_json()
    assert again["ov"] == want and again["grouping"]["wheels"] == [str(wheel)]
    assert main(["evaluate", *args, "--synonyms", str(wheel)]) == 2
    assert "--synonyms and --formats go with --grouping" in capsys.readouterr().err
    assert main(["evaluate", *args, "--grouping", str(tmp_path / "nowhere.csv")]) == 2
    assert "nowhere.csv" in capsys.readouterr().err
    assert main(["train", *args, "--llm", str(tiny_llm_dir), "--out", str(tmp_path / "run"),
                 "--align-epochs", "0", "--emer-epochs", "1", "--concealed-repeat", "1"]) == 0
    load_checkpoint(tmp_path / "run" / "checkpoint", load_llm(tiny_llm_dir))


@pytest.mark.parametrize("kind, text", [
    ("mer_ov", "name,openset\nsample_00000001,\"['sad', 'hurt']\"\n"),
    ("emer_v2", "name,chinese,english\nsample_00000001,脸上闪过悲伤。,A brief flash of sadness crosses the face.\n"),
])
def test_evaluate_on_the_other_two_formats(dataset, tiny_llm_dir, tmp_path, capsys, kind, text):
    """MER OV gives labels and no explanation; EMER v2 an explanation and no labels: each
    score is there only where its ground truth is."""
    root, _, videos, _ = dataset
    labels = tmp_path / f"{kind}.csv"
    labels.write_text(text, encoding="utf-8")
    torch.manual_seed(0)
    folder = save_checkpoint(MicroEmo(MicroEmoConfig(llm=str(tiny_llm_dir)), load_llm(tiny_llm_dir)), tmp_path / "ckpt")
    assert main(["evaluate", "--labels", str(labels), "--videos", str(videos), "--cache", str(tmp_path / "c"),
                 "--checkpoint", str(folder), "--llm", str(tiny_llm_dir), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["clips"] == 1 and out["answers"][0]["scenario"] == kind
    if kind == "mer_ov":
        assert out["ov"]["samples"] == 1 and out["answers"][0]["gold"] == ["sad", "hurt"]
        assert out["similarity"]["mean"] is None
    else:
        assert out["ov"] is None and out["per_scenario"] == {} and out["similarity"]["mean"] is not None


def test_a_row_deleted_from_the_label_file_leaves_the_cache(dataset, tmp_path):
    """train and evaluate read the whole cache folder, so a clip no longer listed must go."""
    from microemo_ref.pipeline.labelled import cache_labelled

    root, _, videos, cache = dataset
    mine = tmp_path / "cache"
    shutil.copytree(cache, mine)
    one = tmp_path / "one_row.csv"
    one.write_text("\n".join(EMER_V1.splitlines()[:2]) + "\n")
    removed = []
    out, paths, missing = cache_labelled(one, videos, mine, removed.append)
    assert [p.name for p in paths] == ["sample_00000001.evidence.npz"] and missing == []
    assert sorted(p.name for p in mine.iterdir()) == ["sample_00000001.evidence.npz"]
    assert any("removed sample_00000002.evidence.npz" in line for line in removed)


def test_label_options_are_checked(dataset, tmp_path, capsys):
    root, labels, videos, cache = dataset
    for argv, message in [(["cache"], "give a folder of clips, or --labels"),
                          (["cache", str(root), "--labels", str(labels), "--videos", str(videos)], "not both"),
                          (["cache", "--labels", str(labels)], "--labels needs --videos"),
                          (["cache", str(root), "--videos", str(videos)], "go with --labels"),
                          (["cache", "--labels", str(labels), "--videos", str(tmp_path / "none")], "none")]:
        assert main(argv) == 2, argv
        assert message in capsys.readouterr().err, argv
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["cache", "--labels", str(labels), "--videos", str(empty), "--cache", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert "none of its 3 clip(s) found" in err and "row 2: no video named 'sample_00000001'" in err
    assert not (tmp_path / "c").exists()  # nothing half-written


def test_unknown_header_bad_rows_and_duplicates_name_file_and_row(tmp_path, capsys):
    bad = tmp_path / "labels.csv"
    bad.write_text("clip,emotion\na,happy\n")
    with pytest.raises(ClipError, match=r"labels.csv: unknown label file: its header has clip, emotion"):
        detect_format(bad)
    assert main(["cache", "--labels", str(bad), "--videos", str(tmp_path)]) == 2
    assert "labels.csv: unknown label file" in capsys.readouterr().err
    bad.write_text("name,openset\na,happy\n,sad\n")
    with pytest.raises(ClipError, match="labels.csv row 3: no clip name"):
        load_labels(bad)
    bad.write_text("name,openset\na,happy\nb,sad\na,glad\n")
    with pytest.raises(ClipError, match="labels.csv row 4: clip 'a' already given in row 2"):
        load_labels(bad)
    bad.write_text("name,chinese,english\na,x,The brows knit.\n")
    kind, records = load_labels(bad)
    assert kind == "emer_v2" and records[0].row == 2


def test_scores_without_labels_or_without_explanations():
    """EMER v2 gives explanations only, MER OV labels only: each score is computed where its
    ground truth exists and is None where it does not."""
    def row(name, gold, gold_explanation):
        return {"name": name, "scenario": "x", "gold": gold, "labels": ["happy"], "explanation": "The face smiles.",
                "gold_explanation": gold_explanation, "cues": [], "ungrounded": [], "surface": [], "spotted": [],
                "micro_apexes": [], "evidence": {"events": [], "utterances": []}, "moods": []}
    v2 = score([row("a", [], "The mouth corners rise."), row("b", [], "The brows knit.")])
    assert v2["ov"] is None and v2["per_scenario"] == {} and v2["similarity"]["mean"] is not None
    mer = score([row("a", ["happy"], None), row("b", ["sad"], None)])
    assert mer["ov"]["f"] == pytest.approx(0.5) and mer["similarity"]["mean"] is None   # P = R = 1/2
    assert gold_answer({"labels": [], "explanation": "The brows knit."}) == "The brows knit."
    assert gold_answer({"labels": ["sad"], "explanation": None}) is None


def test_label_words_fill_a_clip_without_words_only():
    silent = Segmentation([Utterance(1.0, 2.0, "", "vad"), Utterance(3.0, 4.5, "", "vad")], "vad", 5.0, True)
    seg = with_label_words(silent, "Where is it?")
    assert [(u.start, u.end, u.text, u.source) for u in seg.utterances] == [(1.0, 4.5, "Where is it?", "labels")]
    heard = Segmentation([Utterance(1.0, 2.0, "hello", "asr")], "asr", 5.0, True)
    assert with_label_words(heard, "Where is it?") is heard
    none = with_label_words(Segmentation([], "none", 5.0, False), "Hi.")
    assert none.utterances == [Utterance(0.0, 5.0, "Hi.", "labels")]
