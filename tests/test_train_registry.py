"""The registry side of training, without a model: registering a trained version (files, then
the database row), lineage, statuses, and the server's catalog noticing new versions."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from fake_engine import FakeEngine
from tandem.cli.main import app
from tandem.core.errors import InvalidInput, NotFound
from tandem.core.settings import Settings
from tandem.engines.setup import build_catalog
from tandem.registry.lineage import render_lineage
from tandem.registry.versions import (
    REWARD,
    VersionExists,
    register_trained,
    set_status,
    write_version_files,
)
from tandem.store import ModelVersionRepo
from tandem.store.rollouts import RolloutRepo

BASE = "base-model"


def staged_checkpoint(tmp_path: Path, name: str = "staging") -> Path:
    """What training leaves before registration: an `hf/` checkpoint and reports."""
    staging = tmp_path / name
    (staging / "hf").mkdir(parents=True)
    (staging / "hf" / "config.json").write_text("{}")
    (staging / "metrics.json").write_text("{}")
    return staging


def fake_version_dir(registry: Path, version: str, kind: str = "chat") -> None:
    """A registry entry as a server sees it: format directories and a manifest."""
    root = registry / version
    (root / "onnx").mkdir(parents=True)
    (root / "hf").mkdir()
    (root / "manifest.json").write_text(json.dumps({"version": version, "kind": kind}))


def test_register_trained_moves_files_then_records_the_candidate(session, tandem_home, tmp_path):
    ModelVersionRepo(session).upsert(BASE, status="production")
    config = {"method": "dpo", "dataset": {"hash": "sha256:ab12"}, "code_version": "abc"}
    row = register_trained(
        session,
        tandem_home,
        "child",
        staged_checkpoint(tmp_path),
        parent=BASE,
        config=config,
        metrics={"final_loss": 0.5, "steps": 2},
        card="# child",
        build_onnx_format=False,
    )
    root = tandem_home / "models" / "child"
    manifest = json.loads((root / "manifest.json").read_text())
    assert (root / "hf" / "config.json").exists() and (root / "metrics.json").exists()
    assert not (tmp_path / "staging").exists()
    assert manifest["parent"] == BASE and manifest["kind"] == "chat"
    assert manifest["dataset"] == {"hash": "sha256:ab12"}
    assert (row.parent_id, row.status, row.base_path) == (BASE, "candidate", str(root))
    assert row.config["code_version"] == "abc" and row.metrics["steps"] == 2
    assert [v.id for v in ModelVersionRepo(session).lineage("child")] == ["child", BASE]
    # A version name is registered once.
    with pytest.raises(VersionExists):
        register_trained(
            session, tandem_home, "child", staged_checkpoint(tmp_path, "again"),
            parent=BASE, config=config, metrics={}, card="", build_onnx_format=False,
        )  # fmt: skip


def test_register_trained_needs_a_known_parent(session, tandem_home, tmp_path):
    with pytest.raises(NotFound):
        register_trained(
            session, tandem_home, "orphan", staged_checkpoint(tmp_path),
            parent="nowhere", config={}, metrics={}, card="", build_onnx_format=False,
        )  # fmt: skip
    assert not (tandem_home / "models" / "orphan").exists()


def test_set_status_validates_and_does_not_create(session):
    ModelVersionRepo(session).upsert(BASE, status="candidate")
    assert set_status(session, BASE, "production").status == "production"
    with pytest.raises(InvalidInput):
        set_status(session, BASE, "shipped")
    with pytest.raises(NotFound):
        set_status(session, "nope", "retired")


def version(id: str, parent: str | None = None, status: str = "candidate", **config):
    metrics = {"final_loss": config.pop("loss")} if "loss" in config else {}
    return SimpleNamespace(id=id, parent_id=parent, status=status, config=config, metrics=metrics)


def test_lineage_tree_shows_parents_above_children():
    rows = [
        version("base", status="production"),
        version("a", "base", method="sft", dataset={"hash": "sha256:" + "1" * 64}, loss=1.25),
        version("a-dpo", "a", method="dpo"),
        version("b", "base", status="retired", method="kto"),
        version("other-root"),
    ]
    assert render_lineage(rows) == "\n".join(
        [
            "base  production",
            "├── a  candidate  sft  data sha256:111111111111  loss 1.25",
            "│   └── a-dpo  candidate  dpo",
            "└── b  retired  kto",
            "other-root  candidate",
        ]
    )
    # One version's branch: its ancestors, itself (marked) and its descendants only.
    assert render_lineage(rows, focus="a") == "\n".join(
        [
            "base  production",
            "└── a  candidate  sft  data sha256:111111111111  loss 1.25  ◀",
            "    └── a-dpo  candidate  dpo",
        ]
    )
    with pytest.raises(LookupError):
        render_lineage(rows, focus="missing")


def test_lineage_survives_a_self_parent():
    assert render_lineage([version("x", "x")]) == "x  candidate"


def test_models_lineage_and_set_status_commands(tandem_home):
    runner = CliRunner()
    assert "no model versions yet" in runner.invoke(app, ["models", "lineage"]).output
    from tandem.cli.common import cli_session

    with cli_session(Settings.from_env()) as session:
        repo = ModelVersionRepo(session)
        repo.upsert(BASE, status="production")
        repo.upsert("child", parent_id=BASE, config={"method": "sft"})
    out = runner.invoke(app, ["models", "lineage"])
    assert out.exit_code == 0 and out.output.splitlines() == [
        f"{BASE}  production",
        "└── child  candidate  sft",
    ]
    assert runner.invoke(app, ["models", "lineage", "nope"]).exit_code == 3
    changed = runner.invoke(app, ["models", "set-status", "child", "production"])
    assert json.loads(changed.output) == {"id": "child", "status": "production"}
    bad = runner.invoke(app, ["models", "set-status", "child", "shipped"])
    assert bad.exit_code == 2 and "status must be one of" in bad.output
    assert runner.invoke(app, ["models", "set-status", "nope", "retired"]).exit_code == 3
    # Retiring a version a rollout serves is refused, saying where (the console's Archive rule).
    with cli_session(Settings.from_env()) as session:
        RolloutRepo(session).set_production(None, "child", None, "first serve")
    serving = runner.invoke(app, ["models", "set-status", "child", "retired"])
    assert serving.exit_code == 4 and "cannot archive" in serving.output
    retired = runner.invoke(app, ["models", "set-status", BASE, "retired"])
    assert json.loads(retired.output) == {"id": BASE, "status": "retired"}


def test_reward_versions_are_registered_but_not_served(tandem_home, tmp_path):
    write_version_files(tandem_home, "rm", staged_checkpoint(tmp_path), kind=REWARD, parent=BASE)
    manifest = json.loads((tandem_home / "models" / "rm" / "manifest.json").read_text())
    assert manifest["kind"] == "reward" and manifest["formats"] == {"hf": "hf"}
    catalog = build_catalog(Settings.from_env())
    assert [m.id for m in catalog.list()] == []


def test_catalog_picks_up_versions_registered_after_it_was_built(tandem_home):
    registry = tandem_home / "models"
    fake_version_dir(registry, "v1")
    catalog = build_catalog(Settings.from_env())
    catalog.add(FakeEngine("fake-model"))
    assert [m.id for m in catalog.list()] == ["fake-model", "v1", "v1@transformers"]
    # Half-written (no manifest yet) versions stay invisible; complete ones appear.
    (registry / "v2" / "onnx").mkdir(parents=True)
    assert "v2" not in catalog
    fake_version_dir(registry, "v3")
    fake_version_dir(registry, "rm", kind="reward")
    assert "v3" in catalog  # a request naming it finds it without a listing first
    assert [m.id for m in catalog.list()] == [
        "fake-model",
        "v1",
        "v1@transformers",
        "v3",
        "v3@transformers",
    ]
    assert "rm" not in catalog


def test_a_version_with_an_fp32_onnx_model_is_served_under_its_own_id(tandem_home):
    registry = tandem_home / "models"
    fake_version_dir(registry, "v1")
    (registry / "v1" / "onnx-fp32").mkdir()
    catalog = build_catalog(Settings.from_env())
    listed = {m.id: m for m in catalog.list()}
    assert list(listed) == ["v1", "v1@onnx-fp32", "v1@transformers"]
    assert listed["v1@onnx-fp32"].variant_of == "v1"
    assert listed["v1@onnx-fp32"].backend == "onnx-fp32"
