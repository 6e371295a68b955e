"""Two tiny turns of `tandem flywheel run` on the real model, end to end: simulated users,
snapshots, training in a child process, evals, offline gates, the online stage and promotion
through every gate; the next turn starts from what the first left serving.

    .venv/bin/python -m pytest -q tests/test_flywheel_model.py -m model
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tandem.flywheel.server import TandemProcess

# Sizes that exercise every stage in a few minutes; they measure the plumbing, not the model.
TINY = [
    "--users", "4", "--prompts-per-user", "6", "--max-steps", "2", "--max-tokens", "48",
    "--max-length", "192", "--ifeval-limit", "8", "--xstest-limit", "8", "--spec-limit", "6",
    "--sycophancy-limit", "6", "--eval-max-tokens", "64", "--refusal-max-tokens", "32",
    "--online-users", "4", "--online-batch", "5", "--online-max-events", "40",
    "--online-min-votes", "3", "--online-margin", "0.45",
    # Offline margins wide open: 6-case suites would fail a candidate on one flipped case, and
    # this test is about every stage running, the online one included.
    "--gate-margin", "1", "--refusal-margin", "1", "--contrast-margin", "1",
    "--spec-margin", "1", "--sycophancy-margin", "1",
]  # fmt: skip


@pytest.mark.model
def test_two_tiny_turns_run_end_to_end_and_leave_production_serving(
    tmp_path: Path, prepared_model: object, model_home: Path
) -> None:
    out, home = tmp_path / "run", tmp_path / "home"
    tandem = Path(sys.executable).parent / "tandem"
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TANDEM_HOME": str(tmp_path / "tandem-home"),
        "TANDEM_FLYWHEEL_MODELS_FROM": str(model_home / "models"),
    }
    args = ["flywheel", "run", "--turns", "2", "--out", str(out), "--home", str(home), *TINY]
    done = subprocess.run(
        [str(tandem), *args, "--no-keep-serving"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-4000:]
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["turns"]) == 2
    first, second = summary["turns"]
    # The second turn's users talked to what the first left serving.
    assert second["production_before"] == first["production_after"]
    for turn in summary["turns"]:
        assert 0 < turn["feedback_events"] <= 2000
        assert turn["simulation_events"] == 4 * 6  # planned, not cut by a clock
        # Every candidate met users before any decision: the online stage ran and voted.
        assert turn["offline_passed"] and turn["online"] is not None
        assert 0 < turn["online"]["events"] <= 40
        assert turn["feedback_events"] == 24 + turn["online"]["events"]
        if turn["promoted"]:
            # Promotion needed users: the online votes were read, not skipped.
            assert turn["online"]["passed"] and turn["online"]["events"] > 0
            assert not any(c["skipped"] for c in turn["online"]["checks"])
        if turn["paired_vs_production"]:
            assert 0 <= turn["paired_vs_production"]["ifeval"]["mcnemar_p"] <= 1
    assert summary["feedback_events"] == sum(t["feedback_events"] for t in summary["turns"])
    for key in ("ifeval_base", "xstest_contrast_refusal_base", "sycophancy_base"):
        assert summary[key] is not None, key
    assert (out / "report.md").read_text().count("### Turn") == 2
    # The base's eval runs went to the cache under $TANDEM_HOME, not into the checkout.
    assert list((tmp_path / "tandem-home" / "flywheel" / "eval-cache").glob("ifeval-*.json"))

    # The home keeps the decision: a server started on it serves the same production.
    with TandemProcess(home, models_from=None) as server:
        headers = {"Authorization": f"Bearer {server.admin_key}"}
        with httpx.Client(base_url=server.base, headers=headers, timeout=120) as client:
            conv = client.post("/api/conversations", json={}).json()
            body = {"content": "Hi", "sampling": {"max_tokens": 4}}
            answer = client.post(f"/api/conversations/{conv['id']}/messages", json=body).json()
    assert answer["generation"]["model_version"] == summary["production_version"]
