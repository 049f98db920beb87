"""Micro-expression spotting annotations (onset, apex, offset per clip) from CSV or TSV files.

The micro-expression sets are licensed, not redistributable, so this project only reads the
annotation sheets that users hold.  They ship as Excel workbooks; export the coding sheet to
CSV or TSV first (``.xlsx`` is not read: no Excel reader here).  The layout is detected from
the header row, or from the first data row of a sheet that has none:

``casme2``
    CASME II (Yan et al., PLoS ONE 2014), ``CASME2-coding-20140508.xlsx``: one header row,
    ``Subject, Filename, OnsetFrame, ApexFrame, OffsetFrame, Action Units, Estimated Emotion``
    (copies may carry unnamed blank columns; they are ignored).  Micro-expressions only, no
    type column.  ``Subject`` is a number (``1`` or ``01``); the clip key is
    ``sub01/EP02_01f``, the folder layout of the release.  An unknown apex is written ``/``.
``casme_sq``
    CAS(ME)^2 (Qu et al., IEEE Trans. Affective Computing 2017), ``CAS(ME)^2code_final.xlsx``:
    the first sheet has *no header row*; its nine columns are participant number (1-22),
    video name and expression number (``anger1_1``), onset, apex, offset, action units,
    estimated emotion, expression type (``micro-expression``/``macro-expression``) and
    self-reported emotion.  The workbook's two "naming rule" sheets map the participant number
    to the subject (1 -> ``s15`` ... 22 -> ``s40``) and the video name to its code and title
    (``anger1`` -> ``0401girlcrashing``); they are built in here (`CASME_SQ_SUBJECTS`,
    `CASME_SQ_VIDEOS`), so the clip key is the raw video's stem, ``15_0401girlcrashing``.
``samm``
    SAMM (Davison et al., IEEE Trans. Affective Computing 2018), ``SAMM_Micro_FACS_Codes_v2``:
    13 preamble rows, then the header ``Subject, Filename, Inducement Code, Onset Frame,
    Apex Frame, Offset Frame, Duration, Micro, Action Units, Estimated Emotion, Objective
    Classes, Notes``.  Micro-movements only.  The key is ``006/006_1_2`` (subject padded to
    three digits, then the sequence folder).
``samm_long``
    SAMM Long Videos (Yap et al., FG 2020), ``SAMM_LongVideos_V3_Release.xlsx`` (V1-V3 alike):
    9 preamble rows, then ``Subject, Filename, Inducement Code, Onset, Apex, Offset, Duration,
    Type, Action Units, Notes``.  ``Type`` is ``Micro - 1/2`` or ``Macro``.  ``Filename`` is
    video plus expression number (``006_1_3``); the key is the long video, ``006_1``.
``generic``
    Any other header naming the fields below (this project's own tables).

Sources of these facts: the published loaders of SOFTNet (github.com/genbing99/SoftNet-SpotME,
``load_label.py``) and of other MEGC spotting and recognition code on GitHub that read these
workbooks (positional CAS(ME)^2 columns and naming-rule sheets, SAMM ``header=13`` and
``skiprows`` of 10, the ``Micro - 1/2`` spelling, CASME II and SAMM column names).

Format policy
-------------
* The delimiter is a tab if one of the first lines holds a tab, else a comma.  UTF-8, with or
  without a byte-order mark.  Rows whose cells are all blank are skipped.
* The header is the first row naming at least three of the fields; rows above it (the SAMM
  preambles) are skipped.  Column names are matched ignoring case, spaces, ``_`` and ``-``;
  the first alias present wins (see `COLUMNS`).  Other columns are ignored.
* ``generic``: if a ``subject`` column exists the key is ``f"{subject}/{clip}"``, since these
  sets reuse clip names across subjects; a file without a type column needs `default_type`.
* Type values ``micro``, ``micro-expression``, ``me``, ``Micro - 1/2`` give ``"micro"``;
  ``macro``, ``macro-expression``, ``mae`` give ``"macro"`` (case and separators ignored).
* Frames are non-negative integers (``"12.0"`` from a spreadsheet export is accepted).
  An unknown apex (``0``, ``/`` or empty) becomes ``(onset + offset) // 2``, since spotting
  only scores onset and offset.  An offset of ``0`` is how CAS(ME)^2 and SAMM Long Videos mark
  a missing offset; the apex frame then stands in for it, as the public MEGC loaders do (e.g.
  SoftNet-SpotME's ``load_label.py``), with a warning naming the line; with no apex either,
  the row is refused.  So is ``onset > apex`` or ``apex > offset``.

Every error is a `ClipError` whose message starts with the file path and, for anything found
in a row, gives its line number in the file.
"""
from __future__ import annotations

import csv
import re
import warnings
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
    "micro": "micro", "microexpression": "micro", "me": "micro", "micro1/2": "micro",
    "macro": "macro", "macroexpression": "macro", "mae": "macro",
}

#: CAS(ME)^2 "naming rule 1": participant number -> subject number (folder ``s15`` etc.).
CASME_SQ_SUBJECTS: dict[int, str] = dict(zip(range(1, 23), (
    "15", "16", "19", "20", "21", "22", "23", "24", "25", "26", "27",
    "29", "30", "31", "32", "33", "34", "35", "36", "37", "38", "40")))

#: CAS(ME)^2 "naming rule 2": video name -> code and title, as in the raw file names
#: (``0503unnyfarting`` is spelt so in the release).
CASME_SQ_VIDEOS: dict[str, str] = {
    "disgust1": "0101disgustingteeth", "disgust2": "0102eatingworms",
    "anger1": "0401girlcrashing", "anger2": "0402beatingpregnantwoman",
    "happy1": "0502funnyerrors", "happy2": "0503unnyfarting", "happy3": "0505funnyinnovations",
    "happy4": "0507climbingthewall", "happy5": "0508funnydunkey",
}

#: Column positions of the headerless CAS(ME)^2 sheet.
CASME_SQ_POSITIONS: dict[str, int] = {"subject": 0, "clip": 1, "onset": 2, "apex": 3,
                                      "offset": 4, "type": 7}

LAYOUTS: tuple[str, ...] = ("generic", "casme2", "casme_sq", "samm", "samm_long")

_UNKNOWN_APEX = {"", "/"}
_INTEGER = re.compile(r"\d+(\.0*)?")
_CASME_SQ_CLIP = re.compile(r"[A-Za-z]+\d+_\d+")

Row = tuple[int, list[str]]  # (line number in the file, cells)


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


def _read_rows(path: Path) -> list[Row]:
    """The non-blank rows of a CSV/TSV file with their line numbers."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ClipError(f"{path}: not UTF-8 text ({exc.reason}); export it as UTF-8") from exc
    lines = text.splitlines()
    delimiter = "\t" if any("\t" in line for line in lines[:30]) else ","
    reader = csv.reader(lines, delimiter=delimiter)
    rows = []
    for cells in reader:
        cells = [c.strip() for c in cells]
        if any(cells):
            rows.append((reader.line_num, cells))
    return rows


def _fields_named(cells: list[str]) -> int:
    names = {_norm(c) for c in cells}
    return sum(any(a in names for a in aliases) for aliases in COLUMNS.values())


def _looks_like_casme_sq(cells: list[str]) -> bool:
    return (len(cells) >= 8 and bool(_INTEGER.fullmatch(cells[0]))
            and bool(_CASME_SQ_CLIP.fullmatch(cells[1]))
            and all(_INTEGER.fullmatch(c) for c in cells[2:5]))


def _layout_of(header: list[str]) -> str:
    names = {_norm(c) for c in header}
    if "inducementcode" in names:
        return "samm" if "onsetframe" in names else "samm_long"
    if {"subject", "estimatedemotion"} <= names and not names & set(COLUMNS["type"]):
        return "casme2"
    return "generic"


def _find_columns(header: list[str], where: str, need_type: bool) -> dict[str, int]:
    """Map each field to its column index, or raise naming what is missing."""
    by_norm: dict[str, int] = {}
    for i, column in enumerate(header):
        by_norm.setdefault(_norm(column), i)
    found = {field: next((by_norm[a] for a in aliases if a in by_norm), None)
             for field, aliases in COLUMNS.items()}
    if "subject" in by_norm:
        found["subject"] = by_norm["subject"]
    missing = [f for f in COLUMNS if found[f] is None and (f != "type" or need_type)]
    if missing:
        accepted = "; ".join(f"{f}: {', '.join(COLUMNS[f])}" for f in missing)
        raise ClipError(f"{where}: missing column(s) {', '.join(missing)} (accepted names, "
                        f"ignoring case and separators: {accepted}); found columns {header}")
    return {f: i for f, i in found.items() if i is not None}


def _frame(text: str, what: str, where: str) -> int:
    if not _INTEGER.fullmatch(text):
        raise ClipError(f"{where}: {what} must be a non-negative integer frame, got {text!r}")
    return int(float(text))


def _clip_key(layout: str, clip: str, subject: str, where: str) -> str:
    """The key a video is matched by (its stem or its path below the folder)."""
    number = str(int(float(subject))) if _INTEGER.fullmatch(subject) else subject
    if layout == "casme_sq":
        video = clip.rsplit("_", 1)[0]
        if not number.isdigit() or int(number) not in CASME_SQ_SUBJECTS:
            raise ClipError(f"{where}: CAS(ME)^2 participant must be 1-22, got {subject!r}")
        if video not in CASME_SQ_VIDEOS:
            raise ClipError(f"{where}: unknown CAS(ME)^2 video {video!r} "
                            f"(expected one of {sorted(CASME_SQ_VIDEOS)})")
        return f"{CASME_SQ_SUBJECTS[int(number)]}_{CASME_SQ_VIDEOS[video]}"
    if layout == "samm_long":
        parts = clip.split("_")
        if len(parts) < 3:
            raise ClipError(f"{where}: SAMM Long Videos filename must be SUBJECT_VIDEO_NUMBER "
                            f"(e.g. 006_1_3), got {clip!r}")
        return "_".join(parts[:2])
    if layout == "casme2" and subject:
        return f"sub{number.zfill(2)}/{clip}" if number.isdigit() else f"{subject}/{clip}"
    if layout == "samm" and subject:
        return f"{number.zfill(3)}/{clip}"
    return f"{subject}/{clip}" if subject else clip


def _parse_row(values: dict[str, str], layout: str, where: str,
               default_type: str | None) -> SpotAnnotation:
    clip = values.get("clip", "")
    if not clip:
        raise ClipError(f"{where}: empty clip name")
    key = _clip_key(layout, clip, values.get("subject", ""), where)
    onset = _frame(values.get("onset", ""), "onset", where)
    offset = _frame(values.get("offset", ""), "offset", where)
    apex_text = values.get("apex", "")
    apex = 0 if apex_text in _UNKNOWN_APEX else _frame(apex_text, "apex", where)
    if offset == 0:  # missing (CAS(ME)^2, SAMM Long Videos): the apex stands in, as MEGC loaders do
        if apex == 0:
            raise ClipError(f"{where}: offset 0 (missing) and no apex to stand in for it: fix or delete the row")
        warnings.warn(f"{where}: offset 0 marks a missing offset; the apex frame {apex} is taken as the offset",
                      stacklevel=2)
        offset = apex
    if apex == 0:  # unknown (frames are 1-based in these sets)
        apex = (onset + offset) // 2
    if not onset <= apex <= offset:
        raise ClipError(f"{where}: frames must satisfy onset <= apex <= offset, "
                        f"got {onset}, {apex}, {offset}")
    if layout in ("casme2", "samm"):  # micro-only sets
        raw_type = "micro"
    else:
        raw_type = values["type"] if "type" in values else (default_type or "")
    kind = TYPE_NAMES.get(_norm(raw_type))
    if kind is None:
        raise ClipError(f"{where}: unknown expression type {raw_type!r} "
                        f"(expected one of {sorted(TYPE_NAMES)})")
    return SpotAnnotation(key, onset, apex, offset, kind)


def detect_layout(path: str | Path) -> str:
    """Which of `LAYOUTS` a CSV/TSV annotation sheet is in (see the module docstring)."""
    return _split(Path(path), need_type=False)[0]


def _split(path: Path, need_type: bool) -> tuple[str, dict[str, int], list[Row]]:
    """(layout, field -> column index, data rows) of an annotation file."""
    if not path.is_file():
        raise ClipError(f"{path}: no such annotation file")
    rows = _read_rows(path)
    if not rows:
        raise ClipError(f"{path}: empty file, expected a header row")
    for i, (line, cells) in enumerate(rows):
        if _fields_named(cells) >= 3:
            layout = _layout_of(cells)
            need = need_type and layout not in ("casme2", "samm")
            cols = _find_columns(cells, f"{path}: line {line}", need)
            return layout, cols, rows[i + 1:]
    line, cells = rows[0]
    if _looks_like_casme_sq(cells):
        return "casme_sq", dict(CASME_SQ_POSITIONS), rows
    raise ClipError(f"{path}: line {line}: no header row found and not the headerless "
                    f"CAS(ME)^2 layout; a header names at least three of {sorted(COLUMNS)} "
                    f"(accepted names: {COLUMNS}); first row {cells}")


def load_spotting_annotations(path: str | Path,
                              default_type: str | None = None) -> dict[str, list[SpotAnnotation]]:
    """Read a CSV/TSV spotting annotation file: clip key -> its annotations sorted by onset.

    The layout (CASME II, CAS(ME)^2, SAMM, SAMM Long Videos or generic) is detected.
    `default_type` (``"micro"`` or ``"macro"``) is used only when a generic file has no type
    column.
    """
    if default_type is not None and default_type not in ("micro", "macro"):
        raise ValueError(f"default_type must be 'micro', 'macro' or None, got {default_type!r}")
    path = Path(path)
    layout, cols, rows = _split(path, need_type=default_type is None)
    result: dict[str, list[SpotAnnotation]] = {}
    for line, cells in rows:
        values = {f: cells[i] if i < len(cells) else "" for f, i in cols.items()}
        ann = _parse_row(values, layout, f"{path}: line {line}", default_type)
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
