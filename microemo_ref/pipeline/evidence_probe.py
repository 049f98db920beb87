"""Is the hidden emotion in the measured evidence? A linear probe on concealed clips.

Error analysis, our own. When the model names the wrong hidden emotion on a
concealed-emotion clip, the fault lies in one of three places:

1. the **spotter** missed the micro-expression (no micro event within 0.3 s of the true apex), so
   nothing downstream could know;
2. the **measurement** does not tell the emotions apart (the region displacements of a sad
   flash look like those of a fearful one);
3. the **model** (bridge, LoRA, LLM) had the difference in front of it and did not use it.

The probe separates 2 from 3. For every concealed clip, take the spotted micro event nearest
the true apex and its 6 regions x (distance change, outward, downward) displacement, exactly
what the cue line is written from (:func:`~microemo_ref.pipeline.cues.event_displacement`),
fit a ridge classifier (:func:`~microemo_ref.model.probe.ridge_classifier`) on the training
clips and read the emotion of held-out clips. If a straight line reads it, the evidence holds
it, and a model that misses it has a learning problem, not a measuring one.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from microemo_ref.model.probe import RidgeClassifier, fit_ridge_classifier, ridge_classifier
from microemo_ref.pipeline.cues import event_displacement
from microemo_ref.pipeline.dataset import event_from_json, find_examples, load_example
from microemo_ref.pipeline.evaluate import nearest_micro

def micro_event_rows(paths: Sequence[Path]) -> list[dict]:
    """One row per concealed clip among the example files ``paths``: its name, hidden emotion,
    whether the spotter found the micro-expression (:func:`~microemo_ref.pipeline.evaluate.nearest_micro`)
    and, if so, the (regions x 3) displacement flattened."""
    rows = []
    for path in paths:
        ex = load_example(path)
        if ex.truth is None or ex.truth["scenario"] != "concealed" or ex.inputs.dynamics is None:
            continue
        fps = float(ex.truth["fps"])
        for true in (e for e in ex.truth["events"] if e["kind"] == "micro"):
            found = nearest_micro(true["apex"] / fps, ex.events)
            vector = (None if found is None else
                      event_displacement(event_from_json(found), ex.inputs.dynamics.numpy(), fps).ravel())
            rows.append({"name": ex.name, "emotion": true["emotion"], "spotted": vector is not None, "vector": vector})
    return rows


def fit_readout(paths: Sequence[Path]) -> RidgeClassifier:
    """The probe fitted on every spotted concealed micro event among the example files ``paths``:
    the readout a model with ``MicroEmoConfig.readout`` writes into its cue line."""
    rows = [r for r in micro_event_rows(paths) if r["spotted"]]
    if not rows:
        raise ValueError(f"no spotted concealed micro-expressions among {len(paths)} examples: no readout to fit")
    return fit_ridge_classifier(np.stack([r["vector"] for r in rows]), [r["emotion"] for r in rows])


def probe_hidden_emotion(train: Sequence[str | Path], test: Sequence[str | Path]) -> dict:
    """Fit the probe on the spotted micro events under ``train``, score it under ``test``.

    ``accuracy_spotted`` counts the held-out clips whose micro-expression was spotted;
    ``accuracy`` counts every held-out concealed clip, a missed one as wrong (the ceiling a
    model reading this evidence could reach).
    """
    fit_rows = [r for r in micro_event_rows(find_examples(tuple(map(str, train)))) if r["spotted"]]
    test_rows = micro_event_rows(find_examples(tuple(map(str, test))))
    if not fit_rows:
        raise ValueError(f"no spotted concealed micro-expressions under {', '.join(map(str, train))}")
    if not test_rows:
        raise ValueError(f"no concealed clips under {', '.join(map(str, test))}")
    seen = [r for r in test_rows if r["spotted"]]
    x = np.stack([r["vector"] for r in fit_rows + seen])                       # (N, regions * 3)
    result = ridge_classifier(x, [r["emotion"] for r in fit_rows + seen],
                              train=np.arange(len(fit_rows)), test=np.arange(len(fit_rows), len(x)))
    guess = iter(result.predicted)
    predictions = [{"name": r["name"], "emotion": r["emotion"], "probe": next(guess) if r["spotted"] else None}
                   for r in test_rows]
    right = sum(p["probe"] == p["emotion"] for p in predictions)
    return {"train_events": len(fit_rows), "train_emotions": dict(sorted(Counter(r["emotion"] for r in fit_rows).items())),
            "test_clips": len(test_rows), "spotted": len(seen), "ridge": result.ridge,
            "accuracy_spotted": round(result.accuracy, 4) if seen else None, "accuracy": round(right / len(test_rows), 4),
            "chance": round(result.chance, 4) if seen else None, "predictions": predictions}


__all__ = ["fit_readout", "micro_event_rows", "probe_hidden_emotion"]
