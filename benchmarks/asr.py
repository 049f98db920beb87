"""Speech recognition on the bundled clips: word error rate and time, int8 against float32.

For every bundled clip with a subtitle file (the eight generated dialogues, whose voices are
eSpeak's, and the real statement) and the five bundled recordings of real read speech with
their transcripts (LibriVox), the recogniser of :mod:`microemo_ref.audio.asr` reads the
whole audio track and its words are scored against the subtitles' or the transcript's words
(:mod:`microemo_ref.metrics.wer`). Both weight types run in the same process, after one
warm-up call each; time is CPU time (all threads) and wall time per second of audio, and the
ratio float32 / int8. Usage:
    python benchmarks/asr.py [--json]
"""
from __future__ import annotations

import argparse
import json
import time

from microemo_ref.audio.asr import load_recogniser, recognise
from microemo_ref.config import DATA_SAMPLES
from microemo_ref.io.subtitles import load_subtitles
from microemo_ref.io.video import read_audio
from microemo_ref.metrics.wer import word_errors


def clips() -> list[tuple[str, object, str]]:
    """(name, audio, reference words) of each bundled clip that has subtitles, and of each
    bundled recording of real read speech with its transcript (``real/librivox``)."""
    out = []
    for srt in sorted(DATA_SAMPLES.rglob("*.srt")):
        video = srt.with_suffix(".mp4")
        reference = " ".join(u.text for u in load_subtitles(srt))
        out.append((str(video.relative_to(DATA_SAMPLES)), read_audio(video), reference))
    for wav in sorted((DATA_SAMPLES / "real" / "librivox").glob("*.wav")):
        out.append((str(wav.relative_to(DATA_SAMPLES)), read_audio(wav), wav.with_suffix(".txt").read_text()))
    return out


def pooled(rows: list[dict]) -> float:
    """(S + D + I) / N over ``rows``."""
    return round(sum(r["S"] + r["D"] + r["I"] for r in rows) / sum(r["N"] for r in rows), 4)


def run(compute_type: str, data: list) -> dict:
    load_recogniser(compute_type)
    recognise(data[0][1], compute_type=compute_type)  # warm-up
    rows, cpu, wall, seconds = [], 0.0, 0.0, 0.0
    for name, audio, reference in data:
        c, w = time.process_time(), time.perf_counter()
        heard = recognise(audio, compute_type=compute_type)
        cpu += time.process_time() - c
        wall += time.perf_counter() - w
        seconds += heard.seconds
        e = word_errors(reference, heard.text)
        rows.append({"clip": name, "wer": round(e.wer, 3), "S": e.substitutions, "D": e.deletions,
                     "I": e.insertions, "N": e.reference_words, "heard": heard.text})
    real = [r for r in rows if r["clip"].startswith("real/")]
    return {"clips": rows, "wer_pooled": pooled(rows), "wer_pooled_real": pooled(real),
            "wer_pooled_generated": pooled([r for r in rows if r not in real]), "audio_s": round(seconds, 1),
            "cpu_s_per_audio_s": round(cpu / seconds, 4), "wall_s_per_audio_s": round(wall / seconds, 4)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    data = clips()
    report = {ct: run(ct, data) for ct in ("int8", "float32")}
    report["ratio_float32_over_int8"] = {
        k: round(report["float32"][k] / report["int8"][k], 2) for k in ("cpu_s_per_audio_s", "wall_s_per_audio_s")}
    if args.json:
        print(json.dumps(report, indent=1))
        return
    for ct in ("int8", "float32"):
        r = report[ct]
        print(f"{ct}: pooled WER {r['wer_pooled']:.3f} over {len(r['clips'])} clips (real speech {r['wer_pooled_real']:.3f}, "
              f"generated {r['wer_pooled_generated']:.3f}), {r['audio_s']} s of audio; "
              f"{r['cpu_s_per_audio_s']:.3f} CPU s and {r['wall_s_per_audio_s']:.3f} wall s per second of audio")
        for row in r["clips"]:
            print(f"  {row['clip']:42s} WER {row['wer']:.3f} (S {row['S']} D {row['D']} I {row['I']} of {row['N']})")
    print("float32 / int8:", report["ratio_float32_over_int8"])


if __name__ == "__main__":
    main()
