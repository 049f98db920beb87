"""The pipeline diagram (microemo_ref.diagram): its tables agree, bad names fail, and it draws."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from microemo_ref.diagram import BLOCKS, NOTEBOOK_BLOCKS, OURS, draw_pipeline  # noqa: E402


def test_notebook_blocks_name_known_blocks():
    for notebook, blocks in NOTEBOOK_BLOCKS.items():
        assert blocks, notebook
        assert set(blocks) <= set(BLOCKS), (notebook, set(blocks) - set(BLOCKS))
    assert sorted(NOTEBOOK_BLOCKS) == [f"{n:02d}" for n in range(1, 12)]


def test_every_block_is_built_somewhere():
    built = {b for blocks in NOTEBOOK_BLOCKS.values() for b in blocks}
    assert set(BLOCKS) == built, set(BLOCKS) - built


def test_ours_are_labelled():
    for name in OURS:
        assert "ours" in BLOCKS[name]


def test_unknown_highlight_raises():
    with pytest.raises(ValueError, match="unknown block.*'qformr'.*known blocks"):
        draw_pipeline(["qformer", "qformr"])


@pytest.mark.parametrize("small", [False, True])
def test_draws(small):
    fig = draw_pipeline(NOTEBOOK_BLOCKS["04"], small=small)
    width, height = fig.get_size_inches()
    assert (width, height) == ((7, 2.2) if small else (13, 4.6))
    texts = {t.get_text() for t in fig.axes[0].texts}
    assert set(BLOCKS.values()) <= texts
    fig.canvas.draw()
    plt.close(fig)


def test_draws_into_an_axis():
    fig, ax = plt.subplots()
    assert draw_pipeline(ax=ax) is fig
    plt.close(fig)
