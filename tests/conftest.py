"""Test-wide settings: offline, headless, quiet MediaPipe, a seeded world."""
import os

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["MPLBACKEND"] = "Agg"
os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")



@pytest.fixture(scope="session")
def cached_sample(tmp_path_factory):
    """cached_sample(NAME): a temporary folder holding a copy of one committed sample, measured
    once (its evidence cached beside it)."""
    import shutil

    from microemo_ref.config import DATA_SAMPLES
    from microemo_ref.pipeline.dataset import cache_example

    def make(name: str):
        folder = tmp_path_factory.mktemp(name)
        for f in DATA_SAMPLES.glob(f"{name}.*"):
            shutil.copy(f, folder / f.name)
        cache_example(folder / f"{name}.mp4")
        return folder

    return make
