"""House rules for committed notebooks (nbval itself runs them: see pyproject.toml)."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from microemo_ref.notebook_tools import HISTORY, png_without_text, problems

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


def test_notebooks_exist_and_are_numbered():
    assert NOTEBOOKS, "no notebooks found"
    numbers = [int(re.match(r"(\d\d)_", p.name).group(1)) for p in NOTEBOOKS]
    assert numbers == sorted(set(numbers)), "notebook numbers must be unique and in reading order"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_clean(path):
    assert problems(path) == []


def test_png_text_chunks_are_stripped_and_the_image_kept():
    import base64
    import io

    import matplotlib.pyplot as plt
    import numpy as np
    from PIL import Image

    fig, ax = plt.subplots(figsize=(1, 1))
    ax.plot([0, 1], [1, 0])
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    b64 = base64.b64encode(buf.getvalue()).decode()
    assert b"Matplotlib version" in base64.b64decode(b64)
    clean_b64 = png_without_text(b64)
    raw = base64.b64decode(clean_b64)
    assert b"tEXt" not in raw and b"Matplotlib" not in raw
    before, after = (np.asarray(Image.open(io.BytesIO(base64.b64decode(x)))) for x in (b64, clean_b64))
    assert np.array_equal(before, after)
    assert png_without_text(clean_b64) == clean_b64


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
    for word in ("kernelspec", "extra keys", "Learning goals", "stderr", "error output", "memory address",
                 "Exercises", "closing", "arXiv", "equation"):
        assert word in found, word


def _notebook(path, cells):
    path.write_text(json.dumps({"cells": cells, "metadata": {"kernelspec": {"name": "python3"}},
                                "nbformat": 4, "nbformat_minor": 4}))
    return path


def _md(text):
    return {"cell_type": "markdown", "metadata": {}, "source": [text]}


def _code(text):
    return {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [], "source": [text]}


GOOD = [_md("# 05 \u00b7 x\n\n**Learning goals.** a; see [MicroEmo](https://arxiv.org/abs/2407.16552)."),
        _md("The mask is $M_{kt} = 0$ inside the span. See docs/design.md."),
        _md("## Exercises\n\n**Exercise 1.** One.\n\n**Exercise 2.** Two."),
        _code("# Solution to exercise 1\nassert 1 + 1 == 2"),
        _code("# Solution to exercise 2\nassert 2 * 2 == 4"),
        _md("## What we showed, and what we did not\n\n**What we showed** x. **What we did not** y.")]


def test_course_rules_pass_a_good_notebook(tmp_path):
    assert problems(_notebook(tmp_path / "05_good.ipynb", GOOD)) == []


@pytest.mark.parametrize("change, word", [
    (lambda c: c[:4] + c[5:], "exercise 2 has no"),                                   # a solution is missing
    (lambda c: c[:3] + [_code("# Solution to exercise 1\nprint(2)")] + c[4:], "checks nothing"),
    (lambda c: c[:1] + [_md("No maths here.")] + c[2:], "no equation"),
    (lambda c: c[:1] + [_md("$x$ as in session 7, with the r4 checkpoint")] + c[2:], "development history"),
    (lambda c: c[:1] + [_md("$x$; see ../shared/DESIGN.md")] + c[2:], "development history"),
    (lambda c: c[:-1], "closing"),
])
def test_course_rules_catch_each_breach(tmp_path, change, word):
    found = " | ".join(problems(_notebook(tmp_path / "05_bad.ipynb", change(list(GOOD)))))
    assert word in found, found


def test_no_development_history_outside_the_changelog():
    """README, docs, the package, benchmarks and the sample notes speak of the project as it is now."""
    root = NOTEBOOKS[0].parent.parent
    files = [root / "README.md", root / "data_samples" / "README.md", *sorted((root / "docs").glob("*.md")),
             *sorted((root / "microemo_ref").rglob("*.py")), *sorted((root / "benchmarks").glob("*.py"))]
    found = [f"{path.relative_to(root)}:{n}: {m.group(0)!r}" for path in files
             for n, line in enumerate(path.read_text().splitlines(), 1) for m in HISTORY.finditer(line)]
    assert found == []
