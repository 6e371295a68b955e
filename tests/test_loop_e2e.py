"""One turn of the loop, end to end on the real embedded model: people's signals through the
API (one of them opted out, PII in messages) → every dataset kind → a few steps of SFT, DPO
and KTO on the CPU → registered versions with lineage → a chat with the new DPO version
through `/v1/chat/completions`, on the server that was running all along."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from conftest import new_user
from tandem.cli.main import app as cli
from tandem.core.settings import Settings
from tandem.data.snapshots import load_snapshot

pytestmark = pytest.mark.model

BASE = "smollm2-135m-instruct"
EMAIL, PHONE = "ada.lovelace@example.com", "+1 (555) 123-4567"
SECRET_KEY = "sk-proj-Abc123Def456Ghi789Jkl0Mno"
OPTED_OUT = "ZEBRAQUARTZ"  # appears only in the opted-out user's messages
SHORT = {"max_tokens": 12, "temperature": 0}
TINY = ["--max-steps", "2", "--batch-size", "2", "--max-length", "128"]


@pytest.fixture
def home(tandem_home: Path, prepared_model) -> Path:
    (tandem_home / "models").mkdir()
    (tandem_home / "models" / BASE).symlink_to(prepared_model.root, target_is_directory=True)
    return tandem_home


def ask(http: httpx.Client, headers: dict, conv: str, text: str, sampling: dict = SHORT) -> dict:
    r = http.post(
        f"/api/conversations/{conv}/messages",
        json={"content": text, "sampling": sampling},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    return r.json()


def rate(http: httpx.Client, headers: dict, turn: dict, rating: str) -> str:
    mid = turn["assistant_message"]["id"]
    r = http.post(f"/api/messages/{mid}/feedback", json={"rating": rating}, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()["id"]


def new_chat(http: httpx.Client, headers: dict) -> str:
    return http.post("/api/conversations", json={}, headers=headers).json()["id"]


def train(method: str, snapshot: str, *extra: str) -> str:
    result = CliRunner().invoke(cli, ["train", method, "--dataset", snapshot, *TINY, *extra])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output.split("registered ")[1].split()[0]


def test_signals_to_datasets_to_trained_versions_to_chat(home, live_server):
    from openai import OpenAI

    from tandem.engines.setup import build_catalog
    from tandem.web.app import create_app

    settings = Settings.from_env()
    catalog = build_catalog(settings)
    base_url = live_server(create_app(settings, catalog))
    http = httpx.Client(base_url=base_url, timeout=120)
    admin = new_user(http, "admin@example.com")  # the first account is the admin
    ada = new_user(http, "ada@example.com")
    bob = new_user(http, "bob@example.com")

    # Ada: PII in her messages; thumbs up and down on answers to one prompt; an improved
    # answer; a comparison vote.
    feedback_ids = []
    same_prompt = f"My email is {EMAIL} and my phone is {PHONE}. Say hello."
    up = ask(http, ada, new_chat(http, ada), same_prompt)
    # A sampled second answer, so the two rated answers differ (the same text rated both ways
    # is noise that the builders drop).
    sampled = {"max_tokens": 12, "temperature": 1.0, "seed": 7}
    down = ask(http, ada, new_chat(http, ada), same_prompt, sampled)
    assert down["assistant_message"]["content"] != up["assistant_message"]["content"]
    feedback_ids += [rate(http, ada, up, "up"), rate(http, ada, down, "down")]
    mid = down["assistant_message"]["id"]
    improved = http.post(
        f"/api/messages/{mid}/improve",
        json={"content": f"Hello! I will not repeat {EMAIL}."},
        headers=ada,
    )
    assert improved.status_code == 201, improved.text
    conv = new_chat(http, ada)
    ask(http, ada, conv, f"Keep this key safe: {SECRET_KEY}")
    comparison = http.post(
        f"/api/conversations/{conv}/comparisons",
        json={"content": "Name a fruit.", "sampling": SHORT},
        headers=ada,
    ).json()
    vote = http.post(
        f"/api/comparisons/{comparison['id']}/vote", json={"verdict": "a"}, headers=ada
    )
    assert vote.status_code == 200, vote.text

    # Bob gives signals of every kind, then opts out of training.
    bob_turn = ask(http, bob, new_chat(http, bob), f"{OPTED_OUT} tell me a joke")
    rate(http, bob, bob_turn, "up")
    http.post(
        f"/api/messages/{bob_turn['assistant_message']['id']}/improve",
        json={"content": f"{OPTED_OUT} joke"},
        headers=bob,
    )
    assert http.patch("/api/auth/me", json={"use_for_training": False}, headers=bob).is_success

    # Every dataset kind, through the API.
    snapshots = {}
    for kind in ("sft", "preference", "kto"):
        r = http.post(
            "/api/datasets", json={"kind": kind, "filters": {"test_fraction": 0}}, headers=admin
        )
        assert r.status_code in (200, 201), r.text
        snapshots[kind] = load_snapshot(home, r.json()["id"])
        files = [p.read_text() for p in snapshots[kind].path.glob("*.jsonl")]
        text = "\n".join([*files, snapshots[kind].card_file.read_text()])
        assert OPTED_OUT not in text  # consent
        assert EMAIL not in text and PHONE not in text and SECRET_KEY not in text  # scrubbing
    assert set(json.loads(snapshots["sft"].train_file.read_text().splitlines()[0])) == {"messages"}
    pref = [
        json.loads(line) for line in snapshots["preference"].train_file.read_text().splitlines()
    ]
    assert pref and set(pref[0]) == {"prompt", "chosen", "rejected"}
    assert "[EMAIL]" in json.dumps(pref)
    kto = [json.loads(line) for line in snapshots["kto"].train_file.read_text().splitlines()]
    assert {row["label"] for row in kto} == {True, False}
    # Provenance: the KTO rows came from exactly Ada's current ratings.
    provenance = snapshots["kto"].provenance_file.read_text()
    missing = [fid for fid in feedback_ids if fid not in provenance]
    assert not missing, provenance

    # A few steps of each method on the embedded model; the DPO version is built for serving.
    sft = train("sft", snapshots["sft"].id, "--no-build-onnx")
    kto_version = train("kto", snapshots["kto"].id, "--no-build-onnx")
    dpo = train("dpo", snapshots["preference"].id)
    lineage = CliRunner().invoke(cli, ["models", "lineage"]).output
    for version in (sft, kto_version, dpo):
        assert version in lineage
    from tandem.cli.common import cli_session
    from tandem.store import ModelVersionRepo

    with cli_session(settings) as session:
        row = ModelVersionRepo(session).get(dpo)
        assert row.parent_id == BASE
        assert row.config["dataset"]["hash"] == snapshots["preference"].hash

    # The running server serves the new version through the OpenAI-compatible API.
    client = OpenAI(base_url=f"{base_url}/v1", api_key=ada["Authorization"].split()[1])
    reply = client.chat.completions.create(
        model=dpo, messages=[{"role": "user", "content": "Say hello."}], max_tokens=8
    )
    assert reply.model == dpo and reply.choices[0].message.content.strip()
    http.close()
    catalog.close()
