"""The Models API and page (/api/admin/models, /admin/models): the registry's versions with
their lineage, cards, data and serving; archiving, refused while a rollout serves the version.
Versions are registered the way `tandem serve` and `tandem train` do, without a model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from conftest import new_user
from tandem.registry.embedded import EMBEDDED_VERSION, PreparedModel
from tandem.registry.versions import EMBEDDED_CARD, register_prepared, register_trained
from tandem.store.rollouts import RolloutRepo

CHILD = "smollm2-dpo-child"
CHILD_CARD = "# smollm2-dpo-child\n\nTrained from **the base**.\n\n![loss curve](loss_curve.png)\n"


def register_lineage(session: Any, home: Path, snapshot: dict[str, Any]) -> None:
    """The embedded base (as `tandem serve` records it) and a DPO child trained on `snapshot`
    (as `tandem train` records it, files staged by hand)."""
    root = home / "models" / EMBEDDED_VERSION
    base = PreparedModel(
        EMBEDDED_VERSION, root, root / "hf", root / "onnx", root / "model.gguf", {"source": "x"}
    )
    register_prepared(session, base)
    staging = home / "staging"
    (staging / "hf").mkdir(parents=True)
    (staging / "hf" / "config.json").write_text("{}")
    dataset = {
        "source": snapshot["id"],
        "snapshot_id": snapshot["id"],
        "hash": snapshot["hash"],
        "kind": snapshot["kind"],
        "rows": 3,
    }
    register_trained(
        session,
        home,
        CHILD,
        staging,
        parent=EMBEDDED_VERSION,
        config={"method": "dpo", "base": EMBEDDED_VERSION, "dataset": dataset, "beta": 0.1},
        metrics={"final_loss": 0.625, "steps": 2},
        card=CHILD_CARD,
        build_onnx_format=False,
    )


def _world(client: TestClient, app: Any, home: Path) -> tuple[dict, dict, dict]:
    admin = new_user(client, "admin@x.io")  # the first account is the admin
    user = new_user(client, "user@x.io")
    # One liked answer, so the SFT snapshot the child is trained on has a row.
    conv = client.post("/api/conversations", json={}, headers=user).json()
    turn = client.post(
        f"/api/conversations/{conv['id']}/messages", json={"content": "hi"}, headers=user
    ).json()
    answer = turn["assistant_message"]["id"]
    r = client.post(f"/api/messages/{answer}/feedback", json={"rating": "up"}, headers=user)
    assert r.status_code in (200, 201), r.text
    r = client.post("/api/datasets", json={"kind": "sft", "name": "liked"}, headers=admin)
    assert r.status_code == 201, r.text
    snapshot = r.json()
    with app.state.session_factory() as session:
        register_lineage(session, home, snapshot)
    return admin, user, snapshot


def test_list_shows_the_base_and_a_child_with_its_parent_and_data(client, app, tandem_home):
    admin, _, snapshot = _world(client, app, tandem_home)
    r = client.get("/api/admin/models", headers=admin)
    assert r.status_code == 200, r.text
    versions = {v["id"]: v for v in r.json()}
    assert list(versions) == [EMBEDDED_VERSION, CHILD]  # oldest first: parents first
    base, child = versions[EMBEDDED_VERSION], versions[CHILD]
    assert (base["parent_id"], base["status"], base["method"], base["dataset_ids"]) == (
        None,
        "production",
        None,
        [],
    )
    assert (child["parent_id"], child["status"], child["method"]) == (
        EMBEDDED_VERSION,
        "candidate",
        "dpo",
    )
    assert child["dataset_ids"] == [snapshot["id"]] and child["final_loss"] == 0.625
    assert child["kind"] == "chat" and child["created_at"]
    # No rollout yet: the app's default model serves; neither registry version does.
    assert base["serving"] == [] and child["serving"] == []


def test_detail_has_card_lineage_config_and_the_snapshot(client, app, tandem_home):
    admin, _, snapshot = _world(client, app, tandem_home)
    child = client.get(f"/api/admin/models/{CHILD}", headers=admin).json()
    assert child["card"] == CHILD_CARD
    assert child["ancestors"] == [EMBEDDED_VERSION] and child["descendants"] == []
    assert child["config"]["beta"] == 0.1 and child["metrics"]["steps"] == 2
    assert child["base_path"] == str(tandem_home / "models" / CHILD)
    [data] = child["datasets"]
    assert (data["snapshot_id"], data["name"], data["kind"], data["rows"]) == (
        snapshot["id"],
        "liked",
        "sft",
        3,
    )
    assert data["recorded"] is True and data["hash"] == snapshot["hash"]
    base = client.get(f"/api/admin/models/{EMBEDDED_VERSION}", headers=admin).json()
    assert base["card"] == EMBEDDED_CARD and base["datasets"] == []
    assert base["ancestors"] == [] and base["descendants"] == [CHILD]


def test_archive_and_restore(client, app, tandem_home):
    admin, _, _ = _world(client, app, tandem_home)
    r = client.post(f"/api/admin/models/{CHILD}/archive", headers=admin)
    assert r.status_code == 200 and r.json() == {"id": CHILD, "status": "retired"}
    assert client.get(f"/api/admin/models/{CHILD}", headers=admin).json()["status"] == "retired"
    # Again: still archived, not an error.
    assert client.post(f"/api/admin/models/{CHILD}/archive", headers=admin).status_code == 200
    r = client.post(f"/api/admin/models/{CHILD}/restore", headers=admin)
    assert r.status_code == 200 and r.json()["status"] == "candidate"
    # Restoring is for archived versions only: production stays production.
    r = client.post(f"/api/admin/models/{EMBEDDED_VERSION}/restore", headers=admin)
    assert r.json()["status"] == "production"


def test_archive_is_refused_while_a_rollout_serves_the_version(client, app, tandem_home):
    admin, _, _ = _world(client, app, tandem_home)
    with app.state.session_factory() as session:
        repo = RolloutRepo(session)
        rollout = repo.set_production(None, EMBEDDED_VERSION, None, "serve the base")
        repo.add_candidate(rollout.id, CHILD, 0.25, True, None, "try the child")
    r = client.post(f"/api/admin/models/{EMBEDDED_VERSION}/archive", headers=admin)
    assert r.status_code == 409
    message = r.json()["error"]["message"]
    assert "production in the site rollout" in message and "Rollouts" in message
    r = client.post(f"/api/admin/models/{CHILD}/archive", headers=admin)
    assert r.status_code == 409
    assert "a candidate in the site rollout" in r.json()["error"]["message"]
    versions = {v["id"]: v for v in client.get("/api/admin/models", headers=admin).json()}
    assert versions[EMBEDDED_VERSION]["serving"] == [
        {
            "role": "production",
            "rollout_id": rollout.id,
            "profile_id": None,
            "traffic_share": None,
            "in_comparisons": False,
        }
    ]
    [place] = versions[CHILD]["serving"]
    assert (place["role"], place["traffic_share"], place["in_comparisons"]) == (
        "candidate",
        0.25,
        True,
    )
    assert versions[CHILD]["status"] == "candidate"  # nothing changed


def test_the_default_model_is_refused_while_no_site_rollout_exists(client, app, tandem_home):
    admin, _, _ = _world(client, app, tandem_home)
    with app.state.session_factory() as session:  # the fake catalog's default, registered
        from tandem.store import ModelVersionRepo

        ModelVersionRepo(session).upsert("fake-model", status="candidate")
    r = client.post("/api/admin/models/fake-model/archive", headers=admin)
    assert r.status_code == 409 and "default model" in r.json()["error"]["message"]
    with app.state.session_factory() as session:
        RolloutRepo(session).set_production(None, EMBEDDED_VERSION, None, "serve the base")
    assert client.post("/api/admin/models/fake-model/archive", headers=admin).status_code == 200


def test_admins_only_and_unknown_versions(client, app, tandem_home):
    admin, user, _ = _world(client, app, tandem_home)
    for method, path in [
        ("GET", "/api/admin/models"),
        ("GET", f"/api/admin/models/{CHILD}"),
        ("POST", f"/api/admin/models/{CHILD}/archive"),
        ("POST", f"/api/admin/models/{CHILD}/restore"),
    ]:
        assert client.request(method, path).status_code == 401
        assert client.request(method, path, headers=user).status_code == 403
    for method, path in [
        ("GET", "/api/admin/models/nope"),
        ("POST", "/api/admin/models/nope/archive"),
        ("POST", "/api/admin/models/nope/restore"),
    ]:
        r = client.request(method, path, headers=admin)
        assert r.status_code == 404 and r.json()["error"]["message"] == "model version not found"
    assert client.get(f"/api/admin/models/{'x' * 201}", headers=admin).status_code == 422
    assert client.get(f"/api/admin/models/{CHILD}", headers=admin).json()["status"] == "candidate"


def test_the_page_is_for_admins(client, app, tandem_home):
    _world(client, app, tandem_home)
    assert client.get("/admin/models", follow_redirects=False).headers["location"] == (
        "/login?next=/admin/models"
    )
    client.post("/api/auth/login", json={"email": "user@x.io", "password": "password-123"})
    assert client.get("/admin/models").status_code == 403
    client.cookies.clear()
    client.post("/api/auth/login", json={"email": "admin@x.io", "password": "password-123"})
    page = client.get("/admin/models")
    assert page.status_code == 200
    assert 'data-nav="models" aria-current="page"' in page.text
    assert "/static/admin_models.js?v=" in page.text
