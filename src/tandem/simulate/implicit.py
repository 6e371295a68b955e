"""What simulated users do with an answer besides rating it: copy it, stop it mid-stream, edit
the question and send it again, or correct it in the next message (`SimulationConfig.implicit`).

    acts = ImplicitActs(judge, seed=0)
    answer = await acts.send(account, conversation, example, prompt, sampling, user=3)
    ...                                                   # the driver rates `answer` as usual
    await acts.after_answer(account, example, answer, user=3)

How likely each action is depends on the grader's judgement of the answer (good or bad): the
table below is the simulator's assumption about people, not a measurement of them, and it is
what makes "does the implicit signal agree with the thumbs?" measurable in a simulated run
(bench/implicit_signals.py). A stop is decided while the answer streams, on the grader's
judgement of the first words (a person who stops reads only the start); the stopped answer is
then rated on what was shown, like any other. Follow-ups after a good answer are ordinary
("thanks", a new task), so the server's correction classifier has negatives to tell apart.

Every draw comes from the user's own stream (seeded by `seed` and the user index), separate
from the driver's, so switching implicit actions on leaves the rest of a run's choices alone.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from dataclasses import dataclass
from typing import Any

import httpx
from httpx_sse import SSEError, aconnect_sse

from tandem.evals.tasks import Example
from tandem.simulate.client import (
    Answer,
    ApiCallError,
    Comparison,
    SimulatedAccount,
    _comparison,
    _parsed,
)
from tandem.simulate.judgement import Judge


@dataclass(frozen=True)
class Odds:
    """The probability of an action after a good and after a bad answer."""

    good: float
    bad: float

    def draw(self, good: bool, rng: random.Random) -> bool:
        return rng.random() < (self.good if good else self.bad)


# The simulator's assumptions (docs/evals.md, "Implicit signals"): people copy answers they
# can use, stop answers that start badly, and rewrite or correct questions whose answers missed.
COPY = Odds(good=0.5, bad=0.08)
STOP = Odds(good=0.03, bad=0.3)
EDIT_RESEND = Odds(good=0.02, bad=0.15)
CORRECT = Odds(good=0.04, bad=0.4)
# After an answer the user keeps, sometimes an ordinary next message.
CHAT_ON = 0.3
PEEK_WORDS = 4  # words a user reads before deciding to stop a stream

CORRECTIONS = (
    "That's not what I asked for.",
    "no, please follow the instructions exactly",
    "That's wrong, try again.",
    "You didn't follow my instructions.",
    "Not quite. Read my question again.",
    "shorter please",
)
ORDINARY = (
    "thanks!",
    "Great, now do the same for another topic.",
    "no worries, that works",
    "Can you give me one more example?",
    "Why does that work?",
)
EDIT_SUFFIX = " Please follow every instruction exactly."


class ImplicitActs:
    def __init__(self, judge: Judge, seed: int) -> None:
        self.judge = judge
        self.seed = seed
        self.rngs: dict[int, random.Random] = {}
        self.counts: Counter[str] = Counter()

    def _rng(self, user: int) -> random.Random:
        if user not in self.rngs:
            self.rngs[user] = random.Random(f"{self.seed}:implicit:{user}")
        return self.rngs[user]

    async def send(
        self,
        account: SimulatedAccount,
        conversation: str,
        example: Example,
        prompt: str,
        sampling: dict[str, Any],
        user: int,
    ) -> Answer | Comparison:
        """Send `prompt` streamed; stop the stream after PEEK_WORDS words when the user's draw
        (on the grader's judgement of those words) says so. Returns the answer as stored, or
        the server's blind comparison when it drew one."""
        rng = self._rng(user)
        body = {"content": prompt, "sampling": sampling, "stream": True}
        path = f"/api/conversations/{conversation}/messages"
        words: list[str] = []
        decided = False
        done: dict[str, Any] | None = None
        try:
            async with aconnect_sse(
                account.http, "POST", path, json=body, headers=dict(account.headers)
            ) as source:
                if not source.response.is_success:
                    await source.response.aread()
                    raise ApiCallError(str(source.response.status_code), "send failed")
                async for sse in source.aiter_sse():
                    event = json.loads(sse.data) if sse.data.strip() else {}
                    kind = event.get("type")
                    if kind == "delta" and not decided:
                        words += event.get("text", "").split()
                        if len(words) >= PEEK_WORDS:
                            decided = True  # one decision per answer, on its first words
                            shown = self.judge.assess(example, " ".join(words)).good
                            if STOP.draw(shown, rng):
                                break  # leaving the stream is what the web UI's Stop does
                    elif kind == "done":
                        done = event
                    elif kind == "error":
                        raise ApiCallError("stream:error", str(event.get("error")))
                    elif kind == "comparison":  # the server's share of blind comparisons
                        comparison: Comparison = _parsed(_comparison, event.get("comparison"))
                        return comparison
        except (SSEError, httpx.HTTPError, ValueError, KeyError) as exc:
            raise ApiCallError(type(exc).__name__, str(exc)) from None
        if done is not None:
            message, generation = done["message"], done.get("generation") or {}
            return Answer(
                message_id=message["id"],
                user_message_id=message.get("parent_id"),
                content=message["content"],
                generation_id=message.get("generation_id"),
                model_version=generation.get("model_version"),
                finish_reason=generation.get("finish_reason"),
            )
        return await self._stored_answer(account, conversation)

    async def _stored_answer(self, account: SimulatedAccount, conversation: str) -> Answer:
        """The newest answer of the chat once it is stored (a stopped stream is recorded by
        the server just after the client left)."""
        for _ in range(50):
            tree = await account._call("GET", f"/api/conversations/{conversation}")
            answers = [m for m in tree["messages"] if m["role"] == "assistant"]
            if answers:
                m = max(answers, key=lambda row: row["created_at"])
                if m["finish_reason"] == "cancelled":
                    self.counts["stop"] += 1
                return Answer(
                    message_id=m["id"],
                    user_message_id=m["parent_id"],
                    content=m["content"],
                    generation_id=m.get("generation_id"),
                    model_version=None,  # a message does not name its model
                    finish_reason=m["finish_reason"],
                )
            await asyncio.sleep(0.1)
        raise ApiCallError("answer_not_stored", conversation)

    async def after_answer(
        self,
        account: SimulatedAccount,
        conversation: str,
        example: Example,
        answer: Answer,
        user: int,
    ) -> None:
        """Copy, edit-and-resend, or a follow-up (corrective or ordinary), by the odds."""
        rng = self._rng(user)
        good = self.judge.assess(example, answer.content).good
        if answer.finish_reason == "cancelled":
            return  # stopped: the user moves on
        if COPY.draw(good, rng):
            await self.copy(account, answer.message_id)
        if EDIT_RESEND.draw(good, rng) and answer.user_message_id:
            content = example.messages[-1].content + EDIT_SUFFIX
            path = f"/api/messages/{answer.user_message_id}/edit"
            await account._call("POST", path, json={"content": content})
            self.counts["edit_resend"] += 1
            return
        if CORRECT.draw(good, rng):
            text = rng.choice(CORRECTIONS)
            self.counts["corrective_followup_sent"] += 1
        elif good and rng.random() < CHAT_ON:
            text = rng.choice(ORDINARY)
            self.counts["ordinary_followup_sent"] += 1
        else:
            return
        path = f"/api/conversations/{conversation}/messages"
        await account._call("POST", path, json={"content": text, "parent_id": answer.message_id})

    async def copy(self, account: SimulatedAccount, message_id: str) -> None:
        await account._call("POST", f"/api/messages/{message_id}/signals", json={"kind": "copy"})
        self.counts["copy"] += 1

    def copy_vote_winner(self, good: bool, user: int) -> bool:
        """Whether the user copies the answer they voted for in a blind comparison."""
        return COPY.draw(good, self._rng(user))
