"""Online metrics: Wilson intervals, Bradley–Terry arena ratings (checked against a separately
written logistic regression), bootstrap intervals, DB votes -> battles, and the two commands."""

import json
import math

import numpy as np
import pytest
from typer.testing import CliRunner

from tandem.cli.main import app
from tandem.core import GenerationRecord, Message, SamplingParams
from tandem.core.settings import Settings
from tandem.evals.arena import Battle, battle_from_vote, bradley_terry_ratings, read_battles
from tandem.evals.online import online_report, wilson_interval
from tandem.store import (
    ComparisonRepo,
    ConversationRepo,
    FeedbackRepo,
    GenerationRepo,
    ProfileRepo,
    UserRepo,
    make_engine,
    make_session_factory,
    migrate,
)
from tandem.store.metrics import ThumbsCount, Vote, comparison_votes, thumbs_counts

runner = CliRunner()
TRUE_RATINGS = {"alpha": 1150.0, "bravo": 1050.0, "charlie": 950.0, "delta": 850.0}


def simulate(n: int, seed: int, tie_rate: float = 0.1) -> list[Battle]:
    """Battles drawn from known Elo-scale strengths; some outcomes replaced by ties."""
    rng = np.random.default_rng(seed)
    names = list(TRUE_RATINGS)
    battles = []
    for _ in range(n):
        i, j = rng.choice(len(names), size=2, replace=False)
        a, b = names[i], names[j]
        p_a = 1 / (1 + 10 ** ((TRUE_RATINGS[b] - TRUE_RATINGS[a]) / 400))
        roll = rng.random()
        if roll < tie_rate:
            winner = "tie" if rng.random() < 0.5 else "tie (bothbad)"
        else:
            winner = "model_a" if rng.random() < p_a else "model_b"
        battles.append(Battle(a, b, winner))
    return battles


def logistic_regression_ratings(battles: list[Battle]) -> dict[str, float]:
    """The independent reference: Arena's design matrix (+ln10 / -ln10 per battle, a tie as
    two half-weight rows with y=1 and y=0) fitted by plain full-batch gradient descent."""
    names = sorted({b.model_a for b in battles} | {b.model_b for b in battles})
    col = {m: i for i, m in enumerate(names)}
    rows, ys, ws = [], [], []
    for b in battles:
        x = np.zeros(len(names))
        x[col[b.model_a]], x[col[b.model_b]] = math.log(10), -math.log(10)
        if b.winner.startswith("tie"):
            rows += [x, x]
            ys += [1.0, 0.0]
            ws += [0.5, 0.5]
        else:
            rows.append(x)
            ys.append(1.0 if b.winner == "model_a" else 0.0)
            ws.append(1.0)
    x, y, w = np.array(rows), np.array(ys), np.array(ws)
    beta = np.zeros(len(names))
    for _ in range(20_000):
        p = 1 / (1 + np.exp(-(x @ beta)))
        beta -= 0.5 * x.T @ (w * (p - y)) / w.sum()
    return {m: 400 * beta[i] + 1000 for m, i in col.items()}


# -- Wilson ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("successes", "n", "low", "high"),
    [
        (8, 10, 0.4902, 0.9433),  # textbook example (Newcombe 1998 style tables)
        (0, 10, 0.0, 0.2775),
        (10, 10, 0.7225, 1.0),
        (81, 263, 0.2553, 0.3662),
    ],
)
def test_wilson_interval_matches_known_values(successes, n, low, high):
    got = wilson_interval(successes, n)
    assert got == pytest.approx((low, high), abs=5e-4)


def test_wilson_interval_edges():
    assert wilson_interval(0, 0) == (0.0, 1.0)
    narrow, wide = wilson_interval(50, 100), wilson_interval(50, 100, z=2.576)
    assert wide[0] < narrow[0] and wide[1] > narrow[1]
    with pytest.raises(ValueError):
        wilson_interval(3, 2)


# -- Bradley–Terry -----------------------------------------------------------------------


def test_bradley_terry_matches_independent_logistic_regression():
    battles = simulate(3000, seed=1)
    ours = bradley_terry_ratings(battles, bootstrap=0)
    reference = logistic_regression_ratings(battles)
    for model, value in reference.items():
        assert ours[model].rating == pytest.approx(value, abs=0.05)
    # And both recover the strengths the battles were drawn from.
    for model, true in TRUE_RATINGS.items():
        assert abs(ours[model].rating - true) < 30
    assert list(ours) == ["alpha", "bravo", "charlie", "delta"]
    assert sum(r.rating for r in ours.values()) / 4 == pytest.approx(1000.0)
    assert sum(r.battles for r in ours.values()) == 2 * 3000


def test_a_tie_is_half_a_win_each_way():
    base = simulate(300, seed=2, tie_rate=0.0)
    with_ties = base + [Battle("alpha", "delta", "tie")] * 40
    as_split = base + [Battle("alpha", "delta", "model_a")] * 20
    as_split += [Battle("delta", "alpha", "model_a")] * 20
    tied = bradley_terry_ratings(with_ties, bootstrap=0)
    split = bradley_terry_ratings(as_split, bootstrap=0)
    for model in TRUE_RATINGS:
        assert tied[model].rating == pytest.approx(split[model].rating, abs=1e-6)
    bothbad = [Battle("x", "y", "tie (bothbad)")] * 5 + [Battle("x", "y", "model_a")]
    plain = [Battle("x", "y", "tie")] * 5 + [Battle("x", "y", "model_a")]
    assert bradley_terry_ratings(bothbad, bootstrap=0)["x"].rating == pytest.approx(
        bradley_terry_ratings(plain, bootstrap=0)["x"].rating
    )
    only_ties = bradley_terry_ratings([Battle("x", "y", "tie")] * 3, bootstrap=0)
    assert only_ties["x"].rating == pytest.approx(1000.0)


def test_bootstrap_intervals_contain_estimate_narrow_and_are_seeded():
    small = bradley_terry_ratings(simulate(200, seed=3), bootstrap=200, seed=7)
    large = bradley_terry_ratings(simulate(4000, seed=3), bootstrap=200, seed=7)
    for model in TRUE_RATINGS:
        for result in (small, large):
            assert result[model].ci_low <= result[model].rating <= result[model].ci_high
        assert (large[model].ci_high - large[model].ci_low) < 0.5 * (
            small[model].ci_high - small[model].ci_low
        )
    again = bradley_terry_ratings(simulate(200, seed=3), bootstrap=200, seed=7)
    assert again == small
    other = bradley_terry_ratings(simulate(200, seed=3), bootstrap=200, seed=8)
    assert other != small


def test_undefeated_model_stays_finite_and_anchor_shifts():
    battles = [Battle("champ", "other", "model_a")] * 5 + simulate(100, seed=4)
    battles += [Battle("other", "alpha", "tie")]
    ratings = bradley_terry_ratings(battles, bootstrap=20, seed=0)
    assert all(math.isfinite(r.ci_high) for r in ratings.values())
    assert next(iter(ratings)) == "champ"
    anchored = bradley_terry_ratings(simulate(500, seed=5), bootstrap=10, anchor=("delta", 1114))
    assert anchored["delta"].rating == pytest.approx(1114)
    assert anchored["delta"].ci_low == pytest.approx(1114)


def test_battle_validation_and_self_battles():
    with pytest.raises(ValueError):
        Battle("a", "b", "draw")
    assert battle_from_vote("v1", "v2", "both_bad") == Battle("v1", "v2", "tie (bothbad)")
    assert battle_from_vote("v1", "v2", "b").winner == "model_b"
    with pytest.raises(ValueError):
        battle_from_vote("v1", "v2", "maybe")
    # Two answers from one version say nothing about its rating.
    assert bradley_terry_ratings([Battle("v1", "v1", "model_a")]) == {}


# -- the arena-ratings command -----------------------------------------------------------


def test_arena_ratings_cli_on_jsonl(tmp_path):
    log = tmp_path / "battles.jsonl"
    rows = [b.to_dict() | {"judge": "someone"} for b in simulate(400, seed=6)]
    log.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    result = runner.invoke(
        app, ["eval", "arena-ratings", "--battles", str(log), "--bootstrap", "30", "--seed", "1"]
    )
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    assert list(printed) == ["alpha", "bravo", "charlie", "delta"]
    assert set(printed["alpha"]) == {"rating", "ci_low", "ci_high", "battles"}
    direct = bradley_terry_ratings(read_battles(log), bootstrap=30, seed=1)
    assert printed["delta"]["rating"] == round(direct["delta"].rating, 2)

    log.write_text('{"model_a": "x", "model_b": "y", "winner": "x"}\n')
    bad = runner.invoke(app, ["eval", "arena-ratings", "--battles", str(log)])
    assert bad.exit_code == 1 and "battles.jsonl:1" in bad.output
    log.write_text("not json\n")
    assert runner.invoke(app, ["eval", "arena-ratings", "--battles", str(log)]).exit_code == 1


# -- from the database -------------------------------------------------------------------


def _answer(session, user_id, conv_id, parent_id, model_version):
    record = GenerationRecord(
        model_version=model_version,
        engine="fake",
        sampling=SamplingParams(),
        seed=None,
        rendered_prompt=None,
        prompt_tokens=1,
        completion_tokens=1,
        latency_s=0.0,
        time_to_first_token_s=None,
        finish_reason="stop",
    )
    gen = GenerationRepo(session).add(user_id, record, output_text="ok")
    return ConversationRepo(session).add_message(
        user_id, conv_id, Message.text("assistant", "ok"), parent_id, generation_id=gen.id
    )


def _populate(session):
    """Two users' thumbs and votes; returns nothing, the assertions know the layout."""
    users = UserRepo(session)
    alice, bob = users.create("alice@x.io", "pw-123456"), users.create("bob@x.io", "pw-123456")
    convs, feedback, comparisons = (
        ConversationRepo(session),
        FeedbackRepo(session),
        ComparisonRepo(session),
    )
    coder = ProfileRepo(session).create(alice.id, "coder")
    for user, profile_id in ((alice, coder.id), (bob, None)):
        conv = convs.create(user.id, profile_id=profile_id)
        q = convs.add_message(user.id, conv.id, Message.text("user", "q"), None)
        a = _answer(session, user.id, conv.id, q.id, "v1")
        b = _answer(session, user.id, conv.id, q.id, "v2")
        feedback.rate_message(user.id, a.id, "down")
        feedback.rate_message(user.id, a.id, "up")  # supersedes the "down"
        feedback.rate_message(user.id, b.id, "down")
        comparisons.vote(user.id, comparisons.create(user.id, conv.id, q.id, a.id, b.id).id, "a")
        comparisons.create(user.id, conv.id, q.id, b.id, a.id)  # never voted on
    conv = convs.create(bob.id)
    q = convs.add_message(bob.id, conv.id, Message.text("user", "q"), None)
    a, b = (_answer(session, bob.id, conv.id, q.id, v) for v in ("v1", "v2"))
    feedback.rate_message(bob.id, b.id, "up")
    feedback.withdraw_message(bob.id, b.id)
    comparisons.vote(bob.id, comparisons.create(bob.id, conv.id, q.id, b.id, a.id).id, "both_bad")
    # A deleted conversation's signals no longer count.
    gone = convs.create(bob.id)
    q = convs.add_message(bob.id, gone.id, Message.text("user", "q"), None)
    a, b = (_answer(session, bob.id, gone.id, q.id, v) for v in ("v1", "v2"))
    feedback.rate_message(bob.id, b.id, "up")
    comparisons.vote(bob.id, comparisons.create(bob.id, gone.id, q.id, b.id, a.id).id, "a")
    convs.delete(bob.id, gone.id)


def test_db_thumbs_and_votes_become_rates_and_battles(session):
    _populate(session)
    assert thumbs_counts(session) == [ThumbsCount("v1", 2, 2), ThumbsCount("v2", 0, 2)]
    by_profile = {row.key: row for row in thumbs_counts(session, by="profile")}
    assert by_profile == {"coder": ThumbsCount("coder", 1, 2), None: ThumbsCount(None, 1, 2)}
    assert sorted(comparison_votes(session), key=lambda v: v.verdict) == [
        Vote("v1", "v2", "a"),
        Vote("v1", "v2", "a"),
        Vote("v2", "v1", "both_bad"),
    ]
    report = online_report(session, bootstrap=10)
    v1 = report["thumbs_up"]["by_model_version"]["v1"]
    assert v1["rate"] == 1.0 and (v1["ci_low"], v1["ci_high"]) == (
        round(wilson_interval(2, 2)[0], 4),
        1.0,
    )
    assert report["thumbs_up"]["by_profile"]["(none)"]["total"] == 2
    arena = report["arena"]
    assert arena["votes"] == 3 and list(arena["ratings"]) == ["v1", "v2"]
    # 2.5 wins to 0.5: the same fit as an imported log with those outcomes.
    log = [Battle("v1", "v2", "model_a")] * 2 + [Battle("v2", "v1", "tie (bothbad)")]
    expected = bradley_terry_ratings(log, bootstrap=0)["v1"].rating
    assert arena["ratings"]["v1"]["rating"] == round(expected, 2)
    assert expected == pytest.approx(1000 + 200 * math.log10(5))


def test_online_cli_reads_the_database(tandem_home):
    engine = make_engine(Settings.from_env().database_url)
    migrate(engine)
    with make_session_factory(engine)() as session:
        _populate(session)
    engine.dispose()
    result = runner.invoke(app, ["eval", "online", "--json", "--bootstrap", "5"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["thumbs_up"]["by_model_version"]["v2"]["up"] == 0
    assert set(report["arena"]["ratings"]) == {"v1", "v2"}
    table = runner.invoke(app, ["eval", "online", "--bootstrap", "5"])
    assert table.exit_code == 0, table.output
    assert "Thumbs-up rate by model version" in table.output and "coder" in table.output
    assert "Arena ratings" in table.output
