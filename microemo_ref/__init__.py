"""microemo_ref: a runnable, teachable reference of MicroEmo.

MicroEmo (Zhang et al., arXiv 2407.16552, 2024) is a time-sensitive multimodal LLM for
explainable multimodal emotion recognition (EMER). This package rebuilds it from its
lineage (BLIP-2, TimeChat, Video-LLaMA, AffectGPT); see docs/design.md and the notebooks.

Layers, each module importing only from its own layer or below (``tests/test_layers.py``):
``config``, ``io`` (clips, subtitles), ``lexicon``, ``metrics``, ``notebook_tools`` (ground) ->
``face`` / ``audio`` / ``text`` (perception) -> ``model`` -> ``pipeline`` and ``samples`` (the
generator of sample dialogues) -> ``viz`` -> ``cli`` and ``__main__``.
"""
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("microemo_ref")  # pyproject.toml's, the one source
except PackageNotFoundError:  # run from a checkout that was never installed
    __version__ = "unknown"
