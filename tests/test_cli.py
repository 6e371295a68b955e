"""The `tandem` command, run in-process with Typer's runner."""

import pytest
from typer.testing import CliRunner

from tandem.cli.main import app

runner = CliRunner()


def test_users_and_api_keys(tandem_home):
    created = runner.invoke(app, ["users", "create", "ada@example.com", "--password", "pw-12345"])
    assert created.exit_code == 0, created.output
    assert "created ada@example.com" in created.output
    again = runner.invoke(app, ["users", "create", "ADA@example.com", "--password", "x-12345"])
    assert again.exit_code == 1
    assert "already exists" in again.output
    key = runner.invoke(app, ["users", "api-key", "ada@example.com"])
    assert key.exit_code == 0
    assert key.output.strip().startswith("tk-")
    missing = runner.invoke(app, ["users", "api-key", "nobody@example.com"])
    assert missing.exit_code == 1


def test_models_list_is_helpful_when_empty(tandem_home):
    result = runner.invoke(app, ["models", "list"])
    assert result.exit_code == 0
    assert "tandem models prepare" in result.output
    shown = runner.invoke(app, ["models", "show", "nope"])
    assert shown.exit_code == 1


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
