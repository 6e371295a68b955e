"""The datasets API (admin only, validated), the admin page, and `tandem data` commands."""

from __future__ import annotations

import json
from pathlib import Path

from markupsafe import escape
from typer.testing import CliRunner

from conftest import new_user
from tandem.cli.main import app as cli
from tandem.core.benchmarks import benchmark_dirs
from tandem.core.signals import FEEDBACK_REASON_LABELS
from tandem.data.snapshots import load_snapshot, resolve_dataset

DEMO = {
    "messages": [
        {"role": "system", "content": "Answer in one sentence."},
        {"role": "user", "content": "What is tandem?"},
        {"role": "assistant", "content": "A chat assistant that learns from its users."},
    ]
}


def _signal(client, headers, text: str = "Hello there") -> None:
    conv = client.post("/api/conversations", json={}, headers=headers).json()["id"]
    turn = client.post(
        f"/api/conversations/{conv}/messages", json={"content": text}, headers=headers
    ).json()
    mid = turn["assistant_message"]["id"]
    r = client.post(f"/api/messages/{mid}/feedback", json={"rating": "up"}, headers=headers)
    assert r.status_code == 200


def test_only_admins_build_or_read_datasets(client):
    admin = new_user(client, "admin@x.io")
    user = new_user(client, "user@x.io")
    _signal(client, user)
    assert client.get("/api/datasets").status_code == 401
    for method, path, body in (
        ("post", "/api/datasets", {"kind": "sft"}),
        ("get", "/api/datasets", None),
        ("get", "/api/datasets/sft-000000000000", None),
        ("get", "/api/datasets/sft-000000000000/files/train.jsonl", None),
    ):
        r = client.request(method, path, json=body, headers=user)
        assert r.status_code == 403, (path, r.text)
    r = client.post("/api/datasets", json={"kind": "sft"}, headers=admin)
    assert r.status_code == 201
    snap = r.json()
    assert snap["created_by"] != "" and snap["counts"]["train"] + snap["counts"]["test"] == 1
    assert client.get(f"/api/datasets/{snap['id']}", headers=user).status_code == 403


def test_bad_requests_are_4xx_with_a_message(client):
    admin = new_user(client, "admin@x.io")
    _signal(client, admin)
    bad_bodies = [
        {"kind": "dpo"},
        {"kind": "sft", "user_id": "x"},
        {"kind": "sft", "filters": {"test_fraction": 1}},
        {"kind": "sft", "filters": {"reasons": ["boring"]}},
        {"kind": "sft", "filters": {"per_user_cap": 0}},
        {"kind": "sft", "filters": {"since": "yesterday"}},
        {
            "kind": "sft",
            "filters": {"since": "2025-02-01T00:00:00Z", "until": "2025-01-01T00:00:00Z"},
        },
        {"kind": "sft", "demonstrations": [{"messages": [{"role": "user", "content": "q"}]}]},
        {"kind": "kto", "demonstrations": [DEMO]},
    ]
    for body in bad_bodies:
        r = client.post("/api/datasets", json=body, headers=admin)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["error"]["message"]
    assert client.get("/api/datasets/nope", headers=admin).status_code == 404
    snap = client.post("/api/datasets", json={"kind": "sft"}, headers=admin).json()
    r = client.get(f"/api/datasets/{snap['id']}/files/..%2Fmanifest.json", headers=admin)
    assert r.status_code == 404
    assert client.get(f"/api/datasets/{snap['id']}/files/secrets", headers=admin).status_code == 404


def test_detail_download_and_demonstrations(client, tandem_home):
    admin = new_user(client, "admin@x.io")
    _signal(client, admin)
    r = client.post(
        "/api/datasets",
        json={
            "kind": "sft",
            "name": "with demos",
            "demonstrations": [DEMO],
            "filters": {"test_fraction": 0},
        },
        headers=admin,
    )
    assert r.status_code == 201, r.text
    snap = r.json()
    detail = client.get(f"/api/datasets/{snap['id']}", headers=admin).json()
    assert detail["name"] == "with demos" and detail["manifest"]["hash"] == snap["hash"]
    assert detail["signal_counts"] == {"demonstration": 1, "feedback": 1, "generation": 1}
    assert "## Pairing rules" in detail["card"]
    download = client.get(snap["files"]["train.jsonl"], headers=admin)
    assert download.status_code == 200
    assert download.content == load_snapshot(tandem_home, snap["id"]).train_file.read_bytes()
    assert DEMO in [json.loads(x) for x in download.text.splitlines()]
    prov = client.get(snap["files"]["provenance.jsonl"], headers=admin).text
    assert '"demonstration":["api:1"]' in prov


def test_admin_page_needs_an_admin_session_and_writes_need_csrf(client):
    r = client.get("/admin/datasets", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    r = client.post("/api/auth/signup", json={"email": "admin@x.io", "password": "password-123"})
    assert r.status_code == 201
    page = client.get("/admin/datasets")
    assert page.status_code == 200 and "Build a snapshot" in page.text
    # The reason filters are the shared vocabulary: every reason, shown by its label.
    for reason, label in FEEDBACK_REASON_LABELS.items():
        assert f'value="{reason}"> {escape(label)}</label>' in page.text
    # The page's script is a file (the CSP runs no inline script): it sends the CSRF token.
    assert '<script src="/static/admin_datasets.js?v=' in page.text
    assert "X-CSRF-Token" in client.get("/static/admin_datasets.js").text
    # The page's fetches use the cookie session, so a write must echo the CSRF cookie.
    assert client.post("/api/datasets", json={"kind": "sft"}).status_code == 403
    token = client.cookies.get("tandem_csrf")
    r = client.post("/api/datasets", json={"kind": "sft"}, headers={"X-CSRF-Token": token})
    assert r.status_code == 422  # past auth and CSRF: no signals yet
    client.post("/api/auth/logout", headers={"X-CSRF-Token": token})
    client.cookies.clear()
    new_user(client, "user@x.io")
    client.post("/api/auth/login", json={"email": "user@x.io", "password": "password-123"})
    assert client.get("/admin/datasets").status_code == 403


def test_cli_build_list_show_export_import(client, tandem_home, tmp_path):
    admin = new_user(client, "admin@x.io")
    _signal(client, admin, "First question")
    _signal(client, admin, "Second question")
    runner = CliRunner()
    demos = tmp_path / "demos.jsonl"
    demos.write_text(json.dumps(DEMO) + "\n")

    r = runner.invoke(cli, ["data", "build", "sft", "--demonstrations", str(demos), "--json"])
    assert r.exit_code == 0, r.output
    built = json.loads(r.output)
    assert built["created"] and built["counts"]["by_origin"] == {
        "demonstration": 1,
        "thumbs_up": 2,
    }
    again = runner.invoke(cli, ["data", "build", "sft", "--demonstrations", str(demos)])
    assert "unchanged" in again.output and built["id"] in again.output

    listing = runner.invoke(cli, ["data", "list"])
    assert listing.exit_code == 0 and built["id"] in listing.output
    show = runner.invoke(cli, ["data", "show", built["hash"][:15]])
    assert show.exit_code == 0 and "hash verified: yes" in show.output
    assert "signal ids: demonstration 1, feedback 2, generation 2" in show.output

    r = runner.invoke(cli, ["data", "export", built["id"], "--to", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    exported = Path(r.output.strip())
    assert resolve_dataset(tandem_home, exported).hash == built["hash"]
    assert (
        runner.invoke(cli, ["data", "export", built["id"], "--to", str(tmp_path / "out")]).exit_code
        == 1
    )

    prefs = tmp_path / "public-prefs.jsonl"
    prefs.write_text(
        "".join(
            json.dumps({"prompt": f"q{i}", "chosen": f"good {i}", "rejected": f"bad {i}"}) + "\n"
            for i in range(5)
        )
    )
    r = runner.invoke(cli, ["data", "import", str(prefs), "--kind", "preference", "--json"])
    assert r.exit_code == 0, r.output
    imported = load_snapshot(tandem_home, json.loads(r.output)["id"])
    assert imported.manifest["source"] == "import:public-prefs.jsonl"
    assert imported.manifest["counts"]["train"] + imported.manifest["counts"]["test"] == 5

    r = runner.invoke(cli, ["data", "import", str(prefs), "--kind", "kto"])
    assert r.exit_code == 2 and "columns" in r.output
    r = runner.invoke(cli, ["data", "build", "kto", "--demonstrations", str(demos)])
    assert r.exit_code == 2 and "demonstrations are SFT data" in r.output


def test_cli_refuses_benchmark_data():
    shared = [d for d in benchmark_dirs() if d.is_dir()]
    assert shared, "the shared benchmarks directory is part of the checkout"
    target = next(p for p in sorted(shared[0].rglob("*.jsonl")))
    r = CliRunner().invoke(cli, ["data", "import", str(target), "--kind", "sft"])
    assert r.exit_code == 5 and "evaluation-only" in r.output
