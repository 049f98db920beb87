"""CASME-style spotting annotations (onset, apex, offset per clip) from CSV or TSV files.

The micro-expression sets are licensed, not redistributable, so this project only reads the
annotation files that users hold: CASME II (Yan et al., "CASME II: an improved spontaneous
micro-expression database and the baseline evaluation", PLoS ONE 2014) and CAS(ME)^2 (Qu et
al., "CAS(ME)^2: a database for spontaneous macro-expression and micro-expression spotting
and recognition", IEEE Trans. Affective Computing 2017).  Both ship their coding as Excel
sheets; export the sheet to CSV or TSV first (``.xlsx`` is not read: no Excel reader here).

Format policy
-------------
* The first line is a header.  The delimiter is a tab if the header contains one, else a
  comma.  UTF-8, with or without a byte-order mark.
* Column names are matched ignoring case, spaces, ``_`` and ``-``; the first alias present
  wins (see `COLUMNS`): clip (``clip``, ``video``, ``video name``, ``filename``, ``name``),
  onset (``onset``, ``OnsetFrame``, ``onset_frame``), apex, offset likewise, and type
  (``type``, ``Expression type``, ``kind``, ``label``).  Other columns are ignored.
* If a ``subject`` column exists the clip name is ``f"{subject}/{clip}"``: CASME II and
  CAS(ME)^2 reuse video names across subjects (every subject watched the same stimuli), so
  the name alone would merge different people's clips.  This mirrors the folder layout.
* Type values ``micro``, ``micro-expression``, ``me`` give ``"micro"``; ``macro``,
  ``macro-expression``, ``mae`` give ``"macro"`` (case and separators ignored).  CASME II has
  no type column (it is micro-only): pass ``default_type="micro"`` for it.
* Frames are non-negative integers (``"12.0"`` from a spreadsheet export is accepted).
  An unknown apex, written ``0`` (or ``0.0``), ``/`` or left empty (CASME II does this), becomes
  ``(onset + offset) // 2``, the middle frame, since spotting only scores onset and offset.
* An offset of ``0`` is how CAS(ME)^2 marks a missing offset; such a row cannot be scored,
  so it is refused rather than guessed.  So is ``onset > apex`` or ``apex > offset``.

Every error is a `ClipError` whose message starts with the file path and, for a bad row,
gives the line number (the header is line 1).
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from microemo_ref.io.clip import ClipError

#: Field -> accepted column names, normalised (lower case, no spaces, ``_`` or ``-``),
#: in order of preference.
COLUMNS: dict[str, tuple[str, ...]] = {
    "clip": ("clip", "video", "videoname", "filename", "name"),
    "onset": ("onset", "onsetframe"),
    "apex": ("apex", "apexframe"),
    "offset": ("offset", "offsetframe"),
    "type": ("type", "expressiontype", "kind", "label"),
}

#: Normalised type spellings -> ``"micro"`` | ``"macro"``.
TYPE_NAMES: dict[str, str] = {
    "micro": "micro", "microexpression": "micro", "me": "micro",
    "macro": "macro", "macroexpression": "macro", "mae": "macro",
}

_UNKNOWN_APEX = {"", "/"}
_INTEGER = re.compile(r"\d+(\.0*)?")


@dataclass(frozen=True)
class SpotAnnotation:
    """One annotated expression: inclusive frames ``onset <= apex <= offset``."""

    clip: str
    onset: int
    apex: int
    offset: int
    type: str  # "micro" | "macro"

    def to_event(self) -> dict:
        """The event dict that `microemo_ref.metrics.spotting.score_spotting` reads."""
        return {"onset": self.onset, "apex": self.apex, "offset": self.offset, "type": self.type}


def _norm(name: str) -> str:
    return re.sub(r"[\s_\-]+", "", name.strip().lower())


def _find_columns(header: list[str], where: str, need_type: bool) -> dict[str, str]:
    """Map each field to the header's column name, or raise naming what is missing."""
    by_norm: dict[str, str] = {}
    for column in header:
        by_norm.setdefault(_norm(column), column)
    found = {field: next((by_norm[a] for a in aliases if a in by_norm), None)
             for field, aliases in COLUMNS.items()}
    if "subject" in by_norm:
        found["subject"] = by_norm["subject"]
    required = [f for f in COLUMNS if f != "type" or need_type]
    missing = [f for f in required if found[f] is None]
    if missing:
        accepted = "; ".join(f"{f}: {', '.join(COLUMNS[f])}" for f in missing)
        raise ClipError(f"{where}: missing column(s) {', '.join(missing)} (accepted names, "
                        f"ignoring case and separators: {accepted}); found columns {header}")
    return {f: c for f, c in found.items() if c is not None}


def _frame(text: str | None, what: str, where: str) -> int:
    text = (text or "").strip()
    if not _INTEGER.fullmatch(text):
        raise ClipError(f"{where}: {what} must be a non-negative integer frame, got {text!r}")
    return int(float(text))


def _parse_row(row: dict, cols: dict[str, str], where: str,
               default_type: str | None) -> SpotAnnotation:
    clip = (row.get(cols["clip"]) or "").strip()
    if not clip:
        raise ClipError(f"{where}: empty clip name")
    if "subject" in cols and (row.get(cols["subject"]) or "").strip():
        clip = f"{row[cols['subject']].strip()}/{clip}"
    onset = _frame(row.get(cols["onset"]), "onset", where)
    offset = _frame(row.get(cols["offset"]), "offset", where)
    if offset == 0:
        raise ClipError(f"{where}: offset 0 marks a missing offset (CAS(ME)^2); cannot score it")
    apex_text = (row.get(cols["apex"]) or "").strip()
    apex = 0 if apex_text in _UNKNOWN_APEX else _frame(apex_text, "apex", where)
    if apex == 0:  # unknown (frames are 1-based in CASME II and CAS(ME)^2)
        apex = (onset + offset) // 2
    if not onset <= apex <= offset:
        raise ClipError(f"{where}: frames must satisfy onset <= apex <= offset, "
                        f"got {onset}, {apex}, {offset}")
    raw_type = (row.get(cols["type"]) or "") if "type" in cols else (default_type or "")
    kind = TYPE_NAMES.get(_norm(raw_type))
    if kind is None:
        raise ClipError(f"{where}: unknown expression type {raw_type!r} "
                        f"(expected one of {sorted(TYPE_NAMES)})")
    return SpotAnnotation(clip, onset, apex, offset, kind)


def load_spotting_annotations(path: str | Path,
                              default_type: str | None = None) -> dict[str, list[SpotAnnotation]]:
    """Read a CSV/TSV spotting annotation file: clip name -> its annotations sorted by onset.

    `default_type` (``"micro"`` or ``"macro"``) is used only when the file has no type column.
    """
    if default_type is not None and default_type not in ("micro", "macro"):
        raise ValueError(f"default_type must be 'micro', 'macro' or None, got {default_type!r}")
    path = Path(path)
    if not path.is_file():
        raise ClipError(f"{path}: no such annotation file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ClipError(f"{path}: not UTF-8 text ({exc.reason}); export it as UTF-8") from exc
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise ClipError(f"{path}: empty file, expected a header row")
    reader = csv.DictReader(lines, delimiter="\t" if "\t" in lines[0] else ",")
    cols = _find_columns(list(reader.fieldnames or []), str(path), need_type=default_type is None)
    result: dict[str, list[SpotAnnotation]] = {}
    for row in reader:
        ann = _parse_row(row, cols, f"{path}: line {reader.line_num}", default_type)
        result.setdefault(ann.clip, []).append(ann)
    for anns in result.values():
        anns.sort(key=lambda a: (a.onset, a.offset, a.type))
    return result


def events_from_truth(truth: dict) -> list[dict]:
    """This project's generated ground truth (``truth["events"]``) as scoring events.

    Each ``{"kind": "micro"|"macro", "onset", "apex", "offset", ...}`` becomes
    ``{"onset", "apex", "offset", "type"}`` (frames are already inclusive), sorted by onset.
    Blinks live under another key and are not expressions, so they are not included.
    """
    if "events" not in truth:
        raise ValueError("ground truth has no 'events' key")
    events = [{"onset": int(ev["onset"]), "apex": int(ev["apex"]), "offset": int(ev["offset"]),
               "type": str(ev["kind"])} for ev in truth["events"]]
    for ev in events:
        if ev["type"] not in ("micro", "macro"):
            raise ValueError(f"ground-truth event has unknown kind {ev['type']!r}")
    return sorted(events, key=lambda ev: (ev["onset"], ev["offset"]))
