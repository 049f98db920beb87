"""Real labelled data in the model commands: a label file and a folder of videos, measured once.

The EMER and MER datasets (Lian et al., 2023, 2024) come as videos plus one label file:
EMER v1 (a discrete emotion, the subtitle and a written explanation per clip), EMER v2 (an
explanation in Chinese and English) or MER's open-vocabulary labels (a set of emotion words).
:mod:`microemo_ref.io.emer` reads those files; this module turns each row into the ground truth
that :mod:`microemo_ref.pipeline.evaluate` and :mod:`microemo_ref.pipeline.train` read, and
measures its video into the same cache format as a generated clip, so that

    microemo-ref cache    --labels FILE --videos DIR
    microemo-ref evaluate --labels FILE --videos DIR
    microemo-ref train    --labels FILE --videos DIR

work as they do on a folder of generated clips. **Our choices** (the datasets' own tools score
differently, and need what we cannot ship):

* The cache goes to a folder of its own (default ``.cache/labelled/<label file's name>``),
  never beside the videos: a licensed copy may be read-only and should stay untouched.
* What a row gives becomes the ground truth, and nothing else: ``labels`` (EMER v1's emotion,
  MER's set; none in EMER v2), ``explanation`` (EMER v1's reasons, EMER v2's English; none in
  MER), ``scenario`` = the format's name, and no ``events`` or utterance moods, since a real
  clip has no ground-truth events (so the token heads of training leave these clips out,
  rather than learn that they hold no events). So ``evaluate`` reports the OV scores where there are labels, the
  explanation similarity (and the judge, if one is plugged in) where there are explanations,
  and the checks that need no labels (grounding); clue recall and mood recall need events and
  moods, and are absent.
* EMER v1's subtitle has no times. It becomes the words of the clip only when the clip has no
  words of its own (no subtitle file and nothing recognised, as for Chinese speech, which the
  English recogniser leaves out): :func:`microemo_ref.text.utterances.with_label_words`.
* A row whose video is missing is reported (file, row and name) and skipped; so is a video
  that cannot be measured. Nothing is skipped silently. An example cached for a row that is
  no longer measured (the row deleted, its video gone) is removed from the cache folder, so
  that ``train`` and ``evaluate`` read the label file's current clips only.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from microemo_ref.io.emer import EmerRecord, load_labels
from microemo_ref.io.files import input_folder
from microemo_ref.pipeline.dataset import SUFFIX, VERSION, cache_example, cache_meta

#: Where the cache of a label file goes unless ``--cache`` says otherwise.
CACHE_ROOT = Path(".cache") / "labelled"


def default_cache(labels: str | Path) -> Path:
    """``.cache/labelled/<the label file's name without its suffix>``."""
    return CACHE_ROOT / Path(labels).stem


def truth_from_record(kind: str, record: EmerRecord, labels: str | Path) -> dict:
    """The ground truth of one label-file row (see the module docstring)."""
    return {"scenario": kind, "labels": list(record.labels), "explanation": record.explanation,
            "subtitle": record.subtitle, "from": f"{labels} row {record.row}"}


def _cached_truth(path: Path) -> dict | None:
    """The ground truth stored in a cached example of the current version, or None."""
    meta = cache_meta(path)
    return meta.get("truth") if meta and meta.get("version") == VERSION else None


def cache_labelled(labels: str | Path, videos: str | Path, out: str | Path | None = None,
                   progress: Callable[[str], None] | None = None,
                   failures: list[tuple[Path, str]] | None = None) -> tuple[Path, list[Path], list[str]]:
    """Measure every row's video of a label file into ``out`` (default :func:`default_cache`).

    Returns (the cache folder, the cached examples, one line per row whose video is missing).
    A row's example is measured again only if it is missing, of another cache version, or
    holds another ground truth (the label file changed). With a ``failures`` list a video that
    cannot be measured is appended as ``(video, reason)``; without, it raises.
    """
    videos = input_folder(videos)
    kind, records = load_labels(labels, videos)
    out = Path(out) if out else default_cache(labels)
    missing = [f"{labels} row {r.row}: no video named {r.name!r} under {videos} (skipped)"
               for r in records if r.video is None]
    done = []
    for r in records:
        if r.video is None:
            continue
        path = out / f"{r.name}{SUFFIX}"
        truth = truth_from_record(kind, r, labels)
        if _cached_truth(path) != truth:
            try:
                cache_example(r.video, truth=truth, out=path, label_words=r.subtitle)
            except (ValueError, RuntimeError, OSError) as err:
                if failures is None:
                    raise
                failures.append((r.video, str(err)))
                continue
            if progress:
                progress(f"measured {r.video.name} ({labels} row {r.row})")
        done.append(path)
    _drop_stale(out, done, labels, progress)
    return out, done, missing


def _drop_stale(out: Path, keep: list[Path], labels: str | Path,
                progress: Callable[[str], None] | None) -> None:
    """Remove the label-file examples in ``out`` that are not in ``keep`` (rows since deleted,
    videos since gone, videos that failed): ``train`` and ``evaluate`` read the whole folder.
    Only examples this module wrote (their truth names the row they came ``from``) are touched."""
    for path in sorted(set(out.glob(f"*{SUFFIX}")) - set(keep)):
        meta = cache_meta(path)
        if meta and isinstance(meta.get("truth"), dict) and "from" in meta["truth"]:
            path.unlink()
            if progress:
                progress(f"removed {path.name}: not a measured row of {labels}")


__all__ = ["CACHE_ROOT", "cache_labelled", "default_cache", "truth_from_record"]
