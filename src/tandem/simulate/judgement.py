"""A simulated user's judgement: thumbs and comparison votes decided by a verifiable grader,
flipped at a configurable noise rate.

    judge = Judge(get_task("instructions", split="train"), noise=0.1)
    thumbs = judge.thumbs(example, answer, rng)      # Thumbs(rating="down", reasons=[...], ...)
    vote = judge.vote(example, answer_a, answer_b, rng)   # Vote(verdict="a", ...)

The grader is the user's brain, not the server's: it only sees the text the API returned.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from tandem.core.signals import VERDICTS, FeedbackReason, Verdict
from tandem.evals.tasks import Example, Task

# A thumbs-down that noise turned against a good answer still needs a reason a person might
# give; "didnt_follow_instructions" would be a lie the grader can check, so it is not one.
NOISY_DOWN_REASONS: tuple[FeedbackReason, ...] = ("other", "not_factual", "too_long")


@dataclass(frozen=True)
class Assessment:
    """What the grader thinks of one answer."""

    good: bool
    reward: float
    failed_instructions: tuple[str, ...]


@dataclass(frozen=True)
class Thumbs:
    rating: str  # "up" | "down"
    reasons: tuple[str, ...]
    comment: str
    assessment: Assessment
    flipped: bool  # noise made the rating disagree with the grader


@dataclass(frozen=True)
class Vote:
    verdict: Verdict
    deserved: str  # the grader's verdict before noise
    a: Assessment
    b: Assessment

    @property
    def flipped(self) -> bool:
        return self.verdict != self.deserved


# Per-user tastes for answer length (`SimulationConfig.tastes`): who prefers the shorter of two
# answers and who the longer. They are the simulator's assumption, not a finding about people.
TASTES = ("concise", "detailed")
# Answers whose lengths are within this share of each other are a tie to either taste.
SAME_LENGTH = 0.1


def taste_verdict(taste: str, answer_a: str, answer_b: str) -> Verdict:
    """What a user of `taste` votes between two answers: the shorter ("concise") or the
    longer ("detailed") in words; a tie when they are about as long."""
    if taste not in TASTES:
        raise ValueError(f"taste must be one of {TASTES}, not {taste!r}")
    a, b = len(answer_a.split()), len(answer_b.split())
    if abs(a - b) <= SAME_LENGTH * max(a, b, 1):
        return "tie"
    shorter: Verdict = "a" if a < b else "b"
    longer: Verdict = "b" if shorter == "a" else "a"
    return shorter if taste == "concise" else longer


class Judge:
    """Grades answers with `task` and turns the grades into signals.

    `pass_threshold` None: an answer is good when `task.grade(...).passed`; a number: when
    `task.reward(...) >= pass_threshold` (for IFEval-style tasks, the share of instructions
    followed)."""

    def __init__(self, task: Task, noise: float = 0.0, pass_threshold: float | None = None):
        if not 0.0 <= noise <= 1.0:
            raise ValueError(f"noise must be within 0..1, not {noise}")
        self.task = task
        self.noise = noise
        self.pass_threshold = pass_threshold

    def assess(self, example: Example, answer: str) -> Assessment:
        grade = self.task.grade(example, answer)
        reward = self.task.reward(example, answer)
        good = grade.passed if self.pass_threshold is None else reward >= self.pass_threshold
        ids = grade.details.get("instruction_id_list") or ()
        followed = grade.details.get("follow_instruction_list_strict") or ()
        failed = tuple(i for i, ok in zip(ids, followed, strict=False) if not ok)
        return Assessment(good=good, reward=reward, failed_instructions=failed)

    def thumbs(self, example: Example, answer: str, rng: random.Random) -> Thumbs:
        """Up for a good answer, down for a bad one, the other way round with probability
        `noise`. A deserved thumbs-down says which instructions were not followed."""
        assessment = self.assess(example, answer)
        flipped = rng.random() < self.noise
        up = assessment.good != flipped
        if up:
            return Thumbs("up", (), "", assessment, flipped)
        if assessment.good:  # a good answer rated down by noise
            return Thumbs("down", (rng.choice(NOISY_DOWN_REASONS),), "", assessment, flipped)
        failed = assessment.failed_instructions
        comment = f"did not follow: {', '.join(failed)}" if failed else "not what I asked for"
        return Thumbs("down", ("didnt_follow_instructions",), comment, assessment, flipped)

    def vote_by_taste(
        self, taste: str, example: Example, answer_a: str, answer_b: str, rng: random.Random
    ) -> Vote:
        """A vote by answer length (`taste_verdict`) instead of the grader, flipped to one of
        the three other verdicts with probability `noise`; the grades are kept for the tally."""
        a, b = self.assess(example, answer_a), self.assess(example, answer_b)
        deserved = taste_verdict(taste, answer_a, answer_b)
        verdict = deserved
        if rng.random() < self.noise:
            verdict = rng.choice([v for v in VERDICTS if v != deserved])
        return Vote(verdict, deserved, a, b)

    def vote(self, example: Example, answer_a: str, answer_b: str, rng: random.Random) -> Vote:
        """The answer with the higher reward wins; equal rewards are a tie when both answers
        are good and "both_bad" otherwise. With probability `noise`, one of the three other
        verdicts instead, chosen uniformly."""
        a, b = self.assess(example, answer_a), self.assess(example, answer_b)
        deserved: Verdict
        if a.reward != b.reward:
            deserved = "a" if a.reward > b.reward else "b"
        else:
            deserved = "tie" if a.good and b.good else "both_bad"
        verdict = deserved
        if rng.random() < self.noise:
            verdict = rng.choice([v for v in VERDICTS if v != deserved])
        return Vote(verdict, deserved, a, b)
