"""The Compare panel of /admin/evals in a real browser: an admin picks two runs of one suite and
the Regressed filter shows exactly the prompt that got worse.

    .venv/bin/python -m pytest -q tests/test_web_admin_evals_compare.py -m browser
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tandem.store.evals import EvalItem
from test_eval_compare import store_run

pytestmark = pytest.mark.browser

PROMPTS = {
    "p0": "Say hello",
    "p1": "Name a colour in one word",
    "p2": "Count to three",
    "p3": "Write a long story",
}
HOSTILE = '<img src=x onerror="alert(1)"> not a colour'
LONG = "Once upon a time. " * 40


def _run(url: str, suite: str, version: str, graded: dict[str, tuple[bool, str]]) -> str:
    items = [
        EvalItem(k, [{"role": "user", "content": PROMPTS[k]}], answer, passed)
        for k, (passed, answer) in graded.items()
    ]
    return store_run(url, suite, version, items, {"pass_rate": 0.5})


def test_admin_compares_two_runs_and_filters_the_regressed_prompt(web, sqlite_url):
    admin = web.signed_in("admin@example.com")  # the first account administers the server
    old = _run(
        sqlite_url,
        "regressions",
        "v1",
        {"p0": (True, "Hello!"), "p1": (True, "Blue"), "p2": (False, "1 2"), "p3": (False, "No.")},
    )
    new = _run(
        sqlite_url,
        "regressions",
        "v2",
        {
            "p0": (True, "Hello!"),
            "p1": (False, HOSTILE),
            "p2": (True, "1 2 3"),
            "p3": (False, LONG),
        },
    )
    _run(sqlite_url, "xstest", "v3", {"p0": (True, "Hi")})  # the newest run, of another suite

    admin.goto("/admin/evals")
    panel = admin.locator("#compare")
    expect(panel.get_by_label("Suite")).to_have_value("regressions")  # the one with two versions
    expect(panel.get_by_label("A (baseline)")).to_have_value(old)
    expect(panel.get_by_label("B (candidate)")).to_have_value(new)
    # Pick the other way round, then back: the selects are the user's to set.
    panel.get_by_label("A (baseline)").select_option(new)
    panel.get_by_label("B (candidate)").select_option(old)
    panel.get_by_role("button", name="Compare").click()
    expect(panel.locator("#compare-head-a")).to_have_text("A · v2")
    panel.get_by_label("A (baseline)").select_option(old)
    panel.get_by_label("B (candidate)").select_option(new)
    panel.get_by_role("button", name="Compare").click()

    expect(panel.locator("#compare-head-a")).to_have_text("A · v1")
    expect(panel.locator("#compare-verdict")).to_have_text(
        "v2 passed as many prompts as v1 did (p = 1.000)."
    )
    expect(panel.locator(".stat.regressed .value")).to_have_text("1")
    expect(panel.locator(".stat.improved .value")).to_have_text("1")
    rows = panel.locator("#compare-table tbody tr")
    expect(rows).to_have_count(4)

    panel.get_by_role("button", name="Regressed (1)").click()
    visible = panel.locator("#compare-table tbody tr:visible")
    expect(visible).to_have_count(1)
    expect(visible.first).to_contain_text(PROMPTS["p1"])
    expect(visible.first).to_contain_text("regressed")
    # The hostile answer is text on the page, not markup.
    expect(visible.first.locator("pre.answer").nth(1)).to_have_text(HOSTILE)
    expect(panel.locator("#compare-table img")).to_have_count(0)
    assert f"compare={old},{new}" in admin.url and "show=regressed" in admin.url

    panel.get_by_role("button", name="Changed (2)").click()
    expect(visible).to_have_count(2)
    panel.get_by_role("button", name="All (4)").click()
    expect(visible).to_have_count(4)
    # The long answer folds; opened, it is all there.
    story = rows.nth(3).locator("details.fold")
    expect(story.locator("pre.answer")).not_to_be_visible()
    story.locator("summary").click()
    expect(story.locator("pre.answer")).to_have_text(LONG)

    # A deep link opens the comparison with its filter.
    admin.goto(f"/admin/evals?compare={old},{new}&show=improved")
    expect(visible).to_have_count(1)
    expect(visible.first).to_contain_text(PROMPTS["p2"])
    expect(panel.get_by_role("button", name="Improved (1)")).to_have_attribute(
        "aria-pressed", "true"
    )
    admin.goto(f"/admin/evals?compare={old},{'0' * 32}")
    expect(panel.locator("#compare-status")).to_contain_text("not found")
