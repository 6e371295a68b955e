"""Implicit signals from the chat page in a real browser: clicking Copy on an answer and
stopping a streaming answer each record a signal on that answer's generation.

    .venv/bin/python -m pytest -q tests/test_web_implicit_signals.py
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from test_web_chat import answers, eventually, send, wait_answered

pytestmark = pytest.mark.browser


def _signals(web, page, kind):
    # The first account administers the server: it reads the signal log itself.
    return web.api(page, "GET", f"/api/admin/signals?kind={kind}")["signals"]


def test_copy_records_a_signal_once_on_the_copied_answer(web):
    page = web.signed_in("ada@example.com")
    send(page, "Write a limerick")
    wait_answered(page, 1)
    answer = answers(page).first
    answer.get_by_role("button", name="Copy answer").click()
    expect(page.get_by_text("Copied")).to_be_visible()
    eventually(lambda: len(_signals(web, page, "copy")) == 1)
    [signal] = _signals(web, page, "copy")
    assert signal["generations"][0]["output_text"] == "You said: Write a limerick"
    assert signal["user_email"] == "ada@example.com"
    # A second click is the same copy (the server counts one per answer per ten minutes).
    answers(page).first.get_by_role("button", name="Copy answer").click()
    page.wait_for_timeout(300)
    assert len(_signals(web, page, "copy")) == 1


def test_stop_records_a_signal_on_the_stopped_answer(web_with):
    from fake_engine import FakeEngine
    from tandem.engines import ModelCatalog

    long_answer = " ".join(f"word{i}" for i in range(400))
    catalog = ModelCatalog(default_model="slow-model")
    catalog.add(FakeEngine("slow-model", script=[long_answer], delay_s=0.02))
    web = web_with(catalog)
    page = web.signed_in("ada@example.com")
    send(page, "Tell me a long story")
    expect(page.locator(".msg.assistant.streaming")).to_contain_text("word5")
    page.get_by_role("button", name="Stop generating").click()
    expect(page.get_by_role("button", name="Send message")).to_be_visible()
    eventually(lambda: len(_signals(web, page, "stop")) == 1)
    [signal] = _signals(web, page, "stop")
    stopped = signal["generations"][0]
    assert stopped["finish_reason"] == "cancelled"
    assert stopped["output_text"].startswith("word0 word1")


def test_a_copy_made_while_the_server_is_unreachable_is_sent_later(web):
    page = web.signed_in("ada@example.com")
    send(page, "Name a river")
    wait_answered(page, 1)
    tries = []

    def flaky(route):
        tries.append(route.request.url)
        if len(tries) == 1:
            route.abort("internetdisconnected")  # the first try never reaches the server
        else:
            route.continue_()

    page.route("**/api/messages/*/signals", flaky)
    answers(page).first.get_by_role("button", name="Copy answer").click()
    eventually(lambda: len(tries) == 1)
    assert _signals(web, page, "copy") == []
    eventually(lambda: len(_signals(web, page, "copy")) == 1, timeout_s=15)
    assert len(tries) == 2


def test_the_signals_page_lists_implicit_kinds_with_their_records(web):
    admin = web.signed_in("admin@example.com")  # the first account administers the server
    conv = web.api(admin, "POST", "/api/conversations", {})
    url = f"/api/conversations/{conv['id']}/messages"
    first = web.api(admin, "POST", url, {"content": "List three fruits"})
    web.api(admin, "POST", url, {"content": "that's wrong, I asked for vegetables"})
    web.api(admin, "POST", f"/api/messages/{first['assistant_message']['id']}/regenerate", {})

    admin.goto("/admin/signals")
    cards = admin.locator("#signals > li")
    expect(cards).to_have_count(2)
    admin.get_by_label("Kind").select_option(label="Corrected by the next message")
    admin.get_by_role("button", name="Apply").click()
    expect(cards).to_have_count(1)
    assert "kind=corrective_followup" in admin.url
    card = cards.first
    expect(card).to_contain_text("Corrected by the next message")
    expect(card).to_contain_text("rule: says_wrong")
    card.get_by_role("button", name="Show record").click()
    record = card.get_by_role("region", name="Generation record")
    expect(record.locator("pre.answer")).to_have_text("You said: List three fruits")

    admin.get_by_label("Kind").select_option(label="Regenerated")
    admin.get_by_role("button", name="Apply").click()
    expect(cards).to_have_count(1)
    expect(cards.first).to_contain_text("You said: List three fruits")


def test_the_datasets_page_builds_kto_with_implicit_negatives(web):
    admin = web.signed_in("admin@example.com")  # the first account administers the server
    conv = web.api(admin, "POST", "/api/conversations", {})
    url = f"/api/conversations/{conv['id']}/messages"
    liked = web.api(admin, "POST", url, {"content": "Name a color"})
    web.api(
        admin,
        "POST",
        f"/api/messages/{liked['assistant_message']['id']}/feedback",
        {"rating": "up"},
    )
    other = web.api(admin, "POST", "/api/conversations", {})
    redone = web.api(
        admin, "POST", f"/api/conversations/{other['id']}/messages", {"content": "Name a fish"}
    )
    web.api(admin, "POST", f"/api/messages/{redone['assistant_message']['id']}/regenerate", {})

    admin.goto("/admin/datasets")
    build = admin.locator("#build")
    build.get_by_label("Kind").select_option("kto")
    build.get_by_label("Test fraction").fill("0")
    build.get_by_label("Implicit negatives (KTO)").fill("1")
    build.get_by_role("button", name="Build").click()
    expect(admin.locator("#status")).to_contain_text("2 train / 0 test rows")
    [snapshot] = web.api(admin, "GET", "/api/datasets")
    assert snapshot["counts"]["by_origin"] == {"implicit_regenerate": 1, "thumbs_up": 1}
    assert snapshot["filters"]["implicit_weight"] == 1
