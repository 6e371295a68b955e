"""Rollout: sticky A/B assignment, comparisons against production, gates, promotion, rollback,
the admin API and page, and serving that follows production without a restart."""

from __future__ import annotations

import dataclasses
import html
import re

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from conftest import log_in_as, new_user
from tandem.core.errors import Conflict, InvalidInput
from tandem.core.generation import GenerationRecord, SamplingParams
from tandem.rollout.gates import GateConfig, check_gates
from tandem.rollout.promotion import GatesFailed, promote, rollback
from tandem.rollout.routing import assigned_version
from tandem.store import (
    EvalRepo,
    FeedbackRepo,
    GenerationRepo,
    ModelVersionRepo,
    RolloutRepo,
    UserRepo,
)
from tandem.store.rollouts import Candidate


def _run(session, suite: str, model: str, **summary: float) -> None:
    repo = EvalRepo(session)
    run = repo.start_run(suite, model, "fake", {})
    repo.finish_run(run.id, [], dict(summary), 1.0)


def _seed_required(session, prod: str, cand: str, ifeval=(0.50, 0.50), xstest=(0.10, 0.10)):
    _run(session, "ifeval", prod, average_strict=ifeval[0])
    _run(session, "ifeval", cand, average_strict=ifeval[1])
    _run(session, "xstest", prod, safe_refusal_rate=xstest[0])
    _run(session, "xstest", cand, safe_refusal_rate=xstest[1])


def _thumbs(session, user_id: str, model: str, up: int, down: int) -> None:
    gens, feedback = GenerationRepo(session), FeedbackRepo(session)
    for i in range(up + down):
        record = GenerationRecord(
            model_version=model,
            engine="fake",
            sampling=SamplingParams(),
            seed=i,
            rendered_prompt="q",
            prompt_tokens=1,
            completion_tokens=1,
            latency_s=0.0,
            time_to_first_token_s=None,
            finish_reason="stop",
        )
        gen = gens.add(user_id, record, output_text="a")
        feedback.rate_generation(user_id, gen.id, "up" if i < up else "down")


# -- assignment --------------------------------------------------------------------------------


def test_sticky_assignment_follows_the_shares_and_stays_put():
    candidates = [Candidate("cand-a", 0.10, False), Candidate("cand-b", 0.25, False)]
    users = [f"user-{i}" for i in range(2000)]
    served = [assigned_version("rollout-1", u, "prod", candidates) for u in users]
    for version, share in (("cand-a", 0.10), ("cand-b", 0.25), ("prod", 0.65)):
        assert abs(served.count(version) / len(users) - share) <= 0.03, version
    # One user, one version: asking again (or from another process) gives the same answer.
    assert served == [assigned_version("rollout-1", u, "prod", candidates) for u in users]
    # Another rollout splits users independently.
    other = [assigned_version("rollout-2", u, "prod", candidates) for u in users]
    assert other != served
    # A candidate that is not servable here sends its users to production, not to an error.
    fallback = [
        assigned_version("rollout-1", u, "prod", candidates, lambda v: v != "cand-a") for u in users
    ]
    assert "cand-a" not in fallback and fallback.count("cand-b") == served.count("cand-b")


# -- store: durable rollouts and history --------------------------------------------------------


def test_rollout_store_validates_and_records_history(session):
    repo = RolloutRepo(session)
    rollout = repo.set_production(None, "v1", None, "first")
    assert repo.for_profile(None).id == rollout.id
    repo.add_candidate(rollout.id, "v2", 0.6, True, None, "try v2")
    with pytest.raises(InvalidInput):
        repo.add_candidate(rollout.id, "v3", 0.5, False, None)  # 0.6 + 0.5 > 1
    with pytest.raises(Conflict):
        repo.add_candidate(rollout.id, "v1", 0.1, False, None)  # production already
    repo.update_candidate(rollout.id, "v2", None, "more", traffic_share=0.9)
    assert repo.candidates(rollout.id) == [Candidate("v2", 0.9, True)]
    kinds = [e.kind for e in repo.events(rollout.id)]
    assert kinds == ["update_candidate", "add_candidate", "set_production"]
    assert repo.previous_production(rollout.id) is None


# -- gates --------------------------------------------------------------------------------------


def test_gates_compare_latest_runs_with_margins_and_directions(session):
    rollout = RolloutRepo(session).set_production(None, "prod", None)
    # Within one point on IFEval; XSTest refusal up by two points: lower is better, so it fails.
    _seed_required(session, "prod", "cand", ifeval=(0.500, 0.492), xstest=(0.10, 0.12))
    report = check_gates(session, rollout, "cand")
    checks = {c.name: c for c in report.checks}
    assert checks["offline:ifeval"].passed
    assert not checks["offline:xstest"].passed
    assert "lower is better" in checks["offline:xstest"].why
    assert not report.passed
    # A wider margin for XSTest lets it through; suites without runs are skipped, not failed.
    report = check_gates(session, rollout, "cand", GateConfig(margins={"xstest": 0.05}))
    assert report.passed
    assert checks["offline:behavior_spec"].skipped
    # The latest run counts: a newer IFEval run three points down fails.
    _run(session, "ifeval", "cand", average_strict=0.47)
    failed = {c.name: c for c in check_gates(session, rollout, "cand").checks}
    assert not failed["offline:ifeval"].passed and failed["offline:ifeval"].candidate_value == 0.47


def test_gates_fail_without_a_required_suite_and_say_what_to_run(session):
    rollout = RolloutRepo(session).set_production(None, "prod", None)
    _run(session, "ifeval", "prod", average_strict=0.5)
    _run(session, "ifeval", "cand", average_strict=0.6)
    report = check_gates(session, rollout, "cand")
    assert not report.passed
    why = {c.name: c.why for c in report.checks if not c.passed}
    assert list(why) == ["offline:xstest"]
    assert "no run of xstest for prod" in why["offline:xstest"]
    assert "tandem eval run xstest --model prod" in why["offline:xstest"]


def test_online_gate_uses_thumbs_intervals_only_with_enough_votes(session):
    user = UserRepo(session).create("rater@x.io", None)
    rollout = RolloutRepo(session).set_production(None, "prod", None)
    _seed_required(session, "prod", "cand")
    _thumbs(session, user.id, "prod", up=27, down=3)
    _thumbs(session, user.id, "cand", up=2, down=8)  # clearly worse, but only 10 votes
    thumbs = {c.name: c for c in check_gates(session, rollout, "cand").checks}["online:thumbs_up"]
    assert thumbs.passed and thumbs.skipped
    _thumbs(session, user.id, "cand", up=4, down=16)  # now 6/30: interval entirely below
    report = check_gates(session, rollout, "cand")
    thumbs = {c.name: c for c in report.checks}["online:thumbs_up"]
    assert not thumbs.passed and "entirely below" in thumbs.why
    assert not report.passed


# -- promotion and rollback ---------------------------------------------------------------------


def test_promote_refused_on_failing_gates_then_recorded_and_rolled_back(session):
    admin = UserRepo(session).create("admin@x.io", None, is_admin=True)
    models = ModelVersionRepo(session)
    models.upsert("prod", status="production")
    models.upsert("cand", status="candidate")
    repo = RolloutRepo(session)
    rollout = repo.set_production(None, "prod", admin.id, "start")
    repo.add_candidate(rollout.id, "cand", 0.1, False, admin.id)
    with pytest.raises(GatesFailed) as refused:
        promote(session, rollout, "cand", admin.id, "looks good")
    assert not refused.value.report.passed
    assert repo.get(rollout.id).production_version == "prod"
    assert repo.events(rollout.id)[0].kind == "gate_check"  # the refusal's report is kept

    _seed_required(session, "prod", "cand", ifeval=(0.50, 0.55))
    report, rollout = promote(session, rollout, "cand", admin.id, "IFEval +5")
    assert report.passed and rollout.production_version == "cand"
    assert repo.candidates(rollout.id) == []
    event = repo.events(rollout.id)[0]
    assert (event.kind, event.actor_id, event.reason) == ("promote", admin.id, "IFEval +5")
    assert (event.from_version, event.to_version, event.gates["passed"]) == ("prod", "cand", True)
    assert models.get("cand").status == "production" and models.get("prod").status == "retired"

    with pytest.raises(InvalidInput):
        rollback(session, rollout, admin.id, "  ")  # why is not optional
    rollout = rollback(session, rollout, admin.id, "users report loops")
    assert rollout.production_version == "prod"
    event = repo.events(rollout.id)[0]
    assert (event.kind, event.actor_id, event.reason) == (
        "rollback",
        admin.id,
        "users report loops",
    )
    assert event.at is not None
    assert models.get("prod").status == "production" and models.get("cand").status == "retired"
    with pytest.raises(Conflict):
        rollback(session, rollout, admin.id, "again")  # nothing before the first production


# -- through the API: serving, comparisons, access, the page -----------------------------------


@pytest.fixture
def fast_app(settings, fake_catalog):
    from tandem.web.app import create_app

    return create_app(
        dataclasses.replace(settings, rate_generation=None, rate_generation_per_key=None),
        fake_catalog,
    )


def _answered_by(client: TestClient, headers: dict) -> str:
    conv = client.post("/api/conversations", json={}, headers=headers).json()
    r = client.post(
        f"/api/conversations/{conv['id']}/messages", json={"content": "hi"}, headers=headers
    )
    assert r.status_code == 200, r.text
    return r.json()["generation"]["model_version"]


def test_served_version_follows_promote_and_rollback_without_restart(fast_app):
    with TestClient(fast_app) as client:
        admin = new_user(client, "admin@x.io")
        user = new_user(client, "user@x.io")
        r = client.post(
            "/api/admin/rollouts", json={"version": "other-model", "reason": "go"}, headers=admin
        )
        assert r.status_code == 200, r.text
        rid = r.json()["id"]
        assert _answered_by(client, user) == "other-model"  # the site rollout beats the default
        r = client.put(
            f"/api/admin/rollouts/{rid}/candidates",
            json={"version": "fake-model", "traffic_share": 0.0, "reason": "next"},
            headers=admin,
        )
        assert r.status_code == 200, r.text
        r = client.post(
            f"/api/admin/rollouts/{rid}/promote",
            json={"version": "fake-model", "reason": "x"},
            headers=admin,
        )
        assert r.status_code == 409 and "no run of ifeval" in r.json()["error"]["message"]
        with fast_app.state.session_factory() as session:
            _seed_required(session, "other-model", "fake-model")
        r = client.post(
            f"/api/admin/rollouts/{rid}/promote",
            json={"version": "fake-model", "reason": "x"},
            headers=admin,
        )
        assert r.status_code == 200, r.text
        assert r.json()["gates"]["passed"] is True
        assert _answered_by(client, user) == "fake-model"
        r = client.post(
            f"/api/admin/rollouts/{rid}/rollback", json={"reason": "oops"}, headers=admin
        )
        assert r.status_code == 200 and r.json()["production_version"] == "other-model"
        assert _answered_by(client, user) == "other-model"
        detail = client.get(f"/api/admin/rollouts/{rid}", headers=admin).json()
        assert [e["kind"] for e in detail["events"]][:2] == ["rollback", "promote"]
        assert detail["events"][0]["reason"] == "oops"


def test_candidate_in_comparisons_meets_production(fast_app):
    from sqlalchemy import select

    from tandem.store.models import StoredGeneration

    with TestClient(fast_app) as client:
        admin = new_user(client, "admin@x.io")
        user = new_user(client, "user@x.io")
        rid = client.post(
            "/api/admin/rollouts", json={"version": "fake-model"}, headers=admin
        ).json()["id"]
        client.put(
            f"/api/admin/rollouts/{rid}/candidates",
            json={"version": "other-model", "in_comparisons": True},
            headers=admin,
        )
        # The rollout's own rate: every turn becomes a comparison (the site's rate stays 0).
        r = client.patch(f"/api/admin/rollouts/{rid}", json={"comparison_rate": 1.0}, headers=admin)
        assert r.status_code == 200, r.text
        conv = client.post("/api/conversations", json={}, headers=user).json()
        r = client.post(
            f"/api/conversations/{conv['id']}/messages", json={"content": "hi"}, headers=user
        )
        assert r.status_code == 200 and "comparison" in r.json(), r.text
        with fast_app.state.session_factory() as session:
            versions = set(session.scalars(select(StoredGeneration.model_version)))
        assert versions == {"fake-model", "other-model"}
        # A conversation pinned to a model is not part of the rollout: no comparison.
        pinned = client.post(
            "/api/conversations", json={"model": "fake-model"}, headers=user
        ).json()
        r = client.post(
            f"/api/conversations/{pinned['id']}/messages", json={"content": "hi"}, headers=user
        )
        assert "comparison" not in r.json()


def test_rollout_routes_are_admin_only_and_the_page_escapes(client: TestClient, app):
    admin = new_user(client, "admin@x.io")
    user = new_user(client, "user@x.io")
    assert client.get("/api/admin/rollouts").status_code == 401
    assert client.get("/api/admin/rollouts", headers=user).status_code == 403
    r = client.post("/api/admin/rollouts", json={"version": "fake-model"}, headers=user)
    assert r.status_code == 403
    r = client.post("/api/admin/rollouts", json={"version": "no-such-model"}, headers=admin)
    assert r.status_code == 404
    r = client.post("/api/admin/rollouts", json={"version": "fake-model"}, headers=admin)
    rid = r.json()["id"]
    nasty = "<script>alert(1)</script>"
    with app.state.session_factory() as session:
        RolloutRepo(session).add_candidate(rid, nasty, 0.1, True, None, reason=nasty)
    r = client.put(
        f"/api/admin/rollouts/{rid}/candidates",
        json={"version": "other-model", "traffic_share": 0.95},
        headers=admin,
    )
    assert r.status_code == 422  # 0.1 + 0.95 > 1

    client.cookies.clear()
    assert client.get("/admin/rollouts", follow_redirects=False).status_code == 303
    log_in_as(client, "user@x.io")
    assert client.get("/admin/rollouts").status_code == 403
    log_in_as(client, "admin@x.io")
    page = client.get("/admin/rollouts")
    assert page.status_code == 200
    assert nasty not in page.text and html.escape(nasty, quote=False) in page.text
    assert "fake-model" in page.text and "offline:ifeval" in page.text
    # The console's own module scripts load from /static; nothing else may run on the page.
    scripts = re.findall(r"<script[^>]*>", page.text)
    assert scripts and all(re.search(r'src="/static/[\w.-]+\.js', tag) for tag in scripts)


def test_cli_rollback_in_one_command(session, monkeypatch):
    from tandem.cli.main import app as cli

    url = session.get_bind().url.render_as_string(hide_password=False)
    monkeypatch.setenv("TANDEM_DATABASE_URL", url)
    models = ModelVersionRepo(session)
    models.upsert("v1", status="production")
    models.upsert("v2", status="candidate")
    runner = CliRunner()
    assert (
        runner.invoke(cli, ["rollout", "set-production", "v1", "--reason", "start"]).exit_code == 0
    )
    assert (
        runner.invoke(cli, ["rollout", "set-production", "v2", "--reason", "manual"]).exit_code == 0
    )
    result = runner.invoke(cli, ["rollout", "rollback", "--reason", "bad answers"])
    assert result.exit_code == 0, result.output
    assert "production: v1" in result.output
    session.expire_all()
    repo = RolloutRepo(session)
    event = repo.events(repo.get_for_profile(None).id)[0]
    assert (event.kind, event.reason, event.to_version) == ("rollback", "bad answers", "v1")
    assert event.details["actor"].startswith("cli")
