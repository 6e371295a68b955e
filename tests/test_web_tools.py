"""Tools in a real browser: the composer's switches, a code cell's output, a document attached
to a chat with its reading progress, and numbered citations that open their passage. (Switches
for tools that are not configured are not shown: tests/test_web_chat_flow.py.)

    .venv/bin/python -m pytest -q tests/test_web_tools.py
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from test_web_chat import answers, conv_id_of, send, wait_answered

pytestmark = pytest.mark.browser


def switch(page, name: str):
    return page.locator(f".tool-switch[data-tool='{name}']")


def test_a_code_cell_runs_in_the_sandbox_and_its_output_stays_after_reload(web):
    page = web.signed_in("ada@example.com")
    expect(switch(page, "code")).to_have_attribute("aria-pressed", "false")
    switch(page, "code").click()
    expect(switch(page, "code")).to_have_attribute("aria-pressed", "true")
    send(page, "Compute this:\n```python\nprint(6 * 7)\n```")
    wait_answered(page, 1)
    card = answers(page).first.locator(".tool-card[data-tool='code']")
    expect(card.locator(".tool-output").first).to_have_text("42\n")
    page.reload()
    wait_answered(page, 1)
    expect(
        answers(page).first.locator(".tool-card[data-tool='code'] .tool-output").first
    ).to_have_text("42\n")
    # The model read the output: the fake model echoes its prompt's last user message, and
    # the record holds the call.
    conv = conv_id_of(page)
    branch = web.api(page, "GET", f"/api/conversations/{conv}/branch")
    parts = [p["type"] for p in branch[-1]["parts"]]
    assert "tool_result" in parts


def test_a_document_is_read_with_progress_and_its_passage_opens_from_a_citation(web, tmp_path):
    page = web.signed_in("ada@example.com")
    doc = tmp_path / "handbook.txt"
    doc.write_text(
        "Office handbook.\n\nThe zorblax door code is 4417. "
        '<img src=x onerror="window.__pwned = 1"> Keep it secret.\n\n'
        "Lunch is served at noon on weekdays.\n"
    )
    page.wait_for_selector("body[data-ready]")
    page.locator("#file-input").set_input_files(str(doc))
    chip = page.locator(".doc-chip")
    expect(chip).to_contain_text("handbook.txt")
    expect(chip).to_have_class("doc-chip ready", timeout=20_000)
    # Attaching a document switches the Files tool on.
    expect(switch(page, "files")).to_have_attribute("aria-pressed", "true")

    # The fake model echoes the question, so "[1]" in it comes back as a citation marker.
    send(page, "What is the zorblax door code? [1]")
    wait_answered(page, 1)
    answer = answers(page).first
    expect(answer.locator(".sources li")).to_have_count(1)
    expect(answer.locator(".sources")).to_contain_text("handbook.txt")
    answer.locator("button.cite").click()
    popover = page.get_by_role("dialog", name="Source 1")
    expect(popover).to_contain_text("The zorblax door code is 4417.")
    expect(popover).to_contain_text('<img src=x onerror="window.__pwned = 1">')  # text, inert
    assert popover.locator("img").count() == 0
    page.keyboard.press("Escape")
    expect(popover).to_have_count(0)

    page.reload()  # the document and the citation belong to the chat
    wait_answered(page, 1)
    expect(page.locator(".doc-chip")).to_contain_text("handbook.txt")
    answers(page).first.locator(".source-btn").click()
    expect(page.get_by_role("dialog", name="Source 1")).to_contain_text("4417")
    assert page.evaluate("window.__pwned") is None


def test_a_profile_brings_its_tools_and_knowledge_to_every_chat(web, tmp_path):
    page = web.signed_in("ada@example.com", path="/profiles")
    notes = tmp_path / "menu.md"
    notes.write_text("# Cafe menu\n\nThe soup of the day is roasted quirlberry soup.\n")
    page.get_by_role("button", name="New profile").click()
    page.get_by_label("Name").fill("Cafe helper")
    page.get_by_role("checkbox", name="Files").check()
    page.get_by_label("Add knowledge files").set_input_files(str(notes))
    expect(page.locator("#knowledge-list li")).to_contain_text("menu.md")
    page.get_by_role("button", name="Save").click()
    card = page.get_by_role("article", name="Cafe helper")
    card.get_by_role("button", name="Start chat").click()
    page.wait_for_url("**/c/*")
    send(page, "What is the soup of the day?")
    wait_answered(page, 1)
    answer = answers(page).first
    expect(answer.locator(".tool-card[data-tool='files']")).to_be_visible()
    expect(answer.locator(".sources")).to_contain_text("menu.md")
    answer.locator(".source-btn").first.click()
    expect(page.get_by_role("dialog", name="Source 1")).to_contain_text("quirlberry")
