"""The explanation-similarity proxy (MiniLM) and the pluggable LLM judge."""
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import torch

from microemo_ref.metrics.judge import (PROMPT_VERSION, HttpJudge, Judge, ReplayJudge, judge_prompt, make_judge,
                                        parse_verdict, prompt_key)
from microemo_ref.metrics.similarity import embed, explanation_similarity, mean_pool

GOLD = ("During utterance 3, around 5.2 s, a brief flash of raised inner brows with the lip corners pulled "
        "down shows through the smile: the person is sad.")


def test_mean_pool_ignores_padding_by_hand():
    states = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    assert mean_pool(states, torch.tensor([[1, 1, 0]])).tolist() == [[2.0, 3.0]]


def test_embeddings_are_unit_length_and_batch_invariant():
    texts = ["Short.", GOLD]
    together = embed(texts)
    alone = torch.cat([embed([t]) for t in texts])   # no padding when alone
    assert together.shape == (2, 384)
    assert torch.allclose(together.norm(dim=-1), torch.ones(2), atol=1e-5)
    assert torch.allclose(together, alone, atol=1e-5)


def test_similarity_orders_paraphrase_above_unrelated():
    para = "The person is sad: at 5.2 s, in utterance 3, the inner brows rise briefly and the mouth corners drop."
    sims = explanation_similarity([GOLD, para, "The train to Paris leaves at nine tomorrow morning."], [GOLD] * 3)
    assert sims[0] == pytest.approx(1.0, abs=1e-4)
    assert sims[1] > 0.6 > 0.2 > sims[2]
    with pytest.raises(ValueError, match="2 generated explanations but 1"):
        explanation_similarity(["a", "b"], ["a"])


def test_parse_verdict():
    v = parse_verdict('Sure. {"clue_overlap": 7, "label_overlap": 10}')
    assert (v.clue_overlap, v.label_overlap) == (7.0, 10.0)
    with pytest.raises(ValueError, match="clip_7"):
        parse_verdict("I think it is good", "clip_7")
    with pytest.raises(ValueError, match="outside 0-10"):
        parse_verdict('{"clue_overlap": 11, "label_overlap": 3}')


def test_unavailable_judge_says_why():
    j = make_judge(None)
    v = j(GOLD, ["sad"], "x", [])
    assert (v.clue_overlap, v.label_overlap) == (None, None)
    assert j.describe()["judge"] == "unavailable" and "reason" in j.describe()
    with pytest.raises(ValueError, match="expected 'unavailable'"):
        make_judge("ftp://nowhere")


class _Stub(BaseHTTPRequestHandler):
    seen: list = []

    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Stub.seen.append((self.path, body))
        reply = {"choices": [{"message": {"content": '{"clue_overlap": 6, "label_overlap": 9}'}}]}
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def test_http_judge_posts_openai_chat_and_replays_from_its_cache(tmp_path):
    server = HTTPServer(("127.0.0.1", 0), _Stub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        cache = tmp_path / "judge.jsonl"
        j = HttpJudge(f"http://127.0.0.1:{server.server_port}/v1", model="m", cache=cache)
        v = j(GOLD, ["sad"], "The person is sad.", ["sad"], where="clip_1")
        assert (v.clue_overlap, v.label_overlap) == (6.0, 9.0)
        path, body = _Stub.seen[-1]
        assert path == "/v1/chat/completions" and body["model"] == "m" and body["temperature"] == 0
        assert body["messages"][1]["content"] == judge_prompt(GOLD, ["sad"], "The person is sad.", ["sad"])
        j(GOLD, ["sad"], "The person is sad.", ["sad"])        # cached: no second request
        assert len(_Stub.seen) == 1
    finally:
        server.shutdown()
    row = json.loads(cache.read_text())
    assert row["version"] == PROMPT_VERSION
    assert row["key"] == prompt_key(judge_prompt(GOLD, ["sad"], "The person is sad.", ["sad"]))
    replay = make_judge(f"replay:{cache}")
    assert isinstance(replay, ReplayJudge)
    assert replay(GOLD, ["sad"], "The person is sad.", ["sad"]).label_overlap == 9.0
    with pytest.raises(KeyError, match="no cached verdict for clip_2"):
        replay(GOLD, ["sad"], "Another answer.", ["happy"], where="clip_2")


def test_http_judge_down_is_a_clear_error(tmp_path):
    j = HttpJudge("http://127.0.0.1:9", cache=tmp_path / "c.jsonl", timeout=2)
    with pytest.raises(RuntimeError, match="judge at http://127.0.0.1:9 failed for clip_3"):
        j(GOLD, ["sad"], "x", ["sad"], where="clip_3")
    assert not (tmp_path / "c.jsonl").exists()
    assert isinstance(make_judge("unavailable"), Judge)
