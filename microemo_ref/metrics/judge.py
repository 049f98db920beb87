"""A pluggable LLM judge for EMER answers: clue overlap and label overlap, scored 0-10.

EMER (Lian et al., 2023) evaluates explanations with a strong LLM (ChatGPT) that compares a
generated answer with the gold one. This reference cannot ship such a model, so the judge is
a plug with three sockets:

* ``http``: any OpenAI-compatible chat endpoint (``POST {base}/chat/completions``; a local
  llama.cpp or vLLM server, or a hosted one). The key, if any, comes from ``$JUDGE_API_KEY``.
  Every verdict is appended to a replay cache (JSON lines).
* ``replay``: read verdicts back from such a cache; a missing entry is an error, not a guess.
* ``unavailable``: the default; scores are ``None`` and the report says why.

The prompt is ours and versioned (:data:`PROMPT_VERSION`): a cache entry is keyed by the
SHA-256 of version + prompt, so changing the prompt never replays stale verdicts. Temperature
0 for determinism. The judge's answer must be a JSON object
``{"clue_overlap": 0-10, "label_overlap": 0-10}``; anything else is an error naming the clip.
"""
from __future__ import annotations

import hashlib
import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

PROMPT_VERSION = "emer-judge-v1"

SYSTEM = ("You grade explanations of a person's emotional state in a video clip. "
          "Reply with one JSON object and nothing else.")

TEMPLATE = """Reference explanation (correct):
{gold}
Reference emotions: {gold_labels}

Candidate explanation:
{generated}
Candidate emotions: {labels}

Score two things from 0 to 10.
clue_overlap: how many of the reference's cues (facial movements, voice, words, with their times and utterances) the candidate also names correctly; 10 = all of them, 0 = none or only wrong ones.
label_overlap: how well the candidate's emotions match the reference's; 10 = the same emotional state, 0 = unrelated or opposite.
Reply as {{"clue_overlap": <0-10>, "label_overlap": <0-10>}}."""


@dataclass(frozen=True)
class Verdict:
    clue_overlap: float | None
    label_overlap: float | None


def judge_prompt(gold: str, gold_labels: list[str], generated: str, labels: list[str]) -> str:
    return TEMPLATE.format(gold=gold.strip(), gold_labels=", ".join(gold_labels), generated=generated.strip(),
                           labels=", ".join(labels) or "(none)")


def prompt_key(prompt: str) -> str:
    return hashlib.sha256(f"{PROMPT_VERSION}\n{SYSTEM}\n{prompt}".encode()).hexdigest()


def parse_verdict(reply: str, where: str = "judge") -> Verdict:
    """The two scores from the judge's reply (the first {...} in it), checked to lie in 0-10."""
    start, end = reply.find("{"), reply.rfind("}")
    try:
        obj = json.loads(reply[start:end + 1]) if start >= 0 else None
        scores = [float(obj[k]) for k in ("clue_overlap", "label_overlap")]
    except (ValueError, TypeError, KeyError) as err:
        raise ValueError(f"{where}: the judge's reply is not {{\"clue_overlap\": n, \"label_overlap\": n}}: "
                         f"{reply[:200]!r}") from err
    if not all(0 <= s <= 10 for s in scores):
        raise ValueError(f"{where}: judge scores {scores} outside 0-10")
    return Verdict(*scores)


class Judge:
    """Base: ``unavailable``. Subclasses return a :class:`Verdict` per answer."""

    name = "unavailable"
    reason = "no judge configured (--judge URL or replay:FILE)"

    def __call__(self, gold: str, gold_labels: list[str], generated: str, labels: list[str],
                 where: str = "") -> Verdict:
        return Verdict(None, None)

    def describe(self) -> dict:
        return {"judge": self.name, "prompt_version": PROMPT_VERSION,
                **({"reason": self.reason} if self.name == "unavailable" else {})}


def read_cache(cache: Path) -> dict[str, str]:
    """The replies in a judge cache (JSON lines with ``key`` and ``reply``), by key."""
    replies = {}
    for n, line in enumerate(cache.read_text().splitlines(), 1):
        if line.strip():
            try:
                row = json.loads(line)
                replies[row["key"]] = row["reply"]
            except (ValueError, KeyError) as err:
                raise ValueError(f"{cache}:{n}: not a judge cache line ({err})") from err
    return replies


class ReplayJudge(Judge):
    """Verdicts read from a cache written by :class:`HttpJudge` (JSON lines: key, reply)."""

    name = "replay"

    def __init__(self, cache: str | Path) -> None:
        self.cache = Path(cache)
        if not self.cache.is_file():
            raise FileNotFoundError(f"{self.cache}: no judge cache to replay")
        self.replies = read_cache(self.cache)

    def reply(self, prompt: str, where: str) -> str:
        key = prompt_key(prompt)
        if key not in self.replies:
            raise KeyError(f"{self.cache}: no cached verdict for {where or 'this answer'} "
                           f"(prompt {PROMPT_VERSION}, key {key[:12]})")
        return self.replies[key]

    def __call__(self, gold, gold_labels, generated, labels, where=""):
        return parse_verdict(self.reply(judge_prompt(gold, gold_labels, generated, labels), where), where)


class HttpJudge(ReplayJudge):
    """An OpenAI-compatible chat endpoint; verdicts are cached (and replayed when cached)."""

    name = "http"

    def __init__(self, base_url: str, model: str = "judge", cache: str | Path = ".cache/judge.jsonl",
                 timeout: float = 60.0) -> None:
        self.base_url, self.model, self.timeout = base_url.rstrip("/"), model, timeout
        self.cache = Path(cache)
        self.replies = read_cache(self.cache) if self.cache.is_file() else {}

    def reply(self, prompt: str, where: str) -> str:
        key = prompt_key(prompt)
        if key in self.replies:
            return self.replies[key]
        body = {"model": self.model, "temperature": 0,
                "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}]}
        request = urllib.request.Request(f"{self.base_url}/chat/completions", data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json",
                                                  **({"Authorization": f"Bearer {os.environ['JUDGE_API_KEY']}"}
                                                     if os.environ.get("JUDGE_API_KEY") else {})})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                reply = json.loads(response.read())["choices"][0]["message"]["content"]
        except (urllib.error.URLError, OSError, KeyError, ValueError) as err:
            raise RuntimeError(f"judge at {self.base_url} failed for {where or 'an answer'}: {err}") from err
        self.replies[key] = reply
        self.cache.parent.mkdir(parents=True, exist_ok=True)
        with open(self.cache, "a") as fh:
            fh.write(json.dumps({"key": key, "version": PROMPT_VERSION, "reply": reply}) + "\n")
        return reply


def make_judge(spec: str | None, model: str = "judge") -> Judge:
    """``None``/"unavailable" -> no judge; "replay:FILE"; "http(s)://..." -> an HTTP judge."""
    if not spec or spec == "unavailable":
        return Judge()
    if spec.startswith("replay:"):
        return ReplayJudge(spec[len("replay:"):])
    if spec.startswith(("http://", "https://")):
        return HttpJudge(spec, model)
    raise ValueError(f"judge {spec!r}: expected 'unavailable', 'replay:FILE' or an http(s):// base URL")


__all__ = ["PROMPT_VERSION", "HttpJudge", "Judge", "ReplayJudge", "Verdict", "judge_prompt", "make_judge",
           "parse_verdict", "prompt_key", "read_cache"]
