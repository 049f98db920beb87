"""Keep committed notebooks clean: strip noisy metadata, and check the house rules.

The rules (see docs/design.md, "Adding a notebook"): kernelspec ``python3``; the first cell is markdown
with the learning goals; no widget state, no error outputs, no stderr output; cells checked
strictly by nbval (marked ``# NBVAL_CHECK_OUTPUT``) print only text (no images, no reprs with
memory addresses). ``microemo-ref nbclean`` applies :func:`clean`; the tests apply :func:`problems`.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

STRICT_MARK = "# NBVAL_CHECK_OUTPUT"
_KEEP_NB_META = {"kernelspec", "language_info"}
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{6,}")


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
            if STRICT_MARK in source:
                text = "".join(out.get("text", "")) + "".join(out.get("data", {}).get("text/plain", ""))
                if set(out.get("data", {})) - {"text/plain"}:
                    found.append(f"cell {i}: strictly checked cell has non-text output")
                if _ADDRESS.search(text):
                    found.append(f"cell {i}: strictly checked output holds a memory address")
        if STRICT_MARK in source and not cell.get("outputs"):
            found.append(f"cell {i}: strictly checked cell has no committed output")
    return found


def clean_file(path: str | Path) -> None:
    path = Path(path)
    nb = clean(json.loads(path.read_text()))
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
