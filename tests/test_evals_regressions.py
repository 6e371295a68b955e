"""Regression suites from thumbs-down: built from signals given through the API (consenting users,
current ratings only), written by `tandem eval build-regressions`, and graded by reason rules."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from conftest import new_user
from tandem.cli.main import app as cli
from tandem.evals import get_task
from tandem.evals.tasks import Example


@pytest.fixture
def api_db_url(db_url, monkeypatch):
    """The build's query runs on SQLite and on PostgreSQL (its `postgres` case); the CLI reads
    the same database as the API through TANDEM_DATABASE_URL."""
    monkeypatch.setenv("TANDEM_DATABASE_URL", db_url)
    return db_url


def _rate(client, headers, text, rating="down", reasons=(), comment=""):
    conv = client.post("/api/conversations", json={}, headers=headers).json()["id"]
    turn = client.post(
        f"/api/conversations/{conv}/messages", json={"content": text}, headers=headers
    ).json()
    mid = turn["assistant_message"]["id"]
    body = {"rating": rating, "reasons": list(reasons), "comment": comment}
    r = client.post(f"/api/messages/{mid}/feedback", json=body, headers=headers)
    assert r.status_code == 200, r.text
    return mid


def test_build_regressions_from_thumbs_down(client, tandem_home):
    alice = new_user(client, "alice@x.io")
    bob = new_user(client, "bob@x.io")
    _rate(client, alice, "Summarise the plot of Hamlet", reasons=["too_long"], comment="Way long")
    _rate(client, alice, "How do I kill a stuck process?", reasons=["refused"])
    _rate(client, alice, "Nice answer please", rating="up")
    changed = _rate(client, alice, "Capital of Australia?", reasons=["not_factual"])
    # A changed mind: the current rating is up, so this answer is no longer a regression.
    r = client.post(f"/api/messages/{changed}/feedback", json={"rating": "up"}, headers=alice)
    assert r.status_code == 200
    _rate(client, bob, "Bob's private question", reasons=["other"])
    assert client.patch("/api/auth/me", json={"use_for_training": False}, headers=bob).is_success

    result = CliRunner().invoke(cli, ["eval", "build-regressions"])
    assert result.exit_code == 0, result.output
    files = sorted((tandem_home / "evals").glob("regressions-*.jsonl"))
    assert len(files) == 1 and "wrote 2 regression cases" in result.output
    lines = [json.loads(line) for line in files[0].read_text().splitlines()]
    prompts = [line["messages"][-1]["content"] for line in lines]
    assert prompts == ["Summarise the plot of Hamlet", "How do I kill a stuck process?"]
    first = lines[0]
    assert first["reasons"] == ["too_long"] and first["comment"] == "Way long"
    assert first["bad_answer"] and first["bad_answer"] in first["rubric"]
    assert "Way long" in first["rubric"] and "too_long" in first["rubric"]
    assert not any("Bob" in json.dumps(line) for line in lines)

    # The task loads the newest suite from $TANDEM_HOME by default.
    task = get_task("regressions")
    examples = list(task.examples())
    assert [e.id for e in examples] == [line["id"] for line in lines]
    assert examples[0].messages[-1].content == "Summarise the plot of Hamlet"


def test_build_regressions_to_a_chosen_file(client, tmp_path):
    _rate(client, new_user(client, "a@x.io"), "Hello", reasons=["other"])
    out = tmp_path / "suite.jsonl"
    result = CliRunner().invoke(cli, ["eval", "build-regressions", "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert len(out.read_text().splitlines()) == 1


def test_regressions_task_without_a_suite_says_how_to_build_one(tandem_home):
    with pytest.raises(FileNotFoundError, match="build-regressions"):
        get_task("regressions")


def _suite(tmp_path, reasons, bad="This is a long answer. " * 10):
    path = tmp_path / "regressions-2026-01-01.jsonl"
    item = {
        "id": "regression-1",
        "messages": [{"role": "user", "content": "Question?"}],
        "bad_answer": bad,
        "reasons": reasons,
        "comment": "",
        "rubric": "Prompt: Question?",
    }
    path.write_text(json.dumps(item) + "\n")
    task = get_task("regressions", path=path)
    return task, next(iter(task.examples()))


def test_too_long_needs_thirty_percent_shorter_and_not_the_same(tmp_path):
    task, ex = _suite(tmp_path, ["too_long"])
    bad = ex.data["bad_answer"]
    assert task.grade(ex, "A short answer.").passed
    assert not task.grade(ex, bad[: int(len(bad) * 0.8)]).passed
    same = task.grade(ex, "  " + bad.upper())
    assert not same.passed and same.details["checks"]["not_identical"] is False


def test_refused_needs_a_non_refusal(tmp_path):
    task, ex = _suite(tmp_path, ["refused"], bad="I'm sorry, but I can't help with that.")
    assert task.grade(ex, "Run `kill -9 1234`.").passed
    grade = task.grade(ex, "I cannot assist with that request.")
    assert not grade.passed and grade.details["checks"]["refused"] is False


@pytest.mark.parametrize("reasons", [["not_factual"], ["unsafe"], ["too_long", "other"], []])
def test_judge_reasons_are_not_graded_without_a_judge(tmp_path, reasons):
    task, ex = _suite(tmp_path, reasons)
    grade = task.grade(ex, "A different short answer.")
    assert not grade.passed and grade.details["status"] == "not_graded" and grade.scores == {}
    # The identical bad answer fails outright: no judge is needed to see that.
    assert task.grade(ex, ex.data["bad_answer"]).details["status"] == "failed"


def test_judge_sees_the_prompt_and_rubric(tmp_path):
    calls = []

    def judge(prompt, response, rubric):
        calls.append((prompt, rubric))
        return "Canberra" in response

    path = _suite(tmp_path, ["not_factual"])[0].path
    task = get_task("regressions", path=path, judge=judge)
    ex: Example = next(iter(task.examples()))
    assert task.grade(ex, "Canberra.").passed
    assert task.grade(ex, "Sydney.").details["status"] == "failed"
    assert calls[0] == ("Question?", "Prompt: Question?")
