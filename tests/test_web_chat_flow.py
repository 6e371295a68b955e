"""The chat page never loses a signal or dead-ends, and never offers what cannot work: a blind
comparison waits for its vote however the chat goes on, a chat longer than the model's context
goes on, a cut answer can be continued, switches show only for what is configured, an image is
stopped before a model that cannot see it, and the small things users notice.

    .venv/bin/python -m pytest -q tests/test_web_chat_flow.py
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from conftest import OTHER_ANSWER
from test_web_chat import (
    answers,
    composer,
    conv_id_of,
    eventually,
    send,
    tiny_png,
    wait_answered,
)

pytestmark = pytest.mark.browser


def _catalog(**engines):
    from fake_engine import FakeEngine
    from tandem.engines import ModelCatalog

    catalog = ModelCatalog(default_model="fake-model")
    catalog.add(FakeEngine("fake-model", **engines.pop("fake_model", {})))
    catalog.add(FakeEngine("other-model", script=[OTHER_ANSWER]))
    for name, options in engines.items():
        catalog.add(FakeEngine(name.replace("_", "-"), **options))
    return catalog


# -- blind comparisons survive ---------------------------------------------------------------


def test_a_comparison_streams_both_sides_and_stays_votable_after_reload_and_moving_on(web_with):
    web = web_with(_catalog(fake_model={"delay_s": 0.05}))
    page = web.signed_in("ada@example.com")
    web.api(
        page,
        "PUT",
        "/api/admin/settings",
        {"comparison_rate": 1.0, "comparison_models": ["fake-model", "other-model"]},
    )
    send(page, "Which river is longest?")
    # Both sides stream, side by side, before the comparison is stored.
    streaming = page.locator(".comparison.streaming")
    expect(streaming.get_by_role("region", name="Answer A")).to_be_visible()
    expect(streaming.locator(".candidate .markdown").nth(0)).not_to_have_text("")
    card = page.locator(".comparison").first
    expect(card.get_by_role("button", name="Tie")).to_be_visible()
    texts = {
        s: card.get_by_role("region", name=f"Answer {s}").locator(".markdown").inner_text()
        for s in "AB"
    }
    assert sorted(texts.values()) == sorted([OTHER_ANSWER, "You said: Which river is longest?"])
    web.api(page, "PUT", "/api/admin/settings", {"comparison_rate": 0.0})

    # Reloaded before the vote: still there, still votable.
    page.reload()
    card = page.locator(".comparison")
    expect(card.get_by_role("button", name="A is better")).to_be_visible()

    # Moving on without voting continues answer A; the comparison stays above, votable, and
    # the follow-up is no sibling of the hidden answers (no 3/3 pager under the question).
    send(page, "Thanks, and the second longest?")
    wait_answered(page, 1)
    expect(answers(page).first).to_contain_text("You said: Thanks, and the second longest?")
    expect(page.locator(".msg.user").first.get_by_role("group", name="Alternatives")).to_have_count(
        0
    )
    conv = conv_id_of(page)
    branch = web.api(page, "GET", f"/api/conversations/{conv}/branch")
    assert [m["content"] for m in branch][1] == texts["A"]
    card = page.locator(".comparison")
    expect(card).to_contain_text("The chat went on from Answer A")
    page.reload()
    card = page.locator(".comparison")
    expect(card.get_by_role("button", name="B is better")).to_be_visible()

    # Voting later: the verdict counts, the names show, the chat stays where it is.
    card.get_by_role("button", name="B is better").click()
    expect(card).to_contain_text("You preferred B.")
    comparisons = web.api(page, "GET", f"/api/comparisons?conversation_id={conv}")
    assert [c["verdict"] for c in comparisons] == ["b"]
    branch = web.api(page, "GET", f"/api/conversations/{conv}/branch")
    assert branch[-1]["content"] == "You said: Thanks, and the second longest?"


# -- a chat never dead-ends --------------------------------------------------------------------


def test_a_long_chat_goes_on_and_says_once_that_old_messages_dropped_out(web_with):
    web = web_with(_catalog(fake_model={"script": ["Noted."], "max_context": 120}))
    page = web.signed_in("ada@example.com")
    long = " ".join(["word"] * 30)
    for i in range(8):
        send(page, f"Part {i}: {long}")
        wait_answered(page, i + 1)
        expect(page.locator(".error-box")).to_have_count(0)
    note = "no longer sees the oldest messages"
    expect(page.get_by_role("note").filter(has_text=note)).to_have_count(1)
    page.reload()
    wait_answered(page, 8)
    expect(page.get_by_role("note").filter(has_text=note)).to_have_count(1)


def test_a_cut_answer_says_so_and_continue_finishes_it(web_with):
    web = web_with(_catalog(capped={"script": ["one two three four five", " six seven"]}))
    page = web.signed_in("ada@example.com")
    conv = web.api(page, "POST", "/api/conversations", {"model": "capped"})
    web.api(
        page,
        "POST",
        f"/api/conversations/{conv['id']}/messages",
        {"content": "Count", "sampling": {"max_tokens": 3}},
    )
    page.goto(f"/c/{conv['id']}")
    wait_answered(page, 1)
    answer = answers(page).first
    expect(answer.get_by_role("note")).to_contain_text("cut off at the length limit")
    answer.get_by_role("button", name="Continue").click()
    wait_answered(page, 1)
    expect(answers(page).first.locator(".markdown")).to_have_text("one two three six seven")
    expect(answers(page).first.get_by_role("group", name="Alternatives")).to_contain_text("2/2")
    expect(answers(page).first.get_by_role("button", name="Continue")).to_have_count(0)


# -- switches only for what works --------------------------------------------------------------


def test_web_and_image_switches_show_only_when_configured(web):
    page = web.signed_in("ada@example.com")
    page.wait_for_selector("body[data-ready]")
    switches = page.locator(".tool-switch")
    expect(switches.first).to_be_visible()
    shown = switches.evaluate_all("els => els.map((e) => e.dataset.tool)")
    assert "web" not in shown and "image" not in shown and "files" in shown
    expect(page.get_by_text("TANDEM_SEARCH")).to_have_count(0)


def test_an_image_is_stopped_before_a_text_only_model_and_a_notice_stays_after_reload(web_with):
    web = web_with(_catalog(vision_model={"accepts_images": True}))
    page = web.signed_in("ada@example.com")
    page.wait_for_selector("body[data-ready]")
    png = {"name": "red.png", "mimeType": "image/png", "buffer": tiny_png()}
    page.locator("#file-input").set_input_files(png)
    expect(page.locator("#attachments img")).to_have_count(1)
    composer(page).fill("What colour is this?")
    warning = page.locator(".attach-warning")
    expect(warning).to_contain_text("can't see images")
    expect(page.get_by_role("button", name="Send message")).to_be_disabled()
    # A model that can see it: the warning goes and the message can be sent.
    page.get_by_label("Model").select_option("vision-model")
    expect(warning).to_have_count(0)
    page.get_by_role("button", name="Send message").click()
    wait_answered(page, 1)
    expect(answers(page).first.get_by_role("note")).to_have_count(0)

    # An API client that sent an image to a text-only model: the answer's notice is kept.
    conv = web.api(page, "POST", "/api/conversations", {})
    upload = page.request.post(
        "/api/uploads",
        multipart={"file": png},
        headers={
            "X-CSRF-Token": {c["name"]: c["value"] for c in page.context.cookies()}["tandem_csrf"]
        },
    ).json()
    body = {"content": "What is this?", "attachments": [upload["id"]]}
    web.api(page, "POST", f"/api/conversations/{conv['id']}/messages", body)
    page.goto(f"/c/{conv['id']}")
    wait_answered(page, 1)
    expect(answers(page).first.get_by_role("note")).to_contain_text("can't see images")


def test_a_chat_with_a_document_keeps_the_files_switch_on_when_reopened(web, tmp_path):
    page = web.signed_in("ada@example.com")
    doc = tmp_path / "notes.txt"
    doc.write_text("The meeting is on Thursday.\n")
    page.wait_for_selector("body[data-ready]")
    page.locator("#file-input").set_input_files(str(doc))
    expect(page.locator(".doc-chip")).to_have_class("doc-chip ready", timeout=20_000)
    send(page, "When is the meeting?")
    wait_answered(page, 1)
    conv = conv_id_of(page)
    page.get_by_role("link", name="New chat").click()
    files = page.locator(".tool-switch[data-tool='files']")
    expect(files).to_have_attribute("aria-pressed", "false")
    page.goto(f"/c/{conv}")
    wait_answered(page, 1)
    expect(files).to_have_attribute("aria-pressed", "true")
    send(page, "And where?")
    wait_answered(page, 2)
    tools = web.api(page, "GET", f"/api/conversations/{conv}/branch")[-1]["parts"]
    assert any(p["type"] == "tool_result" and p["data"]["tool"] == "files" for p in tools)


# -- small things users notice -----------------------------------------------------------------


def test_the_edit_pager_under_a_question_shows_without_hovering(web):
    page = web.signed_in("ada@example.com")
    send(page, "First version")
    wait_answered(page, 1)
    page.locator(".msg.user").first.hover()
    page.get_by_role("button", name="Edit message").click()
    editor = page.get_by_role("textbox", name="Edit message")
    editor.fill("Second version")
    editor.press("Enter")
    wait_answered(page, 1)
    page.mouse.move(5, 5)  # away from the message
    pager = page.locator(".msg.user").first.get_by_role("group", name="Alternatives")
    expect(pager).to_contain_text("2/2")
    eventually(lambda: pager.evaluate("el => getComputedStyle(el).opacity") == "1")
    opacity = (
        page.locator(".msg.user")
        .first.get_by_role("button", name="Edit message")
        .evaluate("el => getComputedStyle(el).opacity")
    )
    assert opacity == "0"  # the other buttons still wait for a hover


def test_a_chat_shows_its_profile(web):
    page = web.signed_in("ada@example.com")
    profile = web.api(page, "POST", "/api/profiles", {"name": "Trip planner"})
    conv = web.api(page, "POST", "/api/conversations", {"profile_id": profile["id"]})
    page.goto(f"/c/{conv['id']}")
    page.wait_for_selector("body[data-ready]")
    expect(page.locator("#chat-profile")).to_have_text("Trip planner")
    page.locator("#new-chat").click()
    expect(page.locator("#chat-profile")).to_be_hidden()


def test_the_model_titles_the_chat_from_the_first_exchange(web_with):
    answer = "Rivers are long. The Nile is the longest."
    catalog = _catalog(titled={"script": [answer, "Longest rivers of the world"]})
    web = web_with(catalog, chat_titles=True)
    page = web.signed_in("ada@example.com")
    page.get_by_label("Model").select_option("titled")
    send(
        page, "I was wondering, out of curiosity, which river on Earth is actually the longest one?"
    )
    wait_answered(page, 1)
    history = page.get_by_role("navigation", name="Chats")
    expect(history.get_by_role("link")).to_have_text(["Longest rivers of the world"])
    expect(page.locator("#chat-title")).to_have_text("Longest rivers of the world")


def test_sidebar_search_finds_message_text(web):
    page = web.signed_in("ada@example.com")
    send(page, "Plan a trip")
    wait_answered(page, 1)
    send(page, "Include the zanzibar ferry")
    wait_answered(page, 2)
    page.get_by_role("link", name="New chat").click()
    send(page, "Bake bread")
    wait_answered(page, 1)
    history = page.get_by_role("navigation", name="Chats")
    page.get_by_label("Search chats").fill("ZANZIBAR")
    expect(history.get_by_role("link")).to_have_text(["Plan a trip"])


def test_engine_variants_are_not_offered_to_ordinary_users(web_with):
    from fake_engine import FakeEngine
    from tandem.engines import ModelCatalog
    from tandem.engines.base import ModelInfo

    catalog = ModelCatalog(default_model="base")
    catalog.add(FakeEngine("base"))
    info = ModelInfo(id="base@transformers", backend="transformers", variant_of="base")
    catalog.add_lazy(info, lambda: FakeEngine("base@transformers"))
    web = web_with(catalog)
    admin = web.signed_in("admin@example.com")  # the first account administers the server
    admin.wait_for_selector("body[data-ready]")
    options = admin.locator("#model-picker option").all_inner_texts()
    assert options == ["base", "base@transformers"]
    user = web.signed_in("user@example.com")
    user.wait_for_selector("body[data-ready]")
    assert user.locator("#model-picker option").all_inner_texts() == ["base"]
    ids = [m["id"] for m in web.api(user, "GET", "/v1/models")["data"]]
    assert ids == ["base"]


def test_a_thumbs_down_with_reasons_is_one_request_and_one_row(web):
    page = web.signed_in("ada@example.com")
    send(page, "What is 2 + 2?")
    wait_answered(page, 1)
    posts = []
    page.on(
        "request",
        lambda r: posts.append(r.url) if r.method == "POST" and "/feedback" in r.url else None,
    )
    answers(page).first.get_by_role("button", name="Bad response").click()
    panel = page.get_by_role("dialog", name="Tell us more")
    panel.get_by_role("button", name="Not factually correct").click()
    panel.get_by_label("Comment").fill("It is 4.")
    panel.get_by_role("button", name="Submit").click()
    expect(panel).to_have_count(0)
    eventually(lambda: len(web.api(page, "GET", "/api/feedback?history=true")) == 1)
    history = web.api(page, "GET", "/api/feedback?history=true")
    assert [(r["rating"], r["reasons"], r["comment"]) for r in history] == [
        ("down", ["not_factual"], "It is 4.")
    ]
    assert len(posts) == 1

    # A thumbs-down whose panel is closed without reasons is still one rating, never lost.
    send(page, "And 3 + 3?")
    wait_answered(page, 2)
    answers(page).nth(1).get_by_role("button", name="Bad response").click()
    page.get_by_role("dialog", name="Tell us more").get_by_role("button", name="Close").click()
    eventually(lambda: len(web.api(page, "GET", "/api/feedback")) == 2)
    expect(answers(page).nth(1).get_by_role("button", name="Bad response")).to_have_attribute(
        "aria-pressed", "true"
    )
