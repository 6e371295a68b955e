"""The chat page in a real browser: accounts, streaming, stopping, alternatives and branches,
safe rendering, and isolation between users.

    .venv/bin/python -m pytest -q tests/test_web_chat.py
"""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def composer(page):
    return page.get_by_role("textbox", name="Message")


def send(page, text: str) -> None:
    page.wait_for_selector("body[data-ready]")  # keys typed before the script runs are lost
    composer(page).fill(text)
    composer(page).press("Enter")


def answers(page):
    return page.locator(".msg.assistant:not(.streaming):not(.unanswered)")


def wait_answered(page, n: int) -> None:
    expect(answers(page)).to_have_count(n)
    expect(page.get_by_role("button", name="Send message")).to_be_visible()


def current_branch(web, page, conv_id: str) -> list[str]:
    return [m["content"] for m in web.api(page, "GET", f"/api/conversations/{conv_id}/branch")]


def eventually(check, timeout_s: float = 5.0) -> None:
    """The page updates the server in the background: wait (briefly) until `check()` holds."""
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def conv_id_of(page) -> str:
    match = re.search(r"/c/([^/?#]+)$", page.url)
    assert match, page.url
    return match.group(1)


def test_signup_login_and_logout_through_the_forms(web):
    page = web.new_page()
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login$"))
    page.get_by_role("link", name="Create an account").click()
    expect(page.get_by_text("this account will administer the server")).to_be_visible()
    page.get_by_label("Name").fill("Ada")
    page.get_by_label("Email").fill("ada@example.com")
    page.get_by_label("Password").fill("short")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("alert")).to_contain_text("at least 8 characters")
    page.get_by_label("Password").fill("password-123")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", name="How can I help, Ada?")).to_be_visible()

    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    page.goto("/settings")
    expect(page).to_have_url(re.compile(r"/login\?next=/settings$"))
    page.get_by_label("Email").fill("ada@example.com")
    page.get_by_label("Password").fill("wrong-password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("Wrong email or password")
    page.get_by_label("Password").fill("password-123")
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/settings$"))  # back where the visitor was headed


def test_stop_ends_a_slow_stream_and_keeps_the_partial_answer(web_with):
    from fake_engine import FakeEngine
    from tandem.engines import ModelCatalog

    long_answer = " ".join(f"word{i}" for i in range(400))
    catalog = ModelCatalog(default_model="slow-model")
    catalog.add(FakeEngine("slow-model", script=[long_answer, "Short reply."], delay_s=0.02))
    web = web_with(catalog)
    page = web.signed_in("ada@example.com")
    send(page, "Tell me a long story")
    streaming = page.locator(".msg.assistant.streaming")
    expect(streaming).to_contain_text("word5")
    stop = page.get_by_role("button", name="Stop generating")
    expect(stop).to_be_visible()
    page.keyboard.press("Escape")  # Esc stops, like the Stop button
    expect(page.get_by_role("button", name="Send message")).to_be_visible()
    expect(streaming).to_have_count(0)
    conv = conv_id_of(page)
    branch = current_branch(web, page, conv)
    assert branch[0] == "Tell me a long story"
    # The partial answer was stored and is what the page shows.
    assert branch[1].startswith("word0 word1") and len(branch[1]) < len(long_answer)
    expect(answers(page).last).to_contain_text(branch[1].split()[-1])
    # The chat goes on from the stopped answer.
    send(page, "go on")
    wait_answered(page, 2)
    expect(answers(page).last).to_contain_text("Short reply.")
    assert current_branch(web, page, conv)[:2] == branch


def test_regenerate_keeps_every_answer_and_paging_moves_the_branch(web_with):
    from fake_engine import FakeEngine
    from tandem.engines import ModelCatalog

    catalog = ModelCatalog(default_model="scripted")
    catalog.add(FakeEngine("scripted", script=["First answer.", "Second answer.", "Third one."]))
    web = web_with(catalog)
    page = web.signed_in("ada@example.com")
    send(page, "Hello")
    wait_answered(page, 1)
    expect(answers(page).first).to_contain_text("First answer.")
    page.get_by_role("button", name="Regenerate").click()
    expect(answers(page).first).to_contain_text("Second answer.")
    pager = answers(page).first.get_by_role("group", name="Alternatives")
    expect(pager).to_contain_text("2/2")

    pager.get_by_role("button", name="Previous alternative").click()
    expect(pager).to_contain_text("1/2")
    expect(answers(page).first).to_contain_text("First answer.")
    conv = conv_id_of(page)
    # Paging made the first answer current on the server: the next turn continues it.
    eventually(lambda: current_branch(web, page, conv) == ["Hello", "First answer."])
    send(page, "And then?")
    wait_answered(page, 2)
    assert current_branch(web, page, conv) == ["Hello", "First answer.", "And then?", "Third one."]
    # A reload shows exactly the server's current branch.
    page.reload()
    expect(answers(page)).to_have_count(2)
    expect(answers(page).first).to_contain_text("First answer.")
    expect(answers(page).first.get_by_role("group", name="Alternatives")).to_contain_text("1/2")


def test_editing_a_question_starts_a_branch_and_both_stay_reachable(web):
    page = web.signed_in("ada@example.com")
    send(page, "What is 2+2?")
    wait_answered(page, 1)
    send(page, "Thanks")
    wait_answered(page, 2)

    first_question = page.locator(".msg.user").first
    first_question.hover()
    first_question.get_by_role("button", name="Edit message").click()
    editor = page.get_by_role("textbox", name="Edit message")
    editor.fill("What is 3+3?")
    page.get_by_role("button", name="Send", exact=True).click()
    wait_answered(page, 1)  # the new branch has one turn so far
    expect(answers(page).first).to_contain_text("You said: What is 3+3?")
    question_pager = page.locator(".msg.user").first.get_by_role("group", name="Alternatives")
    expect(question_pager).to_contain_text("2/2")
    conv = conv_id_of(page)
    assert current_branch(web, page, conv) == ["What is 3+3?", "You said: What is 3+3?"]

    page.locator(".msg.user").first.hover()
    question_pager.get_by_role("button", name="Previous alternative").click()
    # The old branch comes back whole, down to its last answer.
    wait_answered(page, 2)
    expect(page.locator(".msg.user").last).to_contain_text("Thanks")
    eventually(lambda: current_branch(web, page, conv)[-2:] == ["Thanks", "You said: Thanks"])


def test_markup_in_messages_is_shown_as_text_and_never_runs(web):
    page = web.signed_in("ada@example.com")
    attack = (
        '<script>window.__pwned = 1</script> <img src=x onerror="window.__pwned = 2"> '
        "[click](javascript:window.__pwned=3) **bold** `<b>code</b>`"
    )
    send(page, attack)
    wait_answered(page, 1)
    answer = answers(page).first
    expect(answer).to_contain_text("<script>window.__pwned = 1</script>")
    expect(answer).to_contain_text('<img src=x onerror="window.__pwned = 2">')
    expect(answer.locator("strong")).to_have_text("bold")
    expect(answer.locator("code")).to_have_text("<b>code</b>")
    rendered = answer.locator(".markdown")
    assert rendered.locator("script, img, b").count() == 0
    assert rendered.locator("a").count() == 0  # a javascript: link is shown as its label
    expect(page.locator(".msg.user .bubble")).to_contain_text("<script>")
    page.reload()  # rendering a stored conversation is just as safe
    wait_answered(page, 1)
    assert page.evaluate("window.__pwned") is None


def test_code_blocks_are_highlighted_and_copyable(web_with):
    from fake_engine import FakeEngine
    from tandem.engines import ModelCatalog

    answer = "Here:\n\n```python\ndef add(a, b):\n    # sum\n    return a + 2\n```\n\n- one\n- two"
    catalog = ModelCatalog(default_model="coder")
    catalog.add(FakeEngine("coder", script=[answer]))
    web = web_with(catalog)
    page = web.signed_in("ada@example.com")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    send(page, "code please")
    wait_answered(page, 1)
    block = page.locator(".code-block")
    expect(block.locator(".hljs-keyword").first).to_have_text("def")
    expect(block.locator(".hljs-comment")).to_have_text("# sum")
    expect(block.locator(".hljs-number")).to_have_text("2")
    expect(answers(page).first.locator("li")).to_have_count(2)
    block.get_by_role("button", name="Copy code").click()
    expect(block.get_by_role("button", name="Copy code")).to_have_text("Copied")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == "def add(a, b):\n    # sum\n    return a + 2"


def test_sidebar_lists_searches_renames_and_deletes_chats(web):
    page = web.signed_in("ada@example.com")
    send(page, "Plan a trip to Lyon")
    wait_answered(page, 1)
    page.get_by_role("link", name="New chat").click()
    send(page, "Bake bread")
    wait_answered(page, 1)
    history = page.get_by_role("navigation", name="Chats")
    expect(history.get_by_role("link")).to_have_text(["Bake bread", "Plan a trip to Lyon"])

    page.get_by_label("Search chats").fill("lyon")
    expect(history.get_by_role("link")).to_have_text(["Plan a trip to Lyon"])
    page.get_by_label("Search chats").fill("")
    expect(history.get_by_role("link")).to_have_count(2)

    history.get_by_role("link", name="Plan a trip to Lyon").click()  # no page reload
    expect(page.locator(".msg.user")).to_contain_text("Plan a trip to Lyon")
    history.get_by_role("button", name="Options for Plan a trip to Lyon").click()
    page.get_by_role("menuitem", name="Rename").click()
    title = page.get_by_role("textbox", name="Chat title")
    title.fill("Lyon weekend")
    title.press("Enter")
    expect(history.get_by_role("link", name="Lyon weekend")).to_be_visible()

    history.get_by_role("button", name="Options for Lyon weekend").click()
    page.get_by_role("menuitem", name="Delete").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete").click()
    expect(history.get_by_role("link")).to_have_text(["Bake bread"])
    titles = [c["title"] for c in web.api(page, "GET", "/api/conversations")]
    assert titles == ["Bake bread"]


def test_another_user_sees_none_of_my_chats(web):
    ada = web.signed_in("ada@example.com")
    send(ada, "My secret plan")
    wait_answered(ada, 1)
    ada_url = ada.url

    bob = web.signed_in("bob@example.com")
    expect(bob.get_by_text("Your chats will appear here.")).to_be_visible()
    assert bob.get_by_role("navigation", name="Chats").get_by_role("link").count() == 0
    bob.goto(ada_url)
    expect(bob.get_by_role("heading", name="Chat not found")).to_be_visible()
    expect(bob.get_by_text("My secret plan")).to_have_count(0)
    bob.get_by_role("button", name="Start a new chat").click()
    expect(bob).to_have_url(re.compile(r"/$"))


def test_phone_width_collapses_the_sidebar_into_a_menu(web):
    page = web.signed_in("ada@example.com", viewport={"width": 390, "height": 844})
    send(page, "Hello from a phone")
    wait_answered(page, 1)
    sidebar = page.get_by_role("complementary", name="Chat history")
    expect(sidebar).not_to_be_in_viewport()
    page.get_by_role("button", name="Open menu").click()
    expect(sidebar).to_be_in_viewport()
    page.get_by_role("link", name="New chat").click()
    expect(sidebar).not_to_be_in_viewport()
    expect(page.get_by_role("heading", name=re.compile("How can I help"))).to_be_visible()


def tiny_png() -> bytes:
    """A valid 2x2 red PNG, made here so the test needs no fixture file."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * 2 for _ in range(2))
    header = struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def test_an_attached_image_is_shown_stored_and_served_back(web_with):
    from fake_engine import FakeEngine
    from tandem.engines import ModelCatalog

    catalog = ModelCatalog(default_model="vision-model")
    catalog.add(FakeEngine("vision-model", accepts_images=True))
    web = web_with(catalog)
    page = web.signed_in("ada@example.com")
    png = {"name": "red.png", "mimeType": "image/png", "buffer": tiny_png()}
    page.locator("#file-input").set_input_files(png)
    thumb = page.locator("#attachments img")
    expect(thumb).to_have_count(1)
    page.get_by_role("button", name="Remove red.png").click()
    expect(thumb).to_have_count(0)
    page.locator("#file-input").set_input_files(png)
    expect(thumb).to_have_count(1)
    send(page, "What colour is this?")
    wait_answered(page, 1)
    expect(page.locator("#attachments img")).to_have_count(0)
    # The stored message carries the image, served back to its owner only.
    image = page.locator(".msg.user .msg-images img")
    expect(image).to_have_count(1)
    assert page.evaluate("el => el.naturalWidth", image.element_handle()) == 2
    branch = web.api(page, "GET", f"/api/conversations/{conv_id_of(page)}/branch")
    assert [p["type"] for p in branch[0]["parts"]].count("image") == 1


def test_a_failing_model_backend_shows_what_to_do_and_retry_works(web_with):
    from fake_engine import FakeEngine
    from tandem.engines import EngineError, ModelCatalog

    class FlakyEngine(FakeEngine):
        """Fails its first answer half-way, then answers normally."""

        failures = 1

        async def stream(self, messages, params):
            async for chunk in super().stream(messages, params):
                if self.failures and chunk.text:
                    self.failures -= 1
                    raise EngineError("connection to the GPU server lost")
                yield chunk

    catalog = ModelCatalog(default_model="flaky")
    catalog.add(FlakyEngine("flaky"))
    web = web_with(catalog)
    page = web.signed_in("ada@example.com")
    send(page, "Hello?")
    alert = page.locator(".msg.assistant.failed").get_by_role("alert")
    expect(alert).to_contain_text("model backend failed")
    expect(alert).to_contain_text("connection to the GPU server lost")
    page.get_by_role("button", name="Try again").click()
    wait_answered(page, 1)
    expect(answers(page).last).to_contain_text("You said: Hello?")
    expect(page.locator(".msg.assistant.failed")).to_have_count(0)
