"""`tandem flywheel run` as a user gets it: a wheel of this checkout installed into a fresh
virtual environment, run from a directory outside the checkout, writing nothing into it.

The new environment takes its dependencies (torch, transformers, ...) from the test's own
environment through a `.pth` file that names that site-packages as a plain path: plain lines
are only added to sys.path, the `.pth` files there (the editable install's finder, which
points at this checkout's src/) are not run. So `import tandem` finds the wheel and nothing
of the checkout (`bench`, `tests`, src/) is importable.

    .venv/bin/python -m pytest -q -m model tests/test_flywheel_installed.py
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

# The same tiny sizes as the in-checkout run: one turn that exercises every stage.
from test_flywheel_model import TINY

pytestmark = pytest.mark.model

ROOT = Path(__file__).resolve().parents[1]
# Everything setuptools reads to build the wheel (pyproject.toml names README.md).
WHEEL_INPUTS = ("pyproject.toml", "README.md")
# Evaluation-only data, in the shared checkout beside the repository.
BENCHMARKS = ROOT.parent / "shared" / "data" / "benchmarks"
# What a turn could write into the checkout if a path were still relative to it.
CHECKOUT_PATHS = ("docs", ".cache/flywheel", "build", "src/tandem.egg-info")


def _run(
    command: list[str], cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"{command}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def _clean_env(**extra: str) -> dict[str, str]:
    """This environment without anything that would point Python or tandem at the checkout."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV") and not k.startswith("TANDEM_")
    }
    return {**env, "HF_HUB_OFFLINE": "1", **extra}


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv with the checkout's wheel installed and the test environment's dependencies
    visible; returns the venv directory."""
    tmp = tmp_path_factory.mktemp("installed")
    # The wheel is built from a copy: an in-tree build would write build/ and *.egg-info into
    # the checkout, the very thing the turn below must not do.
    source = tmp / "source"
    shutil.copytree(
        ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    for name in WHEEL_INPUTS:
        shutil.copy2(ROOT / name, source / name)
    wheels = tmp / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
          "-w", str(wheels), str(source)])  # fmt: skip
    (wheel,) = wheels.glob("tandem-*.whl")

    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    # This environment's pip installs into the new one; the wheel goes in before the
    # dependencies become visible, so pip does not take them for an installed tandem.
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
          "--no-index", str(wheel)])  # fmt: skip
    purelib = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = Path(_run([str(python), "-c", purelib]).stdout.strip())
    (site / "tandem_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv


def test_the_installed_tandem_is_the_wheel_not_the_checkout(installed: Path, tmp_path: Path):
    python, tandem = installed / "bin" / "python", installed / "bin" / "tandem"
    env = _clean_env()
    where = _run(
        [str(python), "-c", "import tandem, tandem.flywheel.server as s; print(tandem.__file__)"],
        cwd=tmp_path,
        env=env,
    ).stdout.strip()
    assert Path(where).is_relative_to(installed) and not Path(where).is_relative_to(ROOT)
    for checkout_only in ("bench", "tests"):
        missing = subprocess.run(
            [str(python), "-c", f"import {checkout_only}"], cwd=tmp_path, env=env
        )
        assert missing.returncode != 0, f"{checkout_only} is importable from the installed venv"
    assert "flywheel" in _run([str(tandem), "--help"], cwd=tmp_path, env=env).stdout
    served = _run([str(python), "-m", "tandem", "serve", "--help"], cwd=tmp_path, env=env)
    assert "Usage: tandem serve" in served.stdout


def _checkout_state() -> str:
    """git's view of the paths a turn must leave alone, ignored files included."""
    return _run(
        ["git", "status", "--porcelain", "--ignored", "--untracked-files=all", "--",
         *CHECKOUT_PATHS],
        cwd=ROOT,
    ).stdout  # fmt: skip


def test_an_installed_turn_runs_outside_the_checkout(
    installed: Path, tmp_path: Path, prepared_model: object
):
    work, out, home = tmp_path / "work", tmp_path / "out", tmp_path / "home"
    server_home = tmp_path / "server-home"  # the turn's own; a default would be under /tmp
    work.mkdir()
    before = _checkout_state()
    env = _clean_env(
        TANDEM_HOME=str(home),
        # The test suite's prepared embedded model, linked per version into the turn's home.
        TANDEM_FLYWHEEL_MODELS_FROM=str(prepared_model.root.parent),  # type: ignore[attr-defined]
        # IFEval's and XSTest's files: a checkout finds them beside itself, an installed
        # tandem only where it is told (the variable tandem.data.importing already reads).
        TANDEM_BENCHMARKS_DIR=str(BENCHMARKS),
    )
    command = [str(installed / "bin" / "tandem"), "flywheel", "run", "--out", str(out),
               "--home", str(server_home), "--turns", "1", *TINY, "--no-keep-serving"]  # fmt: skip
    done = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]

    summary = json.loads((out / "summary.json").read_text())
    assert isinstance(summary["ifeval_base"], float)
    assert isinstance(summary["ifeval_promoted"], float)
    assert isinstance(summary["turns"], list) and len(summary["turns"]) == 1
    assert summary["feedback_events"] == summary["turns"][0]["feedback_events"] > 0
    # What the run keeps goes under --out and $TANDEM_HOME, nothing into the checkout.
    assert list((home / "flywheel" / "eval-cache").glob("ifeval-*.json"))
    assert _checkout_state() == before
