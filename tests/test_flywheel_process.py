"""The processes `tandem flywheel run` starts: training in a child process that hands its memory
back when it exits, and `tandem serve` started from the installed package (no checkout).
Hermetic tests run tiny functions from tests/child_targets.py in the child; the `model` test
trains two real DPO steps through `train_in_child`.

    .venv/bin/python -m pytest -q tests/test_flywheel_process.py -m "not model"
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tandem.core.memory import status_kib
from tandem.flywheel.child import run_in_child
from tandem.flywheel.server import (
    MODELS_FROM_ENV,
    default_models_from,
    prepare_home,
)

# -- training in a child --------------------------------------------------------------------


def test_a_child_returns_its_dict_and_its_peak_memory():
    result = run_in_child("child_targets:add", {"a": 2, "b": 3})
    assert result["sum"] == 5
    assert result["pid"] != os.getpid()
    assert result["child_peak_rss_mb"] > 0


def test_a_child_that_raises_gives_its_exception_and_traceback():
    with pytest.raises(RuntimeError) as failed:
        run_in_child("child_targets:fail", {"message": "the snapshot has no rows"})
    message = str(failed.value)
    assert "exited with code 1" in message
    assert "ValueError: the snapshot has no rows" in message
    assert "child_targets.py" in message  # the traceback, not only its last line


def test_a_child_killed_by_a_signal_says_which():
    with pytest.raises(RuntimeError, match=r"killed by signal 9 \(SIGKILL\).*OOM killer"):
        run_in_child("child_targets:kill_itself", {})


def test_a_child_that_exits_nonzero_gives_its_exit_code():
    with pytest.raises(RuntimeError, match="child_targets:exit_hard exited with code 3"):
        run_in_child("child_targets:exit_hard", {"code": 3})


def test_a_child_must_return_a_dict_and_take_json_arguments():
    with pytest.raises(RuntimeError, match="returned list, not a dict"):
        run_in_child("child_targets:not_a_dict", {})
    with pytest.raises(TypeError, match="JSON serializable"):
        run_in_child("child_targets:add", {"a": object(), "b": 1})
    with pytest.raises(ValueError, match="module:function"):
        run_in_child("child_targets.add", {})


def test_memory_the_child_allocates_goes_back_with_it():
    """What the flywheel relies on: training's gigabytes leave with the child, so the parent
    evaluates afterwards at its own size."""
    before_kib = status_kib(os.getpid(), "VmRSS")
    result = run_in_child("child_targets:allocate", {"mb": 500})
    after_kib = status_kib(os.getpid(), "VmRSS")
    assert result["allocated_mb"] == 500
    assert result["child_peak_rss_mb"] >= 500
    assert (after_kib - before_kib) / 1024 < 100


def test_the_childs_logs_reach_the_parents_stderr(
    capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO)  # the parent logs INFO, as `tandem flywheel run` does
    run_in_child("child_targets:log_info", {"text": "step 1 of 2"})
    assert "step 1 of 2" in capfd.readouterr().err


# -- the server process ---------------------------------------------------------------------


def test_python_m_tandem_is_the_tandem_command(tmp_path: Path):
    """TandemProcess starts `sys.executable -m tandem serve`, found from any directory."""
    done = subprocess.run(
        [sys.executable, "-m", "tandem", "serve", "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Usage: tandem serve" in done.stdout


def test_a_home_links_prepared_models_only_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    # By default nothing outside the home is linked, even from a source checkout.
    bare = prepare_home(tmp_path / "bare")
    assert (bare / "models").is_dir() and not list((bare / "models").iterdir())

    prepared = tmp_path / "prepared"
    (prepared / "smollm2-135m-instruct").mkdir(parents=True)
    (prepared / "notes.txt").write_text("not a version")
    home = prepare_home(tmp_path / "home", prepared)
    linked = home / "models" / "smollm2-135m-instruct"
    assert linked.is_symlink() and linked.resolve() == (prepared / "smollm2-135m-instruct")
    assert not (home / "models").is_symlink()  # trained versions land in the home
    assert not (home / "models" / "notes.txt").exists()
    with pytest.raises(NotADirectoryError):
        prepare_home(tmp_path / "other", tmp_path / "missing")

    monkeypatch.delenv(MODELS_FROM_ENV, raising=False)
    assert default_models_from() is None
    monkeypatch.setenv(MODELS_FROM_ENV, str(prepared))
    assert default_models_from() == prepared
    monkeypatch.setenv(MODELS_FROM_ENV, str(tmp_path / "missing"))
    with pytest.raises(NotADirectoryError, match=MODELS_FROM_ENV):
        default_models_from()


# -- a real candidate -----------------------------------------------------------------------


@pytest.mark.model
def test_a_candidate_trains_in_a_child_and_is_registered(
    tmp_path: Path, tandem_home: Path, prepared_model: object
):
    from tandem.core.settings import Settings
    from tandem.flywheel.training import train_in_child

    base = "smollm2-135m-instruct"
    (tandem_home / "models").mkdir()
    (tandem_home / "models" / base).symlink_to(prepared_model.root)  # type: ignore[attr-defined]
    data = tmp_path / "preference.jsonl"
    rows = [
        {
            "prompt": [{"role": "user", "content": f"What is {n} plus {n}?"}],
            "chosen": [{"role": "assistant", "content": f"{n} plus {n} is {2 * n}."}],
            "rejected": [{"role": "assistant", "content": "I would rather not say."}],
        }
        for n in range(1, 5)
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    settings = Settings.from_env()
    overrides = {"max_steps": 2, "batch_size": 2, "max_length": 128, "logging_steps": 1}
    before_kib = status_kib(os.getpid(), "VmRSS")
    trained = train_in_child(
        "dpo", str(data), base, settings.home, settings.database_url, overrides
    )
    grown_mb = (status_kib(os.getpid(), "VmRSS") - before_kib) / 1024
    # A LoRA candidate is an adapter version: no merged weights or ONNX model of its own.
    root = tandem_home / "models" / trained["version"]
    assert (root / "adapter" / "adapter_model.safetensors").exists()
    assert json.loads((root / "manifest.json").read_text())["adapter_of"] == base
    assert [loss["step"] for loss in trained["losses"]] == [1, 2]
    assert trained["config"]["max_steps"] == 2 and trained["dataset"] == str(data)
    assert "log_history" not in trained["metrics"]
    assert trained["s_per_step"] > 0 and trained["merge_onnx_register_s"] > 0
    # The child held the model and the optimizer; the parent held none of it.
    assert trained["child_peak_rss_mb"] > 500 and grown_mb < 100
