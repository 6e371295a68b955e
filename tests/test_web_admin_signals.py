"""The admin console's Signals page in a real browser: a user's thumbs-down from the chat shows
up with its generation record, filtered by reason, and goes to the regression suite in one click.

    .venv/bin/python -m pytest -q tests/test_web_admin_signals.py -m browser
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from playwright.sync_api import expect

from test_web_chat import answers, send, wait_answered

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 800}


def _thumbs_down(web, text: str, reason: str) -> None:
    """A user (not the admin) asks `text` in the chat and gives the answer a thumbs-down."""
    page = web.signed_in("ada@example.com")
    send(page, text)
    wait_answered(page, 1)
    answers(page).first.get_by_role("button", name="Bad response").click()
    panel = page.get_by_role("dialog", name="Tell us more")
    panel.get_by_role("button", name=reason).click()
    panel.get_by_label("Comment").fill("Far too wordy.")
    panel.get_by_role("button", name="Submit").click()
    expect(panel).to_have_count(0)


def test_admin_filters_by_reason_expands_and_adds_to_regressions(web, tandem_home: Path):
    admin = web.signed_in("admin@example.com")  # the first account administers the server
    # The admin's own thumbs-up: listed, then filtered out.
    conv = web.api(admin, "POST", "/api/conversations", {})
    turn = web.api(admin, "POST", f"/api/conversations/{conv['id']}/messages", {"content": "hi"})
    web.api(
        admin, "POST", f"/api/messages/{turn['assistant_message']['id']}/feedback", {"rating": "up"}
    )
    _thumbs_down(web, "Describe the sea in one word", "Too long")

    admin.goto("/admin/signals")
    expect(admin.get_by_role("link", name="Signals")).to_have_attribute("aria-current", "page")
    cards = admin.locator("#signals > li")
    expect(cards).to_have_count(2)
    admin.get_by_label("Reason").select_option(label="Too long")
    admin.get_by_role("button", name="Apply").click()
    expect(cards).to_have_count(1)
    assert "reason=too_long" in admin.url  # the filtered view can be bookmarked
    card = cards.first
    expect(card).to_contain_text("Thumbs down")
    expect(card).to_contain_text("Too long")
    expect(card).to_contain_text("ada@example.com")
    expect(card).to_contain_text("Far too wordy.")

    card.get_by_role("button", name="Show record").click()
    record = card.get_by_role("region", name="Generation record")
    expect(record.locator("pre.prompt")).to_contain_text("Describe the sea in one word")
    expect(record).to_contain_text("fake-model")
    expect(record.locator("pre.answer")).to_have_text("You said: Describe the sea in one word")

    card.get_by_role("button", name="Add to regressions").click()
    expect(card.locator(".regression-note")).to_contain_text("Added to regressions-")
    expect(card.get_by_role("button", name="In regressions")).to_be_disabled()
    (suite,) = (tandem_home / "evals").glob("regressions-*.jsonl")
    (item,) = [json.loads(line) for line in suite.read_text().splitlines()]
    assert item["reasons"] == ["too_long"] and item["comment"] == "Far too wordy."

    # Reloaded, the filter comes back from the address and the row says it is in the suite.
    admin.reload()
    expect(admin.get_by_label("Reason")).to_have_value("too_long")
    expect(cards).to_have_count(1)
    expect(cards.first.get_by_role("button", name="In regressions")).to_be_disabled()


def test_bad_filters_say_why_and_phone_width_dark(web):
    web.signed_in("admin@example.com")  # the first account administers the server
    _thumbs_down(web, "Hello", "Not factually correct")
    page = web.new_page(PHONE)
    page.emulate_media(color_scheme="dark")
    r = page.request.post(
        "/api/auth/login", data={"email": "admin@example.com", "password": "password-123"}
    )
    assert r.ok, r.text()
    page.goto("/admin/signals?kind=vote&reason=not_factual")
    expect(page.locator("#status")).to_contain_text("thumbs only")
    page.get_by_role("button", name="Clear").click()
    cards = page.locator("#signals > li")
    expect(cards).to_have_count(1)
    cards.first.get_by_role("button", name="Show record").click()
    expect(cards.first.locator("pre.prompt")).to_be_visible()
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"the page scrolls sideways by {overflow}px at phone width"
    background = page.evaluate(
        "getComputedStyle(document.querySelector('.signal')).backgroundColor"
    )
    assert background == "rgb(33, 33, 33)"  # the chat's dark --bg
