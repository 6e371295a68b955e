"""Screenshots of the admin console, called by scripts/screenshots.py after the chat's shots.

    make screenshots     # writes docs/screenshots/admin-<key>.png for every page in ADMIN_NAV

Every page of `tandem.web.admin.ADMIN_NAV` is shot at desktop size (a page added to the nav is
shot with no change here), and the overview and signals pages also at phone width
(admin-<key>-phone.png). The pages show what a server in use shows: before shooting, the
console is fed the way people and admins feed it, through the API (a second user's chats with
thumbs, reasons, a comment, a blind vote and an improved answer; dataset snapshots; rollouts)
and, for the one thing the web has no button for, in-process: an eval run of the
`instructions` suite on the served embedded model, the same `run_suite` call that
`tandem eval run` makes. The embedded version is registered like `tandem serve` registers it,
so the Models page has its card. No training: every picture is of the embedded version.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from screenshots import (
    DESKTOP,
    MODEL_HOME,
    PASSWORD,
    api,
    launch_chromium,
    phone_context,
    shoot,
)

PHONE_PAGES = ("overview", "signals")  # also shot at phone width, the nav strip on top
EVAL_SUITE, EVAL_LIMIT = "instructions", 5
SHORT = {"max_tokens": 60, "seed": 1}  # seeded chats: short answers, quick on a CPU


def seed_in_process(app: Any, engine: Any) -> None:
    """What has no web button: the registry row `tandem serve` writes for the embedded model,
    and an eval run (`tandem eval run instructions --limit 5`), on the engine the app serves."""
    from tandem.evals.runs import EVAL_SAMPLING, eval_owner_id, run_suite
    from tandem.evals.tasks import get_task
    from tandem.registry.embedded import load_prepared
    from tandem.registry.versions import register_prepared

    prepared = load_prepared(MODEL_HOME)
    assert prepared is not None, "build_app prepared the embedded model"
    failure: list[BaseException] = []

    def run() -> None:
        # Its own thread: run_suite drives the engine with asyncio.run, which refuses to start
        # inside the loop Playwright's sync API keeps in this one.
        try:
            with app.state.session_factory() as session:
                register_prepared(session, prepared)
                run_suite(
                    session,
                    get_task(EVAL_SUITE),
                    engine,
                    EVAL_SAMPLING,
                    owner_id=eval_owner_id(session),
                    limit=EVAL_LIMIT,
                )
        except BaseException as exc:  # re-raised below, in the caller's thread
            failure.append(exc)

    worker = threading.Thread(target=run, name="screenshots-eval")
    worker.start()
    worker.join()
    if failure:
        raise failure[0]
    print(f"seeded: eval run {EVAL_SUITE} (limit {EVAL_LIMIT}) on {engine.model_id}")


def ask(page: Any, question: str) -> dict[str, Any]:
    """A new conversation with one answered question; the turn (its assistant message)."""
    conv = api(page, "POST", "/api/conversations", {})
    return api(
        page,
        "POST",
        f"/api/conversations/{conv['id']}/messages",
        {"content": question, "sampling": SHORT},
    )


def rate(page: Any, turn: dict[str, Any], rating: str, reasons: list[str], comment: str) -> Any:
    message = turn["assistant_message"]["id"]
    body = {"rating": rating, "reasons": reasons, "comment": comment}
    return api(page, "POST", f"/api/messages/{message}/feedback", body)


def seed_second_user(browser: Any, base_url: str) -> None:
    """Grace signs up (an ordinary user: only the first account is admin) and leaves the
    signals a week of use leaves: thumbs both ways with reasons and a comment, a blind
    comparison she votes on, and an answer she rewrites."""
    context = browser.new_context(base_url=base_url, viewport=DESKTOP)
    context.set_default_timeout(60_000)
    page = context.new_page()
    page.goto("/signup")
    page.get_by_label("Name").fill("Grace")
    page.get_by_label("Email").fill("grace@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    page.get_by_role("heading", name="How can I help, Grace?").wait_for()

    up = ask(page, "Name three primary colours.")
    rate(page, up, "up", [], "Short and right.")
    down = ask(page, "Summarise the plot of Hamlet in one sentence.")
    rate(page, down, "down", ["too_long", "didnt_follow_instructions"], "I asked for one sentence.")
    wrong = ask(page, "How many legs does a spider have?")
    rate(page, wrong, "down", ["not_factual"], "")
    api(
        page,
        "POST",
        f"/api/messages/{wrong['assistant_message']['id']}/improve",
        {"content": "A spider has eight legs."},
    )
    conv = api(page, "POST", "/api/conversations", {})
    pair = api(
        page,
        "POST",
        f"/api/conversations/{conv['id']}/comparisons",
        {"content": "Suggest a name for a small bakery.", "sampling": SHORT},
    )
    api(page, "POST", f"/api/comparisons/{pair['id']}/vote", {"verdict": "b"})
    context.close()
    print("seeded: second user with thumbs, a vote and an improved answer")


def seed_as_admin(page: Any, version: str) -> None:
    """Ada (the admin): thumbs on her own earlier chats, one thumbs-down added to the
    regression suite, dataset snapshots built from every signal so far, rollouts, a ranking
    task for raters and a running behavior experiment."""
    for conv in api(page, "GET", "/api/conversations"):
        if conv["title"].startswith(("What is the boiling", "Give me three tips")):
            answer = api(page, "GET", f"/api/conversations/{conv['id']}/branch")[-1]
            api(page, "POST", f"/api/messages/{answer['id']}/feedback", {"rating": "up"})
    signals = api(page, "GET", "/api/admin/signals?kind=thumbs&rating=down&limit=1")
    for signal in signals["signals"][:1]:
        api(page, "POST", f"/api/admin/signals/{signal['id']}/regression")

    for kind, name in (
        ("kto", "Thumbs, first week"),
        ("preference", "Votes and rewrites"),
        ("sft", "Improved answers"),
    ):
        api(page, "POST", "/api/datasets", {"kind": kind, "name": name})

    # After the chats: a comparison rate set here would turn seeded turns into comparisons.
    site = api(
        page,
        "POST",
        "/api/admin/rollouts",
        {"version": version, "reason": "The embedded model serves everyone to start with."},
    )
    api(
        page,
        "PATCH",
        f"/api/admin/rollouts/{site['id']}",
        {"comparison_rate": 0.1, "reason": "One turn in ten as a blind comparison."},
    )
    tutor = next(p for p in api(page, "GET", "/api/profiles") if p["name"] == "Python tutor")
    api(
        page,
        "POST",
        "/api/admin/rollouts",
        {"profile_id": tutor["id"], "version": version, "reason": "Pinned for the tutor."},
    )
    api(
        page,
        "POST",
        "/api/admin/tasks",
        {
            "title": "Which answer helps most?",
            "guideline": "Rank the **most helpful** answer first; ties are allowed.",
            "kind": "ranking",
            "items": [
                {
                    "prompt": "How do I undo my last git commit?",
                    "answers": [
                        "git reset --soft HEAD~1 keeps your changes staged.",
                        "Delete .git.",
                    ],
                },
                {
                    "prompt": "Capital of Australia?",
                    "answers": ["Canberra.", "Sydney."],
                    "gold": [1, 2],
                },
            ],
        },
    )
    experiment = api(
        page,
        "POST",
        "/api/admin/experiments",
        {
            "name": "Short or thorough by default",
            "hypothesis": "Most people prefer short answers; some want depth.",
            "comparison_rate": 0.1,
            "variants": [
                {"name": "short", "kind": "system_prompt", "prompt_addition": "Answer briefly."},
                {
                    "name": "thorough",
                    "kind": "system_prompt",
                    "prompt_addition": "Answer thoroughly, with an example.",
                },
            ],
        },
    )
    api(page, "POST", f"/api/admin/experiments/{experiment['id']}/start")
    print("seeded: regression item, dataset snapshots, rollouts, a rater task, an experiment")


def settle(page: Any) -> None:
    """Wait until the page's script has filled it: no request in flight, nothing still marked
    busy or "Loading…". A page that never settles is shot as it is, with a warning."""
    page.wait_for_load_state("networkidle")
    try:
        page.wait_for_function(
            """() => !document.querySelector('[aria-busy="true"]') &&
                     !document.querySelector('.console-main')?.innerText.includes('Loading…')""",
            timeout=15_000,
        )
    except Exception as exc:  # a page added later may mark loading another way
        print(f"warning: {page.url} did not settle ({type(exc).__name__}); shot as it is")


def open_first_run(page: Any) -> None:
    """Evals: the first run's graded items, under the runs table."""
    page.locator("#runs a").first.click()
    page.locator("#items tbody tr").first.wait_for()
    page.wait_for_timeout(800)  # the page scrolls to the items, smoothly: let it finish
    page.evaluate("window.scrollTo(0, 0)")


def show_snapshots(page: Any) -> None:
    """Datasets: the build form takes the first screen; a taller one shows the snapshots too."""
    page.set_viewport_size({"width": DESKTOP["width"], "height": 1300})
    page.locator("#snapshots a").first.wait_for()


def open_first_version(page: Any) -> None:
    """Models: the first version's detail (card, where it serves) beside the lineage."""
    page.locator("#lineage button.node").first.click()
    page.locator("#detail-card").wait_for()
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(800)
    page.evaluate("window.scrollTo(0, 0)")


# Per page, what a person does before the picture is worth taking; pages not listed are shot
# as they load. A step that no longer fits a changed page is skipped with a warning.
STEPS: dict[str, Callable[[Any], None]] = {
    "evals": open_first_run,
    "datasets": show_snapshots,
    "models": open_first_version,
}


def shoot_console(page: Any, out: Path, suffix: str, keys: tuple[str, ...] | None = None) -> None:
    from tandem.web.admin import ADMIN_NAV

    viewport = page.viewport_size
    for key, _label, href in ADMIN_NAV:
        if keys is not None and key not in keys:
            continue
        page.set_viewport_size(viewport)  # a step may have resized it for its page
        page.goto(href)
        settle(page)
        step = STEPS.get(key)
        if step is not None:
            try:
                step(page)
            except Exception as exc:
                print(f"warning: {key}: {step.__name__} failed ({exc}); shot as it loaded")
        shoot(page, out, f"admin-{key}{suffix}")


def take_admin(base_url: str, out: Path, app: Any, engine: Any) -> None:
    """Seed the console (after `take`, which signed up the admin Ada) and shoot every page."""
    from playwright.sync_api import sync_playwright

    seed_in_process(app, engine)
    with sync_playwright() as p:
        browser = launch_chromium(p)
        seed_second_user(browser, base_url)
        context = browser.new_context(base_url=base_url, viewport=DESKTOP, color_scheme="light")
        context.set_default_timeout(60_000)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(f"{page.url}: {exc}"))
        page.goto("/login")
        page.get_by_label("Email").fill("ada@example.com")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_selector("body[data-ready]")
        seed_as_admin(page, engine.model_id)
        shoot_console(page, out, "")

        phone = phone_context(browser, base_url, context)
        mobile = phone.new_page()
        mobile.on("pageerror", lambda exc: errors.append(f"{mobile.url}: {exc}"))
        shoot_console(mobile, out, "-phone", PHONE_PAGES)
        browser.close()
    for error in errors:
        print(f"warning: JavaScript error on {error}")
