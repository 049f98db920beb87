"""Facial actions, emotions and the time course of expression events.

An *action* moves a few FaceMesh landmarks in fixed directions; it is our stand-in for a FACS
action unit (Ekman & Friesen's Facial Action Coding System). An *emotion* is a weighted set of
actions, following the prototypes of EMFACS (e.g. anger = AU4 brow lowerer + AU23/24 lip
tightener/pressor; happiness = AU6 cheek raiser + AU12 lip-corner puller; sadness = AU1 inner
brow raiser + AU15 lip-corner depressor). Direction vectors and weights are our choice.

An *event* is one expression with an onset, apex and offset frame (the vocabulary of the
micro-expression literature and of CASME-style annotations). Its amplitude rises from 0 at
the onset to its peak at the apex along a raised cosine, holds (macro expressions only), and
falls back to 0 at the offset. Micro-expressions last at most 0.5 s (the usual definition in
the micro-expression literature, e.g. Yan et al., 2013, CASME II, and MEGC); ours last
160-400 ms and peak at 1-3 px at a 256-px face; macro ones last 0.5-4 s and peak at several
pixels.

Directions are unit vectors in image coordinates (x right, y down); ``l``/``r`` are the
image-left and image-right side (see :mod:`microemo_ref.face.regions`).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

#: Action -> {landmark index: (dx, dy)} with |(dx, dy)| <= 1, and the regions it touches.
ACTIONS: dict[str, dict[int, tuple[float, float]]] = {
    # AU4: inner brows down and together, outer brows down a little.
    "brow_lower": {107: (0.35, 1.0), 55: (0.35, 1.0), 66: (0.2, 0.8), 105: (0.0, 0.6),
                   336: (-0.35, 1.0), 285: (-0.35, 1.0), 296: (-0.2, 0.8), 334: (0.0, 0.6)},
    # AU1: inner brows up.
    "brow_raise_inner": {107: (0.0, -1.0), 55: (0.0, -1.0), 66: (0.0, -0.6),
                         336: (0.0, -1.0), 285: (0.0, -1.0), 296: (0.0, -0.6)},
    # AU1+2: whole brows up.
    "brow_raise": {107: (0.0, -0.9), 66: (0.0, -1.0), 105: (0.0, -1.0), 63: (0.0, -0.9),
                   336: (0.0, -0.9), 296: (0.0, -1.0), 334: (0.0, -1.0), 293: (0.0, -0.9)},
    # AU5: upper lids up.
    "upper_lid_raise": {159: (0.0, -1.0), 158: (0.0, -0.8), 160: (0.0, -0.8),
                        386: (0.0, -1.0), 385: (0.0, -0.8), 387: (0.0, -0.8)},
    # AU6: cheeks raise the lower lids.
    "cheek_raise": {145: (0.0, -1.0), 144: (0.0, -0.8), 153: (0.0, -0.8),
                    374: (0.0, -1.0), 373: (0.0, -0.8), 380: (0.0, -0.8)},
    # AU9: nose wings up.
    "nose_wrinkle": {98: (0.0, -1.0), 129: (0.0, -0.8), 327: (0.0, -1.0), 358: (0.0, -0.8),
                     0: (0.0, -0.5)},
    # AU12: mouth corners up and out.
    "lip_corner_pull": {61: (-0.6, -0.8), 291: (0.6, -0.8)},
    # AU14 (one side): contempt's unilateral dimple.
    "unilateral_corner": {291: (0.55, -0.83)},
    # AU15: mouth corners down.
    "lip_corner_depress": {61: (-0.1, 1.0), 291: (0.1, 1.0)},
    # AU20: mouth corners stretched sideways.
    "lip_stretch": {61: (-1.0, 0.15), 291: (1.0, 0.15)},
    # AU23/24: lips pressed together, corners drawn in.
    "lip_press": {0: (0.0, 0.7), 13: (0.0, 0.6), 17: (0.0, -0.7), 14: (0.0, -0.6),
                  61: (0.4, 0.0), 291: (-0.4, 0.0)},
    # AU26: jaw drop (also used, small, for the mouth moving with speech).
    "jaw_drop": {17: (0.0, 1.0), 14: (0.0, 0.8)},
    # Blink: upper lids close onto the lower lids (amplitude in fractions of the eye opening).
    "blink": {159: (0.0, 1.0), 158: (0.0, 0.9), 160: (0.0, 0.9), 386: (0.0, 1.0),
              385: (0.0, 0.9), 387: (0.0, 0.9), 145: (0.0, -0.15), 374: (0.0, -0.15)},
}

#: Which regions (see face.regions.REGIONS) each action moves.
ACTION_REGIONS: dict[str, tuple[str, ...]] = {
    "brow_lower": ("inner_brows", "brows"), "brow_raise_inner": ("inner_brows",),
    "brow_raise": ("brows", "inner_brows"), "upper_lid_raise": ("lids",), "cheek_raise": ("lids",),
    "nose_wrinkle": ("nose",), "lip_corner_pull": ("mouth_corners",),
    "unilateral_corner": ("mouth_corners",), "lip_corner_depress": ("mouth_corners",),
    "lip_stretch": ("mouth_corners",), "lip_press": ("lips",), "jaw_drop": ("lips",),
    "blink": ("lids",),
}

#: Emotion -> {action: relative weight} (EMFACS-style prototypes; the weights are ours).
EMOTIONS: dict[str, dict[str, float]] = {
    "neutral": {},
    "happy": {"lip_corner_pull": 1.0, "cheek_raise": 0.5},
    "angry": {"brow_lower": 1.0, "lip_press": 0.7},
    "sad": {"brow_raise_inner": 1.0, "lip_corner_depress": 0.8},
    "surprise": {"brow_raise": 1.0, "jaw_drop": 0.8, "upper_lid_raise": 0.4},
    "fear": {"brow_raise_inner": 0.8, "lip_stretch": 1.0, "upper_lid_raise": 0.5},
    "disgust": {"nose_wrinkle": 1.0, "lip_corner_depress": 0.4},
    "contempt": {"unilateral_corner": 1.0},
}

#: Short human descriptions of each emotion's facial cue, for the gold explanations.
CUE_WORDS: dict[str, str] = {
    "happy": "a smile (lip corners pulled up, cheeks raised)",
    "angry": "a brow lowering with pressed lips",
    "sad": "raised inner brows with the lip corners pulled down",
    "surprise": "raised brows with a dropped jaw",
    "fear": "raised inner brows with the lips stretched sideways",
    "disgust": "a wrinkled nose with a lowered lip corner",
    "contempt": "a one-sided tightening of the mouth corner",
}

MICRO_MAX_S: float = 0.5


@dataclass(frozen=True)
class ExpressionEvent:
    """One planted expression. Frames are inclusive indices; amplitude in px at a 256-px face."""

    kind: str          # "micro" | "macro"
    emotion: str
    onset: int
    apex: int
    offset: int
    amplitude: float
    hold_end: int | None = None   # macro: last frame of the plateau that starts at the apex

    def regions(self) -> list[str]:
        found = {r for a in EMOTIONS[self.emotion] for r in ACTION_REGIONS[a]}
        return sorted(found)

    def to_json(self, fps: float) -> dict:
        d = asdict(self)
        d.update(regions=self.regions(), actions=sorted(EMOTIONS[self.emotion]),
                 onset_s=round(self.onset / fps, 3), apex_s=round(self.apex / fps, 3),
                 offset_s=round(self.offset / fps, 3),
                 duration_s=round((self.offset - self.onset + 1) / fps, 3))
        return d


def event_profile(event: ExpressionEvent, n_frames: int) -> np.ndarray:
    """Amplitude of ``event`` at every frame, (n_frames,): raised-cosine rise, hold, fall."""
    t = np.arange(n_frames, dtype=np.float64)
    out = np.zeros(n_frames)
    hold_end = event.apex if event.hold_end is None else event.hold_end
    rise = (t >= event.onset) & (t <= event.apex)
    out[rise] = 0.5 * (1 - np.cos(np.pi * (t[rise] - event.onset) / max(event.apex - event.onset, 1)))
    out[(t > event.apex) & (t <= hold_end)] = 1.0
    fall = (t > hold_end) & (t <= event.offset)
    out[fall] = 0.5 * (1 + np.cos(np.pi * (t[fall] - hold_end) / max(event.offset - hold_end, 1)))
    return event.amplitude * out


def action_amplitudes(events: list[ExpressionEvent], n_frames: int) -> dict[str, np.ndarray]:
    """Per-action amplitude curves (px at a 256-px face), summed over all events."""
    curves: dict[str, np.ndarray] = {}
    for ev in events:
        profile = event_profile(ev, n_frames)
        for action, weight in EMOTIONS[ev.emotion].items():
            curves[action] = curves.get(action, np.zeros(n_frames)) + weight * profile
    return curves
