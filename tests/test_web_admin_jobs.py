"""The Jobs page: its training form is the CLI's config (every field, default and help), and in
a real browser an admin launches a training job, watches it run, cancels one and resumes it.
The job process is tests/fake_job_launcher.py through TANDEM_JOB_LAUNCHER's setting; the real
training job runs in tests/test_web_admin_loop.py.

    .venv/bin/python -m pytest -q tests/test_web_admin_jobs.py
"""

from __future__ import annotations

import re

import pytest
from markupsafe import escape
from playwright.sync_api import expect

from conftest import log_in_as, new_user
from tandem.train.config import form_fields
from test_jobs import DEMO, LAUNCHER, _register_base


def test_the_page_is_for_admins_and_its_form_is_the_training_config(client, tandem_home):
    new_user(client, "admin@x.io")
    new_user(client, "user@x.io")
    _register_base(tandem_home, "fake-model")
    assert client.get("/admin/jobs", follow_redirects=False).status_code == 303
    log_in_as(client, "user@x.io")
    assert client.get("/admin/jobs").status_code == 403
    log_in_as(client, "admin@x.io")
    page = client.get("/admin/jobs")
    assert page.status_code == 200
    text = page.text
    for field in form_fields():
        assert f'data-field="{field["name"]}"' in text
        assert str(escape(field["help"])) in text
    assert 'data-field="max_steps" data-type="int" data-default="-1"' in text
    assert '<option value="fake-model" selected>fake-model</option>' in text  # the base
    assert 'value="other-model"' in text  # served versions can be evaluated
    assert 'href="/admin/jobs"' in text and 'aria-current="page"' in text


@pytest.mark.browser
def test_admin_launches_watches_cancels_and_resumes_jobs(
    web_with, fake_catalog, tandem_home, monkeypatch
):
    monkeypatch.setenv("FAKE_JOB_STEP_S", "0.4")
    monkeypatch.setenv("FAKE_JOB_STEPS", "10")
    web = web_with(fake_catalog, job_worker=True, job_launcher=LAUNCHER)
    _register_base(tandem_home, "fake-model")
    page = web.signed_in("admin@example.com")  # the first account is the admin
    body = {
        "kind": "sft",
        "name": "demos",
        "demonstrations": [DEMO],
        "filters": {"test_fraction": 0},
    }
    web.api(page, "POST", "/api/datasets", body)
    page.goto("/admin/jobs")
    page.locator("#train-method").select_option("sft")
    expect(page.locator("#train-dataset option")).to_contain_text(["demos"])
    page.locator('[data-field="max_steps"]').fill("10")
    page.locator('[data-field="logging_steps"]').fill("1")
    page.get_by_role("button", name="Start training").click()
    expect(page.locator("#status")).to_contain_text("Queued")
    detail = page.locator("#job")
    expect(detail).to_be_visible()
    expect(page.locator("#job-steps")).to_contain_text("of 10", timeout=20_000)
    expect(page.locator("#job-curve circle").first).to_be_attached(timeout=20_000)
    expect(page.locator("#job-status")).to_have_text("succeeded", timeout=30_000)
    expect(page.locator("#job-curve circle")).to_have_count(10)
    expect(page.locator("#job-result a")).to_have_text("fake-trained")
    expect(page.locator("#job-log")).to_contain_text("fake job")

    # A value the training config refuses is refused before anything is queued, with why.
    page.locator('[data-field="batch_size"]').fill("0")
    page.get_by_role("button", name="Start training").click()
    expect(page.locator("#status")).to_contain_text("batch_size must be at least 1")
    expect(page.locator("#jobs tr")).to_have_count(1)
    page.locator('[data-field="batch_size"]').fill("4")

    # Another job, cancelled while it runs, then resumed from where it stopped.
    page.locator("#train-output").fill("named-run")
    page.get_by_role("button", name="Start training").click()
    expect(page.locator("#job-title")).to_contain_text("named-run")
    expect(page.locator("#job-steps")).to_have_text(re.compile(r"step [1-5] of 10"), timeout=20_000)
    page.locator("#job-cancel").click()
    expect(page.locator("#job-status")).to_have_text("cancelled", timeout=20_000)
    row = page.locator("#jobs tr", has_text="named-run")
    expect(row.get_by_role("button", name="Resume")).to_be_visible()
    page.locator("#job-resume").click()
    expect(page.locator("#job-status")).to_have_text("succeeded", timeout=30_000)
    expect(page.locator("#job-steps")).to_contain_text("attempt 2")
