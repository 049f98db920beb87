"""Wall time of one whole ``microemo-ref emer`` command on a 2-s real clip, per decoder.

The first ``--seconds`` of the bundled Pexels clip (a real face and voice, no subtitles) are
written to a temporary file, and ``microemo-ref emer CLIP --json`` runs on it as a new process,
``--runs`` times per decoder, after one warm-up run that writes whatever is cached once (the
converted LLM, the merged GGUF). Printed per decoder: the median wall time of the command
(imports, model load, measuring, encoding, decoding, output), the stages the command itself
reports, and the ratio of the two decoders' wall times. A third row, ``llama.cpp, whole LLM``,
runs the llama.cpp decoder with ``MICROEMO_WHOLE_LLM=1``: the float32 LLM loaded into
``transformers`` although only its embedding table builds the prompt, which is what the
prompt-only load (:func:`microemo_ref.pipeline.emer.load_for_answers`) saves. Usage:
    python benchmarks/emer_command.py [--seconds 2.0] [--runs 3]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from microemo_ref.config import DATA_SAMPLES
from microemo_ref.io.clip import load_clip
from microemo_ref.io.video import write_video


def cut(seconds: float, folder: Path) -> Path:
    clip = load_clip(DATA_SAMPLES / "real" / "pexels_wolfgang_langer.mp4", subtitles=None,
                     max_frames=int(round(seconds * 25)))
    return write_video(folder / "first_seconds.mp4", clip.frames, clip.fps, clip.audio, clip.sample_rate)


ROWS = {"transformers": ("transformers", {}), "llama.cpp": ("llama.cpp", {}),
        "llama.cpp, whole LLM": ("llama.cpp", {"MICROEMO_WHOLE_LLM": "1"})}


def run(video: Path, row: str) -> tuple[float, dict]:
    decoder, env = ROWS[row]
    command = [sys.executable, "-m", "microemo_ref", "emer", str(video), "--decoder", decoder, "--json"]
    t = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1", **env})
    wall = time.perf_counter() - t
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr}")
    return wall, json.loads(done.stdout)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    report = {}
    with tempfile.TemporaryDirectory() as tmp:
        video = cut(args.seconds, Path(tmp))
        for row in ROWS:
            run(video, row)  # warm-up: caches written once
            walls, stages = [], []
            for _ in range(args.runs):
                wall, result = run(video, row)
                walls.append(wall)
                stages.append(result["seconds"])
            report[row] = {"wall_s": round(statistics.median(walls), 2), "runs": [round(w, 2) for w in walls],
                           "stages_s": {k: round(statistics.median(s[k] for s in stages), 2) for k in stages[0]},
                           "answer_chars": len(result["raw_explanation"]), "decoder": result["decoder"]}
    report["clip_s"] = args.seconds
    report["wall_ratio"] = round(report["transformers"]["wall_s"] / report["llama.cpp"]["wall_s"], 2)
    report["whole_llm_ratio"] = round(report["llama.cpp, whole LLM"]["wall_s"] / report["llama.cpp"]["wall_s"], 2)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
