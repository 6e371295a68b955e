"""Raters' rankings of N answers: which pairs they order alike, the consensus, gold accuracy.

A ranking is a list of ranks in the answers' own order, 1 = best; equal ranks are a tie. The
report (tandem.evals.rater_report) and the dataset builder (tandem.data.rater_datasets) both
read rankings through these functions, so the page and the snapshot agree on every number.

    item_agreement([[1, 2, 3], [1, 3, 2]])   # 2 of 3 pairs ordered alike → 0.667
    consensus_pairs([[1, 2], [1, 2], [2, 1]])  # [(0, 1)]: answer 0 beats answer 1 by majority
    top_choice_correct([1, 2, 2], gold=[1, 3, 2])  # True: the gold best answer, alone on top
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from itertools import combinations


def pair_order(ranks: Sequence[int], i: int, j: int) -> int:
    """-1: answer i is better, 1: answer j is better, 0: a tie."""
    return (ranks[i] > ranks[j]) - (ranks[i] < ranks[j])


def item_agreement(rankings: Sequence[Sequence[int]]) -> float | None:
    """The share of answer pairs that every rater orders the same way (ties included as an
    order); None with fewer than two rankings."""
    if len(rankings) < 2:
        return None
    n = len(rankings[0])
    pairs = list(combinations(range(n), 2))
    if not pairs:
        return None
    alike = sum(1 for i, j in pairs if len({pair_order(r, i, j) for r in rankings}) == 1)
    return alike / len(pairs)


def consensus_pairs(rankings: Sequence[Sequence[int]]) -> list[tuple[int, int]]:
    """(winner, loser) for every pair a strict majority of the rankings orders one way; a pair
    with no majority (or a majority tie) gives nothing."""
    if not rankings:
        return []
    n = len(rankings[0])
    out = []
    for i, j in combinations(range(n), 2):
        orders = [pair_order(r, i, j) for r in rankings]
        if orders.count(-1) * 2 > len(orders):
            out.append((i, j))
        elif orders.count(1) * 2 > len(orders):
            out.append((j, i))
    return out


def ordered_pairs(ranks: Sequence[int]) -> list[tuple[int, int]]:
    """(winner, loser) for every pair one ranking orders (an adjudication or a gold order)."""
    return consensus_pairs([ranks])


def gold_best(gold: Sequence[int]) -> int:
    """The gold ranking's best answer (a gold ranking has exactly one rank-1 answer)."""
    return min(range(len(gold)), key=lambda k: gold[k])


def top_choice_correct(ranks: Sequence[int], gold: Sequence[int]) -> bool:
    """Whether the rater put the gold best answer first and alone: a tie at the top does not
    count, because it does not pick the best answer."""
    top = min(ranks)
    firsts = [k for k, r in enumerate(ranks) if r == top]
    return firsts == [gold_best(gold)]


def gold_accuracy(answers: Sequence[tuple[Sequence[int], Sequence[int]]]) -> float | None:
    """The share of (rater's ranks, gold ranks) pairs whose top choice is right; None when the
    rater has answered no gold item."""
    if not answers:
        return None
    return sum(top_choice_correct(r, g) for r, g in answers) / len(answers)


def median_seconds(durations: Sequence[float]) -> float | None:
    return statistics.median(durations) if durations else None
