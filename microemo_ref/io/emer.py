"""Loaders for the real EMER and MER label files, so licensed copies can be scored like our samples.

The files are distributed with the EMER / MER datasets (Lian et al., 2023, 2024) under
licences that forbid redistribution; only their *formats* are used here, and the tests run on
tiny fixture files written by us. Formats of those files:

* **EMER v1** CSV, columns ``names, emotions, subtitles, reasons``: clip name, a discrete
  emotion, the subtitle, the reasoning (the gold explanation);
* **EMER v2** CSV, columns ``name, chinese, english``: clip name and the description in
  Chinese and in English (the English one is used);
* **MER OV labels** CSV, columns ``name, openset``: clip name and its open-vocabulary labels,
  written as a Python-style list (``['happy', 'relieved']``) or separated by commas.

Each loader returns one :class:`EmerRecord` per row, with the video found under a
user-given folder (``NAME.mp4``, ``.avi``, ``.mkv`` or ``.mov``, searched recursively) or None.
:func:`load_labels` tells the three formats apart by their header (what ``--labels FILE``
of the model commands reads). Errors name the file and the row; a row without a name, or a
name given twice, is an error.
"""
from __future__ import annotations

import ast
import csv
from dataclasses import dataclass, field
from pathlib import Path

from microemo_ref.io.clip import ClipError

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov")


#: Format -> the columns that identify it (the header may hold others).
FORMATS: dict[str, tuple[str, ...]] = {
    "emer_v1": ("names", "emotions", "subtitles", "reasons"),
    "emer_v2": ("name", "chinese", "english"),
    "mer_ov": ("name", "openset"),
}


@dataclass
class EmerRecord:
    name: str
    explanation: str | None = None
    labels: list[str] = field(default_factory=list)
    subtitle: str | None = None
    video: Path | None = None
    row: int = 0  # line of the file (the header is line 1)


def _rows(path: Path, need: tuple[str, ...]) -> list[dict[str, str]]:
    if not path.is_file():
        raise ClipError(f"{path}: file not found")
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        header = [h.strip().lower() for h in reader.fieldnames or []]
        missing = [c for c in need if c not in header]
        if missing:
            raise ClipError(f"{path}: missing column(s) {', '.join(missing)} (found {', '.join(header) or 'none'})")
        return [{k.strip().lower(): (v or "").strip() for k, v in row.items() if k} for row in reader]


def parse_openset(text: str, where: str) -> list[str]:
    """"['happy', 'relieved']" or "happy, relieved" -> ['happy', 'relieved']."""
    text = text.strip()
    if text.startswith("["):
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError) as err:
            raise ClipError(f"{where}: cannot read the label list {text!r}") from err
        return [str(v).strip().lower() for v in value if str(v).strip()]
    return [w.strip().lower() for w in text.split(",") if w.strip()]


def _find_videos(folder: Path | None) -> dict[str, Path]:
    if folder is None:
        return {}
    return {p.stem: p for p in sorted(Path(folder).rglob("*")) if p.suffix.lower() in VIDEO_SUFFIXES}


def _checked(path: Path, records: list[EmerRecord]) -> list[EmerRecord]:
    """Number the rows (header = line 1) and refuse empty or repeated names."""
    first: dict[str, int] = {}
    for i, r in enumerate(records):
        r.row = i + 2
        if not r.name:
            raise ClipError(f"{path} row {r.row}: no clip name")
        if r.name in first:
            raise ClipError(f"{path} row {r.row}: clip {r.name!r} already given in row {first[r.name]}")
        first[r.name] = r.row
    return records


def load_emer_v1(path: str | Path, videos: str | Path | None = None) -> list[EmerRecord]:
    path = Path(path)
    found = _find_videos(videos and Path(videos))
    return _checked(path, [EmerRecord(r["names"], r["reasons"] or None, [r["emotions"].lower()] if r["emotions"] else [],
                                      r["subtitles"] or None, found.get(r["names"]))
                           for r in _rows(path, FORMATS["emer_v1"])])


def load_emer_v2(path: str | Path, videos: str | Path | None = None) -> list[EmerRecord]:
    path = Path(path)
    found = _find_videos(videos and Path(videos))
    return _checked(path, [EmerRecord(r["name"], r["english"] or None, video=found.get(r["name"]))
                           for r in _rows(path, FORMATS["emer_v2"])])


def load_mer_ov(path: str | Path, videos: str | Path | None = None) -> list[EmerRecord]:
    path = Path(path)
    found = _find_videos(videos and Path(videos))
    return _checked(path, [EmerRecord(r["name"], labels=parse_openset(r["openset"], f"{path} row {i + 2}"),
                                      video=found.get(r["name"]))
                           for i, r in enumerate(_rows(path, FORMATS["mer_ov"]))])


LOADERS = {"emer_v1": load_emer_v1, "emer_v2": load_emer_v2, "mer_ov": load_mer_ov}


def detect_format(path: str | Path) -> str:
    """Which of :data:`FORMATS` a label file is, from its header; a ClipError naming the file
    and the header found if none fits."""
    path = Path(path)
    if not path.is_file():
        raise ClipError(f"{path}: file not found")
    with open(path, newline="", encoding="utf-8-sig") as fh:
        header = {h.strip().lower() for h in next(csv.reader(fh), [])}
    for kind, need in FORMATS.items():
        if set(need) <= header:
            return kind
    known = "; ".join(f"{k}: {', '.join(v)}" for k, v in FORMATS.items())
    raise ClipError(f"{path}: unknown label file: its header has {', '.join(sorted(header)) or 'nothing'}; "
                    f"expected the columns of one of {known}")


def load_labels(path: str | Path, videos: str | Path | None = None) -> tuple[str, list[EmerRecord]]:
    """(format, records) of an EMER v1, EMER v2 or MER OV label file (see :func:`detect_format`)."""
    kind = detect_format(path)
    return kind, LOADERS[kind](path, videos)


__all__ = ["EmerRecord", "FORMATS", "LOADERS", "detect_format", "load_emer_v1", "load_emer_v2", "load_labels",
           "load_mer_ov", "parse_openset"]
