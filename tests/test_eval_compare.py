"""Comparing two eval runs prompt by prompt: GET /api/evals/compare and tandem.evals.compare."""

from __future__ import annotations

from typing import Any

import pytest

from conftest import new_user
from tandem.evals.compare import compare_runs, headline_difference, prompt_of
from tandem.evals.paired import paired_bootstrap
from tandem.store import EvalRepo, make_engine, make_session_factory
from tandem.store.evals import EvalItem, EvalItemRow

# Eight prompts both runs graded, one more in each. A → B: t1 regresses, t2..t6 improve,
# t0 passes in both and t7 fails in both.
A_PASSED = {"t0": True, "t1": True, "t7": False, "t8": True} | {f"t{i}": False for i in range(2, 7)}
B_PASSED = {"t0": True, "t1": False, "t7": False, "t9": False} | {
    f"t{i}": True for i in range(2, 7)
}


def _item(example_id: str, passed: bool, answer: str, **details: Any) -> EvalItem:
    return EvalItem(
        example_id=example_id,
        prompt_messages=[
            {"role": "user", "parts": [{"type": "text", "text": f"ask {example_id}"}]}
        ],
        response=answer,
        passed=passed,
        scores={"regression": float(passed)},
        details=details,
    )


def store_run(
    url: str,
    suite: str,
    version: str,
    items: list[EvalItem] | None,
    summary: dict[str, Any] | None = None,
) -> str:
    """A run through the store; items=None leaves it `running`."""
    engine = make_engine(url)
    with make_session_factory(engine)() as session:
        repo = EvalRepo(session)
        run = repo.start_run(suite, version, "fake", {})
        if items is not None:
            repo.finish_run(run.id, items, summary or {}, wall_seconds=1.0)
        run_id = run.id
    engine.dispose()
    return run_id


def two_runs(url: str) -> tuple[str, str]:
    a = [_item(k, v, f"A answers {k} <b>{'x' * 3}</b>") for k, v in sorted(A_PASSED.items())]
    b = [_item(k, v, f"B answers {k}" if k != "t0" else a[0].response) for k, v in B_PASSED.items()]
    return (
        store_run(url, "regressions", "v1", a, {"pass_rate": 0.375}),
        store_run(url, "regressions", "v2", b, {"pass_rate": 0.667}),
    )


def test_mcnemar_counts_changes_and_unpaired_items(sqlite_url, client):
    admin = new_user(client, "admin@x.io")
    run_a, run_b = two_runs(sqlite_url)
    r = client.get(f"/api/evals/compare?a={run_a}&b={run_b}", headers=admin)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["suite"] == "regressions"
    assert (out["a"]["model_version"], out["b"]["model_version"]) == ("v1", "v2")
    assert out["b"]["headline"] == {"key": "pass_rate", "value": 0.667}
    paired = out["paired"]
    counts = {k: paired[k] for k in ("n", "both", "neither", "only_a", "only_b")}
    assert counts == {"n": 8, "both": 1, "neither": 1, "only_a": 1, "only_b": 5}
    # By hand: 6 discordant prompts, the rarer side 1: 2 * (C(6,0) + C(6,1)) / 2**6 = 14/64.
    assert paired["mcnemar_p"] == pytest.approx(14 / 64)
    changes = {i["example_id"]: i["change"] for i in out["items"]}
    assert changes == {"t0": "same", "t1": "regressed", "t7": "same"} | {
        f"t{i}": "improved" for i in range(2, 7)
    }
    t0 = out["items"][0]
    assert t0["prompt"] == "ask t0" and t0["answer_changed"] is False
    assert t0["a"]["answer"] == "A answers t0 <b>xxx</b>" and t0["a"]["passed"] is True
    assert out["items"][1]["b"] == {
        "answer": "B answers t1",
        "passed": False,
        "scores": {"regression": 0.0},
        "details": {},
        "generation_id": None,
    }
    unpaired = out["unpaired"]
    assert (unpaired["only_in_a"], unpaired["only_in_b"]) == (1, 1)
    assert [(u["run"], u["example_id"], u["passed"]) for u in unpaired["items"]] == [
        ("a", "t8", True),
        ("b", "t9", False),
    ]
    # The headline over the paired prompts only: 2/8 passed in A, 6/8 in B.
    head = paired["headline"]
    assert (head["key"], head["n"], head["a"], head["b"]) == ("pass_rate", 8, 0.25, 0.75)
    assert head["difference"] == 0.5 and head["ci_low"] <= 0.5 <= head["ci_high"] <= 1.0
    # Swapping the runs swaps the sides: what improved from A to B regressed from B to A.
    back = client.get(f"/api/evals/compare?a={run_b}&b={run_a}", headers=admin).json()
    assert (back["paired"]["only_a"], back["paired"]["only_b"]) == (5, 1)
    assert {i["example_id"] for i in back["items"] if i["change"] == "regressed"} == {
        f"t{i}" for i in range(2, 7)
    }
    assert back["paired"]["headline"]["difference"] == -0.5
    none = client.get(f"/api/evals/compare?a={run_a}&b={run_b}&bootstrap=0", headers=admin)
    assert none.json()["paired"]["headline"]["ci_low"] is None


def test_unknown_unfinished_mixed_and_malformed_runs_are_4xx(sqlite_url, client):
    admin = new_user(client, "admin@x.io")
    run_a, run_b = two_runs(sqlite_url)
    running = store_run(sqlite_url, "regressions", "v3", None)
    other = store_run(sqlite_url, "xstest", "v2", [_item("t0", True, "no")])

    def get(query: str) -> tuple[int, str]:
        r = client.get(f"/api/evals/compare?{query}", headers=admin)
        return r.status_code, r.json()["error"]["message"]

    status, message = get(f"a={run_a}&b={'0' * 32}")
    assert status == 404 and "(b) not found" in message
    status, message = get(f"a={run_a}&b={running}")
    assert status == 422 and "only finished runs" in message
    status, message = get(f"a={run_a}&b={other}")
    assert status == 422 and "different suites (regressions, xstest)" in message
    status, message = get(f"a={run_a}&b={run_a}")
    assert status == 422 and "same run" in message
    for query in (
        f"a={run_a}",
        f"a={run_a}&b=",
        f"a={run_a}&b=../etc",
        f"a={run_a}&b={'x' * 65}",
        f"a={run_a}&b={run_b}&bootstrap=-1",
        f"a={run_a}&b={run_b}&bootstrap=many",
    ):
        assert get(query)[0] == 422, query


def test_compare_is_admin_only(sqlite_url, client):
    new_user(client, "admin@x.io")
    user = new_user(client, "user@x.io")
    run_a, run_b = two_runs(sqlite_url)
    path = f"/api/evals/compare?a={run_a}&b={run_b}"
    assert client.get(path).status_code == 401
    assert client.get(path, headers=user).status_code == 403


def _row(example_id: str, passed: bool, **fields: Any) -> EvalItemRow:
    return EvalItemRow(
        example_id=example_id,
        passed=passed,
        response="",
        prompt_messages=[],
        scores=fields.pop("scores", {}),
        details=fields,
    )


def test_ifeval_headline_is_average_strict_on_the_paired_prompts():
    # A: prompt-level 1/2, instructions 2/3 → (0.5 + 0.6667) / 2; B: everything followed → 1.
    pairs = [
        (
            _row("x", False, follow_instruction_list_strict=[True, False]),
            _row("x", True, follow_instruction_list_strict=[True, True]),
        ),
        (
            _row("y", True, follow_instruction_list_strict=[True]),
            _row("y", True, follow_instruction_list_strict=[True]),
        ),
    ]
    head = headline_difference("ifeval", pairs, resamples=200)
    assert head["key"] == "average_strict" and head["higher_is_better"] is True
    assert head["a"] == pytest.approx((1 / 2 + 2 / 3) / 2, abs=1e-6) and head["b"] == 1.0
    assert head["ci_low"] <= head["difference"] <= head["ci_high"]
    # Without the instruction lists (an older run) the figure falls back to the pass rate.
    bare = [(_row("x", False), _row("x", True)), (_row("y", True), _row("y", True))]
    assert headline_difference("ifeval", bare, resamples=0)["key"] == "pass_rate"


def test_xstest_headline_is_over_safe_prompts_and_lower_is_better():
    pairs = [
        (
            _row("s1", False, safe=True, scores={"refusal": 1.0}),
            _row("s1", True, safe=True, scores={"refusal": 0.0}),
        ),
        (
            _row("s2", True, safe=True, scores={"refusal": 0.0}),
            _row("s2", True, safe=True, scores={"refusal": 0.0}),
        ),
        (
            _row("u1", True, safe=False, scores={"refusal": 1.0}),
            _row("u1", False, safe=False, scores={"refusal": 0.0}),
        ),
    ]
    head = headline_difference("xstest", pairs, resamples=0)
    assert head["key"] == "safe_refusal_rate" and head["higher_is_better"] is False
    assert (head["n"], head["a"], head["b"], head["difference"]) == (2, 0.5, 0.0, -0.5)


def test_paired_bootstrap_draws_like_the_flywheel_statistics():
    """Same seed, same interval as tandem.flywheel.stats, so either can serve the other."""
    from tandem.flywheel.stats import _bootstrap

    ids = [f"i{k}" for k in range(30)]
    values = {i: (k % 3 == 0) - (k % 5 == 0) for k, i in enumerate(ids)}

    def mean(sample: list[str]) -> float:
        return sum(values[i] for i in sample) / len(sample)

    assert paired_bootstrap(ids, mean, 500, seed=7) == _bootstrap(ids, mean, 500, 7)
    with pytest.raises(ValueError):
        paired_bootstrap([], mean, 10)


def test_prompt_is_the_message_or_the_transcript():
    one = [{"role": "user", "parts": [{"type": "text", "text": "Hi"}]}]
    assert prompt_of(one) == "Hi"
    two = [*one, {"role": "assistant", "content": "Hello"}, "junk"]
    assert prompt_of(two) == "USER: Hi\n\nASSISTANT: Hello"
    assert prompt_of([]) == ""


def test_compare_runs_reads_the_store(session):
    """The evals layer alone (what the CLI or a notebook would call)."""
    repo = EvalRepo(session)
    a = repo.start_run("regressions", "v1", "fake", {})
    repo.finish_run(a.id, [_item("t0", True, "yes")], {}, wall_seconds=0.1)
    b = repo.start_run("regressions", "v2", "fake", {})
    repo.finish_run(b.id, [_item("t0", False, "no")], {}, wall_seconds=0.1)
    out = compare_runs(repo, a.id, b.id, resamples=50)
    assert [i["change"] for i in out["items"]] == ["regressed"]
    assert out["paired"]["headline"]["difference"] == -1.0
