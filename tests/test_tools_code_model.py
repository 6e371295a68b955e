"""The code interpreter end to end with the embedded model: the user's code block runs in the
sandbox and the answer records the call; without a block the 135M model writes the code
(whatever it writes, the pipeline completes and records what ran)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from conftest import new_user

pytestmark = pytest.mark.model


@pytest.fixture
def code_client(settings, onnx_engine, prepared_model, monkeypatch):
    from tandem.engines import ModelCatalog
    from tandem.web.app import create_app

    monkeypatch.setenv("TANDEM_SANDBOX_WALL_S", "10")
    monkeypatch.setattr("tandem.tools.code.WRITE_CODE_MAX_TOKENS", 48)
    catalog = ModelCatalog(default_model=prepared_model.version)
    catalog.add(onnx_engine)
    with TestClient(create_app(settings, catalog)) as client:
        yield client


def _ask(client, headers, text):
    conv = client.post("/api/conversations", json={}, headers=headers).json()
    r = client.post(
        f"/api/conversations/{conv['id']}/messages",
        json={"content": text, "tools": ["code"], "sampling": {"max_tokens": 24, "temperature": 0}},
        headers=headers,
    )
    assert r.status_code == 200, r.text
    return r.json()


def test_the_users_code_runs_and_the_answer_records_it(code_client):
    alice = new_user(code_client, "alice@x.io")
    turn = _ask(code_client, alice, "What is this?\n```python\nprint(sum(range(10)))\n```")
    [call] = turn["generation"]["tool_calls"]
    assert call["tool"] == "code" and call["error"] is None
    assert call["arguments"] == {"code": "print(sum(range(10)))"}
    assert call["display"]["stdout"] == "45\n" and call["display"]["status"] == "ok"
    assert "Output:\n45" in call["content"]  # what the model read
    assert turn["assistant_message"]["content"]


def test_without_a_code_block_the_model_writes_the_code(code_client):
    alice = new_user(code_client, "alice@x.io")
    turn = _ask(code_client, alice, "Print the numbers from 1 to 5 in Python.")
    [call] = turn["generation"]["tool_calls"]
    assert call["tool"] == "code"
    assert call["arguments"] == {"request": "Print the numbers from 1 to 5 in Python."}
    # The small model may write broken code or none; either way the record says what ran.
    if call["display"].get("code"):
        assert call["display"]["written_by"] == "model"
        assert call["display"]["status"] in ("ok", "error", "timeout", "memory", "killed")
    else:
        assert call["error"] == "The model did not write any Python code for this request."
    assert turn["assistant_message"]["content"]
