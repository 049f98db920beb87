"""microemo_ref: a runnable, teachable reference of MicroEmo.

MicroEmo (Zhang et al., arXiv 2407.16552, 2024) is a time-sensitive multimodal LLM for
explainable multimodal emotion recognition (EMER). This package rebuilds it from its
lineage (BLIP-2, TimeChat, Video-LLaMA, AffectGPT); see ../shared/DESIGN.md and the notebooks.

Layers, each importing only from below:
``config`` and ``io`` (clips, subtitles) -> ``face`` / ``audio`` (perception) ->
``samples`` (the generator of sample dialogues) -> ``cli``.
"""
__version__ = "0.1.0"
