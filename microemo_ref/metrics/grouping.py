"""User-supplied emotion-wheel groupings in the layout of MERTools' ``emotion_wheel`` folder.

The project's own grouping is :mod:`microemo_ref.lexicon`. This module reads, instead, the file
layout that MERTools (github.com/zeroQiaoba/MERTools, by Zheng Lian et al.) uses for the
emotion-wheel (EW-based) open-vocabulary metric of MER2025/MER2026, so that users who hold those
(research-only) files, or files of their own in the same layout, can score with them. The layout
facts come from ``MER2025/MER2025_Track23/my_affectgpt/evaluation/wheel.py`` (and its MER2026
copy), ``MER2025/MER2025_Track23/README.md`` and the headers of the files in
``MER2025/MER2025_Track23/emotion_wheel/``. No data from those files is included here.

Three kinds of file, all read here as CSV (MERTools ships the first two as ``.xlsx``; no Excel
reader is installed, so save the sheet as "CSV UTF-8" with the same header row):

* **wheel** (``wheel1.xlsx`` ... ``wheel5.xlsx``): header ``level1,level2,level3``; one row per
  outer-ring word (level3). A blank level1 or level2 cell repeats the value of the row above
  (Excel's merged cells). At ``level="level1"`` every word of a branch maps to its level1 (the
  innermost emotion); at ``level="level2"`` level2 and level3 words map to their level2, and a
  level1 word maps to the alphabetically first of its level2 words. When a word occurs twice,
  the later row wins.
* **synonyms** (``synonym.xlsx``): header pairs ``word_runK,synonym_runK`` (MERTools has K=1..8,
  one pair per LLM run); each ``synonym`` cell is a comma-separated list. Each synonym maps to
  its word, each word to itself; the runs are merged by union.
* **formats** (``format.csv``): header ``name,format``; ``format`` lists inflected forms of
  ``name`` ("angered" -> "anger"), comma-separated. Each form and the name map to the name.

Lookup (:meth:`Grouping.head_of`, MERTools' "case3"): lower-case and strip the word; with a
formats file the word must be one of its forms or names, else it is dropped; the candidate
names are replaced by everything the synonym file maps them to (a name it lacks stands for
itself); the alphabetically first candidate that is on the wheel gives the head. Words that
find no head are dropped from both sides, as in MERTools.

MERTools' final score averages (F, precision, recall) over its five wheels, each wheel's F being
2PR/(P+R) of that wheel's averages; :func:`microemo_ref.metrics.emotion_sets.ov_scores` does this
when given ``groupings=``. MER2026 also ships the mappings pre-built as a pickled
``wheel_mapping.npz``; pickles are not loaded here.
"""
from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

LEVELS = ("level1", "level2")
WHEEL_HEADER = ("level1", "level2", "level3")


class GroupingError(ValueError):
    """A grouping file that cannot be read; the message names the file (and row, when known)."""


def normalise(word: str) -> str:
    """MERTools' normalisation before lookup: lower case, surrounding whitespace removed."""
    return word.strip().lower()


def split_list(cell: str) -> list[str]:
    """A list cell ("a, b", "['a', 'b']") as its normalised, non-empty items."""
    cell = cell.strip()
    if cell.startswith("["):
        cell = cell[1:]
    if cell.endswith("]"):
        cell = cell[:-1]
    return [normalise(item) for item in re.split(r"[,'\"]", cell) if item.strip()]


@dataclass(frozen=True, eq=False)
class Grouping:
    """One emotion wheel at one level, with the optional synonym and format mappings."""

    name: str
    level: str
    wheel: Mapping[str, str]  # wheel word -> head (level1 or level2 of its branch)
    synonyms: Mapping[str, frozenset[str]] | None = field(default=None, repr=False)
    formats: Mapping[str, frozenset[str]] | None = field(default=None, repr=False)

    def head_of(self, word: str) -> str | None:
        """Head of ``word`` on this wheel (module docstring), or None when it has none."""
        w = normalise(word)
        if self.formats is not None:
            if w not in self.formats:
                return None
            names: Iterable[str] = self.formats[w]
        else:
            names = (w,)
        if self.synonyms is not None:
            candidates = {c for n in names for c in self.synonyms.get(n, (n,))}
        else:
            candidates = set(names)
        for c in sorted(candidates):
            if c in self.wheel:
                return self.wheel[c]
        return None

    @property
    def heads(self) -> frozenset[str]:
        """All heads of this wheel at this level."""
        return frozenset(self.wheel.values())


Rows = list[tuple[int, dict[str, str]]]


def _read_csv(path: Path, expected: str) -> tuple[set[str], Rows]:
    """Column names and (line number, row) pairs of a CSV file; blank rows are skipped."""
    if not path.is_file():
        raise GroupingError(f"{path}: no such file")
    if path.suffix.lower() in (".xlsx", ".xls", ".xlsm"):
        raise GroupingError(f"{path}: Excel workbooks are not read (no Excel reader installed); "
                            f"save the sheet as CSV (UTF-8) with the same header row ({expected})")
    raw = path.read_bytes()
    if raw.startswith(b"PK\x03\x04"):
        raise GroupingError(f"{path}: this is a zip/Excel file, not CSV; save it as CSV ({expected})")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise GroupingError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        table = [(reader.line_num, cells) for cells in reader]  # line_num: the record's last line
    except csv.Error as e:
        raise GroupingError(f"{path}: line {reader.line_num}: not valid CSV ({e})") from None
    if not table or not any(h.strip() for h in table[0][1]):
        raise GroupingError(f"{path}: empty file; expected a header row ({expected})")
    header = table[0][1]
    keys = [normalise(h) for h in header]
    named = [k for k in keys if k]  # unnamed columns (an export's trailing commas) are ignored
    if len(set(named)) != len(named):
        raise GroupingError(f"{path}: line 1: repeated column in header {header}")
    rows: Rows = []
    for line, cells in table[1:]:
        if not any(c.strip() for c in cells):
            continue
        if any(c.strip() for c in cells[len(keys):]) or any(c.strip() for k, c in zip(keys, cells) if not k):
            raise GroupingError(f"{path}: line {line}: a value in a column without a header")
        rows.append((line, {k: c.strip() for k, c in zip(keys, cells) if k}))
    return set(named), rows


def _check_header(path: Path, names: set[str], allowed: Callable[[str], bool], required: Iterable[str],
                  expected: str) -> None:
    unknown = sorted(n for n in names if not allowed(n))
    if unknown:
        raise GroupingError(f"{path}: line 1: unknown column(s) {unknown}; expected {expected}")
    missing = [r for r in required if r not in names]
    if missing:
        raise GroupingError(f"{path}: line 1: missing column(s) {missing}; expected {expected}")


def _nonempty(path: Path, rows: Rows) -> Rows:
    if not rows:
        raise GroupingError(f"{path}: header only, no rows")
    return rows


def read_wheel(path: str | Path) -> dict[str, dict[str, list[str]]]:
    """A wheel file as level1 -> level2 -> [level3 words], in file order (blank cells filled down)."""
    path = Path(path)
    expected = ",".join(WHEEL_HEADER)
    names, rows = _read_csv(path, expected)
    _check_header(path, names, lambda n: n in WHEEL_HEADER, WHEEL_HEADER, expected)
    tree: dict[str, dict[str, list[str]]] = {}
    level1 = level2 = ""
    for line, row in _nonempty(path, rows):
        new1, new2, level3 = (normalise(row.get(k, "")) for k in WHEEL_HEADER)
        if new1 and not new2:
            raise GroupingError(f"{path}: line {line}: a new level1 ({new1!r}) needs its level2 on the same row")
        level1, level2 = new1 or level1, new2 or level2
        if not level1:
            raise GroupingError(f"{path}: line {line}: no level1 on or above this row to fill down")
        if not level3:
            raise GroupingError(f"{path}: line {line}: empty level3 (each row names one outer word)")
        tree.setdefault(level1, {}).setdefault(level2, []).append(level3)
    return tree


def wheel_heads(tree: Mapping[str, Mapping[str, Sequence[str]]], level: str) -> dict[str, str]:
    """Word -> head for a wheel tree at ``level`` ("level1" or "level2"), later entries winning."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, not {level!r}")
    out: dict[str, str] = {}
    for l1, branches in tree.items():
        out[l1] = l1 if level == "level1" else sorted(branches)[0]
        for l2, outer in branches.items():
            head = l1 if level == "level1" else l2
            out[l2] = head
            for l3 in outer:
                out[l3] = head
    return out


def _merge(target: dict[str, set[str]], key: str, values: Iterable[str]) -> None:
    target.setdefault(key, set()).update(values)


def read_synonyms(path: str | Path) -> dict[str, frozenset[str]]:
    """A synonym file as word -> wheel words it stands for, merged over all ``word_runK`` runs."""
    path = Path(path)
    pattern = re.compile(r"(word|synonym)_(\w+)")
    expected = "pairs word_runK,synonym_runK"
    names, rows = _read_csv(path, expected)
    _check_header(path, names, lambda n: pattern.fullmatch(n) is not None, (), expected)
    runs = sorted({m.group(2) for m in map(pattern.fullmatch, names) if m})
    unpaired = [r for r in runs if f"word_{r}" not in names or f"synonym_{r}" not in names]
    if unpaired:
        raise GroupingError(f"{path}: line 1: run(s) {unpaired} lack their word_ or synonym_ column")
    out: dict[str, set[str]] = {}
    for line, row in _nonempty(path, rows):
        for run in runs:
            word = normalise(row[f"word_{run}"]) if f"word_{run}" in row else ""
            synonyms = split_list(row.get(f"synonym_{run}", ""))
            if not word:
                if synonyms:
                    raise GroupingError(f"{path}: line {line}: synonym_{run} given but word_{run} is empty")
                continue
            _merge(out, word, (word,))
            for syn in synonyms:
                _merge(out, syn, (word,))
    return {k: frozenset(v) for k, v in out.items()}


def read_formats(path: str | Path) -> dict[str, frozenset[str]]:
    """A format file as form -> names it is a form of (each name is also a form of itself)."""
    path = Path(path)
    expected = "name,format"
    names, rows = _read_csv(path, expected)
    _check_header(path, names, lambda n: n in ("name", "format"), ("name", "format"), expected)
    out: dict[str, set[str]] = {}
    for line, row in _nonempty(path, rows):
        name = normalise(row.get("name", ""))
        if not name:
            raise GroupingError(f"{path}: line {line}: empty name")
        _merge(out, name, (name,))
        for form in split_list(row.get("format", "")):
            _merge(out, form, (name,))
    return {k: frozenset(v) for k, v in out.items()}


def load_grouping(path: str | Path, *, level: str = "level1", synonyms: str | Path | None = None,
                  formats: str | Path | None = None) -> Grouping:
    """One wheel file (CSV, module docstring) as a :class:`Grouping`, with optional synonym and
    format files. Raises :class:`GroupingError` naming the file and line on bad input."""
    return load_groupings([path], level=level, synonyms=synonyms, formats=formats)[0]


def load_groupings(paths: Sequence[str | Path], *, level: str = "level1", synonyms: str | Path | None = None,
                   formats: str | Path | None = None) -> list[Grouping]:
    """Several wheels (MERTools averages five) sharing one synonym and one format file."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, not {level!r}")
    if not paths:
        raise ValueError("no wheel files given")
    syn = read_synonyms(synonyms) if synonyms is not None else None
    fmt = read_formats(formats) if formats is not None else None
    return [Grouping(Path(p).stem, level, wheel_heads(read_wheel(p), level), syn, fmt) for p in paths]


__all__ = ["Grouping", "GroupingError", "load_grouping", "load_groupings", "normalise", "read_formats",
           "read_synonyms", "read_wheel", "split_list", "wheel_heads"]
