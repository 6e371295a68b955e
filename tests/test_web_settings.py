"""Settings and profiles pages: what a person sets there reaches the prompt the model sees.

.venv/bin/python -m pytest -q tests/test_web_settings.py
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from test_web_chat import answers, send, wait_answered

pytestmark = pytest.mark.browser


def last_prompt(web, model: str = "fake-model"):
    """The messages the fake engine was last asked to answer."""
    messages, _params = web.app.state.catalog.get(model).calls[-1]
    return messages


def test_custom_instructions_reach_the_prompt_and_can_be_switched_off(web):
    page = web.signed_in("ada@example.com", path="/settings")
    page.get_by_label("What should the assistant know about you?").fill("I am a nurse in Lyon.")
    page.get_by_label("How should it respond?").fill("Answer in one sentence.")
    page.locator("#ci-save").click()
    expect(page.get_by_role("status")).to_contain_text("Custom instructions saved")

    page.get_by_role("link", name="New chat").click()
    send(page, "What should I cook?")
    wait_answered(page, 1)
    system = last_prompt(web)[0]
    assert system.role == "system"
    assert "I am a nurse in Lyon." in system.content
    assert "Answer in one sentence." in system.content

    page.goto("/settings")
    toggle = page.get_by_label("Use custom instructions")
    expect(toggle).to_be_checked()  # loaded (uncheck on a not-yet-loaded box does nothing)
    toggle.uncheck()
    expect(page.get_by_role("status")).to_contain_text("Custom instructions off")
    assert web.api(page, "GET", "/api/custom-instructions")["enabled"] is False
    page.get_by_role("link", name="New chat").click()
    send(page, "And now?")
    wait_answered(page, 1)
    assert all(m.role != "system" for m in last_prompt(web))


def test_per_chat_system_prompt_from_the_chat_menu(web):
    page = web.signed_in("ada@example.com")
    send(page, "Hi")
    wait_answered(page, 1)
    page.get_by_role("button", name="Chat options").click()
    page.get_by_role("menuitem", name="System prompt").click()
    page.get_by_label("Instructions the assistant follows in this chat only").fill(
        "You are a pirate."
    )
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text("System prompt saved")
    send(page, "Hello again")
    wait_answered(page, 2)
    assert last_prompt(web)[0].content == "You are a pirate."


def test_a_profile_made_on_the_profiles_page_drives_a_chat(web):
    page = web.signed_in("ada@example.com", path="/profiles")
    page.get_by_role("button", name="New profile").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Name").fill("Python tutor")
    dialog.get_by_label("Description").fill("Explains Python step by step")
    dialog.get_by_label("Instructions").fill("Always answer with a short code example.")
    dialog.get_by_label("Conversation starters").fill(
        "Explain list comprehensions\nWhat is a dict?"
    )
    dialog.get_by_label("Model").select_option("other-model")
    dialog.get_by_label("Max tokens").fill("64")
    dialog.get_by_role("button", name="Save").click()
    card = page.get_by_role("article", name="Python tutor")
    expect(card).to_contain_text("Explains Python step by step")

    card.get_by_role("button", name="Start chat").click()
    expect(page).to_have_url(re.compile(r"/c/"))
    expect(page.get_by_role("heading", name="Python tutor", level=2)).to_be_visible()
    starters = page.get_by_role("list", name="Conversation starters")
    expect(starters.get_by_role("listitem")).to_have_text(
        ["Explain list comprehensions", "What is a dict?"]
    )
    starters.get_by_role("listitem").first.click()
    wait_answered(page, 1)
    # The profile's model answered, with the profile's instructions and defaults.
    expect(answers(page).first).to_contain_text("Another answer from the other model.")
    messages, params = web.app.state.catalog.get("other-model").calls[-1]
    assert messages[0].content == "Always answer with a short code example."
    assert messages[-1].content == "Explain list comprehensions"
    assert params.max_tokens == 64

    # Edit and delete from the profiles page.
    page.goto("/profiles")
    page.get_by_role("button", name="Edit Python tutor").click()
    page.get_by_role("dialog").get_by_label("Name").fill("Py tutor")
    page.get_by_role("dialog").get_by_role("button", name="Save").click()
    expect(page.get_by_role("article", name="Py tutor")).to_be_visible()
    page.get_by_role("button", name="Delete Py tutor").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    expect(page.get_by_text("No profiles yet.")).to_be_visible()


def test_memory_privacy_and_keys_on_the_settings_page(web):
    page = web.signed_in("ada@example.com", path="/settings")
    page.get_by_label("New memory").fill("I live in Lyon")
    page.get_by_role("button", name="Add", exact=True).click()
    expect(page.locator("#mem-list")).to_contain_text("I live in Lyon")
    page.get_by_role("button", name="Edit memory: I live in Lyon").click()
    field = page.get_by_role("textbox", name="Memory text")
    field.fill("I live in Paris")
    field.press("Enter")
    expect(page.locator("#mem-list")).to_contain_text("I live in Paris")
    assert [m["text"] for m in web.api(page, "GET", "/api/memories")] == ["I live in Paris"]

    expect(page.get_by_label("Use memory")).to_be_checked()
    page.get_by_label("Use memory").uncheck()
    expect(page.get_by_role("status")).to_contain_text("Memory off")
    expect(page.get_by_label("Use my conversations to improve the model")).to_be_checked()
    page.get_by_label("Use my conversations to improve the model").uncheck()
    expect(page.get_by_role("status")).to_contain_text("won't be used for training")
    me = web.api(page, "GET", "/api/auth/me")
    assert me["memory_enabled"] is False and me["use_for_training"] is False

    page.get_by_label("Key name").fill("laptop")
    page.get_by_role("button", name="Create key").click()
    key = page.locator("#key-once code").inner_text()
    assert key.startswith("tk-")
    expect(page.locator("#key-list")).to_contain_text("laptop")
    r = page.request.get("/api/auth/me", headers={"Authorization": f"Bearer {key}"})
    assert r.ok
    page.get_by_role("button", name="Revoke laptop").click()
    page.get_by_role("dialog").get_by_role("button", name="Revoke").click()
    expect(page.locator("#key-list")).to_contain_text("No API keys.")

    page.get_by_role("button", name="Delete…").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete my data").click()
    expect(page.get_by_role("status")).to_contain_text("Deleted")
    expect(page.locator("#mem-list")).to_contain_text("Nothing remembered yet.")
