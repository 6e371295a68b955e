"""A behavior experiment's result: which variant people prefer, and whether they split.

    result = experiment_result(votes, ["concise", "detailed"])    # pure: votes in, dict out
    report = experiment_report(session, experiment_id)            # the same, read from the store
    report["recommendation"]    # {"action": "personalize", "variant": "detailed", "why": ...}

`tandem experiments result ID`, GET /api/admin/experiments/{id}/result and the console's
Experiments page all show this dict (docs/experiments.md says how to read it).

Method:
- **Preference per variant**: its win share over the comparisons it was in, a tie (either
  kind: "tie" or "both_bad") counting half, with a Wilson 95% interval
  (tandem.evals.online.wilson_interval). With 3+ variants also Bradley–Terry strengths with
  bootstrap 95% intervals (tandem.evals.arena), since win shares then depend on the opponents.
- **The leader** is the variant with the highest win share. It wins clearly when, with two
  variants, its interval lies above 1/2 (the two intervals do not overlap), and with more, its
  Bradley–Terry interval lies above every other's.
- **Split by user**: for each user with at least `min_user_votes` decisive votes (a or b, ties
  left out) in comparisons with the leader, an exact one-sided binomial test of "the leader
  wins half of them"; a user whose leader share is significantly below 1/2 (p < `alpha`)
  prefers another variant. At `alpha` some users of a uniform crowd would pass by chance, so
  the count is tested against that: people split when the opposite users are more than chance
  gives (binomial tail with p = `alpha`, below 0.05) and at least `min_group_share` of the
  users tested.
- **Split by segment**: the segment is the chat's profile (none is a segment too): a real
  column, one a client sets by choosing the profile a chat opens with. A chi-square test of
  homogeneity on leader wins/losses across segments with at least `min_segment_votes` decisive
  votes; they split when it is significant and a segment holding at least `min_group_share` of
  those votes significantly prefers another variant (its Wilson interval below 1/2).
- **Recommendation**: "personalize" (offer the variant the split-off group prefers) when people
  split; otherwise "make_default" (the leader) when it wins clearly; otherwise "no_difference".
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from tandem.core.signals import RECOMMENDATION_LABELS, Recommendation
from tandem.evals.arena import battle_from_vote, bradley_terry_ratings
from tandem.evals.online import wilson_interval
from tandem.store.experiments import ExperimentRepo, ExperimentVote

NO_PROFILE = "(no profile)"


def binomial_tail(k: int, n: int, p: float, upper: bool = False) -> float:
    """P(X <= k) (or, `upper`, P(X >= k)) for X ~ Binomial(n, p), summed in log space so a
    thousand users do not overflow the binomial coefficients."""
    if n < 0 or not 0.0 <= p <= 1.0:
        raise ValueError("need n >= 0 and 0 <= p <= 1")
    indices = range(max(k, 0), n + 1) if upper else range(0, min(k, n) + 1)
    if p in (0.0, 1.0):
        return float(sum(1 for i in indices if i == (0 if p == 0.0 else n)))
    log_p, log_q = math.log(p), math.log1p(-p)
    total = 0.0
    for i in indices:
        log_comb = math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1)
        total += math.exp(log_comb + i * log_p + (n - i) * log_q)
    return min(1.0, total)


def chi_square_sf(x: float, df: int) -> float:
    """P(X >= x) for X ~ chi-square with `df` degrees of freedom (closed forms: a Poisson sum
    for even df, erfc plus a series for odd df)."""
    if df < 1:
        raise ValueError("df must be at least 1")
    if x <= 0:
        return 1.0
    half = x / 2
    if df % 2 == 0:
        terms = (-half + j * math.log(half) - math.lgamma(j + 1) for j in range(df // 2))
        return min(1.0, sum(math.exp(t) for t in terms))
    total = math.erfc(math.sqrt(half))
    # 2·φ(√x)·Σ_{j=1}^{(df-1)/2} x^(j-1/2) / (1·3·…·(2j-1)), each term in log space.
    log_scale = math.log(2) - half - 0.5 * math.log(2 * math.pi)
    log_term = 0.5 * math.log(x)  # j = 1: √x / 1
    for j in range(1, (df - 1) // 2 + 1):
        total += math.exp(log_scale + log_term)
        log_term += math.log(x) - math.log(2 * j + 1)
    return min(1.0, total)


def chi_square_homogeneity(rows: Sequence[tuple[int, int]]) -> tuple[float, int, float]:
    """(statistic, df, p) of Pearson's test that every row (segment) has the same split
    between the two columns; (0, 0, 1) when there is nothing to compare."""
    rows = [r for r in rows if sum(r) > 0]
    total = sum(sum(r) for r in rows)
    columns = [sum(r[c] for r in rows) for c in (0, 1)]
    if len(rows) < 2 or 0 in columns:
        return 0.0, 0, 1.0
    stat = 0.0
    for row in rows:
        for c in (0, 1):
            expected = sum(row) * columns[c] / total
            stat += (row[c] - expected) ** 2 / expected
    df = len(rows) - 1
    return stat, df, chi_square_sf(stat, df)


def _score(vote: ExperimentVote, variant: str) -> float | None:
    """The variant's score in this vote: 1 won, 0 lost, 0.5 a tie; None: not in it."""
    if variant not in (vote.variant_a, vote.variant_b) or vote.variant_a == vote.variant_b:
        return None
    if vote.verdict in ("tie", "both_bad"):
        return 0.5
    won = vote.variant_a if vote.verdict == "a" else vote.variant_b
    return 1.0 if won == variant else 0.0


def _interval_row(wins: float, n: int) -> dict[str, Any]:
    low, high = wilson_interval(wins, n)
    share = wins / n if n else None
    return {
        "win_share": round(share, 4) if share is not None else None,
        "ci_low": round(low, 4),
        "ci_high": round(high, 4),
    }


def _preferences(votes: Sequence[ExperimentVote], variants: Sequence[str]) -> list[dict[str, Any]]:
    out = []
    for name in variants:
        scores = [s for v in votes if (s := _score(v, name)) is not None]
        wins = sum(scores)
        out.append(
            {
                "name": name,
                "comparisons": len(scores),
                "wins": wins,
                **_interval_row(wins, len(scores)),
            }
        )
    return out


def _decisive(votes: Sequence[ExperimentVote], leader: str) -> list[tuple[ExperimentVote, bool]]:
    """The leader's decisive votes (a or b) and whether the leader won each."""
    return [(v, s == 1.0) for v in votes if (s := _score(v, leader)) in (0.0, 1.0)]


def _beaten_by(rows: Sequence[tuple[ExperimentVote, bool]], leader: str) -> str | None:
    """The variant that beat the leader most often in these votes."""
    beaten = Counter(
        v.variant_b if v.variant_a == leader else v.variant_a for v, won in rows if not won
    )
    return beaten.most_common(1)[0][0] if beaten else None


def _users(
    decisive: Sequence[tuple[ExperimentVote, bool]],
    leader: str,
    min_votes: int,
    alpha: float,
    min_share: float,
) -> dict[str, Any]:
    by_user: dict[str, list[tuple[ExperimentVote, bool]]] = defaultdict(list)
    for vote, won in decisive:
        by_user[vote.user_id].append((vote, won))
    tested = opposite = with_leader = 0
    prefer: Counter[str] = Counter()
    for rows in by_user.values():
        n = len(rows)
        if n < min_votes:
            continue
        tested += 1
        wins = sum(won for _, won in rows)
        if binomial_tail(wins, n, 0.5) < alpha:
            opposite += 1
            prefer[_beaten_by(rows, leader) or "?"] += 1
        elif binomial_tail(wins, n, 0.5, upper=True) < alpha:
            with_leader += 1
    chance_p = binomial_tail(opposite, tested, alpha, upper=True) if tested else 1.0
    share = opposite / tested if tested else 0.0
    return {
        "min_votes": min_votes,
        "voters": len(by_user),
        "tested": tested,
        "opposite": opposite,
        "opposite_share": round(share, 4),
        "with_leader": with_leader,
        "prefer": dict(prefer.most_common()),
        "chance_p": round(chance_p, 6),
        "split": bool(opposite >= 2 and share >= min_share and chance_p < 0.05),
    }


def _segments(
    votes: Sequence[ExperimentVote],
    decisive: Sequence[tuple[ExperimentVote, bool]],
    leader: str,
    min_votes: int,
    alpha: float,
    min_share: float,
) -> dict[str, Any]:
    by_segment: dict[str | None, list[tuple[ExperimentVote, bool]]] = defaultdict(list)
    for vote, won in decisive:
        by_segment[vote.segment].append((vote, won))
    names = {v.segment: v.segment_name for v in votes}
    ties = Counter(v.segment for v in votes if _score(v, leader) == 0.5)
    rows = []
    for segment in sorted(by_segment, key=lambda s: (s is not None, names.get(s) or "", s or "")):
        seg = by_segment[segment]
        wins, losses = sum(won for _, won in seg), sum(not won for _, won in seg)
        interval = _interval_row(wins, wins + losses)
        prefers = None
        if interval["ci_high"] < 0.5:
            prefers = _beaten_by(seg, leader)
        elif interval["ci_low"] > 0.5:
            prefers = leader
        rows.append(
            {
                "segment": segment,
                "name": names.get(segment) or NO_PROFILE,
                "decisive_votes": wins + losses,
                "ties": ties[segment],
                "leader_wins": wins,
                "leader_losses": losses,
                "leader_share": interval["win_share"],
                "ci_low": interval["ci_low"],
                "ci_high": interval["ci_high"],
                "prefers": prefers,
                "tested": wins + losses >= min_votes,
            }
        )
    tested = [r for r in rows if r["tested"]]
    stat, df, p = chi_square_homogeneity([(r["leader_wins"], r["leader_losses"]) for r in tested])
    total = sum(r["decisive_votes"] for r in tested)
    opposite = [
        r
        for r in tested
        if r["prefers"] not in (None, leader) and r["decisive_votes"] >= min_share * total
    ]
    return {
        "by": "profile",
        "min_votes": min_votes,
        "rows": rows,
        "chi_square": round(stat, 4),
        "df": df,
        "p_value": round(p, 6),
        "opposite": [r["name"] for r in opposite],
        "split": bool(df >= 1 and p < alpha and opposite),
    }


def _clear_winner(
    leader: str, preferences: Sequence[dict[str, Any]], strengths: dict[str, Any] | None
) -> bool:
    if strengths is None:
        return next(p for p in preferences if p["name"] == leader)["ci_low"] > 0.5
    others = [r for name, r in strengths.items() if name != leader]
    return leader in strengths and all(strengths[leader]["ci_low"] > r["ci_high"] for r in others)


def _p(value: float) -> str:
    return "p < 0.001" if value < 0.001 else f"p = {value:.2g}"


def _recommend(
    leader: str | None,
    clear: bool,
    preferences: Sequence[dict[str, Any]],
    users: dict[str, Any] | None,
    segments: dict[str, Any] | None,
) -> dict[str, Any]:
    def say(action: Recommendation, variant: str | None, why: str) -> dict[str, Any]:
        return {
            "action": action,
            "label": RECOMMENDATION_LABELS[action],
            "variant": variant,
            "why": why,
        }

    if leader is None:
        return say("no_difference", None, "No votes yet.")
    top = next(p for p in preferences if p["name"] == leader)
    overall = (
        f"{leader} wins {top['win_share']:.0%} of its {top['comparisons']} comparisons "
        f"(95% interval {top['ci_low']:.0%}–{top['ci_high']:.0%})"
    )
    reasons = []
    variant = None
    if users and users["split"]:
        variant = next(iter(users["prefer"]), None)
        reasons.append(
            f"{users['opposite']} of {users['tested']} users with {users['min_votes']}+ votes "
            f"({users['opposite_share']:.0%}) significantly prefer "
            f"{' / '.join(users['prefer'])} (chance would give that many with "
            f"{_p(users['chance_p'])})"
        )
    if segments and segments["split"]:
        row = next(r for r in segments["rows"] if r["name"] == segments["opposite"][0])
        variant = variant or row["prefers"]
        reasons.append(
            f"chats in {', '.join(segments['opposite'])} prefer {row['prefers']} "
            f"(chi-square {segments['chi_square']:.1f}, df {segments['df']}, "
            f"{_p(segments['p_value'])})"
        )
    if reasons and variant is not None:
        default = f"keep {leader} as the default" if clear else "no single default wins"
        why = f"People split: {'; '.join(reasons)}. Overall {overall}: {default}."
        return say("personalize", variant, why)
    if clear:
        return say("make_default", leader, f"{overall}, and no sizeable group prefers otherwise.")
    return say("no_difference", None, f"The intervals overlap: {overall}.")


def experiment_result(
    votes: Sequence[ExperimentVote],
    variants: Sequence[str],
    *,
    min_user_votes: int = 8,
    min_segment_votes: int = 10,
    min_group_share: float = 0.1,
    alpha: float = 0.05,
    bootstrap: int = 200,
    seed: int = 0,
) -> dict[str, Any]:
    """The result of an experiment with these `variants` (names) from its voted comparisons;
    the module docstring says how each figure is made."""
    preferences = _preferences(votes, variants)
    strengths = None
    if len(variants) >= 3 and votes:
        battles = [battle_from_vote(v.variant_a, v.variant_b, v.verdict) for v in votes]
        ratings = bradley_terry_ratings(battles, bootstrap=bootstrap, seed=seed)
        strengths = {name: r.to_dict() for name, r in ratings.items()}
    played = [p for p in preferences if p["comparisons"]]
    leader = max(played, key=lambda p: p["win_share"])["name"] if played else None
    clear = leader is not None and _clear_winner(leader, preferences, strengths)
    users = segments = None
    if leader is not None:
        decisive = _decisive(votes, leader)
        users = _users(decisive, leader, min_user_votes, alpha, min_group_share)
        segments = _segments(votes, decisive, leader, min_segment_votes, alpha, min_group_share)
    return {
        "votes": len(votes),
        "verdicts": dict(Counter(v.verdict for v in votes)),
        "variants": preferences,
        "bradley_terry": strengths,
        "leader": leader,
        "clear_winner": clear,
        "users": users,
        "segments": segments,
        "recommendation": _recommend(leader, clear, preferences, users, segments),
        "method": {
            "alpha": alpha,
            "min_user_votes": min_user_votes,
            "min_segment_votes": min_segment_votes,
            "min_group_share": min_group_share,
            "bootstrap": bootstrap if strengths is not None else 0,
        },
    }


def experiment_report(
    session: Session, experiment_id: str, bootstrap: int = 200, seed: int = 0
) -> dict[str, Any]:
    """The stored experiment's result, with what it is and how many comparisons it drew."""
    repo = ExperimentRepo(session)
    row = repo.get(experiment_id)
    names = [v.name for v in repo.variants(row.id)]
    result = experiment_result(repo.votes(row.id), names, bootstrap=bootstrap, seed=seed)
    return {
        "experiment_id": row.id,
        "name": row.name,
        "status": row.status,
        "comparisons": repo.comparison_count(row.id),
        **result,
    }
