"""Keep committed notebooks clean: strip noisy metadata, and check the house rules.

The rules (see docs/design.md, "Adding a notebook"): kernelspec ``python3``; the first cell is markdown
with the learning goals; no widget state, no error outputs, no stderr output, no text chunks
(the plotting library's name and version) in PNG outputs; cells checked
strictly by nbval (marked ``# NBVAL_CHECK_OUTPUT``) print only text (no images, no reprs with
memory addresses). ``microemo-ref nbclean`` applies :func:`clean`; the tests apply :func:`problems`.

The course rules: an ``## Exercises`` section with 2-4 exercises (``**Exercise N.**``), each with a
code cell that starts ``# Solution to exercise N`` and checks itself with ``assert`` (nbval runs
it, so the solutions are tested); a closing cell saying what the notebook showed and what it did
not; a link to a paper by arXiv ID; from notebook 01 on, at least one equation in LaTeX; and no
development history (sessions, checkpoint nicknames, spotter versions, issue numbers, commit
hashes, files outside the repository).
"""
from __future__ import annotations

import json
import re
from pathlib import Path

STRICT_MARK = "# NBVAL_CHECK_OUTPUT"
_KEEP_NB_META = {"kernelspec", "language_info"}
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{6,}")
_EXERCISE = re.compile(r"\*\*Exercise (\d+)\.?\*\*")
_SOLUTION = re.compile(r"^# Solution to exercise (\d+)")
_ARXIV = re.compile(r"arxiv\.org/abs/\d{4}\.\d{4,5}")
_EQUATION = re.compile(r"\$\$.+?\$\$|\$[^$\n]+\$", re.S)
#: Words that belong in CHANGELOG.md, not in a lesson.
HISTORY = re.compile(r"\bsessions? ?\d|\bin session\b|\bspotter v\d|\b(?:r|run )\d\b|\bissue #?\d+"
                     r"|\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{7,40}\b(?!\.\.\.)|(?-i:DESIGN\.md)|\.\./shared"
                     r"|\bprevious (?:checkpoint|model|spotter)", re.I)


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_TEXT_CHUNKS = {b"tEXt", b"zTXt", b"iTXt"}


def png_without_text(b64: str) -> str:
    """A base64 PNG with its text chunks removed (matplotlib writes its name and version
    there: noise in a diff, and not part of the figure). Each PNG chunk is length, type,
    data and a CRC of its own, so whole chunks can be dropped and the rest stays valid."""
    import base64

    raw = base64.b64decode(b64)
    if not raw.startswith(_PNG_SIGNATURE):
        return b64
    kept, i = [_PNG_SIGNATURE], len(_PNG_SIGNATURE)
    while i + 8 <= len(raw):
        length = int.from_bytes(raw[i:i + 4], "big")
        chunk = raw[i:i + 12 + length]                       # length, type, data, CRC
        if raw[i + 4:i + 8] not in _PNG_TEXT_CHUNKS:
            kept.append(chunk)
        i += 12 + length
    return base64.b64encode(b"".join(kept)).decode("ascii")


def clean(nb: dict) -> dict:
    """Return ``nb`` with only stable metadata and without stderr or widget outputs."""
    nb = json.loads(json.dumps(nb))
    nb["metadata"] = {k: v for k, v in nb.get("metadata", {}).items() if k in _KEEP_NB_META}
    nb["metadata"]["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    if "language_info" in nb["metadata"]:
        nb["metadata"]["language_info"] = {"name": "python"}
    for cell in nb.get("cells", []):
        cell["metadata"] = {k: v for k, v in cell.get("metadata", {}).items() if k in {"tags"}}
        cell.pop("id", None)
        if cell["cell_type"] != "code":
            continue
        outs = []
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stderr":
                continue
            data = out.get("data", {})
            if "application/vnd.jupyter.widget-view+json" in data:
                data.pop("application/vnd.jupyter.widget-view+json")
                if not data:
                    continue
            if "metadata" in out:
                out["metadata"] = {}
            if isinstance(data.get("image/png"), str):
                data["image/png"] = png_without_text(data["image/png"])
            outs.append(out)
        cell["outputs"] = outs
    nb["nbformat"], nb["nbformat_minor"] = 4, 4
    return nb


def problems(path: str | Path) -> list[str]:
    """Every breach of the house rules in one notebook file (empty list when clean)."""
    path = Path(path)
    nb = json.loads(path.read_text())
    found = []
    if nb.get("metadata", {}).get("kernelspec", {}).get("name") != "python3":
        found.append("kernelspec is not python3")
    if set(nb.get("metadata", {})) - _KEEP_NB_META or "widgets" in json.dumps(nb.get("metadata", {})):
        found.append(f"notebook metadata has extra keys: {sorted(set(nb['metadata']) - _KEEP_NB_META)}")
    cells = nb.get("cells", [])
    if not cells or cells[0]["cell_type"] != "markdown" or "learning goals" not in "".join(cells[0]["source"]).lower():
        found.append("first cell is not a markdown cell with 'Learning goals'")
    for i, cell in enumerate(cells):
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        for out in cell.get("outputs", []):
            kind = out.get("output_type")
            if kind == "error":
                found.append(f"cell {i}: error output")
            if kind == "stream" and out.get("name") == "stderr":
                found.append(f"cell {i}: stderr output")
            if "application/vnd.jupyter.widget-view+json" in out.get("data", {}):
                found.append(f"cell {i}: widget state")
            png = out.get("data", {}).get("image/png")
            if isinstance(png, str) and png_without_text(png) != png:
                found.append(f"cell {i}: PNG output carries text metadata (run nbclean)")
            if STRICT_MARK in source:
                text = "".join(out.get("text", "")) + "".join(out.get("data", {}).get("text/plain", ""))
                if set(out.get("data", {})) - {"text/plain"}:
                    found.append(f"cell {i}: strictly checked cell has non-text output")
                if _ADDRESS.search(text):
                    found.append(f"cell {i}: strictly checked output holds a memory address")
        if STRICT_MARK in source and not cell.get("outputs"):
            found.append(f"cell {i}: strictly checked cell has no committed output")
    return found + course_problems(path.name, cells)


def _text(cell: dict) -> str:
    """A cell's source, and for a code cell its text outputs too."""
    parts = ["".join(cell["source"])]
    for out in cell.get("outputs", []):
        parts.append("".join(out.get("text", "")) + "".join(out.get("data", {}).get("text/plain", "")))
    return "\n".join(parts)


def course_problems(name: str, cells: list[dict]) -> list[str]:
    """Breaches of the course rules (exercises, solutions, closing, paper link, equations, history)."""
    found = []
    markdown = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    exercises = sorted({int(n) for n in _EXERCISE.findall(markdown)})
    if not re.search(r"^## Exercises", markdown, re.M):
        found.append("no '## Exercises' section")
    if not 2 <= len(exercises) <= 4 or exercises != list(range(1, len(exercises) + 1)):
        found.append(f"exercises should be numbered 1..N with N in 2-4, found {exercises}")
    solved = {}
    for cell in cells:
        match = _SOLUTION.match("".join(cell["source"])) if cell["cell_type"] == "code" else None
        if match:
            solved[int(match.group(1))] = "assert" in "".join(cell["source"])
    for n in exercises:
        if n not in solved:
            found.append(f"exercise {n} has no '# Solution to exercise {n}' code cell")
        elif not solved[n]:
            found.append(f"the solution to exercise {n} checks nothing (no assert)")
    closing = markdown.lower()
    if "what we showed" not in closing or "what we did not" not in closing:
        found.append("no closing 'What we showed / What we did not'")
    if not _ARXIV.search(markdown):
        found.append("no link to a paper by arXiv ID (https://arxiv.org/abs/NNNN.NNNNN)")
    number = re.match(r"(\d+)_", name)
    if number and int(number.group(1)) >= 1 and not _EQUATION.search(markdown):
        found.append("no equation (LaTeX between $ signs) in the markdown")
    for i, cell in enumerate(cells):
        for hit in sorted({m.group(0) for m in HISTORY.finditer(_text(cell))}):
            found.append(f"cell {i}: development history {hit!r}")
    return found


def clean_file(path: str | Path) -> None:
    path = Path(path)
    nb = clean(json.loads(path.read_text()))
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
