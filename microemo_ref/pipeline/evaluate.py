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

import re
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path

from microemo_ref.metrics.clues import clue_recall, measured_spans, ungrounded_times, unsupported_flashes
from microemo_ref.metrics.emotion_sets import heads, ov_scores
from microemo_ref.metrics.grounding import check_explanation, guard
from microemo_ref.metrics.judge import Judge
from microemo_ref.metrics.moods import mood_hits, mood_phrases, mood_recall
from microemo_ref.metrics.similarity import explanation_similarity
from microemo_ref.model.microemo import MicroEmo
from microemo_ref.pipeline.dataset import find_examples, load_example
from microemo_ref.pipeline.emer import parse_labels


def micro_cues(truth: dict) -> list[dict]:
    """The micro-expressions of a ground truth, as clue-recall cues (apex time, 0-based utterance)."""
    return [{"apex_s": e["apex_s"], "utterance": e.get("utterance")} for e in truth.get("events", []) if e["kind"] == "micro"]


def answer_all(model: MicroEmo, folders: Sequence[str | Path], *, limit: int | None = None,
               progress: Callable[[str], None] | None = None, max_new_tokens: int = 224,
               scenarios: Sequence[str] | None = None) -> list[dict]:
    """The model's answer to every example with ground truth (of the given scenarios, if any),
    with what scoring needs."""
    rows = []
    for path in find_examples(tuple(str(f) for f in folders), limit):
        ex = load_example(path, model.cue_readout())
        if ex.truth is None or (scenarios and ex.truth["scenario"] not in scenarios):
            continue
        answer, _, _ = model.generate(ex.inputs, ex.subtitles, ex.cues, max_new_tokens=max_new_tokens)
        explanation, labels = parse_labels(answer)
        measured = measured_spans(ex.events or [], ex.inputs.utterances)
        cues = micro_cues(ex.truth)
        micro_apexes = [e["apex_s"] for e in ex.events or [] if e["type"] == "micro"]  # flash_scores reads them
        evidence = {"events": [{k: e[k] for k in ("type", "onset_s", "apex_s", "offset_s")} for e in ex.events or []],
                    "utterances": [list(u) for u in ex.utterances]}  # grounding_scores reads them
        rows.append({"name": ex.name, "scenario": ex.truth["scenario"], "gold": ex.truth["labels"],
                     "labels": labels, "explanation": explanation, "gold_explanation": ex.truth["explanation"],
                     "cues": cues, "ungrounded": ungrounded_times(explanation, measured),
                     "surface": sorted({e["emotion"] for e in ex.truth.get("events", []) if e["kind"] == "macro"}),
                     "spotted": [spotted(c["apex_s"], ex.events) for c in cues], "micro_apexes": micro_apexes,
                     "evidence": evidence, "moods": [u["voice_emotion"] for u in ex.truth.get("utterances", [])]})
        if progress:
            progress(f"{ex.name}: {labels} (gold {ex.truth['labels']})")
    if not rows:
        only = f" of scenario {', '.join(scenarios)}" if scenarios else ""
        raise ValueError(f"no examples with ground truth{only} under {', '.join(map(str, folders))}")
    return rows


def nearest_micro(apex_s: float, events: list[dict] | None, tolerance_s: float = 0.3) -> dict | None:
    """The spotted micro event (``to_json`` form) whose apex is nearest ``apex_s``, if within ``tolerance_s``."""
    near = [e for e in events or [] if e["type"] == "micro" and abs(e["apex_s"] - apex_s) <= tolerance_s]
    return min(near, key=lambda e: abs(e["apex_s"] - apex_s)) if near else None


def spotted(apex_s: float, events: list[dict] | None, tolerance_s: float = 0.3) -> bool:
    """Did the local branch spot a micro event with its apex within ``tolerance_s`` of ``apex_s``?"""
    return nearest_micro(apex_s, events, tolerance_s) is not None


def failure_kind(row: dict) -> str:
    """Why an answer's labels are wrong (or "right"): the error analysis of notebook 10.

    right: the predicted heads equal the gold heads; partly right: they share one. no labels: none could be parsed (the answer
    was cut off, or the model never wrote the line). For concealed clips, missed by the spotter:
    the local branch found no micro event at the true apex, so the LLM had nothing to go on;
    surface emotion: every predicted head is one the face openly showed. Otherwise: wrong emotion.
    """
    gold, _ = heads(row["gold"])
    predicted, _ = heads(row["labels"])
    if predicted == gold:
        return "right"
    if predicted & gold:
        return "partly right"
    if not row["labels"]:
        return "no labels"
    if row["cues"] and not all(row["spotted"]):
        return "missed by the spotter"
    surface, _ = heads(row["surface"])
    if row["scenario"] == "concealed" and predicted and predicted <= surface:
        return "surface emotion"
    return "wrong emotion"


def error_summary(rows: list[dict]) -> dict[str, dict[str, int]]:
    """Scenario -> failure kind -> number of clips (see :func:`failure_kind`)."""
    out: dict[str, dict[str, int]] = {}
    for r in rows:
        kinds = out.setdefault(r["scenario"], {})
        kind = failure_kind(r)
        kinds[kind] = kinds.get(kind, 0) + 1
    return {s: dict(sorted(k.items())) for s, k in sorted(out.items())}


def confusion(rows: list[dict], scenario: str | None = None) -> dict[str, dict[str, int]]:
    """Gold head -> predicted heads -> count (a clip with two predicted heads counts in both)."""
    out: dict[str, dict[str, int]] = {}
    for r in rows:
        if scenario and r["scenario"] != scenario:
            continue
        gold = "+".join(sorted(heads(r["gold"])[0])) or "?"
        for p in sorted(heads(r["labels"])[0]) or ["(none)"]:
            out.setdefault(gold, {}).setdefault(p, 0)
            out[gold][p] += 1
    return out


def _mean(values: Sequence[float | None]) -> float | None:
    real = [v for v in values if v is not None]
    return round(sum(real) / len(real), 4) if real else None


def wheel_scorer(grouping: dict | None) -> Callable[[list, list], dict]:
    """OV scoring of (gold sets, predicted sets) as JSON: by our lexicon, or, given a grouping
    spec ``{"wheels": [FILE, ...], "synonyms": FILE | None, "formats": FILE | None, "level": "level1"}``,
    MERTools' way (:mod:`microemo_ref.metrics.grouping`): the mean over the wheels, samples whose
    gold maps to nothing left out."""
    if not grouping:
        return lambda gold, predicted: ov_scores(gold, predicted).to_json()
    wheels = _wheels(tuple(grouping["wheels"]), grouping.get("level", "level1"), grouping.get("synonyms"),
                     grouping.get("formats"))
    return lambda gold, predicted: ov_scores(gold, predicted, groupings=wheels, skip_unmapped_gold=True).to_json()


@lru_cache(maxsize=4)
def _wheels(paths: tuple[str, ...], level: str, synonyms: str | None, formats: str | None) -> list:
    """The wheel files read once per process (a run checks them first, then scores with them)."""
    from microemo_ref.metrics.grouping import load_groupings

    return load_groupings(list(paths), level=level, synonyms=synonyms, formats=formats)


def label_scores(rows: list[dict], grouping: dict | None = None) -> dict:
    """The parts of a report that depend on the predicted labels only: OV sets overall and per
    scenario (by ``grouping``, see :func:`wheel_scorer`), and the failure kinds (by our lexicon).
    Cheap; no model, no MiniLM. Rows without gold labels (an EMER v2 label file has explanations
    only) are left out; with none left, "ov" is None."""
    sets = wheel_scorer(grouping)
    rows = [r for r in rows if r["gold"]]
    per_scenario = defaultdict(list)
    for r in rows:
        per_scenario[r["scenario"]].append(r)
    return {"ov": sets([r["gold"] for r in rows], [r["labels"] for r in rows]) if rows else None,
            "per_scenario": {s: sets([r["gold"] for r in rs], [r["labels"] for r in rs])
                             for s, rs in sorted(per_scenario.items())},
            "grouping": grouping or None, "errors": error_summary(rows)}


def clue_score(rows: list[dict], key: str = "explanation") -> float | None:
    """Clue recall over the rows with micro-expression cues (None when no row has one), of the
    explanations under ``key`` (``"guarded"``: after the grounding guard)."""
    cued = [r for r in rows if r["cues"]]
    return round(clue_recall([r[key] for r in cued], [r["cues"] for r in cued]), 4) if cued else None


def clue_scores(rows: list[dict]) -> dict:
    """Clue recall over every row with cues, and per scenario (the target is on concealed clips;
    docs/results.md)."""
    scenarios = sorted({r["scenario"] for r in rows if r["cues"]})
    return {"clue_recall": clue_score(rows),
            "clue_recall_per_scenario": {s: clue_score([r for r in rows if r["scenario"] == s]) for s in scenarios}}


def flash_scores(rows: list[dict]) -> dict:
    """Share of answers whose every flash sentence has a spotted micro event behind it
    (:func:`~microemo_ref.metrics.clues.unsupported_flashes`); None for rows saved before the
    spotted apexes were kept."""
    if not all("micro_apexes" in r for r in rows):
        return {"flashes_grounded": None}
    for r in rows:
        r["unsupported_flashes"] = unsupported_flashes(r["explanation"], r["micro_apexes"])
    return {"flashes_grounded": round(sum(not r["unsupported_flashes"] for r in rows) / len(rows), 4)}


def grounding_scores(rows: list[dict]) -> dict:
    """Share of answers of which every sentence is backed by the clip's evidence: times, flashes
    and speech (:func:`~microemo_ref.metrics.grounding.check_explanation`, the check that
    ``run_emer``'s guard applies); None for rows saved before the evidence was kept."""
    if not rows or not all("evidence" in r for r in rows):
        return {"claims_grounded": None, "clue_recall_guarded": None}
    for r in rows:
        ev = r["evidence"]
        r["unsupported"] = check_explanation(r["explanation"], ev["events"], [(a, b) for a, b, _ in ev["utterances"]],
                                             [t for _, _, t in ev["utterances"]])
        r["guarded"] = guard(r["explanation"], r["unsupported"])
    concealed = [r for r in rows if r["scenario"] == "concealed"]
    # What run_emer returns is the guarded text: a dropped sentence may have carried the clue.
    return {"claims_grounded": round(sum(not r["unsupported"] for r in rows) / len(rows), 4),
            "clue_recall_guarded": clue_score(concealed, "guarded")}


def _cue_phrases() -> dict[str, list[str]]:
    """The generator's facial and vocal cue words per emotion, for :mod:`~microemo_ref.metrics.moods`."""
    from microemo_ref.samples.expressions import CUE_WORDS
    from microemo_ref.samples.scenarios import VOICE_WORDS

    words = {head: [re.sub(r"^an? ", "", cue.split(" (")[0])] for head, cue in CUE_WORDS.items()}
    for head, voice in VOICE_WORDS.items():
        words.setdefault(head, []).append(voice)
    return words


def mood_scores(rows: list[dict]) -> dict:
    """Per-utterance mood recall on shift clips (:mod:`~microemo_ref.metrics.moods`): the share of their
    utterances whose mood the explanation names in a sentence about that utterance; None without
    shift clips (or for rows saved before the moods were kept)."""
    shift = [r for r in rows if r["scenario"] == "shift" and "moods" in r]
    if not shift:
        return {"utterance_mood": None}
    phrases = mood_phrases(_cue_phrases())
    for r in shift:
        r["mood_hits"] = mood_hits(r["explanation"], r["moods"], phrases)
    return {"utterance_mood": round(mood_recall([r["explanation"] for r in shift], [r["moods"] for r in shift],
                                                phrases), 4)}


def rescore(report: dict) -> dict:
    """A saved report with its label scores, clue recall, flash and grounding checks recomputed from its
    answers by the current lexicon and rules (after either changed). Everything else
    (similarity, judge, timings) is kept."""
    return {**report, **label_scores(report["answers"], report.get("grouping")), **clue_scores(report["answers"]),
            **flash_scores(report["answers"]), **grounding_scores(report["answers"]), **mood_scores(report["answers"])}


def score(rows: list[dict], judge: Judge | None = None, similarity: bool = True,
          grouping: dict | None = None) -> dict:
    """Scores of answered rows (see :func:`answer_all`): OV sets overall and per scenario (by
    ``grouping``, see :func:`wheel_scorer`), clue recall, grounding, the MiniLM proxy similarity
    and, if one is plugged in, the LLM judge."""
    judge = judge or Judge()
    per_scenario = defaultdict(list)
    explained = [r for r in rows if r["gold_explanation"]]  # a MER OV label file has labels only
    for r in rows:
        per_scenario[r["scenario"]].append(r)
        r["judge"], r["similarity"] = {"clue_overlap": None, "label_overlap": None}, None
    for r in explained:
        verdict = judge(r["gold_explanation"], r["gold"], r["explanation"], r["labels"], where=r["name"])
        r["judge"] = {"clue_overlap": verdict.clue_overlap, "label_overlap": verdict.label_overlap}
    if similarity:
        for r, sim in zip(explained, explanation_similarity([r["explanation"] for r in explained],
                                                            [r["gold_explanation"] for r in explained])):
            r["similarity"] = sim
    labels = label_scores(rows, grouping)
    return {
        "clips": len(rows),
        "ov": labels["ov"],
        "per_scenario": labels["per_scenario"],
        "grouping": labels["grouping"],
        **clue_scores(rows),
        "grounded": round(sum(not r["ungrounded"] for r in rows) / len(rows), 4),  # answers citing only measured times
        **flash_scores(rows),
        **grounding_scores(rows),
        **mood_scores(rows),
        "similarity": ({"proxy": "MiniLM-L6 cosine to the gold explanation",
                        "mean": _mean([r["similarity"] for r in rows]),
                        "per_scenario": {s: _mean([r["similarity"] for r in rs]) for s, rs in sorted(per_scenario.items())}}
                       if similarity else None),
        "errors": labels["errors"],
        "judge": {**judge.describe(), "clue_overlap": _mean([r["judge"]["clue_overlap"] for r in rows]),
                  "label_overlap": _mean([r["judge"]["label_overlap"] for r in rows])},
        "answers": rows,
    }


def evaluate(model: MicroEmo, folders: Sequence[str | Path], *, limit: int | None = None,
             progress: Callable[[str], None] | None = None, judge: Judge | None = None,
             similarity: bool = True, scenarios: Sequence[str] | None = None, grouping: dict | None = None) -> dict:
    """Answer every example and score the answers (see the module docstring)."""
    wheel_scorer(grouping)  # a bad grouping file fails before the model answers
    began = time.perf_counter()
    rows = answer_all(model, folders, limit=limit, progress=progress, scenarios=scenarios)
    seconds = round(time.perf_counter() - began, 1)
    return {**score(rows, judge, similarity, grouping), "seconds": seconds}


__all__ = ["answer_all", "clue_score", "clue_scores", "confusion", "error_summary", "evaluate", "failure_kind",
           "flash_scores", "grounding_scores", "label_scores", "micro_cues", "mood_scores", "nearest_micro", "rescore", "score", "spotted",
           "wheel_scorer"]
