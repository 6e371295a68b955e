"""Pairwise win rate: position swapping against biased judges, the length-controlled figure,
the reward-model judge, and `tandem eval pairwise` end to end.

    .venv/bin/python -m pytest -q tests/test_evals_pairwise.py
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from typer.testing import CliRunner

import tandem.cli.eval_runs as cli_eval_runs
from fake_engine import FakeEngine
from tandem.cli.main import app as cli
from tandem.core.messages import Message
from tandem.engines import ModelCatalog
from tandem.evals.pairwise import (
    PAIR_JUDGE_SYSTEM,
    fit_length_logistic,
    judge_swapped,
    length_controlled_win_rate,
    openai_pair_judge,
    pairwise_summary,
    parse_pair_verdict,
    run_pairwise,
)
from tandem.evals.tasks import TASKS, Example, Grade, Task
from tandem.store import EvalRepo, GenerationRepo, make_engine, make_session_factory, migrate
from tandem.store.users import UserRepo

runner = CliRunner()
_ANSWER = re.compile(
    r"\[The Start of Assistant (A|B)'s Answer\]\n(.*?)\n\[The End of Assistant \1's Answer\]",
    re.DOTALL,
)

# A fake judge decides from the two answers it was shown, (A, B) -> its reply text.
Decide = Callable[[str, str], str]


def always_a(a: str, b: str) -> str:
    return "A"  # the extreme position-biased judge


def prefers_longer(a: str, b: str) -> str:
    return "A" if len(a) > len(b) else "B" if len(b) > len(a) else "tie"


def prefers_good(a: str, b: str) -> str:
    return "[[A]]" if "good" in a else "[[B]]" if "good" in b else "tie"


@pytest.fixture
def judge_server() -> Iterator[Callable[[Decide], str]]:
    """Start a loopback /v1/chat/completions judge with a decision rule; returns its base URL.
    Every request's Authorization header is appended to `start.authorizations`."""
    servers: list[ThreadingHTTPServer] = []
    authorizations: list[str | None] = []

    def start(decide: Decide) -> str:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                authorizations.append(self.headers.get("Authorization"))
                answers = dict(_ANSWER.findall(body["messages"][1]["content"]))
                reply = decide(answers["A"], answers["B"])
                payload = json.dumps({"choices": [{"message": {"content": reply}}]}).encode()
                self.send_response(200 if self.path == "/v1/chat/completions" else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        servers.append(server)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        return f"http://127.0.0.1:{server.server_address[1]}/v1"

    start.authorizations = authorizations  # type: ignore[attr-defined]
    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_verdict_parsing_counts_only_a_clear_vote():
    assert parse_pair_verdict("A") == "first" and parse_pair_verdict(" [[B]] ") == "second"
    assert parse_pair_verdict("Assistant A.") == "first" and parse_pair_verdict("Tie") == "tie"
    for junk in ("A good answer, but B is better", "", "C", "Both are fine", "AB"):
        assert parse_pair_verdict(junk) == "tie", junk


def test_position_biased_judge_yields_all_ties(judge_server):
    judge = openai_pair_judge(judge_server(always_a), "judge-model")
    results = [judge_swapped(judge, f"q{i}", f"cand {i}", f"base {i}") for i in range(6)]
    summary = pairwise_summary(results, [6] * 6, [6] * 6, bootstrap=200)
    assert summary["ties"] == 6 and summary["wins"] == summary["losses"] == 0
    assert summary["win_rate"] == 0.5 and summary["position_inconsistency"] == 1.0
    assert summary["ci_low"] == summary["ci_high"] == 0.5


def test_judge_that_prefers_the_candidate_gives_win_rate_one(judge_server):
    url = judge_server(prefers_good)
    judge = openai_pair_judge(url, "judge-model", api_key="sk-judge")
    results = [judge_swapped(judge, f"q{i}", f"good {i}", f"meh {i}") for i in range(5)]
    summary = pairwise_summary(results, [6] * 5, [5] * 5, bootstrap=200)
    assert summary["wins"] == 5 and summary["win_rate"] == 1.0
    assert summary["position_inconsistency"] == 0.0 and summary["ci_low"] == 1.0
    assert [(r.candidate_first, r.candidate_second) for r in results] == [("first", "second")] * 5
    assert judge.name == "openai:judge-model"


def test_request_shape_and_unparseable_judge_is_a_tie(judge_server):
    url = judge_server(lambda a, b: "Well, it depends on what you value.")
    judge = openai_pair_judge(url, "judge-model", api_key="sk-judge")
    result = judge_swapped(judge, "What is 2+2?", "4", "5")
    assert result.outcome == "tie" and result.consistent
    assert (result.candidate_first, result.candidate_second) == ("tie", "tie")


def test_judge_request_is_greedy_short_and_carries_the_key():
    captured: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            captured.append({**body, "auth": self.headers.get("Authorization")})
            payload = b'{"choices": [{"message": {"content": "B"}}]}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        judge = openai_pair_judge(f"http://127.0.0.1:{server.server_address[1]}/v1/", "jm", "k1")
        assert judge.judge("Why?", "first reply", "second reply") == "second"
    finally:
        server.shutdown()
        server.server_close()
    body = captured[0]
    assert body["model"] == "jm" and body["temperature"] == 0 and body["max_tokens"] <= 8
    assert body["auth"] == "Bearer k1"
    assert body["messages"][0]["content"] == PAIR_JUDGE_SYSTEM
    assert "Why?" in body["messages"][1]["content"]
    assert body["messages"][1]["content"].index("first reply") < body["messages"][1][
        "content"
    ].index("second reply")


def test_length_preferring_judge_is_corrected_by_the_lc_figure(judge_server):
    # Quality is length only: the candidate is longer on most items, but by varying amounts and
    # not always, so the length term is identifiable.
    diffs = [40, 80, 20, 60, 0, -30, 90, 10, 50, -60, 70, 0, 30, -10, 100, 25, -45, 55, 0, 15]
    baseline = ["b" * (40 + 5 * i) for i in range(len(diffs))]
    candidate = ["c" * (len(b) + d) for b, d in zip(baseline, diffs, strict=True)]
    judge = openai_pair_judge(judge_server(prefers_longer), "judge-model")
    results = [judge_swapped(judge, "q", c, b) for c, b in zip(candidate, baseline, strict=True)]
    summary = pairwise_summary(
        results, [len(c) for c in candidate], [len(b) for b in baseline], bootstrap=200
    )
    assert summary["win_rate"] >= 0.7 and summary["position_inconsistency"] == 0.0
    assert abs(summary["lc_win_rate"] - 0.5) < 0.1
    assert summary["mean_length_candidate"] > summary["mean_length_baseline"]


def test_lc_fit_recovers_a_known_length_effect():
    rng = np.random.default_rng(7)
    x = rng.uniform(-1, 1, 4000)
    a, b = 0.4, 2.0
    y = (rng.random(x.size) < 1 / (1 + np.exp(-(a + b * x)))).astype(float)
    fa, fb = fit_length_logistic(y, x)
    assert fa == pytest.approx(a, abs=0.1) and fb == pytest.approx(b, abs=0.25)
    # Equal lengths everywhere: nothing to control for, LC is the raw win rate.
    assert length_controlled_win_rate([1, 0.5, 1, 0], [9] * 4, [9] * 4) == pytest.approx(0.625)
    # Ties are half a win in the fit as well.
    assert length_controlled_win_rate([0.5] * 4, [5, 6, 7, 8], [1] * 4) == pytest.approx(0.5)


def test_bootstrap_interval_is_seeded_and_brackets_the_rate():
    from tandem.evals.pairwise import win_rate_interval

    scores = [1, 0, 1, 1, 0.5, 0, 1, 1, 0, 1]
    first = win_rate_interval(scores, bootstrap=500, seed=3)
    assert first == win_rate_interval(scores, bootstrap=500, seed=3)
    assert first[0] < sum(scores) / len(scores) < first[1]
    with pytest.raises(ValueError):
        win_rate_interval([])


class PromptsTask(Task):
    name = "test-prompts"

    def examples(self) -> Iterable[Example]:
        for i in range(4):
            yield Example(id=f"p{i}", messages=(Message.text("user", f"question {i}"),))

    def grade(self, example: Example, response: str) -> Grade:
        return Grade(passed=True)


@pytest.fixture(autouse=True)
def prompts_task(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(TASKS, "test-prompts", PromptsTask)


def test_run_is_stored_with_both_answers_and_verdicts(db_url, judge_server):
    engine = make_engine(db_url)
    migrate(engine)
    with make_session_factory(engine)() as session:
        admin = UserRepo(session).create("a@x.io", None, is_admin=True)
        cand = FakeEngine("cand", script=["a good answer", "good too", "meh", "good"])
        base = FakeEngine("base", script=["fine", "okay", "a good one", "good as well"])
        judge = openai_pair_judge(judge_server(prefers_good), "jm")
        examples = list(PromptsTask().examples())
        run = run_pairwise(session, "test-prompts", examples, cand, base, judge, owner_id=admin.id)
        s = run.summary
        assert run.suite == "pairwise:test-prompts" and run.model_version == "cand"
        assert (s["wins"], s["losses"], s["ties"], s["n"]) == (2, 1, 1, 4)
        assert s["win_rate"] == pytest.approx(2.5 / 4) and s["baseline"] == "base"
        assert s["judge"] == "openai:jm" and s["ci_low"] <= s["win_rate"] <= s["ci_high"]
        # Both answers "good": the judge says A both times, a position-biased tie.
        assert s["position_inconsistency"] == 0.25
        items = EvalRepo(session).items(run.id)
        first = items[0].details
        assert first["candidate_answer"] == "a good answer" and first["baseline_answer"] == "fine"
        assert (first["verdict_candidate_first"], first["verdict_candidate_second"]) == (
            "first",
            "second",
        )
        assert [i.passed for i in items] == [True, True, False, False]
        generations = GenerationRepo(session)
        assert generations.get(admin.id, items[2].generation_id).output_text == "meh"
        assert generations.get(admin.id, first["baseline_generation_id"]).model_version == "base"
    engine.dispose()


def _catalog(settings):  # type: ignore[no-untyped-def]
    # A fresh catalog per command: the command closes its catalog when done.
    c = ModelCatalog(default_model="cand")
    c.add(FakeEngine("cand", script=["good " + "x" * 20]))
    c.add(FakeEngine("base", script=["plain"]))
    return c


def test_cli_pairwise_end_to_end(tandem_home, monkeypatch, judge_server):
    monkeypatch.setattr(cli_eval_runs, "prepared_catalog", _catalog)
    url = judge_server(prefers_good)
    monkeypatch.setenv("JUDGE_KEY", "sk-test")
    args = ["eval", "pairwise", "--model", "cand", "--baseline", "base", "--suite"]
    judge = ["--judge-url", url, "--judge-model", "jm", "--judge-api-key-env", "JUDGE_KEY"]
    r = runner.invoke(cli, [*args, "test-prompts", "--limit", "3", "--max-tokens", "32", *judge])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["suite"] == "pairwise:test-prompts" and out["n"] == 3
    assert out["win_rate"] == 1.0 and out["position_inconsistency"] == 0.0
    assert out["mean_length_candidate"] > out["mean_length_baseline"]
    # Three pairs, two orders each, the key from the named variable as a bearer token.
    assert judge_server.authorizations == ["Bearer sk-test"] * 6
    shown = json.loads(runner.invoke(cli, ["eval", "show", out["run_id"], "--items"]).stdout)
    assert shown["suite"] == "pairwise:test-prompts" and shown["model_version"] == "cand"
    assert shown["summary"]["baseline"] == "base" and len(shown["items"]) == 3
    listed = runner.invoke(cli, ["eval", "runs", "--suite", "pairwise:test-prompts"])
    assert json.loads(listed.stdout)["id"] == out["run_id"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "exactly one judge"),
        (["--judge-url", "http://127.0.0.1:9/v1", "--reward-model", "rm"], "exactly one judge"),
        (["--judge-url", "http://127.0.0.1:9/v1"], "--judge-model"),
        (
            ["--judge-url", "http://x/v1", "--judge-model", "m", "--judge-api-key-env", "NOPE_"],
            "NOPE_",
        ),
        (["--reward-model", "not-there"], "not a registered reward model"),
    ],
)
def test_cli_pairwise_rejects_bad_judge_options(tandem_home, monkeypatch, extra, message):
    monkeypatch.setattr(cli_eval_runs, "prepared_catalog", _catalog)
    monkeypatch.delenv("NOPE_", raising=False)
    args = ["eval", "pairwise", "--model", "cand", "--baseline", "base", "--suite", "test-prompts"]
    r = runner.invoke(cli, [*args, *extra])
    assert r.exit_code != 0 and message in r.output


def test_cli_pairwise_reports_an_unreachable_judge_and_unknown_models(tandem_home, monkeypatch):
    monkeypatch.setattr(cli_eval_runs, "prepared_catalog", _catalog)
    base = ["eval", "pairwise", "--suite", "test-prompts", "--judge-model", "m"]
    dead = runner.invoke(
        cli,
        [*base, "--model", "cand", "--baseline", "base", "--judge-url", "http://127.0.0.1:9/v1"],
    )
    assert dead.exit_code == 1 and "judge request failed" in dead.output
    failed = [json.loads(line) for line in runner.invoke(cli, ["eval", "runs"]).stdout.splitlines()]
    assert failed[0]["status"] == "failed"
    unknown = runner.invoke(
        cli, [*base, "--model", "cand", "--baseline", "nope", "--judge-url", "http://x/v1"]
    )
    assert unknown.exit_code == 3 and "nope" in unknown.output


# -- the reward-model judge on the real model -------------------------------------------------


@pytest.mark.model
def test_reward_model_judge_and_cli(tandem_home, prepared_model, tmp_path, monkeypatch):
    from tandem.evals.pairwise import reward_model_judge
    from tandem.registry.embedded import model_root

    base_version = prepared_model.version
    (tandem_home / "models").mkdir(exist_ok=True)
    (tandem_home / "models" / base_version).symlink_to(prepared_model.root)
    data = tmp_path / "prefs.jsonl"
    rows = [
        {
            "prompt": [{"role": "user", "content": f"What is {n} plus {n}?"}],
            "chosen": [{"role": "assistant", "content": f"{n} plus {n} is {2 * n}."}],
            "rejected": [{"role": "assistant", "content": "I would rather not say."}],
        }
        for n in range(1, 5)
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tiny = ["--max-steps", "1", "--batch-size", "2", "--max-length", "64"]
    trained = runner.invoke(
        cli, ["train", "reward", "--dataset", str(data), "--output-version", "rm-test", *tiny]
    )
    assert trained.exit_code == 0, trained.output + repr(trained.exception)

    judge = reward_model_judge(model_root(tandem_home, "rm-test"))
    verdicts = {judge.judge("What is 2 plus 2?", "2 plus 2 is 4.", "No.") for _ in range(2)}
    assert len(verdicts) == 1 and verdicts <= {"first", "second", "tie"}
    swapped = judge.judge("What is 2 plus 2?", "No.", "2 plus 2 is 4.")
    flip = {"first": "second", "second": "first", "tie": "tie"}
    assert swapped == flip[verdicts.pop()]  # a scorer has no position bias

    monkeypatch.setattr(cli_eval_runs, "prepared_catalog", _catalog)
    args = ["eval", "pairwise", "--model", "cand", "--baseline", "base", "--suite", "test-prompts"]
    r = runner.invoke(cli, [*args, "--limit", "2", "--reward-model", "rm-test"])
    assert r.exit_code == 0, r.output + repr(r.exception)
    out = json.loads(r.stdout)
    assert out["n"] == 2 and out["judge"] == "reward:rm-test"
    assert out["position_inconsistency"] == 0.0 and 0.0 <= out["win_rate"] <= 1.0
    chat = runner.invoke(cli, [*args, "--reward-model", base_version])
    assert chat.exit_code == 1 and "not a registered reward model" in chat.output
