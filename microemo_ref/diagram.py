"""The pipeline as one diagram: every block of the reconstruction, and which notebook builds it.

Drawn with matplotlib alone (no image files), so a notebook can show where it stands. The flow
follows the package (``model.encoder``, ``model.microemo``, ``pipeline.emer``):

* frames -> frame encoder -> frame Q-Former, which also reads the timestamp text;
* frames -> local dynamics (FaceMesh, optical flow, spotting); the frame Q-Former's tokens
  read them through global-local attention -> utterance-aware video Q-Former;
* audio -> audio branch (its own utterance-aware Q-Former); subtitles -> timestamped lines;
* local dynamics and prosody -> the measured-cue line (ours);
* everything -> bridge (projections into the prompt; LoRA) -> frozen LLM -> grounding guard
  (ours) -> explanation and open-vocabulary emotion labels -> evaluation.

Our additions (the measured-cue line and the grounding guard) are drawn dashed and labelled
"ours". :func:`draw_pipeline` colours the blocks named in ``highlight`` and greys the rest;
``small=True`` gives the compact strip shown at the top of each notebook.
"""
from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

#: Block name -> the label shown in its box.
BLOCKS: dict[str, str] = {
    "frames": "video frames",
    "face": "local dynamics",
    "frame_encoder": "frame encoder",
    "time": "timestamp text",
    "qformer": "frame Q-Former",
    "global_local": "global-local\nattention",
    "utterance_qformer": "utterance-aware\nvideo Q-Former",
    "audio": "audio +\nsubtitles",
    "voice_words": "audio branch;\nsubtitle lines",
    "cue_text": "measured-cue\nline (ours)",
    "bridge": "bridge",
    "llm": "frozen LLM",
    "guard": "grounding\nguard (ours)",
    "answer": "explanation +\nemotion labels",
    "evaluation": "evaluation",
}

#: A second line of detail per block, shown in the full-size figure only.
DETAILS: dict[str, str] = {
    "frames": "25 fps; 4 per s sampled",
    "face": "FaceMesh, flow, spotting",
    "frame_encoder": "small CNN",
    "time": '"sampled at t second"',
    "qformer": "BLIP-2, per frame",
    "global_local": "window +/- 0.5 s",
    "utterance_qformer": "[whole ; utt 1 ; ...]",
    "audio": "16 kHz; .srt",
    "voice_words": "log-mel + prosody",
    "cue_text": "events, times, prosody",
    "bridge": "projection; LoRA",
    "llm": "SmolLM2-135M",
    "guard": "checks each claim",
    "answer": "open vocabulary",
    "evaluation": "OV F, clue recall",
}

#: Notebook number -> the blocks that notebook builds (what its small diagram highlights).
NOTEBOOK_BLOCKS: dict[str, tuple[str, ...]] = {
    "01": ("frames", "face"),
    "02": ("frame_encoder", "qformer"),
    "03": ("time", "qformer"),
    "04": ("face", "global_local"),
    "05": ("utterance_qformer",),
    "06": ("audio", "voice_words"),
    "07": ("bridge", "llm", "cue_text"),
    "08": ("llm", "answer"),
    "09": ("evaluation",),
    "10": ("evaluation", "cue_text"),
    "11": ("face", "guard", "answer"),
}

OURS: frozenset[str] = frozenset({"cue_text", "guard"})

#: Box centres in data units (x to the right, y up).
_POS: dict[str, tuple[float, float]] = {
    "frames": (0.9, 3.4), "frame_encoder": (3.2, 4.2), "time": (5.5, 5.5), "qformer": (5.5, 4.2),
    "face": (3.2, 2.6), "global_local": (7.8, 4.2), "utterance_qformer": (10.1, 4.2),
    "audio": (0.9, 1.0), "voice_words": (5.5, 1.0), "cue_text": (7.8, 2.6),
    "bridge": (12.4, 2.6), "llm": (14.6, 2.6), "guard": (16.8, 2.6), "answer": (19.1, 2.6),
    "evaluation": (19.1, 1.0),
}

#: Arrows (source, target, connection style); an arrow touching one of ours is dashed.
_EDGES: tuple[tuple[str, str, str], ...] = (
    ("frames", "frame_encoder", "arc3"), ("frames", "face", "arc3"),
    ("frame_encoder", "qformer", "arc3"), ("time", "qformer", "arc3"),
    ("qformer", "global_local", "arc3"), ("face", "global_local", "arc3"),
    ("global_local", "utterance_qformer", "arc3"), ("utterance_qformer", "bridge", "arc3"),
    ("audio", "voice_words", "arc3"), ("voice_words", "bridge", "arc3"),
    ("face", "cue_text", "arc3"), ("audio", "cue_text", "arc3"), ("cue_text", "bridge", "arc3"),
    ("bridge", "llm", "arc3"), ("llm", "guard", "arc3"), ("guard", "answer", "arc3"),
    ("answer", "evaluation", "arc3"),
)

_FAMILY: dict[str, str] = {  # fill colours when nothing is highlighted
    "frames": "#cfe2f3", "frame_encoder": "#cfe2f3", "time": "#cfe2f3", "qformer": "#cfe2f3",
    "global_local": "#cfe2f3", "utterance_qformer": "#cfe2f3", "face": "#fce5cd",
    "audio": "#d9ead3", "voice_words": "#d9ead3", "bridge": "#e4d7f5", "llm": "#e4d7f5",
    "answer": "#e4d7f5", "evaluation": "#fff2cc", "cue_text": "#ffffff", "guard": "#ffffff",
}
_HIGHLIGHT, _GREY_FILL, _GREY_TEXT = "#f6b26b", "#f3f3f3", "#a0a0a0"
_BOX_W, _BOX_H = 1.95, 0.95


def _check(highlight: Sequence[str]) -> set[str]:
    if isinstance(highlight, str):
        highlight = (highlight,)
    unknown = [name for name in highlight if name not in BLOCKS]
    if unknown:
        raise ValueError(f"unknown block(s) {unknown}; known blocks: {', '.join(BLOCKS)}")
    return set(highlight)


def _show_in_notebook() -> None:
    """In a Jupyter kernel whose backend does not display (e.g. MPLBACKEND=Agg), switch to inline."""
    try:
        from IPython import get_ipython
    except ImportError:  # no IPython: nothing to display into
        return
    shell = get_ipython()
    if shell is not None and type(shell).__name__ == "ZMQInteractiveShell" and "inline" not in plt.get_backend():
        shell.run_line_magic("matplotlib", "inline")


def draw_pipeline(highlight: Sequence[str] = (), *, ax: Axes | None = None, small: bool = False) -> Figure:
    """Draw the whole pipeline; blocks in ``highlight`` are coloured, the others greyed.

    With no ``highlight`` every block keeps its family colour (visual blue, face orange, audio
    green, LLM purple; ours white and dashed). ``small=True`` draws a compact strip (about
    7 x 2.2 inches) without the detail lines; ``ax`` draws into an existing axis. Raises
    ValueError for a block name not in :data:`BLOCKS`. In a Jupyter kernel whose matplotlib
    backend cannot display, a new figure switches the kernel to the inline backend first.
    """
    chosen = _check(highlight)
    if ax is None:
        _show_in_notebook()
        fig, ax = plt.subplots(figsize=(7, 2.2) if small else (13, 4.6))
    else:
        fig = ax.figure
    label_size, detail_size = (5.2, 0.0) if small else (9.0, 6.8)
    boxes: dict[str, FancyBboxPatch] = {}
    for name, (x, y) in _POS.items():
        on = not chosen or name in chosen
        fill = (_HIGHLIGHT if chosen else _FAMILY[name]) if on else _GREY_FILL
        edge = ("#222222" if chosen else "#555555") if on else "#c8c8c8"
        box = FancyBboxPatch((x - _BOX_W / 2, y - _BOX_H / 2), _BOX_W, _BOX_H,
                             boxstyle="round,pad=0.02,rounding_size=0.12", facecolor=fill, edgecolor=edge,
                             linewidth=(1.6 if chosen and on else 0.9), linestyle="--" if name in OURS else "-",
                             zorder=2)
        ax.add_patch(box)
        boxes[name] = box
        colour = "#111111" if on else _GREY_TEXT
        if small:
            ax.text(x, y, BLOCKS[name], ha="center", va="center", fontsize=label_size, color=colour, zorder=3,
                    weight="bold" if chosen and on else "normal")
        else:
            ax.text(x, y + 0.12, BLOCKS[name], ha="center", va="center", fontsize=label_size, color=colour,
                    zorder=3, weight="bold" if chosen and on else "normal", linespacing=0.95)
            ax.text(x, y - 0.36, DETAILS[name], ha="center", va="center", fontsize=detail_size,
                    color=colour, style="italic", zorder=3)
    for source, target, style in _EDGES:
        lit = not chosen or bool({source, target} & chosen)
        ax.add_patch(FancyArrowPatch(
            _POS[source], _POS[target], patchA=boxes[source], patchB=boxes[target], connectionstyle=style,
            arrowstyle="-|>", mutation_scale=6 if small else 10, linewidth=0.7 if small else 1.0,
            linestyle="--" if {source, target} & OURS else "-", color="#444444" if lit else "#cccccc",
            shrinkA=1, shrinkB=1, zorder=1))
    xs = [x for x, _ in _POS.values()]
    ys = [y for _, y in _POS.values()]
    ax.set_xlim(min(xs) - _BOX_W / 2 - 0.1, max(xs) + _BOX_W / 2 + 0.1)
    ax.set_ylim(min(ys) - _BOX_H / 2 - 0.1, max(ys) + _BOX_H / 2 + (0.1 if small else 0.5))
    ax.set_axis_off()
    if not small:
        ax.set_title("MicroEmo, as rebuilt here: dashed boxes and arrows are our additions, not the paper's",
                     fontsize=10)
    fig.tight_layout(pad=0.2)
    return fig


__all__ = ["BLOCKS", "DETAILS", "NOTEBOOK_BLOCKS", "OURS", "draw_pipeline"]
