"""Files in and out, checked: the checks the commands make before any work, so that bad input
fails at once with the file named (the CLI turns these errors into exit code 2, no traceback).

* places to write: :func:`output_folder` (e.g. ``generate --out``) and :func:`output_file`
  (``rescore --out``), checked before anything is generated or scored;
* places to read: :func:`input_folder`, and :func:`files_under`, which leaves out the hidden
  temporary files and folders a killed run leaves behind;
* :func:`read_json` names the file when its JSON does not parse, :func:`check_truth` that
  a ground-truth side file has the keys a command reads, and :func:`truth_beside` reads a
  clip's side file with both;
* :func:`file_sha256`: the digest that pinned weights and checkpoints are checked against.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path


def file_sha256(path: str | Path) -> str:
    """The sha256 hex digest of a file, read in 1-MB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _first_existing(path: Path) -> Path:
    """``path`` or its nearest ancestor that exists."""
    for p in (path, *path.parents):
        if p.exists():
            return p
    return Path(".")


def output_folder(path: str | Path, option: str) -> Path:
    """A folder to write into: made if missing; refused if it is a file, lies under a file, or
    cannot be written."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{option} {path}: is a file, not a folder")
    base = _first_existing(path)
    if not base.is_dir():
        raise ValueError(f"{option} {path}: {base} is a file, so no folder can be made under it")
    if not os.access(base, os.W_OK | os.X_OK):
        raise ValueError(f"{option} {path}: {base} is not writable")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"{option} {path}: cannot make the folder ({err.strerror or err})") from None
    return path


def output_file(path: str | Path, option: str) -> Path:
    """A file to write: refused if it is a folder, or its folder is missing or not writable."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{option} {path}: is a folder, not a file")
    if not path.parent.is_dir():
        raise ValueError(f"{option} {path}: folder {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise ValueError(f"{option} {path}: not writable")
    return path


def input_folder(path: str | Path) -> Path:
    """A folder to read clips from: it must exist and be a folder."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such folder")
    if not path.is_dir():
        raise ValueError(f"{path}: is a file, not a folder of clips")
    return path


def read_json(path: str | Path, what: str = "JSON file"):
    """The parsed JSON of ``path``; a file that does not parse is named, with the line and column."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ValueError(f"{path}: {what} is not UTF-8 text") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: {what} does not parse as JSON ({err.msg}, line {err.lineno} column {err.colno})") from None


#: keys of a generated clip's ground truth, by what reads them
TRUTH_KEYS = {"spotting": ("events",), "emer": ("scenario", "emotions", "labels", "explanation", "events", "utterances")}
EVENT_KEYS = ("kind", "onset", "apex", "offset")


def check_truth(truth, path: str | Path, use: str) -> dict:
    """``truth`` if it has what ``use`` (``"spotting"`` or ``"emer"``) reads; else a ValueError
    naming ``path`` and the missing keys."""
    if not isinstance(truth, dict):
        raise ValueError(f"{path}: ground truth must be a JSON object, got {type(truth).__name__}")
    missing = [k for k in TRUTH_KEYS[use] if k not in truth]
    if missing:
        raise ValueError(f"{path}: ground truth lacks {', '.join(repr(k) for k in missing)}")
    if not isinstance(truth["events"], list):
        raise ValueError(f"{path}: ground truth 'events' must be a list")
    for i, ev in enumerate(truth["events"]):
        lacks = [k for k in EVENT_KEYS if not isinstance(ev, dict) or k not in ev]
        if lacks:
            raise ValueError(f"{path}: ground-truth event {i} lacks {', '.join(repr(k) for k in lacks)}")
    return truth


def truth_beside(video: str | Path, use: str | None = None) -> dict | None:
    """The ground truth beside ``video`` (``NAME.json``), None if there is none; with ``use``
    (``"spotting"`` or ``"emer"``), checked to hold what that reads (:func:`check_truth`)."""
    side = Path(video).with_suffix(".json")
    if not side.is_file():
        return None
    truth = read_json(side, "ground truth")
    return check_truth(truth, side, use) if use else truth


def visible(path: Path, root: Path) -> bool:
    """False for files that are hidden, or inside hidden folders, under ``root``: the temporary
    files and folders of a run that was killed before it could remove them."""
    return not any(part.startswith(".") for part in path.relative_to(root).parts)


def files_under(root: str | Path, *patterns: str) -> list[Path]:
    """Files under ``root`` matching any of ``patterns`` (searched recursively), sorted, hidden
    ones left out (see :func:`visible`)."""
    root = Path(root)
    return sorted({p for pattern in patterns for p in root.rglob(pattern) if visible(p, root)})


__all__ = ["EVENT_KEYS", "TRUTH_KEYS", "check_truth", "file_sha256", "files_under", "input_folder", "output_file", "output_folder",
           "read_json", "truth_beside", "visible"]
