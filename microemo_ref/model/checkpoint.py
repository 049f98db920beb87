"""A trained MicroEmo on disk: what a checkpoint folder holds, and how it is checked at load.

The frozen LLM is not in it (it comes from the installed model, :mod:`~microemo_ref.model.llm`);
only what training changed is:

* ``trainable.safetensors``: the trainable tensors (encoder, projections, LoRA adapters),
  stored as float16, which halves the file (the model trains and runs in float32; the
  rounding is below 1e-3 relative);
* ``config.json``: the :class:`~microemo_ref.model.microemo.MicroEmoConfig`;
* the readers fitted in closed form, one JSON file each, when the configuration has them
  (:data:`READERS`): the micro-expression readout (``readout.json``, our addition), the flash
  word's reader (``flash_word.json``, our addition) and the flash time's frame reader
  (``flash_time.json``, our addition);
* ``checksum.json``: the SHA-256 of the tensor and reader files. Each is checked at load, and a
  missing, corrupted or mismatched file is refused with its path named.
"""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import torch
from torch import Tensor

from microemo_ref.io.files import file_sha256, read_json
from microemo_ref.model.flash_time import FlashTimeReader
from microemo_ref.model.flash_word import FlashReader
from microemo_ref.model.llm import LLM
from microemo_ref.model.microemo import MicroEmo, MicroEmoConfig
from microemo_ref.model.probe import RidgeClassifier

TENSORS = "trainable.safetensors"
#: (configuration switch, model attribute, file, class) of each reader a checkpoint may hold.
READERS = (("readout", "readout", "readout.json", RidgeClassifier),
           ("flash_word", "flash_reader", "flash_word.json", FlashReader),
           ("flash_time", "flash_time_reader", "flash_time.json", FlashTimeReader))


def _config_from(d: dict) -> MicroEmoConfig:
    from microemo_ref.model.audio_encoder import AudioEncoderConfig
    from microemo_ref.model.encoder import EncoderConfig
    from microemo_ref.model.frame_encoder import FrameEncoderConfig
    from microemo_ref.model.global_local import GlobalLocalConfig
    from microemo_ref.model.local_encoder import LocalEncoderConfig
    from microemo_ref.model.qformer import QFormerConfig
    from microemo_ref.model.time_encoder import TimeEncoderConfig
    from microemo_ref.model.utterance_qformer import UtteranceQFormerConfig
    from microemo_ref.model.visual_encoder import VisualEncoderConfig

    e, v = d["encoder"], d["encoder"]["visual"]
    frame = FrameEncoderConfig(**{**v["frame"], "channels": tuple(v["frame"]["channels"])})
    visual = VisualEncoderConfig(frame=frame, time=TimeEncoderConfig(**{**v["time"], "qformer": QFormerConfig(**v["time"]["qformer"])}),
                                 local=LocalEncoderConfig(**v["local"]), fusion=GlobalLocalConfig(**v["fusion"]),
                                 sample_fps=v["sample_fps"])
    encoder = EncoderConfig(visual=visual, video_qformer=UtteranceQFormerConfig(**e["video_qformer"]),
                            audio=AudioEncoderConfig(**e["audio"]), audio_qformer=UtteranceQFormerConfig(**e["audio_qformer"]),
                            span_mode=e["span_mode"], window=e["window"], stride=e["stride"])
    return MicroEmoConfig(**{**d, "encoder": encoder})


def save_checkpoint(model: MicroEmo, folder: str | Path, extra: dict | None = None) -> Path:
    """Write the tensors, the configuration, the model's readers and their checksums into ``folder``."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = folder / TENSORS
    save_file({k: v.detach().to(torch.float16).contiguous() for k, v in model.trainable_state().items()}, tensors)
    (folder / "config.json").write_text(json.dumps(asdict(model.cfg), sort_keys=True, indent=1))
    digests = {TENSORS: file_sha256(tensors)}
    for _, attribute, name, _ in READERS:
        reader = getattr(model, attribute)
        if reader is not None:
            (folder / name).write_text(json.dumps(reader.to_json()))
            digests[name] = file_sha256(folder / name)
    (folder / "checksum.json").write_text(json.dumps({**digests, **(extra or {})}, indent=1))
    return folder


def checkpoint_config(folder: str | Path) -> MicroEmoConfig:
    """The configuration of a checkpoint folder (its ``config.json``), without loading weights."""
    path = Path(folder) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint file missing")
    try:
        return _config_from(read_json(path, "checkpoint configuration"))
    except (KeyError, TypeError, AttributeError) as err:
        raise ValueError(f"{path}: not a MicroEmo checkpoint configuration ({type(err).__name__}: {err})") from None


def load_trainable(folder: str | Path) -> dict[str, Tensor]:
    """A checkpoint's trainable tensors (float32), after checking every file's checksum."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(folder)
    tensors = folder / TENSORS
    for f in (tensors, folder / "config.json", folder / "checksum.json"):
        if not f.is_file():
            raise FileNotFoundError(f"{f}: checkpoint file missing")
    checksums = read_json(folder / "checksum.json", "checksum file")
    if not isinstance(checksums, dict):
        raise ValueError(f"{folder / 'checksum.json'}: checksum file must be a JSON object")
    cfg = checkpoint_config(folder)
    for name in (TENSORS, *(name for switch, _, name, _ in READERS if getattr(cfg, switch))):
        path = folder / name
        if not path.is_file() or name not in checksums:
            raise FileNotFoundError(f"{path}: checkpoint file (or its checksum) missing")
        actual, expected = file_sha256(path), checksums[name]
        if actual != expected:
            raise ValueError(f"{path}: checksum mismatch (sha256 {actual[:12]}..., expected {expected[:12]}...)")
    try:
        return {k: v.float() for k, v in load_file(tensors).items()}
    except SafetensorError as err:  # a header that does not parse
        raise ValueError(f"{tensors}: not a readable safetensors file ({err})") from None


def load_weights(model: MicroEmo, folder: str | Path, missing_ok: bool = False) -> list[str]:
    """Load a checkpoint's trainable tensors into ``model`` (same shapes; checksums checked) and
    return the names of the model's trainable tensors the checkpoint lacks: an error unless
    ``missing_ok`` (an ablation's own part, e.g. the concatenation fusion, keeps its seeded start).

    With ``missing_ok``, a tensor the model has larger than the checkpoint's (the local encoder's
    region weights with the asymmetry channel, (R, 4, E) against (R, 3, E)) is *grown*: the
    checkpoint's values fill its leading block and the rest is zero, so the model computes what
    the checkpoint did until training moves the new weights; it is listed as ``name (grown)``."""
    state = load_trainable(folder)
    own = model.trainable_state()
    missing = sorted(set(own) - set(state))
    if missing and not missing_ok:
        raise ValueError(f"{Path(folder) / TENSORS}: {len(missing)} trainable tensors missing, e.g. {missing[:3]}")
    for name in sorted(set(own) & set(state)):
        want, have = own[name].shape, state[name].shape
        if want == have:
            continue
        if not (missing_ok and len(want) == len(have) and all(h <= w for h, w in zip(have, want))):
            raise ValueError(f"{Path(folder) / TENSORS}: {name} is {tuple(have)} there, the model wants {tuple(want)}")
        grown = torch.zeros(want, dtype=state[name].dtype)
        grown[tuple(slice(0, h) for h in have)] = state[name]
        state[name] = grown
        missing.append(f"{name} (grown)")
    model.load_state_dict(state, strict=False)
    return missing


def load_checkpoint(folder: str | Path, llm: LLM) -> MicroEmo:
    """Build MicroEmo from a checkpoint folder, after checking its checksums."""
    folder = Path(folder)
    cfg = checkpoint_config(folder)
    model = MicroEmo(cfg, llm)
    load_weights(model, folder)
    for switch, attribute, name, kind in READERS:
        if getattr(cfg, switch):
            setattr(model, attribute, kind.from_json(json.loads((folder / name).read_text())))
    return model.eval()


__all__ = ["READERS", "TENSORS", "checkpoint_config", "load_checkpoint", "load_trainable", "load_weights", "save_checkpoint"]
