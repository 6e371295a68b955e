"""The signals a person gives from the chat page — thumbs with reasons, improved answers, blind
comparisons — land in the API exactly as the datasets will read them.

    .venv/bin/python -m pytest -q tests/test_web_signals.py
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from conftest import OTHER_ANSWER
from test_web_chat import answers, conv_id_of, current_branch, send, wait_answered

pytestmark = pytest.mark.browser


def test_thumbs_down_with_reasons_and_comment_then_change_and_withdraw(web):
    page = web.signed_in("ada@example.com")
    send(page, "What is the capital of Australia?")
    wait_answered(page, 1)
    answer = answers(page).first
    answer.get_by_role("button", name="Bad response").click()
    panel = page.get_by_role("dialog", name="Tell us more")
    expect(panel).to_be_visible()
    panel.get_by_role("button", name="Not factually correct").click()
    panel.get_by_role("button", name="Too long").click()
    panel.get_by_role("button", name="Too long").click()  # a second click unselects
    panel.get_by_role("button", name="Didn't follow instructions").click()
    panel.get_by_label("Comment").fill("It is Canberra, not Sydney.")
    panel.get_by_role("button", name="Submit").click()
    expect(panel).to_have_count(0)

    ratings = web.api(page, "GET", "/api/feedback")
    assert len(ratings) == 1
    message_id = answer.get_attribute("data-id")
    assert ratings[0]["message_id"] == message_id
    assert ratings[0]["rating"] == "down"
    assert sorted(ratings[0]["reasons"]) == ["didnt_follow_instructions", "not_factual"]
    assert ratings[0]["comment"] == "It is Canberra, not Sydney."
    expect(answer.get_by_role("button", name="Bad response")).to_have_attribute(
        "aria-pressed", "true"
    )

    # Thumbs up changes the rating; clicking it again withdraws it.
    answers(page).first.get_by_role("button", name="Good response").click()
    expect(answers(page).first.get_by_role("button", name="Good response")).to_have_attribute(
        "aria-pressed", "true"
    )
    assert [r["rating"] for r in web.api(page, "GET", "/api/feedback")] == ["up"]
    answers(page).first.get_by_role("button", name="Good response").click()
    expect(answers(page).first.get_by_role("button", name="Good response")).to_have_attribute(
        "aria-pressed", "false"
    )
    assert web.api(page, "GET", "/api/feedback") == []
    history = web.api(page, "GET", "/api/feedback?history=true")
    assert {r["rating"] for r in history} == {"up", "down"}  # superseded, never overwritten


def test_improving_an_answer_adds_an_alternative_edited_by_you(web):
    page = web.signed_in("ada@example.com")
    send(page, "Name a prime number")
    wait_answered(page, 1)
    original = answers(page).first.get_attribute("data-id")
    answers(page).first.get_by_role("button", name="Improve this answer").click()
    editor = page.get_by_role("textbox", name="Improved answer")
    expect(editor).to_have_value("You said: Name a prime number")
    editor.fill("**7** is a prime number.")
    page.get_by_role("button", name="Save improved answer").click()

    improved = answers(page).first
    expect(improved.get_by_text("Edited by you")).to_be_visible()
    expect(improved.locator("strong")).to_have_text("7")
    expect(improved.get_by_role("group", name="Alternatives")).to_contain_text("2/2")
    conv = conv_id_of(page)
    assert current_branch(web, page, conv)[-1] == "**7** is a prime number."
    rows = web.api(page, "GET", "/api/improvements")
    assert len(rows) == 1
    assert rows[0]["original_message_id"] == original
    assert rows[0]["text"] == "**7** is a prime number."
    # The original is one page back, unlabelled.
    improved.get_by_role("button", name="Previous alternative").click()
    expect(answers(page).first).to_contain_text("You said: Name a prime number")
    expect(answers(page).first.get_by_text("Edited by you")).to_have_count(0)


def test_blind_comparison_hides_models_until_the_vote_then_continues(web):
    page = web.signed_in("ada@example.com")
    page.wait_for_selector("body[data-ready]")
    composer = page.get_by_role("textbox", name="Message")
    composer.fill("Which is better?")
    page.get_by_role("button", name="Compare").click()
    page.get_by_role("menuitem", name="Against other-model").click()

    card = page.locator(".comparison")
    expect(card.get_by_role("region", name="Answer A")).to_be_visible()
    expect(card).to_contain_text("model hidden")
    expect(card).not_to_contain_text("fake-model")
    expect(card).not_to_contain_text("other-model")
    texts = {
        side: card.get_by_role("region", name=f"Answer {side}").locator(".markdown").inner_text()
        for side in ("A", "B")
    }
    assert sorted(texts.values()) == sorted([OTHER_ANSWER, "You said: Which is better?"])
    chosen = "A" if texts["A"] == OTHER_ANSWER else "B"

    card.get_by_role("button", name=f"{chosen} is better").click()
    expect(card).to_contain_text(f"You preferred {chosen}.")
    expect(card.get_by_role("region", name=f"Answer {chosen}")).to_contain_text("other-model")
    other = "B" if chosen == "A" else "A"
    expect(card.get_by_role("region", name=f"Answer {other}")).to_contain_text("fake-model")
    expect(card.get_by_role("button", name=f"{chosen} is better")).to_have_count(0)

    comparisons = web.api(page, "GET", "/api/comparisons")
    assert [c["verdict"] for c in comparisons] == [chosen.lower()]
    # The chosen answer continues the conversation.
    conv = conv_id_of(page)
    assert current_branch(web, page, conv) == ["Which is better?", OTHER_ANSWER]
    send(page, "Thanks")
    wait_answered(page, 2)
    assert current_branch(web, page, conv)[:2] == ["Which is better?", OTHER_ANSWER]


def test_a_send_answered_by_a_comparison_shows_the_vote(web):
    page = web.signed_in("ada@example.com")  # the first account is the admin
    web.api(page, "PUT", "/api/admin/settings", {"comparison_rate": 1.0})
    send(page, "Surprise me")
    card = page.locator(".comparison")
    expect(card.get_by_role("button", name="Tie")).to_be_visible()
    expect(card).to_contain_text("model hidden")
    card.get_by_role("button", name="Both are bad").click()
    expect(card).to_contain_text("You rated both answers bad.")
    expect(card.get_by_text("fake-model")).to_have_count(2)
    # Neither answer continues: the question waits for a new answer.
    expect(page.get_by_role("button", name="Answer again")).to_be_visible()
    web.api(page, "PUT", "/api/admin/settings", {"comparison_rate": 0.0})
    page.get_by_role("button", name="Answer again").click()
    wait_answered(page, 1)
    expect(answers(page).first).to_contain_text("You said: Surprise me")
