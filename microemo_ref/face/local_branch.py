"""The local facial branch end to end: video in, micro/macro events and dynamics out.

MicroEmo's first contribution is local facial features that carry the temporal dynamics of
micro-expressions (Zhang et al., 2024). Our reconstruction measures them at the full frame
rate in four stages, one module each:

    track_face       (tracking)   FaceMesh landmarks per frame, gaps, blinks
    measure_motion   (motion)     optical flow per region landmark, head motion removed
    region_signals   (spotting)   distance of each region from its rest shape
    rotation_artefact (head_pose) motion a head turn fakes (no events it explains)
    covered_regions  (occlusion)  where a hand covers a region (no events from there), looked
                                  at closely around the spotter's candidate runs only
    spot_events      (spotting)   onset / apex / offset events, micro or macro

and hands the model's visual encoder a fixed-size dynamics tensor
(regions x steps x features) plus the event list. Speech moves the mouth, so the branch is
told when the person speaks: from the subtitles when there are any, else from voice activity
in the audio (silero-vad), else not at all.

The video is decoded three times, frame by frame, so long videos never sit in memory whole.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from microemo_ref.face.head_pose import TURN_DEG, head_rotations, rotation_artefact, turned_spans
from microemo_ref.face.motion import MotionConfig, RegionMotion, measure_motion
from microemo_ref.face.occlusion import OcclusionConfig, covered_regions, covered_spans
from microemo_ref.face.spotting import (RegionSignal, SpotConfig, SpottedEvent, dynamics_tensor, region_signals,
                                        run_frames, spot_events)
from microemo_ref.face.tracking import FaceTrack, mask_spans, track_face
from microemo_ref.io.clip import Utterance
from microemo_ref.io.video import iter_frames, probe_video


@dataclass
class LocalEvidence:
    """Everything the local branch measured in one clip."""

    events: list[SpottedEvent]
    signals: dict[str, RegionSignal]
    motion: RegionMotion
    track: FaceTrack
    speaking: np.ndarray            # (T,) bool
    speech_source: str              # "subtitles" | "vad" | "none"
    covered: dict[str, np.ndarray] | None = None   # region -> (T,) bool: a hand over it
    head: dict[str, np.ndarray] | None = None      # region -> (T, n, 2): motion a head turn fakes
    rotation: np.ndarray | None = None             # (T, 3, 3) the head's rotation from its rest pose

    @property
    def fps(self) -> float:
        return self.track.fps

    def tensor(self, n_steps: int = 64) -> np.ndarray:
        """(regions, n_steps, 4) dynamics for the model (see spotting.dynamics_tensor)."""
        return dynamics_tensor(self.signals, n_steps)

    def lost_spans(self) -> list[tuple[float, float]]:
        """Spans (seconds) where the face was lost: no events come from them."""
        return mask_spans(~self.track.valid, self.fps)

    def covered_spans(self) -> list[tuple[float, float]]:
        """Spans (seconds) where a hand covers part of the face: no events from the covered regions."""
        return covered_spans(self.covered or {}, self.fps)

    def turned_spans(self, min_deg: float = TURN_DEG) -> list[tuple[float, float]]:
        """Spans (seconds) where the head is turned more than ``min_deg`` away from its rest pose."""
        return [] if self.rotation is None else turned_spans(self.rotation, self.fps, min_deg)

    def to_json(self) -> dict:
        return {"fps": self.fps, "n_frames": self.track.n_frames,
                "events": [e.to_json(self.fps) for e in self.events],
                "face_lost": _rounded(self.lost_spans()), "hand_over_face": _rounded(self.covered_spans()),
                "head_turned": _rounded(self.turned_spans()),
                "speech_source": self.speech_source}


def _rounded(spans: list[tuple[float, float]]) -> list[list[float]]:
    return [[round(a, 3), round(b, 3)] for a, b in spans]


def speaking_frames(utterances: list[Utterance], n_frames: int, fps: float) -> np.ndarray:
    """(n_frames,) bool: frames inside any utterance."""
    mask = np.zeros(n_frames, bool)
    for u in utterances:
        mask[int(np.floor(u.start * fps)):int(np.ceil(u.end * fps)) + 1] = True
    return mask


def _speech(path: Path, n_frames: int, fps: float, utterances: list[Utterance] | None) -> tuple[np.ndarray, str]:
    """Frames in which the person speaks: given utterances, else the clip's own segmentation
    (side subtitles, else voice activity; see microemo_ref.text.utterances)."""
    if utterances:
        return speaking_frames(utterances, n_frames, fps), "subtitles"
    from microemo_ref.text.utterances import segment_video

    seg = segment_video(path, recognise=False)  # only the times matter here
    return speaking_frames(seg.utterances, n_frames, fps), seg.source


def extract_local(video: str | Path, *, utterances: list[Utterance] | None = None,
                  motion_cfg: MotionConfig = MotionConfig(), spot_cfg: SpotConfig = SpotConfig(),
                  occlusion_cfg: OcclusionConfig = OcclusionConfig()) -> LocalEvidence:
    """Run the local branch on a video file (see the module docstring)."""
    path = Path(video)
    info = probe_video(path)
    track = track_face((f for _, f in iter_frames(path, info=info)), info.fps, source=path)
    motion = measure_motion((f for _, f in iter_frames(path, info=info)), track, motion_cfg)  # RGB, as extract_local_frames
    speaking, source = _speech(path, track.n_frames, info.fps, utterances)
    return _evidence(track, motion, speaking, source, spot_cfg, lambda where: covered_regions(
        (f for _, f in iter_frames(path, info=info)), track, occlusion_cfg, where=where))


def _evidence(track: FaceTrack, motion: RegionMotion, speaking: np.ndarray, source: str, spot_cfg: SpotConfig,
              cover: Callable[[np.ndarray], dict[str, np.ndarray]]) -> LocalEvidence:
    """Spot the events; ``cover(where)`` finds the hands, looking closely at ``where`` (the
    spotter's candidate runs: the only frames where a hand changes the events)."""
    signals = region_signals(motion, spot_cfg)
    rot = head = None
    if track.depth is not None:
        rest, rot = head_rotations(track)
        head = rotation_artefact(rest, rot)
    covered = cover(run_frames(signals, speaking, spot_cfg))
    events = spot_events(signals, track.fps, speaking, spot_cfg, covered, head)
    return LocalEvidence(events, signals, motion, track, speaking, source, covered, head, rot)


def extract_local_frames(frames: np.ndarray, fps: float, speaking: np.ndarray | None = None, *,
                         motion_cfg: MotionConfig = MotionConfig(), spot_cfg: SpotConfig = SpotConfig(),
                         occlusion_cfg: OcclusionConfig = OcclusionConfig()) -> LocalEvidence:
    """The same on frames already in memory, e.g. ``clip.frames`` (notebooks, tests)."""
    track = track_face(frames, fps)
    motion = measure_motion(frames, track, motion_cfg)
    speaking = np.zeros(len(frames), bool) if speaking is None else speaking
    return _evidence(track, motion, speaking, "given" if speaking.any() else "none", spot_cfg,
                     lambda where: covered_regions(frames, track, occlusion_cfg, where=where))
