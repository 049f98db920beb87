"""Clip -> evidence -> encoder inputs: everything measured about a clip before the model runs.

The first half of the EMER pipeline (video + audio + subtitles in): utterances
(:mod:`microemo_ref.text.utterances`), the local facial branch
(:mod:`microemo_ref.face.local_branch`), audio features (:mod:`microemo_ref.audio.features`),
and the sampled frames, gathered into one :class:`Evidence`. :func:`encoder_inputs` turns it
into the tensors of :class:`~microemo_ref.model.encoder.EncoderInputs`.

Missing modalities are not errors: no face leaves the local branch out (the frame tokens pass
through, see :mod:`~microemo_ref.model.visual_encoder`), no audio track or no speech leaves
the utterances and the audio tokens out. Each case adds a line to ``Evidence.notes``, which
the command line prints, so the user knows what the model did not see.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from microemo_ref.audio.features import AudioFeatures, audio_features
from microemo_ref.face.head_pose import TURN_DEG
from microemo_ref.face.landmarks import NoFaceError
from microemo_ref.face.tracking import mask_spans
from microemo_ref.face.local_branch import LocalEvidence, extract_local_frames, speaking_frames
from microemo_ref.io.clip import Clip
from microemo_ref.io.frames import VideoFrames
from microemo_ref.model.encoder import EncoderInputs
from microemo_ref.model.frame_encoder import frames_to_tensor
from microemo_ref.model.visual_encoder import VisualEncoderConfig, sample_frames
from microemo_ref.text.utterances import Segmentation, segment_clip, with_label_words


@dataclass
class Evidence:
    clip: Clip
    segmentation: Segmentation
    frame_index: np.ndarray  # (T,) sampled frame numbers
    local: LocalEvidence | None  # None: no face found
    audio: AudioFeatures | None  # None: no audio track
    notes: list[str] = field(default_factory=list)


def gather_evidence(clip: Clip, cfg: VisualEncoderConfig = VisualEncoderConfig(), *,
                    use_subtitles: bool = True, local: bool = True, recognise: bool = True,
                    label_words: str | None = None, check: Callable[[Segmentation], None] | None = None) -> Evidence:
    """Segment, sample frames, run the local branch (``local=False`` skips it) and audio features
    (``recognise=False``: no speech recognition where there are no subtitles; ``label_words``:
    a label file's subtitle for a clip that has no words of its own, see
    :func:`~microemo_ref.text.utterances.with_label_words`; ``check``: called with the
    utterances before the face is measured, to refuse a clip early by raising)."""
    seg = segment_clip(clip, use_subtitles=use_subtitles, recognise=recognise)
    if label_words:
        seg = with_label_words(seg, label_words)
    if check is not None:
        check(seg)
    notes = list(seg.notes)
    index, _ = sample_frames(clip.n_frames, clip.fps, cfg.sample_fps, cfg.time.max_frames)
    evidence_local = None
    if local:
        speaking = speaking_frames(seg.utterances, clip.n_frames, clip.fps)
        try:
            evidence_local = extract_local_frames(clip.frames, clip.fps, speaking)
        except NoFaceError as err:
            notes.append(f"{err}; the local facial branch is left out")
        if evidence_local is not None:
            notes += local_notes(evidence_local, clip.path or "<in-memory clip>")
    feats = None
    if clip.audio is not None and clip.audio.size:
        feats = audio_features(clip.audio, clip.sample_rate)
    else:
        notes.append(f"{clip.path or '<in-memory clip>'}: no audio track; no audio tokens")
    return Evidence(clip, seg, index, evidence_local, feats, notes)


#: Below these, micro-expressions cannot be measured with any confidence (our rule of thumb: a
#: 160-ms flash spans 3 frames at 20 fps; a 100-px face gives FaceMesh's landmarks and the flow
#: patches under 0.4 of the linear detail of the generated faces, which are about 260 px wide).
MIN_FACE_PX: float = 100.0
MIN_MICRO_FPS: float = 20.0


def local_notes(local: LocalEvidence, source: str | Path) -> list[str]:
    """What the user should know about the face measurement: a small face or a low frame rate,
    a face partly outside the picture, hands over it, a turning head."""
    notes = []
    boxes = local.track.boxes[local.track.valid]
    width = float(np.median(boxes[:, 2] - boxes[:, 0]))
    if width < MIN_FACE_PX:
        notes.append(f"{source}: the face is only {width:.0f} px wide (under {MIN_FACE_PX:.0f} px): "
                     "its micro events and amplitudes are unreliable")
    if local.fps < MIN_MICRO_FPS:
        notes.append(f"{source}: {local.fps:.0f} fps (under {MIN_MICRO_FPS:.0f}): a micro-expression spans "
                     f"only {max(1, round(0.16 * local.fps))}-{round(0.5 * local.fps)} frames; its micro events are unreliable")
    def text(spans: list[tuple[float, float]]) -> str:
        return ", ".join(f"{a:.1f}-{b:.1f} s" for a, b in spans)

    if covered := local.covered_spans():
        notes.append(f"{source}: a hand covers part of the face at {text(covered)}; "
                     "no facial events from the covered regions there")
    if local.track.outside is not None and (outside := mask_spans(local.track.outside, local.fps)):
        notes.append(f"{source}: the face is partly outside the picture at {text(outside)}; "
                     "it is not measured there")
    if turned := local.turned_spans():
        notes.append(f"{source}: the head turns more than {TURN_DEG:g} degrees from its usual pose at {text(turned)}; "
                     "facial motion that the turn explains is not counted as an event")
    return notes


RESIZE_CHUNK = 8  # frames converted to float and resized together


def sampled_images(frames: np.ndarray | VideoFrames, index: np.ndarray, size: int) -> torch.Tensor:
    """(T, 3, size, size) float images of the sampled frames; a streamed clip's frames are
    resized one by one as they are decoded, so no full-size frame stack is ever built."""
    if isinstance(frames, VideoFrames):
        return torch.cat(frames.resized(index, lambda frame: frames_to_tensor(frame[None], size)))
    # a few frames at a time: each is resized on its own, and full-size float copies of all
    # the sampled frames at once would cost more than the clip's own frames
    return torch.cat([frames_to_tensor(frames[index[i:i + RESIZE_CHUNK]], size)
                      for i in range(0, max(len(index), 1), RESIZE_CHUNK)])


def encoder_inputs(ev: Evidence, cfg: VisualEncoderConfig = VisualEncoderConfig()) -> EncoderInputs:
    """The tensors of one clip for :class:`~microemo_ref.model.encoder.MicroEmoEncoder`."""
    clip = ev.clip
    images = sampled_images(clip.frames, ev.frame_index, cfg.frame.image_size)  # (T, 3, H, W)
    x = EncoderInputs(duration=clip.duration, images=images,
                      frame_times=torch.from_numpy(ev.frame_index / clip.fps).float(),
                      utterances=ev.segmentation.spans())
    if ev.local is not None:
        n = ev.local.track.n_frames
        x.dynamics = torch.from_numpy(ev.local.tensor(n))  # (R, S=T_full, F)
        x.local_times = torch.arange(n, dtype=torch.float32) / clip.fps
        x.local_mask = torch.from_numpy(ev.local.track.valid.copy())
    if ev.audio is not None:
        x.audio = torch.from_numpy(ev.audio.matrix())
        x.audio_times = torch.from_numpy(ev.audio.times).float()
    return x


__all__ = ["MIN_FACE_PX", "MIN_MICRO_FPS", "Evidence", "encoder_inputs", "gather_evidence", "local_notes",
           "sampled_images"]
