"""The agreement of implicit signals with explicit judgements (tandem.evals.implicit_agreement):
the math on synthetic cases with known answers, then the same report from the store through
the admin API and `tandem eval implicit-agreement`.

    .venv/bin/python -m pytest -q tests/test_implicit_agreement.py
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from conftest import new_user
from tandem.cli.main import app as cli_app
from tandem.evals.implicit_agreement import agreement_from, render_text


def _synthetic():
    """100 rated answers: 20 regenerated (15 of them thumbs-down), 80 not (10 thumbs-down);
    10 decisive votes: the loser carries `regenerate` in 6, the winner in 1."""
    rated, implicit = [], {}
    for i in range(100):
        gen = f"g{i}"
        signal = i < 20
        down = i < 15 or 20 <= i < 30
        rated.append((gen, down))
        if signal:
            implicit[gen] = {"regenerate"}
    voted = []
    for i in range(10):
        win, lose = f"w{i}", f"l{i}"
        if i < 6:
            implicit[lose] = {"regenerate"}
        if i == 9:
            implicit[win] = {"regenerate"}
        voted.append(("a", win, lose) if i % 2 else ("b", lose, win))
    voted.append(("tie", "t1", "t2"))
    implicit["t1"] = {"regenerate"}
    return rated, voted, implicit


def test_counts_rates_kappa_and_mcc_on_a_known_table():
    rated, voted, implicit = _synthetic()
    report = agreement_from(rated, voted, implicit, samples=500).to_dict()
    t = report["kinds"]["regenerate"]["thumbs"]
    assert (t["answers"], t["with_signal"], t["down_with_signal"]) == (100, 20, 15)
    assert t["p_down_given_signal"] == pytest.approx(0.75)
    assert t["p_down_given_no_signal"] == pytest.approx(10 / 80)
    assert t["base_rate_down"] == pytest.approx(0.25)
    assert t["lift"] == pytest.approx(3.0)
    # tp 15, fp 5, fn 10, tn 70: kappa (0.85 - 0.65) / 0.35, MCC 1000 / sqrt(20*25*75*80).
    assert t["kappa"] == pytest.approx(0.2 / 0.35)
    assert t["mcc"] == pytest.approx(1000 / (20 * 25 * 75 * 80) ** 0.5)
    low, high = t["mcc_ci95"]
    assert low < t["mcc"] < high and low > 0.3 and high < 0.8
    v = report["kinds"]["regenerate"]["votes"]
    assert (v["pairs"], v["signal_on_loser"], v["signal_on_winner"]) == (10, 6, 1)
    assert (v["discordant"], v["discordant_loser"]) == (7, 6)
    assert v["loser_share"] == pytest.approx(6 / 7)
    # Kinds nobody produced: empty rows, not errors; "any_negative" equals regenerate here.
    assert report["kinds"]["stop"]["thumbs"]["with_signal"] == 0
    assert report["kinds"]["stop"]["thumbs"]["mcc"] is None
    assert report["kinds"]["any_negative"]["thumbs"]["mcc"] == pytest.approx(t["mcc"])
    assert report["kinds"]["copy"]["expected"] == "positive"
    assert "regenerate" in render_text(agreement_from(rated, voted, implicit, samples=100))


def test_a_signal_that_is_exactly_the_thumbs_down_agrees_perfectly():
    rated = [(f"g{i}", i % 3 == 0) for i in range(30)]
    implicit = {g: {"stop"} for g, down in rated if down}
    t = agreement_from(rated, [], implicit, samples=200).to_dict()["kinds"]["stop"]["thumbs"]
    assert t["kappa"] == pytest.approx(1.0) and t["mcc"] == pytest.approx(1.0)
    assert t["mcc_ci95"] == pytest.approx((1.0, 1.0))
    assert t["p_down_given_signal"] == 1.0 and t["p_down_given_no_signal"] == 0.0


def test_the_report_from_the_store_via_api_and_cli(client, monkeypatch, settings):
    admin = new_user(client, "admin@x.io")  # the first account administers the server
    alice = new_user(client, "alice@x.io")
    for text, rating, regenerate in [("a", "down", True), ("b", "up", False), ("c", "up", False)]:
        conv = client.post("/api/conversations", json={}, headers=alice).json()["id"]
        turn = client.post(
            f"/api/conversations/{conv}/messages", json={"content": text}, headers=alice
        ).json()
        answer = turn["assistant_message"]["id"]
        client.post(f"/api/messages/{answer}/feedback", json={"rating": rating}, headers=alice)
        if regenerate:
            client.post(f"/api/messages/{answer}/regenerate", json={}, headers=alice)
    r = client.get("/api/admin/signals/agreement", params={"bootstrap": 100}, headers=admin)
    assert r.status_code == 200, r.text
    t = r.json()["kinds"]["regenerate"]["thumbs"]
    # The regenerated answers' new versions carry no thumbs: 3 rated answers, 1 with the signal.
    assert (t["answers"], t["with_signal"], t["down_with_signal"]) == (3, 1, 1)
    assert t["p_down_given_signal"] == 1.0 and t["p_down_given_no_signal"] == 0.0
    assert client.get("/api/admin/signals/agreement", headers=alice).status_code == 403

    monkeypatch.setenv("TANDEM_HOME", str(settings.home))
    monkeypatch.setenv("TANDEM_DATABASE_URL", settings.database_url)
    result = CliRunner().invoke(cli_app, ["eval", "implicit-agreement", "--json"])
    assert result.exit_code == 0, result.output
    from_cli = json.loads(result.output)["kinds"]["regenerate"]["thumbs"]
    assert {k: from_cli[k] for k in ("answers", "with_signal", "kappa", "mcc")} == {
        k: t[k] for k in ("answers", "with_signal", "kappa", "mcc")
    }
    table = CliRunner().invoke(cli_app, ["eval", "implicit-agreement"])
    assert table.exit_code == 0 and "corrective_followup" in table.output
