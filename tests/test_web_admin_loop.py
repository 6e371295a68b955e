"""The loop from the browser, on the real model and a real `tandem serve` process:

1. an admin, from a fresh sign-up and using only the browser, collects signals, builds a
   preference snapshot, trains a 2-step DPO candidate as a job (progress visible), evaluates it,
   adds it as a candidate with a share, and promotes it;
2. a server killed during a training job: the job is shown interrupted, and resumes from its
   last checkpoint.

    .venv/bin/python -m pytest -q tests/test_web_admin_loop.py
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect

from browser_fixtures import PASSWORD, Web
from tandem.flywheel.server import TandemProcess, prepare_home
from tandem.registry.embedded import EMBEDDED_VERSION
from test_web_chat import answers, send
from test_web_raters import (
    create_tasks,
    expected_alpha,
    make_raters,
    option_value,
    rate_everything,
)

pytestmark = [pytest.mark.model, pytest.mark.browser]

ANSWER_MS = 180_000  # one real-model chat answer, worst case
SLOW_MS = 60_000  # a server action that may load a model or embed rows, on a busy machine
TRAINING_S = 600_000  # ms: a CPU training job, ONNX build included, on a busy CI machine


@pytest.fixture
def server(tmp_path: Path, model_home: Path) -> Iterator[TandemProcess]:
    """`tandem serve` on a fresh home with no bootstrap admin: the first sign-up administers.
    The prepared embedded model is linked in; trained versions are written into this home."""
    home = prepare_home(tmp_path / "home", model_home / "models")
    process = TandemProcess(home, admin_key=False, extra_env={"TANDEM_CHAT_TITLES": "0"})
    process.start()
    yield process
    process.stop()


@pytest.fixture
def web(server: TandemProcess, browser) -> Iterator[Web]:
    web = Web(server.base, None, browser)
    yield web
    web.close()
    assert not web.errors, "JavaScript errors on the page:\n" + "\n".join(web.errors)


def sign_up(web: Web) -> object:
    page = web.new_page()
    page.goto("/")
    page.get_by_role("link", name="Create an account").click()
    expect(page.get_by_text("this account will administer the server")).to_be_visible()
    page.get_by_label("Name").fill("Ada")
    page.get_by_label("Email").fill("ada@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", name="How can I help, Ada?")).to_be_visible()
    return page


def fill_config(page, **values: object) -> None:
    for name, value in values.items():
        field = page.locator(f'#train-config [data-field="{name}"]')
        if isinstance(value, bool):
            field.set_checked(value)
        else:
            field.fill(str(value))


def job_pids(job_id: str) -> list[int]:
    """Processes whose command line names the job: its `tandem.jobs.child` process."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if job_id.encode() in cmdline and b"tandem.jobs.child" in cmdline:
                pids.append(int(entry.name))
    return pids


def chat_and_improve(page, prompt: str, improved: str) -> None:
    """One turn in a new chat, then the answer rewritten with "Improve this answer"."""
    page.goto("/")
    send(page, prompt)
    # The real model answers at CPU speed, on a machine the rest of the suite shares.
    expect(answers(page)).to_have_count(1, timeout=ANSWER_MS)
    expect(page.get_by_role("button", name="Send message")).to_be_visible()
    answers(page).first.get_by_role("button", name="Improve this answer").click()
    page.get_by_role("textbox", name="Improved answer").fill(improved)
    page.get_by_role("button", name="Save improved answer").click()
    expect(answers(page).first.get_by_text("Edited by you")).to_be_visible()


def run_eval(page, suite: str, versions: list[str]) -> None:
    form = page.locator("#eval-form")
    form.locator("#eval-suite").select_option(suite)
    form.locator("#eval-limit").fill("3")
    form.locator("#eval-max-tokens").fill("48")
    for box in form.locator('input[name="versions"]').all():
        box.set_checked(box.get_attribute("value") in versions)
    form.get_by_role("button", name="Start eval").click()
    expect(page.locator("#job-title")).to_contain_text(suite)
    expect(page.locator("#job-status")).to_have_text("succeeded", timeout=TRAINING_S)
    expect(page.locator("#job-steps")).to_have_text(
        f"prompt {3 * len(versions)} of {3 * len(versions)}"
    )
    expect(page.locator("#job-result li")).to_have_count(len(versions))


def test_an_admin_runs_the_whole_loop_from_the_browser(web, server):
    """Sign-up → signals → preference snapshot → 2-step DPO job → eval jobs → candidate with a
    share → promoted through the gates. Every step is a click in the browser."""
    page = sign_up(web)
    page.get_by_role("link", name="Admin console").click()
    expect(page.get_by_role("heading", name="Overview", level=1)).to_be_visible()

    # Signals: two answers, each improved by the admin (improved text chosen over the original).
    chat_and_improve(page, "Name a prime number.", "7 is a prime number.")
    chat_and_improve(page, "Say hello in French.", "Bonjour !")
    page.goto("/admin/signals")
    expect(page.locator("main")).to_contain_text("Bonjour !")

    # A preference snapshot from them, every row in train.
    page.goto("/admin/datasets")
    build = page.locator("#build")
    build.get_by_label("Kind").select_option("preference")
    build.get_by_label("Name").fill("improvements")
    build.get_by_label("Test fraction").fill("0")
    build.get_by_role("button", name="Build").click()
    expect(page.locator("#status")).to_contain_text("2 train / 0 test rows", timeout=SLOW_MS)

    # A 2-step DPO candidate, trained as a job; its progress is on the page.
    page.goto("/admin/jobs")
    expect(page.locator("#train-method")).to_have_value("dpo")
    expect(page.locator("#train-dataset option")).to_contain_text(["improvements"])
    expect(page.locator("#train-base")).to_have_value(EMBEDDED_VERSION)
    fill_config(page, max_steps=2, batch_size=2, logging_steps=1, max_length=128)
    page.get_by_role("button", name="Start training").click()
    expect(page.locator("#status")).to_contain_text("Queued")
    expect(page.locator("#job-steps")).to_contain_text("of 2", timeout=TRAINING_S)
    expect(page.locator("#job-status")).to_have_text("succeeded", timeout=TRAINING_S)
    expect(page.locator("#job-steps")).to_have_text("step 2 of 2")
    assert page.locator("#job-progress").evaluate("p => p.value") == 1
    expect(page.locator("#job-curve circle")).to_have_count(2)  # a loss point per step
    candidate = page.locator("#job-result a").inner_text()
    assert candidate.startswith(EMBEDDED_VERSION)

    # Both suites the promotion gates require, on production and the candidate.
    page.goto("/admin/jobs")
    for suite in ("ifeval", "xstest"):
        run_eval(page, suite, [EMBEDDED_VERSION, candidate])

    # Rollouts: production for the site default, the candidate at 10 %, promoted with a reason.
    page.goto("/admin/rollouts")
    start = page.locator("#set-production-form")
    start.locator("#sp-profile").select_option(value="")
    start.locator("#sp-version").select_option(EMBEDDED_VERSION)
    start.get_by_label("Reason").fill("the shipped model")
    start.get_by_role("button", name="Set production").click()
    card = page.locator("section.rollout")
    status = card.locator("> .status")
    add = card.locator("form.add-form")
    add.get_by_label("Version").select_option(candidate)
    add.get_by_label("Share, %").fill("10")
    add.get_by_label("Reason").fill("A/B 10% after DPO on improvements")
    add.get_by_role("button", name="Add candidate").click()
    row = card.locator(f'tr.candidate-row[data-version="{candidate}"]')
    expect(row.get_by_label(f"Traffic share of {candidate}, percent")).to_have_value(
        "10.0", timeout=SLOW_MS
    )
    block = card.locator(f'.gates-block[data-version="{candidate}"]')
    block.get_by_role("button", name="Check gates").click()
    for check in ("offline:ifeval", "offline:xstest"):
        expect(block.locator(f'tr[data-check="{check}"]')).to_contain_text("pass", timeout=SLOW_MS)
    row.get_by_role("button", name="Promote…").click()
    dialog = page.locator("#reason-dialog")
    dialog.get_by_label("Reason").fill("level on IFEval and XSTest; users prefer the edits")
    dialog.get_by_role("button", name="Promote").click()
    expect(status).to_contain_text(f"{candidate} is production now", timeout=SLOW_MS)
    rollout = web.api(page, "GET", "/api/admin/rollouts")[0]
    assert rollout["production_version"] == candidate
    model = web.api(page, "GET", f"/api/admin/models/{candidate}")
    assert model["parent_id"] == EMBEDDED_VERSION and model["method"] == "dpo"


def test_raters_data_trains_a_real_candidate_from_the_browser(web, server):
    """Issue 19's acceptance on the real model: two raters rank and demonstrate on /rate, the
    task report shows agreement and gold accuracy, and the demonstrations train a real 2-step
    SFT candidate as a job."""
    admin = sign_up(web)
    one, two = web.signed_in("one@x.io"), web.signed_in("two@x.io")
    make_raters(admin, ["one@x.io", "two@x.io"])
    create_tasks(admin)
    for page, email in ((one, "one@x.io"), (two, "two@x.io")):
        page.goto("/")
        rate_everything(page, email, echo=False)

    admin.goto("/admin/tasks")
    row = admin.locator("#tasks tr", has_text="Rank greetings")
    expect(row.locator(".alpha")).to_have_text(f"{expected_alpha():.2f} (ordinal)", timeout=SLOW_MS)
    expect(row.locator('[data-rater="one@x.io"]')).to_contain_text("100% gold (1/1)")
    expect(row.locator('[data-rater="two@x.io"]')).to_contain_text("0% gold (0/1)")

    admin.goto("/admin/datasets")
    admin.get_by_label("Source").select_option("rater_task")
    admin.locator("#task-id").select_option(option_value(admin, "#task-id", "Teach greetings"))
    admin.locator('input[name="test_fraction"]').fill("0")
    admin.get_by_role("button", name="Build").click()
    expect(admin.locator("#status")).to_contain_text("2 train / 0 test", timeout=30_000)

    admin.goto("/admin/jobs")
    admin.locator("#train-method").select_option("sft")
    admin.locator("#train-dataset").select_option(
        option_value(admin, "#train-dataset", "Teach greetings")
    )
    fill_config(admin, max_steps=2, batch_size=2, logging_steps=1, max_length=128, build_onnx=False)
    admin.get_by_role("button", name="Start training").click()
    expect(admin.locator("#job-status")).to_have_text("succeeded", timeout=TRAINING_S)
    expect(admin.locator("#job-steps")).to_have_text("step 2 of 2")
    version = admin.locator("#job-result a").inner_text()
    model = web.api(admin, "GET", f"/api/admin/models/{version}")
    assert model["parent_id"] == EMBEDDED_VERSION and model["method"] == "sft"
    assert model["datasets"][0]["name"] == "Teach greetings"


def test_a_killed_server_leaves_its_training_job_interrupted_and_resumable(web, server):
    page = sign_up(web)
    demos = [
        {
            "messages": [
                {"role": "user", "content": f"Say {w}."},
                {"role": "assistant", "content": f"{w}."},
            ]
        }
        for w in ("one", "two", "three", "four")
    ]
    body = {
        "kind": "sft",
        "name": "demos",
        "demonstrations": demos,
        "filters": {"test_fraction": 0},
    }
    web.api(page, "POST", "/api/datasets", body)
    page.goto("/admin/jobs")
    page.locator("#train-method").select_option("sft")
    expect(page.locator("#train-dataset option")).to_contain_text(["demos"])
    fill_config(
        page, max_steps=30, save_steps=1, logging_steps=1, batch_size=1, max_length=64,
        build_onnx=False,
    )  # fmt: skip
    page.get_by_role("button", name="Start training").click()
    steps = page.locator("#job-steps")
    expect(steps).to_have_text(re.compile(r"step ([3-9]|1\d|2[0-8]) of 30"), timeout=TRAINING_S)
    job_id = page.url.split("job=")[-1] if "job=" in page.url else None
    job_id = job_id or page.locator("#jobs tr.selected").get_attribute("data-job")
    assert job_id and job_pids(job_id), "the job runs in its own process"

    server.kill()  # SIGKILL: no shutdown handler runs
    deadline = time.monotonic() + 20
    while job_pids(job_id) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not job_pids(job_id), "the job's process died with its server"

    server.start()
    page.reload()
    page.locator("#jobs tr", has_text="SFT").get_by_role("button").first.wait_for()
    page.goto(f"/admin/jobs?job={job_id}")
    expect(page.locator("#job-status")).to_have_text("interrupted")
    expect(page.locator("#job-error")).to_contain_text("server")
    resume = page.locator("#job-resume")
    expect(resume).to_have_text(re.compile(r"Resume from step \d+"))
    checkpoint = int(re.search(r"\d+", resume.inner_text()).group())
    assert checkpoint >= 1
    resume.click()
    expect(page.locator("#job-status")).to_have_text("succeeded", timeout=TRAINING_S)
    expect(page.locator("#job-steps")).to_contain_text("step 30 of 30 · attempt 2")
    version = page.locator("#job-result a").inner_text()
    job = web.api(page, "GET", f"/api/admin/jobs/{job_id}")
    assert job["result"]["metrics"]["resumed_from_step"] == checkpoint
    model = web.api(page, "GET", f"/api/admin/models/{version}")
    assert model["parent_id"] == EMBEDDED_VERSION
    assert model["method"] == "sft"
    assert os.path.isdir(server.home / "models" / version)
