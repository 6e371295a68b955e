"""A multi-turn chat in the browser with the real embedded model (SmolLM2-135M, ONNX engine):
the answer streams in token by token, and the second turn's prompt carries the first.

    .venv/bin/python -m pytest -q tests/test_web_model.py      (prepares the model once, ~30 s)
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from test_web_chat import answers, conv_id_of, current_branch, send, wait_answered

pytestmark = pytest.mark.browser

# Records every distinct text the live answer shows, so the test can tell a stream from an
# answer that appeared all at once.
WATCH_STREAM = """
window.__frames = [];
new MutationObserver(() => {
  const live = document.querySelector('.msg.assistant.streaming .markdown');
  const text = live ? live.textContent : '';
  if (text && window.__frames[window.__frames.length - 1] !== text) window.__frames.push(text);
}).observe(document.getElementById('thread'),
           {subtree: true, childList: true, characterData: true});
"""


def test_multi_turn_streamed_chat_with_the_embedded_model(web_with, onnx_engine):
    from tandem.engines import ModelCatalog
    from tandem.store.models import StoredGeneration

    catalog = ModelCatalog(default_model=onnx_engine.model_id)
    catalog.add(onnx_engine)
    web = web_with(catalog)
    page = web.signed_in("ada@example.com")
    expect(page.get_by_role("combobox", name="Model")).to_have_value(onnx_engine.model_id)

    page.evaluate(WATCH_STREAM)
    streams = []
    page.on("response", lambda r: streams.append(r) if r.url.endswith("/messages") else None)
    send(page, "What is the capital of France? Answer in one sentence.")
    wait_answered(page, 1)
    expect(answers(page).first).to_contain_text("Paris")
    # The server sent the answer piece by piece (how many of the pieces the browser paints as
    # separate frames depends on how busy the machine is, so that is not asserted)...
    body = streams[0].text()
    assert body.count('"type":"delta"') >= 3, body
    # ...and the page showed the live answer while it streamed.
    assert page.evaluate("window.__frames"), "no live answer was shown while streaming"

    send(page, "And what is the capital of Italy? Answer in one sentence.")
    wait_answered(page, 2)
    conv = conv_id_of(page)
    branch = current_branch(web, page, conv)
    assert len(branch) == 4 and all(text.strip() for text in branch)
    expect(answers(page).last).to_contain_text(branch[3].strip().split()[0])

    # The second answer was generated from the whole branch, first turn included.
    with web.app.state.session_factory() as session:
        gens = session.scalars(select(StoredGeneration).order_by(StoredGeneration.created_at))
        prompts = [g.rendered_prompt or "" for g in gens]
    assert len(prompts) == 2
    assert "capital of France" in prompts[1] and branch[1].strip()[:20] in prompts[1]
