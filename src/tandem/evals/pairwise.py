"""Pairwise win rate of a candidate version against a baseline, with a judge that picks a reply.

    judge = openai_pair_judge("http://localhost:8000/v1", model="judge-model")
    # or: judge = reward_model_judge(home / "models" / "reward-v1")
    run = run_pairwise(session, "ifeval", examples, candidate, baseline, judge, owner_id=admin)
    run.summary  # {"win_rate": ..., "ci_low": ..., "lc_win_rate": ..., ...}

A judge is anything with `judge(prompt, first, second) -> "first" | "second" | "tie"`.

**Position swapping.** Every pair is judged twice, candidate first and baseline first. An item
is a win (or a loss) only when both orders agree; any disagreement is a tie. The share of items
whose two orders disagree is `position_inconsistency`: a judge that always prefers the first
reply scores 1.0 there and a win rate of exactly 0.5.

**Win rate** = (wins + 0.5 · ties) / n, with a 95% interval from the 2.5th and 97.5th
percentiles of the same figure on items resampled with replacement (seeded).

**Length-controlled win rate**, in the spirit of AlpacaEval 2.0 LC (Dubois et al., 2024): for
each item i let d_i = len(candidate_i) − len(baseline_i) in characters and
x_i = tanh(d_i / sd(d)), sd the sample standard deviation of the d_i (not centred: a candidate
that is *always* longer must still show up in the length term). Fit by maximum likelihood

    P(candidate wins item i) = σ(a + b · x_i)

to the item outcomes y_i ∈ {0, ½, 1} (a tie is half a win, as in the raw figure), with a small
ridge on b only so a length-perfect judge (a separable fit) still converges. The LC win rate
is σ(a): the predicted win rate of an answer exactly as long as the baseline's. AlpacaEval also
fits a per-instruction difficulty term, which needs many models per instruction; with one pair
of models it is absorbed into a. When every d_i is equal the length term cannot be told apart
from the intercept and the ridge drives b to 0, so LC equals the raw win rate.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import httpx
import numpy as np
from sqlalchemy.orm import Session

from tandem.core.generation import Completion, GenerationRecord, SamplingParams
from tandem.engines.base import Engine
from tandem.evals.runs import EVAL_SAMPLING, generate_answers
from tandem.evals.tasks import Example
from tandem.store.evals import EvalItem, EvalRepo, EvalRunRow
from tandem.store.generations import GenerationRepo

Verdict = Literal["first", "second", "tie"]
Outcome = Literal["win", "loss", "tie"]
OUTCOME_SCORE = {"win": 1.0, "tie": 0.5, "loss": 0.0}


class PairJudge(Protocol):
    """Which of two replies to `prompt` is better. `name` goes into the run's summary."""

    name: str

    def judge(self, prompt: str, first: str, second: str) -> Verdict: ...


# -- an LLM judge over any OpenAI-compatible endpoint -------------------------------------------

# MT-Bench's pairwise judge instruction (Zheng et al., 2023), cut to a one-word answer: greedy
# and a few tokens keep judging cheap and deterministic, and the explicit "do not let order or
# length decide" line is the same mitigation MT-Bench and AlpacaEval use — swapping measures
# how well it worked.
PAIR_JUDGE_SYSTEM = (
    "Please act as an impartial judge and evaluate the quality of the responses provided by two "
    "AI assistants to the user question displayed below. Choose the assistant that follows the "
    "user's instructions and answers the user's question better, considering helpfulness, "
    "relevance, accuracy, depth and level of detail. Avoid any position biases: the order in "
    "which the responses were presented must not influence your decision. Do not let the "
    "length of the responses influence your evaluation. Answer with exactly one word: A if "
    "assistant A is better, B if assistant B is better, or tie."
)
# The answer delimiters are MT-Bench's, so judges tuned on its format (and people reading a
# logged request) see where each reply starts and ends even when a reply contains headings.
PAIR_JUDGE_USER = (
    "[User Question]\n{prompt}\n\n"
    "[The Start of Assistant A's Answer]\n{first}\n[The End of Assistant A's Answer]\n\n"
    "[The Start of Assistant B's Answer]\n{second}\n[The End of Assistant B's Answer]"
)
# The whole reply must be the verdict (brackets, "Assistant" and punctuation allowed): "A good
# point..." is not a vote for A. Anything else is a tie, never a win.
_VERDICT = re.compile(r"\W*(?:assistant\s+)?(a|b|tie)\W*", re.IGNORECASE)
_VERDICT_OF_LETTER: dict[str, Verdict] = {"a": "first", "b": "second", "tie": "tie"}


def parse_pair_verdict(text: str) -> Verdict:
    match = _VERDICT.fullmatch(text.strip())
    if match is None:
        return "tie"
    return _VERDICT_OF_LETTER[match.group(1).lower()]


@dataclass
class OpenAIPairJudge:
    url: str
    model: str
    http: httpx.Client
    headers: dict[str, str]
    max_tokens: int = 8
    name: str = field(init=False)

    def __post_init__(self) -> None:
        self.name = f"openai:{self.model}"

    def judge(self, prompt: str, first: str, second: str) -> Verdict:
        body = {
            "model": self.model,
            "temperature": 0,
            "max_tokens": self.max_tokens,
            "messages": [
                {"role": "system", "content": PAIR_JUDGE_SYSTEM},
                {
                    "role": "user",
                    "content": PAIR_JUDGE_USER.format(prompt=prompt, first=first, second=second),
                },
            ],
        }
        r = self.http.post(self.url, json=body, headers=self.headers)
        r.raise_for_status()
        return parse_pair_verdict(r.json()["choices"][0]["message"]["content"] or "")


def openai_pair_judge(
    base_url: str,
    model: str,
    api_key: str | None = None,
    *,
    timeout_s: float = 60.0,
    client: httpx.Client | None = None,
) -> OpenAIPairJudge:
    """A pair judge on `{base_url}/chat/completions`. HTTP errors raise: a broken judge fails
    the run rather than turning every item into a tie."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    url = base_url.rstrip("/") + "/chat/completions"
    return OpenAIPairJudge(url, model, client or httpx.Client(timeout=timeout_s), headers)


# -- a reward model trained by `tandem train reward` --------------------------------------------


class RewardModelJudge:
    """Scores each reply with the reward model (chat template over prompt + reply, as
    TRL's RewardTrainer saw its training pairs); the higher score wins, within `eps` a tie."""

    def __init__(self, version_dir: Path, eps: float = 1e-3, max_length: int = 2048) -> None:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        from tandem.registry.versions import merged_checkpoint

        # Through the registry, which merges an adapter version on demand (a reward model is
        # always saved merged, so this only reads `hf/` today).
        hf = version_dir / "hf"
        if (version_dir / "manifest.json").exists():
            hf = merged_checkpoint(version_dir.parent.parent, version_dir.name)
        if not (hf / "config.json").exists():
            raise FileNotFoundError(f"no Hugging Face checkpoint in {hf}")
        self.name = f"reward:{version_dir.name}"
        self.eps, self.max_length = eps, max_length
        self.tokenizer = AutoTokenizer.from_pretrained(hf)
        # `tandem train reward` saves merged fp32 weights, so this loads without PEFT.
        self.model = AutoModelForSequenceClassification.from_pretrained(
            hf, num_labels=1, dtype=torch.float32
        ).eval()
        self._torch = torch
        # Swapping asks for every (prompt, reply) score twice; the model is deterministic.
        self._scores: dict[tuple[str, str], float] = {}

    def score(self, prompt: str, reply: str) -> float:
        key = (prompt, reply)
        if key not in self._scores:
            text = self.tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}, {"role": "assistant", "content": reply}],
                tokenize=False,
            )
            enc = self.tokenizer(
                text,
                return_tensors="pt",
                truncation=True,
                max_length=self.max_length,
                add_special_tokens=False,  # the template already has them
            )
            with self._torch.inference_mode():
                self._scores[key] = float(self.model(**enc).logits[0, 0])
        return self._scores[key]

    def judge(self, prompt: str, first: str, second: str) -> Verdict:
        a, b = self.score(prompt, first), self.score(prompt, second)
        if abs(a - b) <= self.eps:
            return "tie"
        return "first" if a > b else "second"


def reward_model_judge(version_dir: Path, eps: float = 1e-3) -> RewardModelJudge:
    """A pair judge from a registered reward version's directory (`models/<version>/`), on CPU."""
    return RewardModelJudge(version_dir, eps=eps)


# -- judging with position swapping ---------------------------------------------------------------


@dataclass(frozen=True)
class PairResult:
    """One item judged in both orders; `outcome` is from the candidate's side."""

    candidate_first: Verdict  # the verdict with the candidate shown as A
    candidate_second: Verdict  # the verdict with the baseline shown as A
    outcome: Outcome

    @property
    def consistent(self) -> bool:
        return _as_candidate(self.candidate_first, True) == _as_candidate(
            self.candidate_second, False
        )


def _as_candidate(verdict: Verdict, candidate_is_first: bool) -> Outcome:
    if verdict == "tie":
        return "tie"
    return "win" if (verdict == "first") == candidate_is_first else "loss"


def judge_swapped(judge: PairJudge, prompt: str, candidate: str, baseline: str) -> PairResult:
    v1 = judge.judge(prompt, candidate, baseline)
    v2 = judge.judge(prompt, baseline, candidate)
    o1, o2 = _as_candidate(v1, True), _as_candidate(v2, False)
    return PairResult(v1, v2, o1 if o1 == o2 else "tie")


# -- figures --------------------------------------------------------------------------------------


def win_rate_interval(
    scores: Sequence[float], bootstrap: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """95% percentile-bootstrap interval of the mean score, resampling items."""
    s = np.asarray(scores, dtype=float)
    if s.size == 0:
        raise ValueError("no items")
    rng = np.random.default_rng(seed)
    means = s[rng.integers(0, s.size, size=(max(1, bootstrap), s.size))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def length_feature(
    candidate_lengths: Sequence[float], baseline_lengths: Sequence[float]
) -> np.ndarray:
    """x_i = tanh(d_i / sd(d)), d the length differences (see the module docstring)."""
    d = np.asarray(candidate_lengths, dtype=float) - np.asarray(baseline_lengths, dtype=float)
    sd = float(d.std(ddof=1)) if d.size > 1 else 0.0
    # Equal differences carry no information separate from the intercept; any positive scale
    # gives the same (constant) column, which the ridge then ignores.
    return np.tanh(d / (sd if sd > 0 else max(1.0, float(np.abs(d).max(initial=0.0)))))


def fit_length_logistic(
    outcomes: Sequence[float],
    x: Sequence[float] | np.ndarray,
    ridge: float = 0.1,
    max_iter: int = 100,
) -> tuple[float, float]:
    """Maximum-likelihood (a, b) of P(win) = σ(a + b·x) on soft outcomes, by Newton's method;
    `ridge`·b²/2 keeps a separable fit finite."""
    y, xs = np.asarray(outcomes, dtype=float), np.asarray(x, dtype=float)
    X = np.column_stack([np.ones_like(xs), xs])
    penalty = np.diag([0.0, ridge])
    beta = np.zeros(2)
    for _ in range(max_iter):
        p = 1.0 / (1.0 + np.exp(-(X @ beta)))
        grad = X.T @ (p - y) + penalty @ beta
        # A tiny diagonal floor: all-win or all-loss data make the Hessian singular in `a`.
        hess = X.T @ (X * (p * (1 - p))[:, None]) + penalty + 1e-9 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        # All wins (or all losses) have no finite MLE for `a`: stop where σ(a) is 1 to print.
        beta = np.clip(beta - step, -30.0, 30.0)
        if np.abs(step).max() < 1e-10:
            break
    return float(beta[0]), float(beta[1])


def length_controlled_win_rate(
    outcomes: Sequence[float],
    candidate_lengths: Sequence[float],
    baseline_lengths: Sequence[float],
) -> float:
    """σ(a) of the length-adjusted fit: the win rate had both replies been equally long."""
    a, _ = fit_length_logistic(outcomes, length_feature(candidate_lengths, baseline_lengths))
    return 1.0 / (1.0 + math.exp(-a))


def pairwise_summary(
    results: Sequence[PairResult],
    candidate_lengths: Sequence[int],
    baseline_lengths: Sequence[int],
    *,
    bootstrap: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Counts, win rate with its interval, LC win rate, position inconsistency, mean lengths."""
    n = len(results)
    if n == 0:
        raise ValueError("no items to judge")
    scores = [OUTCOME_SCORE[r.outcome] for r in results]
    low, high = win_rate_interval(scores, bootstrap=bootstrap, seed=seed)
    return {
        "n": n,
        "wins": sum(r.outcome == "win" for r in results),
        "losses": sum(r.outcome == "loss" for r in results),
        "ties": sum(r.outcome == "tie" for r in results),
        "win_rate": sum(scores) / n,
        "ci_low": low,
        "ci_high": high,
        "lc_win_rate": length_controlled_win_rate(scores, candidate_lengths, baseline_lengths),
        "position_inconsistency": sum(not r.consistent for r in results) / n,
        "mean_length_candidate": sum(candidate_lengths) / n,
        "mean_length_baseline": sum(baseline_lengths) / n,
    }


# -- a stored run ---------------------------------------------------------------------------------


def prompt_text(example: Example) -> str:
    """What the judge reads as the question: the user's message, or for a longer conversation
    the transcript, so the judge sees the context both replies answered."""
    if len(example.messages) == 1:
        return example.messages[0].content
    return "\n\n".join(f"{m.role.upper()}: {m.content}" for m in example.messages)


def _record(engine: Engine, params: SamplingParams, completion: Completion) -> GenerationRecord:
    return GenerationRecord.of_completion(engine.model_id, engine.backend, params, completion)


def run_pairwise(
    session: Session,
    suite: str,
    examples: Sequence[Example],
    candidate: Engine,
    baseline: Engine,
    judge: PairJudge,
    params: SamplingParams = EVAL_SAMPLING,
    *,
    owner_id: str,
    concurrency: int = 16,
    bootstrap: int = 1000,
    seed: int = 0,
) -> EvalRunRow:
    """Generate both versions' answers, judge every pair in both orders and store the run
    (suite `pairwise:<suite>`, model = the candidate); a failure marks the run `failed`."""
    if not examples:
        raise ValueError("no examples to judge")
    repo = EvalRepo(session)
    run = repo.start_run(
        f"pairwise:{suite}",
        candidate.model_id,
        candidate.backend,
        params.to_dict(),
        created_by=owner_id,
    )
    start = time.perf_counter()
    try:

        async def both() -> tuple[list[Completion], list[Completion]]:
            return await asyncio.gather(
                generate_answers(candidate, examples, params, concurrency=concurrency),
                generate_answers(baseline, examples, params, concurrency=concurrency),
            )

        ours, theirs = asyncio.run(both())
        results = [
            judge_swapped(judge, prompt_text(e), c.text, b.text)
            for e, c, b in zip(examples, ours, theirs, strict=True)
        ]
        wall = time.perf_counter() - start
        generations = GenerationRepo(session)
        items = []
        for example, c, b, result in zip(examples, ours, theirs, results, strict=True):
            c_row = generations.add(
                owner_id, _record(candidate, params, c), example.messages, c.text
            )
            b_row = generations.add(
                owner_id, _record(baseline, params, b), example.messages, b.text
            )
            items.append(
                EvalItem(
                    example_id=example.id,
                    prompt_messages=[m.to_dict() for m in example.messages],
                    response=c.text,
                    passed=result.outcome == "win",
                    scores={"score": OUTCOME_SCORE[result.outcome]},
                    details={
                        "outcome": result.outcome,
                        "verdict_candidate_first": result.candidate_first,
                        "verdict_candidate_second": result.candidate_second,
                        "consistent": result.consistent,
                        "candidate_answer": c.text,
                        "baseline_answer": b.text,
                        "baseline_generation_id": b_row.id,
                    },
                    generation_id=c_row.id,
                )
            )
        summary = {
            "baseline": baseline.model_id,
            "judge": judge.name,
            **pairwise_summary(
                results,
                [len(c.text) for c in ours],
                [len(b.text) for b in theirs],
                bootstrap=bootstrap,
                seed=seed,
            ),
        }
        return repo.finish_run(run.id, items, summary, wall_seconds=wall)
    except BaseException as exc:
        session.rollback()
        repo.fail_run(run.id, f"{type(exc).__name__}: {exc}")
        raise
