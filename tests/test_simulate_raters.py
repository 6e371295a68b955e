"""Simulated raters work a real server's queues over HTTP, and tandem's task report measures
them: raters who follow the same truth agree (alpha 1) and get every gold item right; a rater who
ranks at random lowers agreement; a demonstration's bad model turn is rewritten before it is
submitted, and the rewrite is what the SFT snapshot trains on."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tandem.simulate.client import SimulatedAccount
from tandem.simulate.raters import RaterTaste, SimulatedRater, ranks_by_score

ANSWERS = {
    "Capital of France?": ["Paris.", "Lyon, I think.", "No idea."],
    "2 + 2?": ["4", "5", "22"],
    "Largest planet?": ["Jupiter.", "Saturn.", "The Sun."],
}
TRUTH = {text: 3 - i for answers in ANSWERS.values() for i, text in enumerate(answers)}
GOOD = RaterTaste(
    score=lambda question, answer: TRUTH.get(answer, 0.0 if answer.startswith("You said") else 1.0),
    rewrite=lambda question, answer: f"A careful answer to: {question}",
    rewrite_below=0.5,
)


def test_ranks_by_score_ties_share_a_rank():
    assert ranks_by_score([3.0, 1.0, 3.0, 2.0]) == [1, 4, 1, 3]


@pytest.fixture
def server(settings, live_server, fake_catalog):  # type: ignore[no-untyped-def]
    from tandem.web.app import create_app

    quiet = dataclasses.replace(settings, rate_generation=None, rate_generation_per_key=None)
    return live_server(create_app(quiet, fake_catalog))


def _admin_and_tasks(base: str) -> tuple[dict[str, str], str, str]:
    with httpx.Client(base_url=base, timeout=30) as http:
        r = http.post("/api/auth/signup", json={"email": "root@x.io", "password": "a b c d e"})
        assert r.status_code == 201, r.text
        csrf = {"X-CSRF-Token": http.cookies.get("tandem_csrf") or ""}
        key = http.post("/api/keys", json={"name": "k"}, headers=csrf).json()["key"]
        admin = {"Authorization": f"Bearer {key}"}
        items = [{"prompt": q, "answers": a} for q, a in ANSWERS.items()]
        items[-1]["gold"] = [1, 2, 3]  # the truth's order, as the answers are listed
        ranking = http.post(
            "/api/admin/tasks",
            json={"title": "Rank", "kind": "ranking", "raters_per_item": 3, "items": items},
            headers=admin,
        )
        assert ranking.status_code == 201, ranking.text
        demo = http.post(
            "/api/admin/tasks",
            json={
                "title": "Teach",
                "kind": "demonstration",
                "raters_per_item": 1,
                "items": [{"prompt": "Explain DNS in one line."}],
            },
            headers=admin,
        )
        assert demo.status_code == 201, demo.text
        return admin, ranking.json()["id"], demo.json()["id"]


async def _work(base: str, admin: dict[str, str]) -> list:
    skills = {"careful-1": 1.0, "careful-2": 1.0, "random": 0.0}
    done = []
    for n, (name, skill) in enumerate(skills.items()):
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            account = await SimulatedAccount.sign_up(http, f"{name}@sim.invalid", "a b c d e")
            r = await http.patch(
                f"/api/users/{account.user_id}", json={"is_rater": True}, headers=admin
            )
            assert r.status_code == 200, r.text
            done.append(await SimulatedRater(account, GOOD, skill=skill, seed=n).work_queue())
    return done


def test_simulated_raters_are_measured_by_the_task_report(server, tandem_home):
    admin, ranking_id, demo_id = _admin_and_tasks(server)
    # The browser tests before this one may leave an event loop on this thread.
    with ThreadPoolExecutor(1) as pool:
        done = pool.submit(asyncio.run, _work(server, admin)).result()
    assert [w.submitted.get("ranking") for w in done] == [3, 3, 3]
    assert sum(w.submitted.get("demonstration", 0) for w in done) == 1
    assert sum(w.rewritten for w in done) == 1  # the fake model's echo scores below the bar

    with httpx.Client(base_url=server, timeout=30, headers=admin) as http:
        report = http.get(f"/api/admin/tasks/{ranking_id}").json()["report"]
        accuracy = {r["email"]: r["gold_accuracy"] for r in report["raters"]}
        assert accuracy["careful-1@sim.invalid"] == accuracy["careful-2@sim.invalid"] == 1.0
        assert report["alpha"]["value"] < 1.0  # the random rater disagrees somewhere

        body = {"kind": "sft", "source": "rater_task", "filters": {"task_id": demo_id,
                "test_fraction": 0}}  # fmt: skip
        snap = http.post("/api/datasets", json=body)
        assert snap.status_code == 201, snap.text
    rows = (tandem_home / "datasets" / snap.json()["id"] / "train.jsonl").read_text().splitlines()
    [row] = [json.loads(line) for line in rows]
    assert row["messages"][-1] == {
        "role": "assistant",
        "content": "A careful answer to: Explain DNS in one line.",
    }
