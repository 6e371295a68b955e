"""Simulated users: many accounts chatting with a tandem server through its public HTTP API,
rating the answers the way a verifiable grader says they deserve (with noise).

    from tandem.simulate import SimulationConfig, run_simulation
    summary = run_simulation(SimulationConfig(base_url=url, users=32, turns=4, max_events=500),
                             events_path=Path("events.jsonl"))
    print(summary.to_dict())

    tandem simulate run --base-url http://127.0.0.1:8000 --users 32 --turns 4 --noise 0.1

Each user signs up, switches training off when it is one of the opted-out share, then for each
turn opens a chat, sends a prompt from the task's examples, grades the answer and rates it
(thumbs, with reasons and a comment on a thumbs-down), sometimes regenerates and rates the new
answer too, and votes on blind comparisons (the server's share of turns, or ones it asked
for): as the grader says, or, with `tastes`, by the user's own taste for answer length (dealt
in turn; a behavior experiment's split to find, docs/experiments.md). `concurrency` users
are in flight at once, which keeps the server's batching engine full.
Every random choice of a user comes from its own stream, seeded by (`seed`, user index), so a
run against a deterministic server is reproducible whatever order the requests finish in.
"""

from __future__ import annotations

import asyncio
import json
import random
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import httpx

from tandem.evals.tasks import Example, get_task
from tandem.simulate.client import Answer, ApiCallError, Comparison, SimulatedAccount
from tandem.simulate.config import SimulationConfig
from tandem.simulate.implicit import ImplicitActs
from tandem.simulate.judgement import Judge
from tandem.simulate.summary import SimulationSummary

EMAIL_DOMAIN = "simulated.invalid"  # .invalid can never be a real mailbox (RFC 2606)


class _EventBudget:
    """`max_events` as reservations: a rating is posted only after it reserved a slot, so the
    acknowledged count can never pass the limit however many users are in flight."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.reserved = 0
        self.acknowledged = 0
        self.reached = asyncio.Event()
        if limit == 0:
            self.reached.set()

    def reserve(self) -> bool:
        if self.limit is not None and self.reserved >= self.limit:
            return False
        self.reserved += 1
        return True

    def release(self) -> None:
        self.reserved -= 1

    def confirm(self) -> None:
        self.acknowledged += 1
        if self.limit is not None and self.acknowledged >= self.limit:
            self.reached.set()


def load_examples(config: SimulationConfig) -> tuple[Judge, list[Example]]:
    options = {"split": config.split} if config.split is not None else {}
    task = get_task(config.task, **options)
    examples = list(task.examples())
    if not examples:
        raise ValueError(f"task {config.task!r} has no examples to prompt with")
    return Judge(task, config.noise, config.pass_threshold), examples


def opted_out_users(config: SimulationConfig) -> frozenset[int]:
    """Exactly round(users x opted_out) accounts, chosen by the seed."""
    count = round(config.users * config.opted_out)
    return frozenset(random.Random(f"{config.seed}:opted-out").sample(range(config.users), count))


class Simulation:
    """One run; `await Simulation(config).run()` returns the summary."""

    def __init__(
        self,
        config: SimulationConfig,
        on_event: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.config = config
        self.on_event = on_event
        self.judge, self.examples = load_examples(config)
        # Copies, stops, edits and follow-ups besides the ratings (tandem.simulate.implicit).
        self.acts = ImplicitActs(self.judge, config.seed) if config.implicit else None
        self.opted_out = opted_out_users(config)
        self.prefix = config.account_prefix or f"sim-{config.seed}-{secrets.token_hex(3)}"
        self.summary = SimulationSummary(config=config.to_dict())
        self.started = 0.0

    async def run(self) -> SimulationSummary:
        self.started = time.monotonic()
        self.budget = _EventBudget(self.config.max_events)
        self.slots = asyncio.Semaphore(self.config.concurrency)
        users = [asyncio.create_task(self._user(i)) for i in range(self.config.users)]
        everyone = asyncio.gather(*users)
        reached = asyncio.create_task(self.budget.reached.wait())
        racing: set[asyncio.Future[Any]] = {everyone, reached}
        await asyncio.wait(racing, return_when=asyncio.FIRST_COMPLETED)
        if not everyone.done():
            # The budget is spent: answers still being generated would never be rated.
            everyone.cancel()
        reached.cancel()
        outcome, _ = await asyncio.gather(everyone, reached, return_exceptions=True)
        if isinstance(outcome, Exception):
            # Not a server failure (those are counted): a bug here. Stop the others, say it.
            for user in users:
                user.cancel()
            await asyncio.gather(*users, return_exceptions=True)
            raise outcome
        self.summary.events_acknowledged = self.budget.acknowledged
        self.summary.wall_seconds = time.monotonic() - self.started
        if self.acts is not None:
            self.summary.implicit = dict(sorted(self.acts.counts.items()))
        return self.summary

    # -- one user ------------------------------------------------------------------------

    async def _user(self, index: int) -> None:
        async with self.slots:
            if self.budget.reached.is_set():
                return
            rng = random.Random(f"{self.config.seed}:user:{index}")
            timeout = httpx.Timeout(self.config.timeout_s, connect=30.0)
            # One client per user, like separate people: separate connections and cookie jars.
            async with httpx.AsyncClient(base_url=self.config.base_url, timeout=timeout) as http:
                account = await self._sign_up(http, index)
                if account is None:
                    return
                for _ in range(self.config.turns):
                    if self.budget.reached.is_set():
                        return
                    try:
                        await self._turn(account, index, rng)
                    except ApiCallError as exc:
                        self.summary.errors[exc.status] += 1

    async def _sign_up(self, http: httpx.AsyncClient, index: int) -> SimulatedAccount | None:
        email = f"{self.prefix}-{index:05d}@{EMAIL_DOMAIN}"
        try:
            account = await SimulatedAccount.sign_up(http, email, secrets.token_urlsafe(18))
            self.summary.accounts += 1
            if index in self.opted_out:
                await account.set_training_consent(False)
                self.summary.opted_out_accounts += 1
        except ApiCallError as exc:
            # An opted-out user whose switch did not stick must not leave signals: stop it.
            self.summary.errors[exc.status] += 1
            return None
        return account

    async def _turn(self, account: SimulatedAccount, index: int, rng: random.Random) -> None:
        config = self.config
        example = rng.choice(self.examples)
        prompt = example.messages[-1].content
        profile = rng.choice(config.profiles) if config.profiles else None
        if config.taste_profiles:
            profile = config.taste_profiles[index % len(config.tastes)]
        sampling = self._sampling(rng)
        ask_comparison = rng.random() < config.rate_compare
        conversation = await account.open_chat(profile, title=f"sim {example.id}")
        if ask_comparison:
            result: Answer | Comparison = await account.compare(conversation, prompt, sampling)
        elif self.acts is not None:
            result = await self.acts.send(account, conversation, example, prompt, sampling, index)
        else:
            result = await account.send(conversation, prompt, sampling, config.stream)
        self.summary.turns += 1
        context = {"user": index, "example_id": example.id, "conversation_id": conversation}
        if isinstance(result, Comparison):
            self.summary.comparisons += 1
            await self._vote(account, example, result, rng, context)
            return
        await self._rate(account, example, result, rng, context)
        if self.acts is not None:
            await self.acts.after_answer(account, conversation, example, result, index)
        if rng.random() < config.regenerate_rate and not self.budget.reached.is_set():
            again = await account.regenerate(result.message_id, self._sampling(rng), config.stream)
            self.summary.turns += 1
            self.summary.regenerations += 1
            await self._rate(account, example, again, rng, {**context, "regenerated": True})

    def _sampling(self, rng: random.Random) -> dict[str, Any]:
        # An explicit seed per request: the same run asks the same server the same things.
        sampling: dict[str, Any] = {
            "max_tokens": self.config.max_tokens,
            "seed": rng.randrange(2**31),
        }
        if self.config.temperature is not None:
            sampling["temperature"] = self.config.temperature
        return sampling

    async def _rate(
        self,
        account: SimulatedAccount,
        example: Example,
        answer: Answer,
        rng: random.Random,
        context: dict[str, Any],
    ) -> None:
        # Both draws happen whether or not the rating is posted, so one user's random stream
        # does not depend on how the budget was shared with the others.
        rated = rng.random() < self.config.rate_feedback
        thumbs = self.judge.thumbs(example, answer.content, rng)
        self.summary.count_answer(answer.model_version, thumbs.assessment.good)
        if not rated or not self.budget.reserve():
            return
        try:
            row = await account.rate(
                answer.message_id, thumbs.rating, list(thumbs.reasons), thumbs.comment
            )
        except BaseException:
            self.budget.release()
            raise
        self.budget.confirm()
        self.summary.thumbs_up += thumbs.rating == "up"
        self.summary.thumbs_down += thumbs.rating == "down"
        self.summary.thumbs_flipped += thumbs.flipped
        self._emit(
            {
                "kind": "thumbs",
                **context,
                "opted_out": context["user"] in self.opted_out,
                "message_id": answer.message_id,
                "generation_id": answer.generation_id,
                "model_version": answer.model_version,
                "finish_reason": answer.finish_reason,
                "answer": answer.content,
                "good": thumbs.assessment.good,
                "reward": thumbs.assessment.reward,
                "rating": thumbs.rating,
                "flipped": thumbs.flipped,
                "reasons": list(thumbs.reasons),
                "comment": thumbs.comment,
                "feedback_id": row["id"],
            }
        )

    async def _vote(
        self,
        account: SimulatedAccount,
        example: Example,
        comparison: Comparison,
        rng: random.Random,
        context: dict[str, Any],
    ) -> None:
        taste = self._taste(context["user"])
        if taste is None:
            vote = self.judge.vote(example, comparison.a, comparison.b, rng)
        else:
            vote = self.judge.vote_by_taste(taste, example, comparison.a, comparison.b, rng)
        if not self.budget.reserve():
            return
        try:
            voted = await account.vote(comparison.id, vote.verdict)
        except BaseException:
            self.budget.release()
            raise
        self.budget.confirm()
        self.summary.votes[vote.verdict] += 1
        self.summary.votes_flipped += vote.flipped
        if self.acts is not None and vote.verdict in ("a", "b"):
            chosen = 0 if vote.verdict == "a" else 1
            good = (vote.a, vote.b)[chosen].good
            message_id = voted.message_ids[chosen]
            if message_id and self.acts.copy_vote_winner(good, context["user"]):
                await self.acts.copy(account, message_id)
        for model, assessment in zip(voted.models, (vote.a, vote.b), strict=True):
            self.summary.count_answer(model, assessment.good)
        self._emit(
            {
                "kind": "vote",
                **context,
                "opted_out": context["user"] in self.opted_out,
                "comparison_id": comparison.id,
                "models": list(voted.models),
                "variants": list(voted.variants),
                "taste": taste,
                "answer_a": comparison.a,
                "answer_b": comparison.b,
                "reward_a": vote.a.reward,
                "reward_b": vote.b.reward,
                "verdict": vote.verdict,
                "deserved": vote.deserved,
                "flipped": vote.flipped,
            }
        )

    def _taste(self, user: int) -> str | None:
        """The user's answer-length taste (dealt in turn), or None: votes follow the grader."""
        tastes = self.config.tastes
        return tastes[user % len(tastes)] if tastes else None

    def _emit(self, event: dict[str, Any]) -> None:
        if self.on_event is not None:
            self.on_event({"t": round(time.monotonic() - self.started, 3), **event})


def run_simulation(config: SimulationConfig, events_path: Path | None = None) -> SimulationSummary:
    """Run the whole simulation (blocking); every acknowledged feedback event is appended to
    `events_path` as one JSON line when it is given."""
    sink: IO[str] | None = None
    if events_path is not None:
        events_path.parent.mkdir(parents=True, exist_ok=True)
        sink = events_path.open("w", encoding="utf-8")

    def write(event: dict[str, Any]) -> None:
        if sink is not None:
            sink.write(json.dumps(event, ensure_ascii=False) + "\n")

    try:
        return asyncio.run(Simulation(config, write).run())
    finally:
        if sink is not None:
            sink.close()
