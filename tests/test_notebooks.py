"""House rules for committed notebooks (nbval itself runs them: see pyproject.toml)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from microemo_ref.notebook_tools import problems

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


def test_notebooks_exist_and_are_numbered():
    assert NOTEBOOKS, "no notebooks found"
    numbers = [int(re.match(r"(\d\d)_", p.name).group(1)) for p in NOTEBOOKS]
    assert numbers == sorted(set(numbers)), "notebook numbers must be unique and in reading order"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_clean(path):
    assert problems(path) == []


def test_problems_are_found(tmp_path):
    """The checker itself can fail: a notebook breaking every rule is reported."""
    bad = tmp_path / "99_bad.ipynb"
    bad.write_text("""{"cells": [{"cell_type": "code", "metadata": {}, "execution_count": 1,
      "source": ["# NBVAL_CHECK_OUTPUT\\n", "print(object())"],
      "outputs": [{"output_type": "stream", "name": "stdout", "text": ["<object at 0x7f3a2b1c9d40>"]},
                  {"output_type": "stream", "name": "stderr", "text": ["warning"]},
                  {"output_type": "error", "ename": "E", "evalue": "", "traceback": []}]}],
      "metadata": {"kernelspec": {"name": "other"}, "widgets": {}}, "nbformat": 4, "nbformat_minor": 4}""")
    found = " | ".join(problems(bad))
    for word in ("kernelspec", "extra keys", "Learning goals", "stderr", "error output", "memory address"):
        assert word in found, word
