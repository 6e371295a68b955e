"""The Models page in a real browser: the lineage graph, a version's card, archiving (and its
refusal while a rollout serves the version), at desktop and phone width, light and dark.

    .venv/bin/python -m pytest -q tests/test_web_admin_models.py -m browser
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tandem.registry.embedded import EMBEDDED_VERSION
from tandem.store.rollouts import RolloutRepo
from test_admin_models import CHILD, register_lineage

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 800}


def _registry(web, page, home) -> dict:
    """A liked answer, the SFT snapshot built from it, then the base and a child trained on it."""
    conv = web.api(page, "POST", "/api/conversations", {})
    turn = web.api(page, "POST", f"/api/conversations/{conv['id']}/messages", {"content": "hi"})
    answer = turn["assistant_message"]["id"]
    web.api(page, "POST", f"/api/messages/{answer}/feedback", {"rating": "up"})
    snapshot = web.api(page, "POST", "/api/datasets", {"kind": "sft", "name": "liked"})
    with web.app.state.session_factory() as session:
        register_lineage(session, home, snapshot)
    return snapshot


def _node(page, version: str):
    return page.locator(f'#lineage button.node[data-version="{version}"]')


def test_admin_sees_the_lineage_opens_a_card_and_archives(web, tandem_home):
    page = web.signed_in("admin@example.com")  # the first account is the admin
    snapshot = _registry(web, page, tandem_home)
    page.goto("/admin/models")

    # The graph: the child hangs under the base it was trained from.
    edge = page.locator(
        f'#lineage li[data-version="{EMBEDDED_VERSION}"] > ul > li[data-version="{CHILD}"]'
    )
    expect(edge).to_have_count(1)
    expect(_node(page, EMBEDDED_VERSION)).to_contain_text("production")
    expect(_node(page, CHILD)).to_contain_text("dpo")
    expect(_node(page, CHILD)).to_contain_text(snapshot["id"])

    _node(page, CHILD).click()
    expect(page.locator("#detail-title")).to_have_text(CHILD)
    expect(_node(page, CHILD)).to_have_attribute("aria-current", "true")
    assert page.url.endswith(f"/admin/models?version={CHILD}")
    card = page.locator("#detail-card")
    expect(card.locator("h1")).to_have_text(CHILD)  # markdown, rendered
    expect(card.locator("strong")).to_have_text("the base")
    expect(card.locator("a")).to_have_count(0)  # the relative loss-curve link is plain text
    expect(page.locator("#detail-datasets")).to_contain_text(snapshot["id"])
    expect(page.locator("#detail-datasets")).to_contain_text("liked")
    expect(page.locator("#detail-facts")).to_contain_text(EMBEDDED_VERSION)
    expect(page.locator("#detail-serving")).to_contain_text("Not served by any rollout")
    expect(page.locator("#detail-status")).to_have_text("candidate")

    page.locator("#archive").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text(f"Archive {CHILD}?")
    dialog.get_by_role("button", name="Archive").click()
    expect(page.locator("#detail-status")).to_have_text("archived")
    expect(_node(page, CHILD).locator(".badge")).to_have_text("archived")
    expect(page.locator("#status")).to_contain_text(f"{CHILD} archived")
    expect(page.locator("#restore")).to_be_visible()
    assert web.api(page, "GET", f"/api/admin/models/{CHILD}")["status"] == "retired"

    # Hidden with the archived filter off; restored, it is a candidate again.
    page.locator("#show-archived").uncheck()
    expect(_node(page, CHILD)).to_have_count(0)
    page.locator("#show-archived").check()
    page.locator("#restore").click()
    expect(page.locator("#detail-status")).to_have_text("candidate")


def test_archiving_what_a_rollout_serves_is_refused_with_the_reason(web, tandem_home):
    page = web.signed_in("admin@example.com")
    _registry(web, page, tandem_home)
    with web.app.state.session_factory() as session:
        RolloutRepo(session).set_production(None, EMBEDDED_VERSION, None, "serve the base")
    page.goto(f"/admin/models?version={EMBEDDED_VERSION}")  # a link opens the version
    expect(page.locator("#detail-title")).to_have_text(EMBEDDED_VERSION)
    expect(page.locator("#detail-serving")).to_contain_text("Production in the site rollout")
    expect(page.locator("#detail-card h1")).to_contain_text("SmolLM2-135M-Instruct")
    page.locator("#archive").click()
    page.get_by_role("dialog").get_by_role("button", name="Archive").click()
    expect(page.locator("#status")).to_contain_text("cannot archive")
    expect(page.locator("#status")).to_contain_text("production in the site rollout")
    expect(page.locator("#detail-status")).to_have_text("production")


def test_phone_width_and_dark(web, tandem_home):
    page = web.signed_in("admin@example.com", viewport=PHONE)
    _registry(web, page, tandem_home)
    page.emulate_media(color_scheme="dark")
    page.goto(f"/admin/models?version={CHILD}")
    expect(page.locator("#detail-card h1")).to_have_text(CHILD)
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"the page scrolls sideways by {overflow}px at phone width"
    background = page.evaluate("getComputedStyle(document.querySelector('.node')).backgroundColor")
    assert background == "rgb(33, 33, 33)"  # the chat's dark --bg
