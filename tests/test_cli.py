"""The `tandem` command, run in-process with Typer's runner."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tandem.cli.common import EXIT_CODES, CommandError, ExitCode, exit_code_for
from tandem.cli.main import app
from tandem.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from tandem.engines import ContextLengthExceeded, EngineError, ModelNotFound
from tandem.train.config import ConfigError

runner = CliRunner()


def test_users_and_api_keys(tandem_home):
    created = runner.invoke(app, ["users", "create", "ada@example.com", "--password", "pw-12345"])
    assert created.exit_code == 0, created.output
    assert "created ada@example.com" in created.output
    again = runner.invoke(app, ["users", "create", "ADA@example.com", "--password", "x-12345"])
    assert again.exit_code == 4  # conflict
    assert "already exists" in again.output
    key = runner.invoke(app, ["users", "api-key", "ada@example.com"])
    assert key.exit_code == 0
    assert key.output.strip().startswith("tk-")
    missing = runner.invoke(app, ["users", "api-key", "nobody@example.com"])
    assert missing.exit_code == 3  # not found


def test_models_list_is_helpful_when_empty(tandem_home):
    result = runner.invoke(app, ["models", "list"])
    assert result.exit_code == 0
    assert "tandem models prepare" in result.output
    shown = runner.invoke(app, ["models", "show", "nope"])
    assert shown.exit_code == 3


@pytest.mark.model
def test_chat_repl_streams_and_handles_commands(model_home, monkeypatch, tmp_path):
    # The prepared model is reused; the database is this test's own.
    monkeypatch.setenv("TANDEM_HOME", str(model_home))
    monkeypatch.setenv("TANDEM_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    script = "What is the capital of France?\n/model\n/model nope\n/new\nhi\n/quit\n"
    result = runner.invoke(app, ["chat"], input=script)
    assert result.exit_code == 0, result.output
    assert result.output.count("assistant> ") == 2
    answer = result.output.split("assistant> ")[1].split("you>")[0]
    assert answer.strip()
    assert "smollm2-135m-instruct@transformers" in result.output  # /model lists models
    assert "no model 'nope'" in result.output
    assert "(new conversation)" in result.output
    listed = runner.invoke(app, ["models", "list"])
    assert "smollm2-135m-instruct  production" in listed.output


# -- exit statuses (docs/cli.md, "Exit status") ------------------------------------------------


def documented_exit_statuses() -> tuple[set[int], dict[str, int]]:
    """The statuses in docs/cli.md's table, and the status each error named there maps to."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "cli.md").read_text()
    block = text.split("<!-- exit-status:start -->", 1)[1].split("<!-- exit-status:end -->")[0]
    statuses, errors = set(), {}
    for line in block.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if cells[0].isdigit():
            statuses.add(int(cells[0]))
            errors |= {name: int(cells[0]) for name in re.findall(r"`(\w+)`", cells[2])}
    return statuses, errors


def test_the_exit_statuses_are_the_documented_ones():
    statuses, errors = documented_exit_statuses()
    assert statuses == {int(code) for code in ExitCode}
    assert errors == {kind.__name__: int(code) for kind, code in EXIT_CODES}


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (NotFound("model version", "x"), 3),
        (ModelNotFound("x"), 3),
        (InvalidInput("bad"), 2),
        (ConfigError("bad"), 2),
        (ContextLengthExceeded("long"), 2),  # an EngineError, but the prompt is the caller's
        (EngineError("down"), 1),
        (Conflict("taken"), 4),
        (PermissionDenied("no"), 5),
        (CommandError("own check"), 1),
        (CommandError("own usage check", ExitCode.USAGE), 2),
        (RuntimeError("a bug"), None),  # not a domain error: keeps its traceback
        (KeyError("a bug"), None),
    ],
)
def test_each_domain_error_has_one_exit_code(error, code):
    assert exit_code_for(error) == code


def test_a_missing_row_exits_3_with_one_line_on_stderr(tandem_home):
    result = runner.invoke(app, ["models", "show", "nope"])
    assert result.exit_code == 3
    assert result.stdout == ""
    assert result.stderr == "error: model version 'nope' not found\n"


def test_an_unexpected_error_keeps_its_traceback(tandem_home, monkeypatch):
    import tandem.store

    def broken(self):  # type: ignore[no-untyped-def]
        raise RuntimeError("a bug")

    monkeypatch.setattr(tandem.store.ModelVersionRepo, "list", broken)
    result = runner.invoke(app, ["models", "list"])
    assert isinstance(result.exception, RuntimeError) and result.stderr == ""


def test_commands_run_offline_and_the_cli_imports_no_hub_library_before():
    # HF_HUB_OFFLINE is read once, when huggingface_hub is imported: the root group sets it
    # before a command runs, which is soon enough only while importing the CLI imports no hub.
    script = (
        "import os, sys\n"
        "from typer.testing import CliRunner\n"
        "from tandem.cli.main import app\n"
        "assert not {'huggingface_hub', 'transformers', 'datasets'} & set(sys.modules)\n"
        "assert CliRunner().invoke(app, ['models', 'list']).exit_code == 0\n"
        "print(os.environ.get('HF_HUB_OFFLINE'))\n"
    )
    env = {
        k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    }
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1"
