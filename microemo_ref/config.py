"""Project-wide constants and paths (the ground layer: imports nothing from the package).

Numbers that several modules must agree on live here once: the video frame rate and audio
sample rate of generated samples, the default seed, and where caches go.
"""
from __future__ import annotations

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
