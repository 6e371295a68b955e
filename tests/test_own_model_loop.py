"""The loop on a team's own model, end to end (issue: import a checkpoint, train across
processes, serve candidates as adapters).

A tiny random-weight checkpoint made here is imported with `tandem models import`, trained with
`accelerate launch --num_processes 2` on the CPU (gloo) into an adapter version, served by the
embedded engine as a rollout candidate next to production over the same base model, evaluated
by the real IFEval and XSTest suites (their first prompts), and promoted through the gates; a
rollback serves the base again.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from conftest import new_user
from tandem.cli.main import app as cli
from test_train_distributed import launch
from tiny_checkpoint import build_tiny_checkpoint

pytestmark = pytest.mark.model  # the ONNX builder and two training processes (~1 min)

BASE, CANDIDATE = "acme-tiny", "acme-tiny-sft"


def _chat(client: TestClient, headers: dict[str, str]) -> dict:
    conv = client.post("/api/conversations", json={}, headers=headers).json()
    r = client.post(
        f"/api/conversations/{conv['id']}/messages", json={"content": "Spell cat."}, headers=headers
    )
    assert r.status_code == 200, r.text
    return r.json()


def test_an_imported_checkpoint_trained_across_processes_is_promoted_as_an_adapter(
    settings, tandem_home: Path, tmp_path: Path
) -> None:
    from tandem.engines.onnx import OnnxEngine
    from tandem.engines.onnx_adapter import AdapterEngine
    from tandem.evals.runs import eval_owner_id, run_suite
    from tandem.evals.tasks import get_task
    from tandem.web.app import create_app

    checkpoint = tmp_path / BASE
    build_tiny_checkpoint(checkpoint)
    imported = CliRunner().invoke(cli, ["models", "import", str(checkpoint)])
    assert imported.exit_code == 0, imported.output

    data = tmp_path / "sft.jsonl"
    rows = [
        {
            "messages": [
                {"role": "user", "content": f"Spell {word}."},
                {"role": "assistant", "content": "-".join(word.upper())},
            ]
        }
        for word in ("cat", "dog", "cow", "hen")
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    env = {
        **os.environ,
        "TANDEM_HOME": str(tandem_home),
        "HF_HUB_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf-home"),  # no machine-wide `accelerate config` applies
    }
    trained = launch("sft", data, env)  # accelerate launch --multi_gpu --num_processes 2
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert trained.stdout.count(f"registered {CANDIDATE}") == 1  # by the main process only

    root = tandem_home / "models" / CANDIDATE
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["adapter_of"] == BASE and manifest["formats"] == {"adapter": "adapter"}
    assert (root / "adapter" / "adapter_config.json").is_file()
    assert not (root / "hf").exists() and not (root / "onnx").exists()  # merged only on demand

    web = create_app(settings)
    with TestClient(web) as client:
        admin = new_user(client, "admin@acme.io")
        user = new_user(client, "user@acme.io")
        with web.state.session_factory() as session:
            from tandem.store import ModelVersionRepo

            version = ModelVersionRepo(session).get(CANDIDATE)
            assert version.parent_id == BASE and version.status == "candidate"
            assert version.metrics["processes"] == 2

        rid = client.post(
            "/api/admin/rollouts", json={"version": BASE, "reason": "our model"}, headers=admin
        ).json()["id"]
        r = client.put(
            f"/api/admin/rollouts/{rid}/candidates",
            json={"version": CANDIDATE, "traffic_share": 1.0, "reason": "A/B"},
            headers=admin,
        )
        assert r.status_code == 200, r.text
        turn = _chat(client, user)  # every user is in the candidate's slice
        assert turn["generation"]["model_version"] == CANDIDATE
        # Production answers next to it, from the same engine (a request naming the base).
        r = client.post(
            "/v1/chat/completions",
            json={"model": BASE, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4},
            headers=user,
        )
        assert r.status_code == 200 and r.json()["model"] == BASE, r.text
        # The candidate is the base's engine with the adapter's branches: no second model.
        catalog = web.state.catalog
        candidate, base = catalog.get(CANDIDATE), catalog.get(BASE)
        assert isinstance(base, OnnxEngine) and isinstance(candidate, AdapterEngine)
        assert candidate.base is base

        # Both versions answer the gated suites (their first prompts), as eval jobs would.
        with web.state.session_factory() as session:
            owner = eval_owner_id(session)
            for name in (BASE, CANDIDATE):
                for suite in ("ifeval", "xstest"):
                    run_suite(session, get_task(suite), catalog.get(name), owner_id=owner, limit=3)
        r = client.post(
            f"/api/admin/rollouts/{rid}/promote",
            json={"version": CANDIDATE, "reason": "gates pass"},
            headers=admin,
        )
        assert r.status_code == 200, r.text
        assert r.json()["rollout"]["production_version"] == CANDIDATE
        assert _chat(client, user)["generation"]["model_version"] == CANDIDATE

        r = client.post(
            f"/api/admin/rollouts/{rid}/rollback", json={"reason": "one click"}, headers=admin
        )
        assert r.status_code == 200 and r.json()["production_version"] == BASE
        assert _chat(client, user)["generation"]["model_version"] == BASE
