"""Simulated raters: accounts an admin made raters, working their queues through the public API.

    async with httpx.AsyncClient(base_url=url) as http:
        account = await SimulatedAccount.sign_up(http, "rater-0@simulated.invalid", "a b c d")
        # ... an admin: PATCH /api/users/{account.user_id} {"is_rater": true}
        rater = SimulatedRater(account, RaterTaste(score=len), skill=0.9, seed=0)
        done = await rater.work_queue()          # every pending item: rank, demonstrate, label

A rater judges by a hidden truth the simulation chooses: `RaterTaste.score(prompt, answer)`
(e.g. a task grader's reward, or answer length for a taste), higher is better. `skill` is the
chance that a ranking follows that truth; otherwise the rater ranks in a random order. So a
task's agreement and each rater's gold accuracy fall as skill falls, and a test can check that
tandem measures them (expected gold accuracy: skill + (1 - skill) / n for n answers, a tie at
the top counting as wrong). In a demonstration the rater asks the model for its turn and, when
the turn scores below `rewrite_below`, writes `rewrite(prompt, answer)` instead before
submitting. Spec labels come from `label(behavior, answer)`. Red-team items are left alone: a
finding needs an attacker, which these raters are not.

Like the simulated users, this module talks HTTP only (tandem.simulate.client).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tandem.simulate.client import SimulatedAccount

Score = Callable[[str, str], float]  # (the prompt's last user turn, an answer) -> higher is better


def _keep(prompt: str, answer: str) -> str:
    return answer


def _pass(behavior: str, answer: str) -> str:
    return "pass"


@dataclass(frozen=True)
class RaterTaste:
    """What a simulated rater believes a good answer is, and what it writes instead of a bad one."""

    score: Score
    rewrite: Callable[[str, str], str] = _keep
    rewrite_below: float = float("-inf")  # never rewrite unless set
    label: Callable[[str, str], str] = _pass  # spec labelling: "pass", "fail" or "na"


@dataclass
class RaterWork:
    """What one rater did: counts by kind, and the assignments it skipped (red team)."""

    submitted: dict[str, int] = field(default_factory=dict)
    rewritten: int = 0
    skipped: list[str] = field(default_factory=list)


def ranks_by_score(scores: list[float]) -> list[int]:
    """1 = best; equal scores share a rank (competition ranking: 1, 1, 3)."""
    return [1 + sum(other > mine for other in scores) for mine in scores]


class SimulatedRater:
    def __init__(
        self, account: SimulatedAccount, taste: RaterTaste, skill: float = 1.0, seed: int = 0
    ) -> None:
        if not 0.0 <= skill <= 1.0:
            raise ValueError("skill is a probability: 0 to 1")
        self.account = account
        self.taste = taste
        self.skill = skill
        self.rng = random.Random(seed)

    async def work_queue(self, limit: int | None = None) -> RaterWork:
        """Take the queue (the server hands out work on this call) and submit every pending item,
        at most `limit`."""
        work = RaterWork()
        queue = await self.account._call("GET", "/api/rater/queue")
        pending = [a for a in queue["assignments"] if a["status"] == "pending"]
        for entry in pending[:limit]:
            view = await self.account._call("GET", f"/api/rater/assignments/{entry['id']}")
            kind = view["task"]["kind"]
            body = await self._submission(view, work)
            if body is None:
                work.skipped.append(entry["id"])
                continue
            await self.account._call(
                "POST", f"/api/rater/assignments/{entry['id']}/submit", json=body
            )
            work.submitted[kind] = work.submitted.get(kind, 0) + 1
        return work

    async def _submission(self, view: dict[str, Any], work: RaterWork) -> dict[str, Any] | None:
        kind = view["task"]["kind"]
        question = _last_user_turn(view["prompt"])
        if kind == "ranking":
            texts = [a["text"] for a in view["answers"]]  # in the order this rater is shown
            return {"ranks": self.rank(question, texts)}
        if kind == "demonstration" and view["prompt"] and view["prompt"][-1]["role"] == "user":
            return {"messages": await self._demonstrate(view, work)}
        if kind == "spec_label":
            answer = view["answers"][0]["text"]
            labels = [self.taste.label(b["id"], answer) for b in view["behaviors"]]
            why = ["" if label != "fail" else f"{b['id']} not met" for label, b in
                   zip(labels, view["behaviors"], strict=True)]  # fmt: skip
            return {"labels": labels, "rationales": why}
        return None  # red team (no finding to offer), or a demonstration that opens with the rater

    def rank(self, question: str, answers: list[str]) -> list[int]:
        """The truth's ranking with probability `skill`, else a random order."""
        if self.rng.random() < self.skill:
            return ranks_by_score([self.taste.score(question, a) for a in answers])
        order = self.rng.sample(range(len(answers)), len(answers))
        return [order.index(i) + 1 for i in range(len(answers))]

    async def _demonstrate(self, view: dict[str, Any], work: RaterWork) -> list[dict[str, str]]:
        messages = [{"role": m["role"], "content": m["content"]} for m in view["prompt"]]
        path = f"/api/rater/assignments/{view['id']}/generate"
        turn = await self.account._call("POST", path, json={"messages": messages})
        answer = str(turn["text"])
        question = _last_user_turn(messages)
        if self.taste.score(question, answer) < self.taste.rewrite_below:
            answer = self.taste.rewrite(question, answer)
            work.rewritten += 1
        return [*messages, {"role": "assistant", "content": answer}]


def _last_user_turn(prompt: list[dict[str, Any]]) -> str:
    return next((str(m["content"]) for m in reversed(prompt) if m["role"] == "user"), "")
