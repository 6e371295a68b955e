"""The admin console in a real browser: reached from the chat's account menu, a nav to every
page, managing users; and every user changing their own password in Settings.

.venv/bin/python -m pytest -q -m browser tests/test_web_admin_console.py
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from browser_fixtures import PASSWORD

pytestmark = pytest.mark.browser

CONSOLE_PAGES = [  # (nav label, path, a heading the page shows)
    ("Signals", "/admin/signals", "Signals"),
    ("Datasets", "/admin/datasets", "Datasets"),
    ("Jobs", "/admin/jobs", "Jobs"),
    ("Models", "/admin/models", "Models"),
    ("Rater tasks", "/admin/tasks", "Rater tasks"),
    ("Evals", "/admin/evals", "Evals"),
    ("Report", "/admin/report", "Offline vs online"),
    ("Rollouts", "/admin/rollouts", "Rollouts"),
    ("Experiments", "/admin/experiments", "Experiments"),
    ("Users", "/admin/users", "Users"),
    ("Overview", "/admin", "Overview"),
]


def console_errors(page) -> list[str]:
    """Every console error the page logs from now on (the fixture itself fails a test on
    uncaught exceptions and CSP violations only)."""
    errors: list[str] = []
    page.on(
        "console", lambda m: errors.append(f"{page.url}: {m.text}") if m.type == "error" else None
    )
    return errors


def log_in(web, email: str, password: str):
    """A fresh browser context signing in through the form; returns the page after it."""
    page = web.new_page()
    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    return page


def test_an_admin_runs_the_console_from_the_chat(web):
    admin = web.signed_in("admin@x.io")  # the first account is the admin
    bob = web.signed_in("bob@x.io")
    web.signed_in("carol@x.io")
    errors = console_errors(admin)

    admin.get_by_role("link", name="Admin console").click()
    expect(admin).to_have_url(re.compile(r"/admin$"))
    expect(admin.get_by_role("heading", name="Overview", level=1)).to_be_visible()
    expect(admin.locator('[data-stat="users"] .value')).to_have_text("3")

    nav = admin.get_by_role("navigation", name="Admin console")
    for label, path, heading in CONSOLE_PAGES:
        with admin.expect_response(lambda r, p=path: r.url.endswith(p)) as loaded:
            nav.get_by_role("link", name=label, exact=True).click()
        assert loaded.value.status == 200, (path, loaded.value.status)
        expect(admin).to_have_url(re.compile(re.escape(path) + "$"))
        current = admin.get_by_role("navigation", name="Admin console").locator(
            '[aria-current="page"]'
        )
        expect(current).to_have_text(label)
        expect(admin.get_by_role("heading", name=heading, level=1)).to_be_visible()
        admin.wait_for_load_state("networkidle")  # the page's own fetches have answered
    assert not errors, errors  # every console page loaded without one

    # Users: disable bob, reset carol's password.
    nav.get_by_role("link", name="Users", exact=True).click()
    rows = admin.locator("#users tbody tr")
    expect(rows).to_have_count(3)
    me = admin.locator('#users tr[data-email="admin@x.io"]')
    expect(me.get_by_role("button", name="Disable")).to_be_disabled()  # not yourself
    expect(me.get_by_role("button", name="Remove admin")).to_be_disabled()

    bob_row = admin.locator('#users tr[data-email="bob@x.io"]')
    bob_row.get_by_role("button", name="Disable").click()
    admin.get_by_role("dialog").get_by_role("button", name="Disable").click()
    expect(bob_row).to_contain_text("disabled")
    expect(bob_row.get_by_role("button", name="Enable")).to_be_visible()
    assert bob.request.get("/api/auth/me").status == 401  # signed out at once

    carol_row = admin.locator('#users tr[data-email="carol@x.io"]')
    carol_row.get_by_role("button", name="Reset password").click()
    dialog = admin.get_by_role("dialog", name="Reset password")
    dialog.get_by_label("New password").fill("password1")  # a common one: the server refuses
    dialog.get_by_role("button", name="Reset password").click()
    expect(dialog.get_by_role("alert")).to_contain_text("common")
    dialog.get_by_label("New password").fill("carols-temp-pass-7")
    dialog.get_by_role("button", name="Reset password").click()
    expect(dialog).to_be_hidden()
    expect(admin.get_by_role("status")).to_contain_text("Password reset for carol@x.io")

    carol = log_in(web, "carol@x.io", "carols-temp-pass-7")
    expect(carol).to_have_url(re.compile(r"/$"))
    expect(carol.get_by_role("link", name="New chat")).to_be_visible()
    expect(carol.get_by_role("link", name="Admin console")).to_have_count(0)
    refused = log_in(web, "bob@x.io", PASSWORD)  # disabled
    expect(refused.get_by_role("alert")).to_contain_text("disabled")
    # The one failed request the console logged was the refused common password.
    assert [e for e in errors if "422" not in e] == [], errors


def test_a_non_admin_gets_403_at_the_console(web):
    web.signed_in("admin@x.io")
    bob = web.signed_in("bob@x.io")
    expect(bob.get_by_role("link", name="Settings")).to_be_visible()
    expect(bob.get_by_role("link", name="Admin console")).to_have_count(0)
    for path in ("/admin", "/admin/users"):
        response = bob.goto(path)
        assert response is not None and response.status == 403
        expect(bob.get_by_text("Admins only.")).to_be_visible()


def test_a_user_changes_their_own_password_in_settings(web):
    web.signed_in("admin@x.io")
    page = web.signed_in("ada@example.com", path="/settings")
    card = page.locator("#password")
    error = card.get_by_role("alert")

    card.get_by_label("Current password").fill("not-my-password")
    card.get_by_label("New password", exact=True).fill("a-fresh-passphrase")
    card.get_by_label("Confirm new password").fill("a-fresh-passphrase")
    card.get_by_role("button", name="Change password").click()
    expect(error).to_contain_text("current password is wrong")

    card.get_by_label("Current password").fill(PASSWORD)
    card.get_by_label("Confirm new password").fill("something-else")
    card.get_by_role("button", name="Change password").click()
    expect(error).to_contain_text("differ")

    card.get_by_label("New password", exact=True).fill("password1")
    card.get_by_label("Confirm new password").fill("password1")
    card.get_by_role("button", name="Change password").click()
    expect(error).to_contain_text("common")  # the API's own rule, shown as it says it

    card.get_by_label("New password", exact=True).fill("a-fresh-passphrase")
    card.get_by_label("Confirm new password").fill("a-fresh-passphrase")
    card.get_by_role("button", name="Change password").click()
    expect(page.get_by_role("status")).to_contain_text("Password changed")
    expect(error).to_be_hidden()
    # This tab keeps working (a fresh session replaced the old one).
    assert web.api(page, "GET", "/api/auth/me")["email"] == "ada@example.com"

    old = log_in(web, "ada@example.com", PASSWORD)
    expect(old.get_by_role("alert")).to_contain_text(re.compile("wrong email or password", re.I))
    new = log_in(web, "ada@example.com", "a-fresh-passphrase")
    expect(new).to_have_url(re.compile(r"/$"))
    expect(new.get_by_role("link", name="New chat")).to_be_visible()
