"""A long chat and a cut answer with the real embedded model (4,096-token context): the chat
goes on past the context by dropping its oldest turns, and Continue goes on writing the same
answer.

    .venv/bin/python -m pytest -q -m model tests/test_chat_model.py
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from conftest import new_user

pytestmark = pytest.mark.model

# ~700 tokens of prose per message: the sixth message no longer fits with all five before it.
PASSAGE = (
    "The river runs past the old mill, under the stone bridge and through the meadow where "
    "the village keeps its sheep in summer. "
) * 28


@pytest.fixture
def real_client(settings, onnx_engine, prepared_model):
    from tandem.engines import ModelCatalog
    from tandem.web.app import create_app

    catalog = ModelCatalog(default_model=prepared_model.version)
    catalog.add(onnx_engine)
    with TestClient(create_app(settings, catalog)) as client:
        yield client


def test_a_chat_longer_than_the_context_goes_on(real_client, onnx_engine):
    alice = new_user(real_client, "alice@x.io")
    conv = real_client.post("/api/conversations", json={}, headers=alice).json()
    url = f"/api/conversations/{conv['id']}/messages"
    sampling = {"max_tokens": 8, "temperature": 0}
    notices = []
    for i in range(7):
        r = real_client.post(
            url, json={"content": f"Part {i}. {PASSAGE}", "sampling": sampling}, headers=alice
        )
        # Before: "the prompt is 4,3xx tokens; this model's context is 4096" on the 6th.
        assert r.status_code == 200, r.text
        notices.append(r.json()["notice"])
        assert r.json()["generation"]["prompt_tokens"] + 8 <= onnx_engine.max_context
    # Said once, when it began (five messages fit, a few more do not).
    assert notices.count(None) == 6
    assert next(i for i, n in enumerate(notices) if n) >= 4


def test_continue_goes_on_writing_a_cut_answer(real_client, onnx_engine):
    alice = new_user(real_client, "alice@x.io")
    conv = real_client.post("/api/conversations", json={}, headers=alice).json()
    # Cut mid-sentence (6 tokens of a story), so the model has words left to write.
    body = {
        "content": "Write a long story about a dragon who learns to bake bread.",
        "sampling": {"max_tokens": 6, "temperature": 0},
    }
    r = real_client.post(f"/api/conversations/{conv['id']}/messages", json=body, headers=alice)
    cut = r.json()["assistant_message"]
    assert cut["finish_reason"] == "length"
    more = real_client.post(
        f"/api/messages/{cut['id']}/continue",
        json={"sampling": {"max_tokens": 12, "temperature": 0}},
        headers=alice,
    ).json()
    whole = more["assistant_message"]["content"]
    assert whole.startswith(cut["content"]) and len(whole) > len(cut["content"])
    # The model saw its unfinished answer, left open: no end-of-turn after it.
    from tandem.store.models import StoredGeneration

    with real_client.app.state.session_factory() as session:
        record = session.get(StoredGeneration, more["generation"]["id"])
    assert record.rendered_prompt.endswith(cut["content"])
    assert record.rendered_prompt.count("<|im_start|>assistant") == 1
