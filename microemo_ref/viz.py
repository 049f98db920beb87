"""Plot helpers for the notebooks and the demo (imported by them, never by the model).

Every figure takes data in and returns a matplotlib ``Figure``; nothing here computes a
result that a test or the model relies on.
"""
from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from microemo_ref.face.regions import REGIONS

#: One colour per emotion, used in every figure.
EMOTION_COLOURS: dict[str, str] = {
    "neutral": "#9e9e9e", "happy": "#f2b701", "angry": "#d62728", "sad": "#1f77b4",
    "surprise": "#9467bd", "fear": "#17becf", "disgust": "#2ca02c", "contempt": "#8c564b",
}


def frame_strip(ax: plt.Axes, frames: np.ndarray, indices: Sequence[int], fps: float) -> None:
    """Draw ``frames[indices]`` side by side on one axis, each labelled with its time."""
    tiles = list(frames[list(indices)])  # one pass over a streamed clip's file
    ax.imshow(np.concatenate(tiles, axis=1))
    w = frames.shape[2]
    for k, i in enumerate(indices):
        ax.text(k * w + 4, 14, f"{i / fps:.1f} s", color="white", fontsize=8,
                bbox={"facecolor": "black", "alpha": 0.5, "pad": 1})
    ax.set_axis_off()


def utterance_spans(ax: plt.Axes, utterances: Sequence[dict], *, text: bool = True) -> None:
    """Shade each utterance's span on a time axis and write its text above."""
    for i, u in enumerate(utterances):
        ax.axvspan(u["start"], u["end"], color="#cfe2f3", alpha=0.6, zorder=0)
        if text:
            ax.text((u["start"] + u["end"]) / 2, 1.02, f"{i + 1}: {u['text']}", transform=ax.get_xaxis_transform(),
                    ha="center", va="bottom", fontsize=7, clip_on=False)


def event_timeline(ax: plt.Axes, events: Sequence[dict], blinks: Sequence[dict], fps: float, duration: float) -> None:
    """One row per facial region; bars for macro (wide) and micro (narrow, outlined) events."""
    names = list(REGIONS)
    for ev in events:
        for r in ev["regions"]:
            y = names.index(r)
            h = 0.8 if ev["kind"] == "macro" else 0.5
            ax.barh(y, (ev["offset"] - ev["onset"] + 1) / fps, left=ev["onset"] / fps, height=h,
                    color=EMOTION_COLOURS[ev["emotion"]], edgecolor="black" if ev["kind"] == "micro" else "none",
                    alpha=0.9 if ev["kind"] == "micro" else 0.5)
            if ev["kind"] == "micro":
                ax.plot(ev["apex"] / fps, y, marker="v", color="black", markersize=5)
    for b in blinks:
        ax.barh(names.index("lids"), (b["offset"] - b["onset"] + 1) / fps, left=b["onset"] / fps,
                height=0.2, color="black")
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set_xlim(0, duration)
    ax.set_ylim(-0.6, len(names) - 0.4)


def tour_figure(frames: np.ndarray, audio: np.ndarray | None, sample_rate: int, truth: dict, *,
                n_tiles: int = 6) -> Figure:
    """The tour of one generated clip: frames, waveform, log-mel spectrogram, event timeline."""
    import librosa

    fps, duration = truth["fps"], truth["duration"]
    fig, axes = plt.subplots(4, 1, figsize=(11, 9), height_ratios=[2.2, 1, 1.3, 1.6], layout="constrained")
    # Frames at evenly spaced times, plus the apex of the first micro-expression if any.
    idx = list(np.linspace(0, len(frames) - 1, n_tiles).astype(int))
    micro = [ev for ev in truth["events"] if ev["kind"] == "micro"]
    if micro:
        idx[len(idx) // 2] = micro[0]["apex"]
        idx = sorted(idx)
    frame_strip(axes[0], frames, idx, fps)
    axes[0].set_title(f"{truth.get('name', '')}  scenario: {truth['scenario']}  labels: {', '.join(truth['labels'])}",
                      fontsize=10)
    ax = axes[1]
    if audio is not None:
        t = np.arange(len(audio)) / sample_rate
        ax.plot(t, audio, lw=0.4, color="black")
    utterance_spans(ax, truth["utterances"])
    ax.set_xlim(0, duration)
    ax.set_ylabel("audio")
    ax = axes[2]
    if audio is not None:
        mel = librosa.feature.melspectrogram(y=audio, sr=sample_rate, n_fft=512, hop_length=160, n_mels=64)
        ax.imshow(librosa.power_to_db(mel, ref=np.max), origin="lower", aspect="auto",
                  extent=(0, len(audio) / sample_rate, 0, 64), cmap="magma")
    ax.set_xlim(0, duration)
    ax.set_ylabel("mel band")
    event_timeline(axes[3], truth["events"], truth["blinks"], fps, duration)
    axes[3].set_xlabel("time (s)")
    return fig


#: One colour per facial region.
REGION_COLOURS: dict[str, str] = {
    "brows": "#1f77b4", "inner_brows": "#17becf", "lids": "#2ca02c",
    "nose": "#9467bd", "mouth_corners": "#d62728", "lips": "#ff7f0e",
}


def draw_regions(ax: plt.Axes, frame: np.ndarray, landmarks: np.ndarray) -> None:
    """A frame with all FaceMesh points (grey) and the region landmarks (coloured)."""
    ax.imshow(frame)
    ax.scatter(landmarks[:, 0], landmarks[:, 1], s=0.5, c="white", alpha=0.5)
    for name, idx in REGIONS.items():
        pts = landmarks[list(idx)]
        ax.scatter(pts[:, 0], pts[:, 1], s=14, c=REGION_COLOURS[name], label=name, edgecolors="black", linewidths=0.3)
    ax.legend(loc="lower left", fontsize=7, framealpha=0.7)
    ax.set_axis_off()


def flow_quiver(ax: plt.Axes, crop: np.ndarray, flow: np.ndarray, *, step: int = 8, gain: float = 10.0) -> None:
    """Optical flow arrows (magnified ``gain`` times) over a grey face crop."""
    ax.imshow(crop, cmap="gray")
    ys, xs = np.mgrid[step // 2:crop.shape[0]:step, step // 2:crop.shape[1]:step]
    u, v = flow[ys, xs, 0], flow[ys, xs, 1]
    ax.quiver(xs, ys, u * gain, v * gain, color="yellow", angles="xy", scale_units="xy", scale=1, width=0.004)
    ax.set_title(f"flow x{gain:g}", fontsize=9)
    ax.set_axis_off()


def region_curves(magnitudes: dict[str, np.ndarray], thresholds: dict[str, np.ndarray], fps: float, *,
                  truth_events: Sequence[dict] = (), spotted: Sequence[dict] = (),
                  samples: Sequence[int] = ()) -> Figure:
    """One row per region: its displacement from rest, its threshold, the true events (shaded
    by kind) and the spotted ones (red bars on top); ``samples`` marks frames a sparse sampler keeps."""
    names = list(magnitudes)
    fig, axes = plt.subplots(len(names), 1, figsize=(11, 1.4 * len(names)), sharex=True, layout="constrained")
    for ax, name in zip(axes, names):
        m = magnitudes[name]
        t = np.arange(len(m)) / fps
        for ev in truth_events:
            if name in ev["regions"]:
                ax.axvspan(ev["onset"] / fps, (ev["offset"] + 1) / fps, color="#f2b701" if ev["kind"] == "macro" else "#d62728",
                           alpha=0.25 if ev["kind"] == "macro" else 0.4, lw=0)
        ax.plot(t, m, color=REGION_COLOURS.get(name, "black"), lw=1)
        ax.plot(t, thresholds[name], color="grey", lw=0.8, ls="--")
        for ev in spotted:
            if name in ev["regions"]:
                ax.plot([ev["onset"] / fps, (ev["offset"] + 1) / fps], [np.nanmax(m) * 1.05] * 2, color="black", lw=3)
        if len(samples):
            ax.plot(np.asarray(samples) / fps, m[list(samples)], "o", color="black", ms=3)
        ax.set_ylabel(name, fontsize=8)
    axes[-1].set_xlabel("time (s)")
    return fig


def attention_over_time(curves: dict[str, np.ndarray], step_times: np.ndarray, weights: np.ndarray,
                        frame_times: np.ndarray, *, span: tuple[float, float] | None = None, title: str = "") -> Figure:
    """Top: per-region curves over local-step time (``span`` shaded, e.g. a true micro-expression).
    Bottom: each frame's attention over the local steps, ``weights`` (T frames, S steps)."""
    fig, (a, b) = plt.subplots(2, 1, figsize=(10, 4.5), sharex=True, height_ratios=[1, 1.5], layout="constrained")
    for name, y in curves.items():
        a.plot(step_times, y, color=REGION_COLOURS.get(name, "black"), lw=1, label=name)
    if span is not None:
        a.axvspan(*span, color="red", alpha=0.3)
    a.legend(fontsize=6, ncol=6)
    a.set_ylabel("px")
    a.set_title(title, fontsize=10)
    b.imshow(weights, aspect="auto", cmap="magma", extent=(0, float(step_times[-1]), len(frame_times) - 0.5, -0.5))
    every = max(1, len(frame_times) // 10)
    b.set_yticks(range(0, len(frame_times), every), [f"{t:.1f} s" for t in frame_times[::every]], fontsize=7)
    b.set_xlabel("time (s)")
    b.set_ylabel("frame")
    return fig


def span_colour(kind: str, index: int) -> str:
    """Grey for the whole clip, a cycling palette for utterances and windows."""
    return "#555555" if kind == "video" else plt.get_cmap("tab10")(index % 10)


def token_strip(ax: plt.Axes, spans: Sequence, n_queries: int) -> None:
    """The LLM's visual input as a strip of token cells, coloured and labelled by span."""
    for k, span in enumerate(spans):
        colour = span_colour(span.kind, span.index)
        ax.bar(np.arange(k * n_queries, (k + 1) * n_queries), 1, width=0.9, color=colour)
        name = "whole clip" if span.kind == "video" else f"{span.kind} {span.index + 1}"
        ax.text((k + 0.5) * n_queries - 0.5, 1.05, f"{name}\n{span.start:.1f}-{span.end:.1f} s",
                ha="center", va="bottom", fontsize=7)
    ax.set_xlim(-0.5, len(spans) * n_queries - 0.5)
    ax.set_ylim(0, 1.6)
    ax.set_yticks([])
    ax.set_xlabel("token position in the visual input")


def span_attention(ax: plt.Axes, attention: np.ndarray, frame_times: np.ndarray, spans: Sequence) -> None:
    """Each span's Q-Former attention over the sampled frames (rows: spans), spans outlined."""
    step = float(np.median(np.diff(frame_times))) if len(frame_times) > 1 else 1.0
    extent = (frame_times[0] - step / 2, frame_times[-1] + step / 2, len(spans) - 0.5, -0.5)
    ax.imshow(attention, aspect="auto", cmap="magma", extent=extent, interpolation="nearest")
    for k, span in enumerate(spans):
        ax.add_patch(plt.Rectangle((span.start, k - 0.45), span.end - span.start, 0.9, fill=False,
                                   edgecolor=span_colour(span.kind, span.index), lw=1.5))
    ax.set_yticks(range(len(spans)), ["whole" if s.kind == "video" else f"{s.kind[:3]} {s.index + 1}"
                                      for s in spans], fontsize=7)
    ax.set_xlabel("time (s)")


def similarity_matrix(ax: plt.Axes, matrix: np.ndarray, labels: Sequence[str]) -> None:
    """A cosine-similarity matrix with its values written in."""
    ax.imshow(matrix, cmap="coolwarm", vmin=-1, vmax=1)
    for (i, j), v in np.ndenumerate(matrix):
        ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7)
    ax.set_xticks(range(len(labels)), labels, fontsize=7, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels, fontsize=7)


def voice_figure(times: np.ndarray, log_mel: np.ndarray, prosody: np.ndarray, utterances: Sequence[dict], *,
                 title: str = "") -> Figure:
    """Log-mel spectrogram with the pitch contour, then energy and speaking rate, under utterance spans."""
    fig, (a, b, c) = plt.subplots(3, 1, figsize=(10, 5), sharex=True, height_ratios=[2, 1, 1], layout="constrained")
    end = float(times[-1])
    a.imshow(log_mel.T, origin="lower", aspect="auto", cmap="magma", extent=(0, end, 0, log_mel.shape[1]))
    a.set_ylabel("mel band")
    pitch = a.twinx()
    voiced, f0_st = prosody[:, 0] > 0, prosody[:, 1]
    pitch.plot(times, np.where(voiced, 100.0 * 2 ** (f0_st / 12.0), np.nan), color="cyan", lw=1.5)
    pitch.set_ylabel("f0 (Hz)", color="cyan")
    a.set_title(title, fontsize=10)
    b.plot(times, prosody[:, 2], color="black", lw=1)
    b.set_ylabel("energy (dBFS)")
    c.plot(times, prosody[:, 3], color="#2ca02c", lw=1)
    c.set_ylabel("nuclei / s")
    c.set_xlabel("time (s)")
    for ax in (b, c):
        utterance_spans(ax, utterances, text=ax is b)
    return fig


def prompt_layout(ax: plt.Axes, parts: Sequence[tuple[str, int, int]]) -> None:
    """The LLM's input sequence as coloured blocks: text, video and audio tokens, the answer."""
    colours = {"text": "#d9d9d9", "answer": "#2ca02c"}
    for what, first, end in parts:
        kind = what.split()[0]
        colour = colours.get(kind, "#1f77b4" if kind == "visual" else "#ff7f0e")
        ax.barh(0, end - first, left=first, color=colour, edgecolor="white", linewidth=0.3)
        if kind != "text":
            ax.text((first + end) / 2, 0.45, what.replace("visual", "v").replace("audio", "a"), ha="center",
                    va="bottom", fontsize=6, rotation=90)
    ax.set_yticks([])
    ax.set_xlim(0, parts[-1][2])
    ax.set_xlabel("position in the LLM's input (tokens): grey text, blue video, orange audio, green answer")


def score_bars(ax: plt.Axes, series: dict[str, dict[str, tuple[float, float | None]]], *,
               ylabel: str = "OV F") -> None:
    """Grouped bars: one group per scenario (x), one bar per series (a model or ablation variant),
    each a (mean, sd or None) drawn with its error bar when there is a spread."""
    groups = list(dict.fromkeys(g for scores in series.values() for g in scores))
    width = 0.8 / len(series)
    for i, (name, scores) in enumerate(series.items()):
        x = np.arange(len(groups)) + (i - (len(series) - 1) / 2) * width
        means = [scores.get(g, (np.nan, None))[0] for g in groups]
        sds = [scores.get(g, (np.nan, None))[1] or 0.0 for g in groups]
        ax.bar(x, means, width, yerr=sds if any(sds) else None, capsize=2, label=name,
               color=plt.cm.tab10(i % 10), edgecolor="white", linewidth=0.3)
    ax.set_xticks(range(len(groups)), groups)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel(ylabel)
    if len(series) > 1:
        ax.legend(frameon=False, fontsize=7, ncols=min(len(series), 3))
