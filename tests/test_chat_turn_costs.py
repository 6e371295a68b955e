"""What one web chat message costs: one service call, one render and one tokenization of the
prompt, at most three database transactions (the key lookup, the chat's own, the record).

    .venv/bin/python -m pytest -q tests/test_chat_turn_costs.py
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import event

from conftest import new_user, sse_events

PUBLIC_OPERATIONS = ("send", "regenerate", "continue_answer", "edit", "generate", "compare")


def _counting(counts: Counter[str], name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    def counted(*args: Any, **kwargs: Any) -> Any:
        counts[name] += 1
        return func(*args, **kwargs)

    return counted


@pytest.mark.parametrize("stream", [False, True])
def test_a_chat_message_loads_once_renders_once_and_commits_little(
    client, monkeypatch, stream
) -> None:
    alice = new_user(client, "alice@x.io")
    conv = client.post("/api/conversations", json={}, headers=alice).json()["id"]
    url = f"/api/conversations/{conv}/messages"
    assert client.post(url, json={"content": "hello"}, headers=alice).status_code == 200

    app = client.app
    counts: Counter[str] = Counter()
    # Every way into the chat service, so a second call of any kind (a separate "is this turn
    # a comparison?" question, say) is seen.
    for name in PUBLIC_OPERATIONS:
        method = getattr(app.state.chat, name)
        monkeypatch.setattr(app.state.chat, name, _counting(counts, "service", method))
    engine = app.state.catalog.get("fake-model")
    monkeypatch.setattr(engine, "render_prompt", _counting(counts, "render", engine.render_prompt))
    monkeypatch.setattr(engine, "tokenize", _counting(counts, "tokenize", engine.tokenize))
    # A long stream re-checks its credential every RECHECK_S (one more transaction each
    # time): keep this short one from reaching that on a slow machine.
    monkeypatch.setattr("tandem.api.sse.RECHECK_S", 3600.0)
    database = app.state.session_factory.kw["bind"]
    transactions: list[str] = []

    def began(connection: Any) -> None:
        transactions.append(connection.engine.url.database or "")

    event.listen(database, "begin", began)
    try:
        # The message asks to remember something: the user message and the memory are two
        # writes, and the memory must already be in the prompt.
        body = {"content": "Please remember that I like tea", "stream": stream}
        r = client.post(url, json=body, headers=alice)
    finally:
        event.remove(database, "begin", began)

    assert r.status_code == 200, r.text
    if stream:
        done = next(e for e in sse_events(r.text) if e["type"] == "done")
        answer, memory = done["message"], done["memory_saved"]
    else:
        answer, memory = r.json()["assistant_message"], r.json()["memory_saved"]
    assert answer["parts"][0]["text"] == "You said: Please remember that I like tea"
    assert memory["text"] == "I like tea"
    system = engine.calls[-1][0][0]
    assert system.role == "system" and "I like tea" in system.content

    assert counts["service"] == 1, counts
    assert counts["render"] == 1, counts
    assert counts["tokenize"] == 1, counts
    assert len(transactions) <= 3, f"{len(transactions)} transactions"
