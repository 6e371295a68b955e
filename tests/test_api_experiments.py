"""Behavior experiments through the API: define, validate, start, stop; a running experiment
turns chat turns into blind comparisons of two variants that record which variant wrote each
side; the votes are counted in the result.

    .venv/bin/python -m pytest -q tests/test_api_experiments.py
"""

from __future__ import annotations

import pytest

from conftest import OTHER_ANSWER, new_user, sse_events
from tandem.store import ExperimentRepo
from tandem.store.models import StoredGeneration, StoredMessage

BRIEF = "Answer in one short sentence."
URL = "/api/admin/experiments"


def _body(**overrides):
    body = {
        "name": "Brief or other model",
        "hypothesis": "People prefer brief answers",
        "comparison_rate": 1.0,
        "variants": [
            {"name": "brief", "kind": "system_prompt", "prompt_addition": BRIEF},
            {"name": "other", "kind": "model_version", "model_version": "other-model"},
        ],
    }
    return body | overrides


def _setup(client):
    admin = new_user(client, "admin@x.io")  # the first account is the admin
    alice = new_user(client, "alice@x.io")
    return admin, alice


def test_define_validate_start_stop(client):
    admin, alice = _setup(client)
    assert client.post(URL, json=_body(), headers=alice).status_code == 403
    assert client.get(URL, headers=alice).status_code == 403

    variant = {"name": "x", "kind": "system_prompt", "prompt_addition": "Be brief."}
    bad = [
        _body(variants=[variant]),  # one variant
        _body(variants=[variant, variant]),  # the same name twice
        _body(variants=[variant, {"name": "y", "kind": "system_prompt", "prompt_addition": " "}]),
        _body(variants=[variant, {"name": "y", "kind": "model_version"}]),
        _body(variants=[variant, {"name": "y", "kind": "persona", "prompt_addition": "z"}]),
        _body(comparison_rate=0),
        _body(comparison_rate=1.5),
        _body(name=""),
        _body(surprise=1),
    ]
    for body in bad:
        r = client.post(URL, json=body, headers=admin)
        assert r.status_code == 422, (body, r.text)
    unknown = _body(
        variants=[variant, {"name": "y", "kind": "model_version", "model_version": "nope"}]
    )
    assert client.post(URL, json=unknown, headers=admin).status_code == 404
    assert client.post(URL, json=_body(profile_id="nope"), headers=admin).status_code == 404

    r = client.post(URL, json=_body(), headers=admin)
    assert r.status_code == 201, r.text
    first = r.json()
    assert first["status"] == "draft" and first["profile_id"] is None
    assert [v["name"] for v in first["variants"]] == ["brief", "other"]
    assert first["variants"][0]["prompt_addition"] == BRIEF
    second = client.post(URL, json=_body(name="Again"), headers=admin).json()

    assert client.post(f"{URL}/{first['id']}/stop", headers=admin).status_code == 409  # a draft
    started = client.post(f"{URL}/{first['id']}/start", headers=admin)
    assert started.status_code == 200 and started.json()["status"] == "running"
    assert started.json()["started_at"] is not None
    # One running experiment per profile (here: the site default).
    r = client.post(f"{URL}/{second['id']}/start", headers=admin)
    assert r.status_code == 409 and "Brief or other model" in r.text
    stopped = client.post(f"{URL}/{first['id']}/stop", headers=admin).json()
    assert stopped["status"] == "stopped" and stopped["stopped_at"] is not None
    assert client.post(f"{URL}/{second['id']}/start", headers=admin).json()["status"] == "running"
    listed = client.get(URL, headers=admin).json()
    assert {e["id"]: e["status"] for e in listed} == {
        first["id"]: "stopped",
        second["id"]: "running",
    }
    assert client.get(f"{URL}/nope", headers=admin).status_code == 404


def _generation(client, message_id: str) -> StoredGeneration:
    with client.app.state.session_factory() as session:
        message = session.get(StoredMessage, message_id)
        generation = session.get(StoredGeneration, message.generation_id)
        session.expunge(generation)
        return generation


def test_a_running_experiment_compares_its_variants_and_counts_the_votes(client):
    admin, alice = _setup(client)
    exp = client.post(URL, json=_body(), headers=admin).json()
    conv = client.post("/api/conversations", json={}, headers=alice).json()["id"]
    # A draft changes nothing for users.
    r = client.post(f"/api/conversations/{conv}/messages", json={"content": "hi"}, headers=alice)
    assert "assistant_message" in r.json()
    client.post(f"{URL}/{exp['id']}/start", headers=admin)

    sides_seen = set()
    for i in range(6):
        r = client.post(
            f"/api/conversations/{conv}/messages", json={"content": f"q{i}"}, headers=alice
        )
        assert r.status_code == 200, r.text
        comp = r.json()["comparison"]
        # Blind: no model, no variant until the vote.
        assert comp["a"]["variant"] is None and comp["a"]["model"] is None
        with client.app.state.session_factory() as session:
            names = ExperimentRepo(session).variant_names(comp["id"])
        assert names is not None and set(names) == {"brief", "other"}
        sides_seen.add(names)
        by_variant = dict(zip(names, (comp["a"], comp["b"]), strict=True))
        # The system-prompt variant's text is in its side's prompt and record, not the other's.
        brief = _generation(client, by_variant["brief"]["message_id"])
        other = _generation(client, by_variant["other"]["message_id"])
        assert brief.model_version == "fake-model" and BRIEF in (brief.rendered_prompt or "")
        assert other.model_version == "other-model" and BRIEF not in (other.rendered_prompt or "")
        assert by_variant["brief"]["content"] == f"You said: q{i}"
        assert by_variant["other"]["content"] == OTHER_ANSWER
        # Alice prefers the brief variant, on whichever side it is.
        verdict = "a" if names[0] == "brief" else "b"
        voted = client.post(
            f"/api/comparisons/{comp['id']}/vote", json={"verdict": verdict}, headers=alice
        ).json()
        assert (voted["a"]["variant"], voted["b"]["variant"]) == names
    assert len(sides_seen) == 2  # both variants were drawn on side A at some point

    result = client.get(f"{URL}/{exp['id']}/result", headers=admin)
    assert result.status_code == 200, result.text
    body = result.json()
    assert body["comparisons"] == 6 and body["votes"] == 6
    shares = {v["name"]: v for v in body["variants"]}
    assert shares["brief"]["wins"] == 6 and shares["brief"]["win_share"] == 1.0
    assert shares["brief"]["ci_low"] > 0.5 and shares["other"]["win_share"] == 0.0
    assert body["leader"] == "brief" and body["recommendation"]["action"] == "make_default"
    assert client.get(f"{URL}/{exp['id']}/result", headers=alice).status_code == 403

    # Stopped: turns are plain answers again; the result stays.
    client.post(f"{URL}/{exp['id']}/stop", headers=admin)
    r = client.post(f"/api/conversations/{conv}/messages", json={"content": "x"}, headers=alice)
    assert "assistant_message" in r.json()
    assert client.get(f"{URL}/{exp['id']}/result", headers=admin).json()["votes"] == 6
    # A user who deletes their data takes their votes with them.
    assert client.delete("/api/auth/me/data", headers=alice).status_code == 200
    after = client.get(f"{URL}/{exp['id']}/result", headers=admin).json()
    assert after["votes"] == 0 and after["comparisons"] == 0


def test_profiles_meet_their_own_experiment_and_pinned_chats_none(client):
    admin, alice = _setup(client)
    profile = client.post("/api/profiles", json={"name": "Helper"}, headers=alice).json()
    site = client.post(URL, json=_body(name="site"), headers=admin).json()
    variants = [
        {"name": "p1", "kind": "system_prompt", "prompt_addition": "First."},
        {"name": "p2", "kind": "system_prompt", "prompt_addition": "Second."},
    ]
    own = client.post(
        URL, json=_body(name="own", profile_id=profile["id"], variants=variants), headers=admin
    ).json()
    for exp in (site, own):
        assert client.post(f"{URL}/{exp['id']}/start", headers=admin).status_code == 200

    def compared(body: dict) -> tuple[str, str] | None:
        conv = client.post("/api/conversations", json=body, headers=alice).json()["id"]
        r = client.post(f"/api/conversations/{conv}/messages", json={"content": "q"}, headers=alice)
        if "comparison" not in r.json():
            return None
        with client.app.state.session_factory() as session:
            return ExperimentRepo(session).variant_names(r.json()["comparison"]["id"])

    assert set(compared({"profile_id": profile["id"]}) or ()) == {"p1", "p2"}
    assert set(compared({}) or ()) == {"brief", "other"}
    assert compared({"model": "fake-model"}) is None  # the chat pins its model
    client.post(f"{URL}/{own['id']}/stop", headers=admin)
    # Without its own, the profile's chats meet the site default's experiment.
    assert set(compared({"profile_id": profile["id"]}) or ()) == {"brief", "other"}


def test_cli_result_prints_the_same_result(client, settings, monkeypatch):
    import json

    from typer.testing import CliRunner

    from tandem.cli.main import app as cli

    admin, alice = _setup(client)
    exp = client.post(URL, json=_body(), headers=admin).json()
    client.post(f"{URL}/{exp['id']}/start", headers=admin)
    conv = client.post("/api/conversations", json={}, headers=alice).json()["id"]
    for i in range(3):
        r = client.post(
            f"/api/conversations/{conv}/messages", json={"content": f"q{i}"}, headers=alice
        )
        cid = r.json()["comparison"]["id"]
        client.post(f"/api/comparisons/{cid}/vote", json={"verdict": "tie"}, headers=alice)

    monkeypatch.setenv("TANDEM_DATABASE_URL", settings.database_url)
    runner = CliRunner()
    out = runner.invoke(cli, ["experiments", "result", exp["id"], "--json"])
    assert out.exit_code == 0, out.output
    report = json.loads(out.output)
    assert report["votes"] == 3 and report["verdicts"] == {"tie": 3}
    assert all(v["win_share"] == 0.5 for v in report["variants"])
    assert report["recommendation"]["action"] == "no_difference"
    text = runner.invoke(cli, ["experiments", "result", exp["id"]])
    assert text.exit_code == 0 and "No difference yet" in text.output
    listed = runner.invoke(cli, ["experiments", "list"])
    assert "running" in listed.output and "3 comparisons" in listed.output
    missing = runner.invoke(cli, ["experiments", "result", "nope"])
    assert missing.exit_code == 3 and "not found" in missing.output


def test_a_streamed_chat_turn_meets_the_experiment_too(client):
    admin, alice = _setup(client)
    exp = client.post(URL, json=_body(), headers=admin).json()
    client.post(f"{URL}/{exp['id']}/start", headers=admin)
    conv = client.post("/api/conversations", json={}, headers=alice).json()["id"]
    r = client.post(
        f"/api/conversations/{conv}/messages",
        json={"content": "hello", "stream": True},
        headers=alice,
    )
    events = sse_events(r.text)
    sides = {e["side"] for e in events if e["type"] == "comparison_delta"}
    assert sides == {"a", "b"}
    comp = next(e for e in events if e["type"] == "comparison")["comparison"]
    assert {comp["a"]["content"], comp["b"]["content"]} == {"You said: hello", OTHER_ANSWER}
    with client.app.state.session_factory() as session:
        assert set(ExperimentRepo(session).variant_names(comp["id"]) or ()) == {"brief", "other"}


@pytest.fixture
def api_db_url(db_url: str) -> str:
    """The same tests on PostgreSQL (the db_url fixture's second parameter) as on SQLite."""
    return db_url
