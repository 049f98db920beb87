"""Prosody on real, labelled voices: do they move the way the generator's voices are told to?

The generated clips' voices are eSpeak NG's, spoken with the settings of
``samples.speech.PROSODY_BY_EMOTION``. In those settings anger, joy, fear and surprise are
higher than neutral, and sadness, disgust and contempt lower; they are louder or softer by
``volume``. The model learns its voice cues from those voices alone.

Here the bundled EmoDB recordings (``data_samples/real/emodb``: one real speaker, one
recording per emotion, German) are measured with the same features
(``audio.features.span_summary`` over the whole recording). Each one is set against the
speaker's own neutral recording, and the direction of each change is compared with the
direction the generator uses for that emotion. Boredom has no generated counterpart. The
speech recogniser runs too: every recording should come out without words (German).

Usage: ``python benchmarks/real_voices.py [--json]``
"""
from __future__ import annotations

import argparse
import csv
import json

from microemo_ref.audio.asr import recognise
from microemo_ref.audio.features import audio_features, span_summary
from microemo_ref.config import DATA_SAMPLES
from microemo_ref.io.video import read_audio
from microemo_ref.samples.speech import PROSODY_BY_EMOTION

#: EmoDB's emotion names -> the generator's.
TO_OURS = {"happiness": "happy", "anger": "angry", "sadness": "sad", "fear": "fear", "disgust": "disgust",
           "neutral": "neutral"}


def sign(x: float) -> int:
    return (x > 0) - (x < 0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    folder = DATA_SAMPLES / "real" / "emodb"
    with open(folder / "labels.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    measured = {}
    for r in rows:
        audio = read_audio(folder / r["file"])
        heard = recognise(audio)
        measured[r["emotion"]] = {**{k: round(v, 2) for k, v in span_summary(audio_features(audio), 0.0, 1e9).items()},
                                  "file": r["file"], "words": heard.text, "left_out": len(heard.dropped)}
    base, ours = measured["neutral"], PROSODY_BY_EMOTION["neutral"]
    table = []
    for emotion, m in measured.items():
        if emotion == "neutral":
            continue
        row = {"emotion": emotion, "pitch_st": round(m["f0_st"] - base["f0_st"], 2),
               "energy_db": round(m["energy_db"] - base["energy_db"], 2)}
        target = PROSODY_BY_EMOTION.get(TO_OURS.get(emotion, ""))
        if target is not None:
            row["generator_pitch"] = sign(target.pitch - ours.pitch)
            row["generator_volume"] = sign(target.volume - ours.volume)
            row["pitch_agrees"] = sign(row["pitch_st"]) == row["generator_pitch"]
            row["energy_agrees"] = sign(row["energy_db"]) == row["generator_volume"] or row["generator_volume"] == 0
        table.append(row)
    scored = [r for r in table if "pitch_agrees" in r]
    report = {"recordings": measured, "against_neutral": table,
              "pitch_agrees": f"{sum(r['pitch_agrees'] for r in scored)}/{len(scored)}",
              "energy_agrees": f"{sum(r['energy_agrees'] for r in scored)}/{len(scored)}",
              "recognised_words": sum(bool(m["words"]) for m in measured.values())}
    if args.json:
        print(json.dumps(report, indent=1, ensure_ascii=False))
        return
    for r in table:
        g = (f"generator: pitch {r['generator_pitch']:+d}, volume {r['generator_volume']:+d}"
             if "generator_pitch" in r else "no generated counterpart")
        print(f"{r['emotion']:10s} pitch {r['pitch_st']:+6.2f} st, energy {r['energy_db']:+6.2f} dB against neutral ({g})")
    print(f"pitch direction agrees {report['pitch_agrees']}, energy direction {report['energy_agrees']}; "
          f"recordings with recognised words: {report['recognised_words']} of {len(measured)}")


if __name__ == "__main__":
    main()
