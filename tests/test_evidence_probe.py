"""The evidence probe: the displacement it reads is the planted micro-expression's, and its
bookkeeping (spotted, missed, fitted, scored) is right on real cached samples."""
import numpy as np
import pytest

from microemo_ref.face.regions import REGIONS
from microemo_ref.pipeline.dataset import find_examples
from microemo_ref.pipeline.evidence_probe import micro_event_rows, probe_hidden_emotion


@pytest.fixture(scope="module")
def folders(cached_sample):
    return {n: cached_sample(n) for n in
            ("concealed_astronaut_s0002", "concealed_grace_hopper_s0036", "neutral_grace_hopper_s0007")}


def test_rows_carry_the_planted_regions(folders):
    (row,) = micro_event_rows(find_examples((str(folders["concealed_astronaut_s0002"]),)))
    assert row["emotion"] == "sad" and row["spotted"] and row["vector"].shape == (len(REGIONS) * 3,)
    per_region = row["vector"].reshape(len(REGIONS), 3)
    size = np.maximum(np.hypot(per_region[:, 1], per_region[:, 2]), per_region[:, 0])
    strongest = {list(REGIONS)[i] for i in np.argsort(-size)[:2]}
    assert strongest == {"inner_brows", "mouth_corners"}      # the regions the generator moved for sad
    assert micro_event_rows(find_examples((str(folders["neutral_grace_hopper_s0007"]),))) == []


def _missed(folder, tmp_path):
    """A copy of a folder's cached clip in which the spotter found nothing (events emptied)."""
    import json

    (src,) = find_examples((str(folder),))
    with np.load(src) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays.pop("meta")))
    meta["events"] = []
    out = tmp_path / "missed"
    out.mkdir()
    np.savez_compressed(out / src.name, meta=np.array(json.dumps(meta)), **arrays)
    return out


def test_probe_bookkeeping(folders, tmp_path):
    sad_only = [folders["concealed_astronaut_s0002"]]
    out = probe_hidden_emotion(sad_only, [folders["concealed_grace_hopper_s0036"]])
    # the spotter finds this sample's angry flash (3-frame transient runs and averaged mouth
    # corners miss it); a probe fitted on one sad flash can only answer sad
    assert out["train_events"] == 1 and out["train_emotions"] == {"sad": 1}
    assert out["test_clips"] == 1 and out["spotted"] == 1 and out["accuracy"] == 0.0 and out["accuracy_spotted"] == 0.0
    assert out["predictions"] == [{"name": "concealed_grace_hopper_s0036", "emotion": "angry", "probe": "sad"}]
    # a missed flash is counted, not probed, and scored as wrong
    missed = _missed(folders["concealed_grace_hopper_s0036"], tmp_path)
    out = probe_hidden_emotion(sad_only, [missed])
    assert out["test_clips"] == 1 and out["spotted"] == 0 and out["accuracy"] == 0.0
    assert out["accuracy_spotted"] is None
    assert out["predictions"] == [{"name": "concealed_grace_hopper_s0036", "emotion": "angry", "probe": None}]
    out = probe_hidden_emotion(sad_only, sad_only)
    assert out["spotted"] == 1 and out["accuracy"] == 1.0 and out["predictions"][0]["probe"] == "sad"
    with pytest.raises(ValueError, match="no concealed clips under .*neutral_grace_hopper"):
        probe_hidden_emotion(sad_only, [folders["neutral_grace_hopper_s0007"]])
    with pytest.raises(ValueError, match="no spotted concealed micro-expressions under .*missed"):
        probe_hidden_emotion([missed], sad_only)
