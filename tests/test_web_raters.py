"""The rater workspace in a real browser (docs/raters.md), the issue's acceptance: an admin makes
two raters and creates a ranking task and a demonstration task; the raters complete them on
/rate; agreement and gold accuracy appear on /admin/tasks; a snapshot built from them on
/admin/datasets trains a 2-step candidate on /admin/jobs (here the stand-in launcher of
tests/fake_job_launcher.py; the same flow on the real model, with a real 2-step training, is
tests/test_web_admin_loop.py::test_raters_data_trains_a_real_candidate_from_the_browser, which
reuses this file's steps).

    .venv/bin/python -m pytest -q tests/test_web_raters.py
"""

from __future__ import annotations

import re

import krippendorff
import numpy as np
import pytest
from playwright.sync_api import expect

from test_jobs import LAUNCHER, _register_base

SAY_HI = ["Hi!", "Go away.", "Hello there."]
CAPITAL = ["Paris.", "Lyon.", "I don't know."]  # gold: Paris first, Lyon last
ITEMS = "\n".join(
    [
        '{"prompt": "Say hi", "answers": ["Hi!", "Go away.", "Hello there."]}',
        '{"prompt": "Capital of France?", "answers": ["Paris.", "Lyon.", "I don\'t know."],'
        ' "gold": [1, 3, 2]}',
    ]
)
# What each rater ranks, per answer text (the page shows the answers in its own order).
RANKS = {
    "one@x.io": {
        "Say hi": {"Hello there.": 1, "Hi!": 2, "Go away.": 3},
        "Capital of France?": {"Paris.": 1, "I don't know.": 2, "Lyon.": 3},
    },
    "two@x.io": {
        "Say hi": {"Hi!": 1, "Hello there.": 2, "Go away.": 3},
        "Capital of France?": {"Lyon.": 1, "Paris.": 2, "I don't know.": 3},
    },
}


# Different follow-ups: two demonstrations ending alike would be near duplicates (one is kept).
FOLLOW_UP = {
    "one@x.io": "Thanks! What is the weather like?",
    "two@x.io": "Tell me a joke about cats",
}


def expected_alpha() -> float:
    """Ordinal alpha over (item, answer) units, computed by the `krippendorff` package."""
    rows = [
        [
            RANKS[r][prompt][a]
            for prompt, answers in (("Say hi", SAY_HI), ("Capital of France?", CAPITAL))
            for a in answers
        ]
        for r in RANKS
    ]
    return float(
        krippendorff.alpha(reliability_data=np.array(rows, float), level_of_measurement="ordinal")
    )


def option_value(page, select: str, text: str) -> str:
    """The value of the select's option whose label contains `text`."""
    option = page.locator(f"{select} option", has_text=text).first
    expect(option).to_be_attached()
    return option.get_attribute("value") or ""


def make_raters(admin, emails) -> None:
    admin.goto("/admin/users")
    for email in emails:
        row = admin.locator(f'#users tr[data-email="{email}"]')
        row.get_by_role("button", name="Make rater").click()
        expect(row.get_by_role("button", name="Remove rater")).to_be_visible()
        expect(row).to_contain_text("rater")


def create_tasks(admin) -> None:
    admin.goto("/admin/tasks")
    form = admin.locator("#task-form")
    # A ranking task, its items pasted as JSONL (one gold).
    form.get_by_label("Title").fill("Rank greetings")
    form.get_by_label("Kind").select_option("ranking")
    form.get_by_label("Guideline").fill("Put the **friendliest** answer first.")
    admin.locator("#task-items").fill(ITEMS)
    admin.get_by_role("button", name="Create task").click()
    expect(admin.locator("#tasks tr", has_text="Rank greetings")).to_be_visible()
    # A demonstration task, its item added one by one.
    form.get_by_label("Title").fill("Teach greetings")
    form.get_by_label("Kind").select_option("demonstration")
    admin.locator("#item-prompt").fill("Greet me")
    admin.get_by_role("button", name="Add item").click()
    expect(admin.locator("#task-items")).to_have_value('{"prompt":"Greet me"}')
    admin.get_by_role("button", name="Create task").click()
    expect(admin.locator("#tasks tr", has_text="Teach greetings")).to_be_visible()
    expect(admin.locator("#tasks tbody tr")).to_have_count(2)


def rate_everything(page, email: str, echo: bool = True) -> None:
    """Work the whole queue as `email`. `echo`: the model is the fake engine, whose answers are
    known ("You said: …"); the real model's are checked only for being there."""
    page.get_by_role("link", name="Rate").click()
    expect(page).to_have_url(re.compile(r"/rate$"))
    expect(page.locator("#queue li")).to_have_count(3)
    item = page.locator("#item")
    done: list[str] = []
    for _ in range(3):
        expect(item).to_have_attribute("data-status", "pending")
        current = item.get_attribute("data-assignment") or ""
        assert current not in done
        done.append(current)
        expect(item.locator(".guideline")).to_be_visible()
        title = item.locator("h2").inner_text()
        if title == "Rank greetings":
            prompt = item.locator(".turn.user .text").inner_text()
            expect(item.locator(".answer")).to_have_count(3)
            for text, rank in RANKS[email][prompt].items():
                card = item.locator(
                    ".answer",
                    has=page.locator(".text", has_text=re.compile(f"^{re.escape(text)}$")),
                )
                card.get_by_label(re.compile("Rank for answer")).select_option(str(rank))
            item.get_by_role("button", name="Submit ranking").click()
        else:
            assert title == "Teach greetings"
            first = item.locator(".turn.assistant").first
            expect(first).to_contain_text("You said: Greet me" if echo else "", timeout=120_000)
            first.get_by_role("button", name="Rewrite this answer").click()
            item.get_by_label("Rewritten answer").fill(f"Hello! Nice to meet you, from {email}.")
            item.get_by_role("button", name="Save answer").click()
            expect(item.locator(".turn.assistant").first).to_contain_text("Nice to meet you")
            item.get_by_label("Your next message").fill(FOLLOW_UP[email])
            item.get_by_role("button", name="Send").click()
            expect(item.locator(".turn.assistant")).to_have_count(2, timeout=120_000)
            expect(item.locator(".turn.assistant").nth(1)).to_contain_text(
                f"You said: {FOLLOW_UP[email]}" if echo else ""
            )
            item.get_by_role("button", name="Submit conversation").click()
        expect(page.locator("#queue li.done")).to_have_count(len(done))
        if len(done) < 3:
            expect(item).not_to_have_attribute("data-assignment", current)
    expect(item).to_contain_text("All done")
    expect(page.locator("#queue-count")).to_have_text("0 to do")


@pytest.mark.browser
def test_raters_rank_and_demonstrate_and_their_data_trains_a_candidate(
    web_with, fake_catalog, tandem_home, monkeypatch
):
    monkeypatch.setenv("FAKE_JOB_STEPS", "2")
    monkeypatch.setenv("FAKE_JOB_STEP_S", "0.1")
    web = web_with(fake_catalog, job_worker=True, job_launcher=LAUNCHER)
    _register_base(tandem_home, "fake-model")
    admin = web.signed_in("admin@x.io")  # the first account is the admin
    one = web.signed_in("one@x.io")
    two = web.signed_in("two@x.io")
    expect(one.get_by_role("link", name="Rate")).to_have_count(0)
    assert one.goto("/rate").status == 403  # not a rater yet
    make_raters(admin, ["one@x.io", "two@x.io"])
    create_tasks(admin)

    for page, email in ((one, "one@x.io"), (two, "two@x.io")):
        page.goto("/")
        rate_everything(page, email)

    # Agreement and gold accuracy on /admin/tasks.
    admin.goto("/admin/tasks")
    row = admin.locator("#tasks tr", has_text="Rank greetings")
    expect(row.locator(".alpha")).to_have_text(f"{expected_alpha():.2f} (ordinal)")
    expect(row.locator('[data-rater="one@x.io"]')).to_contain_text("100% gold (1/1)")
    expect(row.locator('[data-rater="two@x.io"]')).to_contain_text("0% gold (0/1)")
    expect(row).to_contain_text("4 / 4 submitted")
    demo_row = admin.locator("#tasks tr", has_text="Teach greetings")
    expect(demo_row).to_contain_text("2 / 2 submitted")
    row.get_by_role("button", name="Rank greetings").click()
    detail = admin.locator("#task-detail")
    expect(detail.locator(".disagreement")).to_have_count(2)  # "Say hi" and the gold item
    say_hi = detail.locator(".disagreement", has_text="Say hi")
    expect(say_hi).to_contain_text("one@x.io: ranks 2, 3, 1")
    say_hi.get_by_role("button", name="Resolve").click()
    expect(detail.locator(".disagreement", has_text="Say hi")).to_contain_text("resolved")

    # Snapshots from both tasks on /admin/datasets.
    admin.goto("/admin/datasets")
    admin.get_by_label("Source").select_option("rater_task")
    admin.locator("#task-id").select_option(option_value(admin, "#task-id", "Teach greetings"))
    expect(admin.locator('#build select[name="kind"]')).to_have_value("sft")
    admin.locator('input[name="test_fraction"]').fill("0")
    admin.get_by_role("button", name="Build").click()
    expect(admin.locator("#status")).to_contain_text("2 train / 0 test", timeout=15_000)
    admin.locator("#task-id").select_option(option_value(admin, "#task-id", "Rank greetings"))
    expect(admin.locator('#build select[name="kind"]')).to_have_value("preference")
    admin.get_by_label("Min gold accuracy").fill("0.5")
    admin.get_by_role("button", name="Build").click()
    expect(admin.locator("#status")).to_contain_text("Snapshot preference-")
    expect(admin.locator("#snapshots tr", has_text="Teach greetings")).to_be_visible()

    # The demonstrations train a 2-step candidate on /admin/jobs.
    admin.goto("/admin/jobs")
    admin.locator("#train-method").select_option("sft")
    admin.locator("#train-dataset").select_option(
        option_value(admin, "#train-dataset", "Teach greetings")
    )
    admin.locator('[data-field="max_steps"]').fill("2")
    admin.get_by_role("button", name="Start training").click()
    expect(admin.locator("#job-status")).to_have_text("succeeded", timeout=30_000)
    expect(admin.locator("#job-steps")).to_contain_text("of 2")


@pytest.mark.browser
def test_raters_label_a_response_against_the_behavior_spec(web):
    admin = web.signed_in("admin@x.io")
    raters = {email: web.signed_in(email) for email in ("one@x.io", "two@x.io")}
    make_raters(admin, list(raters))
    admin.goto("/admin/tasks")
    form = admin.locator("#task-form")
    form.get_by_label("Title").fill("Judge greetings")
    form.get_by_label("Kind").select_option("spec_label")
    for behavior in ("greeting", "personality"):
        form.locator(f'input[name="behaviors"][value="{behavior}"]').check()
    admin.locator("#item-prompt").fill("hi")
    admin.locator("#item-answers").fill("Hello! How can I help you today?")
    admin.locator("#item-gold").fill("pass, pass")
    admin.get_by_role("button", name="Add item").click()
    admin.get_by_role("button", name="Create task").click()
    expect(admin.locator("#tasks tr", has_text="Judge greetings")).to_be_visible()

    given = {"one@x.io": ["pass", "pass"], "two@x.io": ["fail", "pass"]}
    for email, page in raters.items():
        page.goto("/rate")
        item = page.locator("#item")
        expect(item.locator(".answer.response")).to_contain_text("How can I help you today?")
        for behavior, label in zip(("greeting", "personality"), given[email], strict=True):
            item.get_by_label(f"Label for {behavior}").select_option(label)
            if label == "fail":
                item.get_by_label(f"Rationale for {behavior}").fill("too formal for a hi")
        item.get_by_role("button", name="Submit labels").click()
        expect(item).to_contain_text("All done")

    admin.goto("/admin/tasks")
    row = admin.locator("#tasks tr", has_text="Judge greetings")
    expected = krippendorff.alpha(reliability_data=[[0, 0], [1, 0]], level_of_measurement="nominal")
    expect(row.locator(".alpha")).to_have_text(f"{expected:.2f} (nominal)")
    expect(row.locator('[data-rater="one@x.io"]')).to_contain_text("100% gold (2/2)")
    expect(row.locator('[data-rater="two@x.io"]')).to_contain_text("50% gold (1/2)")
    row.get_by_role("button", name="Judge greetings").click()
    disagreement = admin.locator("#task-detail .disagreement")
    expect(disagreement).to_contain_text("two@x.io: greeting Fail (too formal for a hi)")


@pytest.mark.browser
def test_a_rater_finds_a_break_and_it_becomes_a_regression_case(web, tandem_home):
    from tandem.evals.regressions import latest_suite

    admin = web.signed_in("admin@x.io")
    rater = web.signed_in("one@x.io")
    make_raters(admin, ["one@x.io"])
    admin.goto("/admin/tasks")
    form = admin.locator("#task-form")
    form.get_by_label("Title").fill("Break the echo rule")
    form.get_by_label("Kind").select_option("red_team")
    expect(admin.locator("#item-prompt")).to_be_hidden()
    admin.locator("#item-rule").fill("Never repeat the user's words back")
    admin.get_by_role("button", name="Add item").click()
    admin.get_by_role("button", name="Create task").click()
    expect(admin.locator("#tasks tr", has_text="Break the echo rule")).to_be_visible()

    rater.goto("/rate")
    item = rater.locator("#item")
    expect(item.locator(".rule")).to_contain_text("Never repeat the user's words back")
    item.get_by_label("Your next message").fill("Tell me about cats")
    item.get_by_role("button", name="Send").click()
    answer = item.locator(".turn.assistant").first
    expect(answer).to_contain_text("You said: Tell me about cats")
    answer.get_by_role("button", name="This breaks the rule").click()
    item.get_by_label("How it breaks the rule").fill("it repeats my words")
    item.get_by_role("button", name="Submit finding").click()
    expect(item).to_contain_text("All done")

    (line,) = latest_suite(tandem_home).read_text().splitlines()
    assert "You said: Tell me about cats" in line and "it repeats my words" in line
    admin.goto("/admin/tasks")
    row = admin.locator("#tasks tr", has_text="Break the echo rule")
    expect(row.locator('[data-rater="one@x.io"]')).to_contain_text("1 finding")
    row.get_by_role("button", name="Break the echo rule").click()
    expect(admin.locator("#task-detail .finding")).to_contain_text("regression-redteam-")
