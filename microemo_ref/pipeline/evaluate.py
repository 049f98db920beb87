"""Score MicroEmo on clips with ground truth: OV emotion sets, per scenario, and clue recall.

For every cached example under the given folders (``microemo-ref cache DIR`` first) the
model answers the EMER question (greedy, so the run is deterministic); the answer's labels
are scored with the OV emotion-set metric (:mod:`microemo_ref.metrics.emotion_sets`) overall
and per scenario, and the explanations of concealed-emotion clips with clue recall of their
micro-expressions (:mod:`microemo_ref.metrics.clues`); every explanation with the MiniLM proxy
similarity to its gold one (:mod:`microemo_ref.metrics.similarity`) and, when one is plugged in,
an LLM judge (:mod:`microemo_ref.metrics.judge`). Every answer is kept in the report, so
failures can be read, not only counted. :func:`score` re-scores saved answers without the model.
"""
from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path

from microemo_ref.metrics.clues import clue_recall, measured_spans, ungrounded_times
from microemo_ref.metrics.emotion_sets import ov_scores
from microemo_ref.metrics.judge import Judge
from microemo_ref.metrics.similarity import explanation_similarity
from microemo_ref.model.microemo import MicroEmo
from microemo_ref.pipeline.dataset import load_example
from microemo_ref.pipeline.emer import parse_labels
from microemo_ref.pipeline.train import find_examples


def micro_cues(truth: dict) -> list[dict]:
    """The micro-expressions of a ground truth, as clue-recall cues (apex time, 0-based utterance)."""
    return [{"apex_s": e["apex_s"], "utterance": e.get("utterance")} for e in truth["events"] if e["kind"] == "micro"]


def answer_all(model: MicroEmo, folders: Sequence[str | Path], *, limit: int | None = None,
               progress: Callable[[str], None] | None = None, max_new_tokens: int = 224) -> list[dict]:
    """The model's answer to every example with ground truth, with what scoring needs."""
    rows = []
    for path in find_examples(tuple(str(f) for f in folders), limit):
        ex = load_example(path)
        if ex.truth is None:
            continue
        answer, _, _ = model.generate(ex.inputs, ex.subtitles, ex.cues, max_new_tokens=max_new_tokens)
        explanation, labels = parse_labels(answer)
        measured = measured_spans(ex.events or [], ex.inputs.utterances)
        rows.append({"name": ex.name, "scenario": ex.truth["scenario"], "gold": ex.truth["labels"],
                     "labels": labels, "explanation": explanation, "gold_explanation": ex.truth["explanation"],
                     "cues": micro_cues(ex.truth), "ungrounded": ungrounded_times(explanation, measured)})
        if progress:
            progress(f"{ex.name}: {labels} (gold {ex.truth['labels']})")
    if not rows:
        raise ValueError(f"no examples with ground truth under {', '.join(map(str, folders))}")
    return rows


def _mean(values: Sequence[float | None]) -> float | None:
    real = [v for v in values if v is not None]
    return round(sum(real) / len(real), 4) if real else None


def score(rows: list[dict], judge: Judge | None = None, similarity: bool = True) -> dict:
    """Scores of answered rows (see :func:`answer_all`): OV sets overall and per scenario, clue
    recall, grounding, the MiniLM proxy similarity and, if one is plugged in, the LLM judge."""
    judge = judge or Judge()
    per_scenario = defaultdict(list)
    for r in rows:
        per_scenario[r["scenario"]].append(r)
        verdict = judge(r["gold_explanation"], r["gold"], r["explanation"], r["labels"], where=r["name"])
        r["judge"] = {"clue_overlap": verdict.clue_overlap, "label_overlap": verdict.label_overlap}
    if similarity:
        for r, sim in zip(rows, explanation_similarity([r["explanation"] for r in rows],
                                                       [r["gold_explanation"] for r in rows])):
            r["similarity"] = sim
    concealed = [r for r in rows if r["cues"]]
    return {
        "clips": len(rows),
        "ov": ov_scores([r["gold"] for r in rows], [r["labels"] for r in rows]).to_json(),
        "per_scenario": {s: ov_scores([r["gold"] for r in rs], [r["labels"] for r in rs]).to_json()
                         for s, rs in sorted(per_scenario.items())},
        "clue_recall": (round(clue_recall([r["explanation"] for r in concealed], [r["cues"] for r in concealed]), 4)
                        if concealed else None),
        "grounded": round(sum(not r["ungrounded"] for r in rows) / len(rows), 4),  # answers citing only measured times
        "similarity": ({"proxy": "MiniLM-L6 cosine to the gold explanation",
                        "mean": _mean([r["similarity"] for r in rows]),
                        "per_scenario": {s: _mean([r["similarity"] for r in rs]) for s, rs in sorted(per_scenario.items())}}
                       if similarity else None),
        "judge": {**judge.describe(), "clue_overlap": _mean([r["judge"]["clue_overlap"] for r in rows]),
                  "label_overlap": _mean([r["judge"]["label_overlap"] for r in rows])},
        "answers": rows,
    }


def evaluate(model: MicroEmo, folders: Sequence[str | Path], *, limit: int | None = None,
             progress: Callable[[str], None] | None = None, judge: Judge | None = None,
             similarity: bool = True) -> dict:
    """Answer every example and score the answers (see the module docstring)."""
    began = time.perf_counter()
    rows = answer_all(model, folders, limit=limit, progress=progress)
    seconds = round(time.perf_counter() - began, 1)
    return {**score(rows, judge, similarity), "seconds": seconds}


__all__ = ["answer_all", "evaluate", "micro_cues", "score"]
