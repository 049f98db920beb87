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
Errors name the file and the row.
"""
from __future__ import annotations

import ast
import csv
from dataclasses import dataclass, field
from pathlib import Path

from microemo_ref.io.clip import ClipError

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov")


@dataclass
class EmerRecord:
    name: str
    explanation: str | None = None
    labels: list[str] = field(default_factory=list)
    subtitle: str | None = None
    video: Path | None = None


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


def load_emer_v1(path: str | Path, videos: str | Path | None = None) -> list[EmerRecord]:
    path = Path(path)
    found = _find_videos(videos and Path(videos))
    return [EmerRecord(r["names"], r["reasons"] or None, [r["emotions"].lower()] if r["emotions"] else [],
                       r["subtitles"] or None, found.get(r["names"]))
            for r in _rows(path, ("names", "emotions", "subtitles", "reasons"))]


def load_emer_v2(path: str | Path, videos: str | Path | None = None) -> list[EmerRecord]:
    path = Path(path)
    found = _find_videos(videos and Path(videos))
    return [EmerRecord(r["name"], r["english"] or None, video=found.get(r["name"]))
            for r in _rows(path, ("name", "chinese", "english"))]


def load_mer_ov(path: str | Path, videos: str | Path | None = None) -> list[EmerRecord]:
    path = Path(path)
    found = _find_videos(videos and Path(videos))
    return [EmerRecord(r["name"], labels=parse_openset(r["openset"], f"{path} row {i + 2}"), video=found.get(r["name"]))
            for i, r in enumerate(_rows(path, ("name", "openset")))]


__all__ = ["EmerRecord", "load_emer_v1", "load_emer_v2", "load_mer_ov", "parse_openset"]
