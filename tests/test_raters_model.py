"""Raters' data trains the real model: demonstrations written on a rater task become an SFT
snapshot, and `tandem.train.run.train` makes a 2-step candidate from it (the browser test,
tests/test_web_raters.py, trains through the stand-in launcher only).

    .venv/bin/python -m pytest -q -m model tests/test_raters_model.py
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import new_user
from tandem.store import ModelVersionRepo
from tandem.train import resolve_config, train

pytestmark = pytest.mark.model

BASE = "smollm2-135m-instruct"
PROMPTS = ["Greet me", "Say goodbye", "Thank the user", "Wish me luck"]


def test_a_rater_built_snapshot_trains_a_two_step_candidate(
    client, app, tandem_home: Path, prepared_model
):
    (tandem_home / "models").mkdir(exist_ok=True)
    (tandem_home / "models" / BASE).symlink_to(prepared_model.root, target_is_directory=True)
    admin = new_user(client, "admin@x.io")
    rater = new_user(client, "rater@x.io")
    rater_id = client.get("/api/auth/me", headers=rater).json()["id"]
    r = client.patch(f"/api/users/{rater_id}", json={"is_rater": True}, headers=admin)
    assert r.status_code == 200
    body = {
        "title": "Teach manners",
        "kind": "demonstration",
        "raters_per_item": 1,
        "items": [{"prompt": p} for p in PROMPTS],
    }
    task = client.post("/api/admin/tasks", json=body, headers=admin).json()
    for n, assignment in enumerate(
        client.get("/api/rater/queue", headers=rater).json()["assignments"]
    ):
        url = f"/api/rater/assignments/{assignment['id']}"
        prompt = client.get(url, headers=rater).json()["prompt"]
        turns = [*prompt, {"role": "assistant", "content": f"Of course! Here you go, number {n}."}]
        r = client.post(f"{url}/submit", json={"messages": turns}, headers=rater)
        assert r.status_code == 200, r.text
    build = {
        "kind": "sft",
        "source": "rater_task",
        "filters": {"task_id": task["id"], "test_fraction": 0, "near_duplicate_threshold": 2},
    }
    snapshot = client.post("/api/datasets", json=build, headers=admin)
    assert snapshot.status_code == 201, snapshot.text
    assert snapshot.json()["counts"]["train"] == len(PROMPTS)

    overrides = {"max_steps": 2, "max_length": 64, "batch_size": 2, "build_onnx": False}
    result = train(
        "sft",
        snapshot.json()["id"],
        BASE,
        home=tandem_home,
        database_url=app.state.settings.database_url,
        config=resolve_config("sft", overrides=overrides),
    )
    assert result.root is not None  # a LoRA run: an adapter version of the base
    assert (result.root / "adapter" / "adapter_model.safetensors").is_file()
    with app.state.session_factory() as session:
        row = ModelVersionRepo(session).get(result.version)
    assert (row.parent_id, row.status) == (BASE, "candidate")
    assert row.metrics["steps"] == 2 and row.metrics["final_loss"] > 0
    # The version names the rater snapshot it was trained on.
    assert row.config["dataset"]["hash"] == snapshot.json()["hash"]
