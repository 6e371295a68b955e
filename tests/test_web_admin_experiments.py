"""The admin Experiments page: admins only, everything escaped, and in a real browser the whole
path: define an experiment in the form, start it, users vote in its comparisons, and the card
shows the result with its intervals and the recommendation, without a reload.

    .venv/bin/python -m pytest -q tests/test_web_admin_experiments.py            # + browser
    .venv/bin/python -m pytest -q tests/test_web_admin_experiments.py -m browser
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from conftest import log_in_as, new_user


def test_the_page_is_for_admins_and_escapes_what_it_shows(client) -> None:
    admin = new_user(client, "admin@x.io")
    new_user(client, "alice@x.io")
    variants = [
        {"name": "<i>a</i>", "kind": "system_prompt", "prompt_addition": "<script>x</script>"},
        {"name": "b", "kind": "model_version", "model_version": "other-model"},
    ]
    body = {"name": "<b>bold</b>", "comparison_rate": 0.5, "variants": variants}
    exp = client.post("/api/admin/experiments", json=body, headers=admin).json()
    client.post(f"/api/admin/experiments/{exp['id']}/start", headers=admin)

    log_in_as(client, "alice@x.io")
    assert client.get("/admin/experiments").status_code == 403
    log_in_as(client, "admin@x.io")
    page = client.get("/admin/experiments")
    assert page.status_code == 200
    text = page.text
    assert "&lt;b&gt;bold&lt;/b&gt;" in text and "<b>bold</b>" not in text
    assert "&lt;script&gt;x&lt;/script&gt;" in text and "<script>x</script>" not in text
    assert 'data-experiment="' + exp["id"] + '"' in text and "running" in text
    # The model choices are the versions this server serves.
    assert '<option value="other-model">' in text


@pytest.mark.browser
def test_an_admin_defines_starts_and_reads_an_experiment(web) -> None:
    page = web.signed_in("admin@example.com")  # the first account is the admin
    page.goto("/admin/experiments")
    expect(page.locator("#no-experiments")).to_be_visible()
    page.evaluate("window.notReloaded = true")

    form = page.locator("#experiment-form")
    form.get_by_label("Name", exact=True).fill("Brief or other")
    form.get_by_label("Hypothesis").fill("People prefer brief answers")
    form.get_by_label("Comparison rate, %").fill("100")
    first = form.locator(".variant-row").nth(0)
    first.get_by_label("Variant 1: Name").fill("brief")
    first.get_by_label("Variant 1: Text added to the system prompt").fill("Answer briefly.")
    second = form.locator(".variant-row").nth(1)
    second.get_by_label("Variant 2: Name").fill("other")
    second.get_by_label("Variant 2: Kind").select_option("model_version")
    expect(second.get_by_label("Variant 2: Text added to the system prompt")).to_be_hidden()
    second.get_by_label("Variant 2: Model version").select_option("other-model")
    form.get_by_role("button", name="Create draft").click()
    expect(page.locator("#new-experiment .status")).to_contain_text("Created “Brief or other”")
    card = page.locator("section.experiment")
    expect(card).to_have_count(1)
    expect(card.locator('[data-role="status-badge"]')).to_have_text("draft")
    expect(card).to_contain_text("People prefer brief answers")

    card.get_by_role("button", name="Start").click()
    expect(card.locator('[data-role="status-badge"]')).to_have_text("running")

    # A user meets the variants blind and always votes for the brief one.
    user = web.signed_in("bob@example.com")
    conv = web.api(user, "POST", "/api/conversations", {})["id"]
    for i in range(8):
        turn = web.api(user, "POST", f"/api/conversations/{conv}/messages", {"content": f"q{i}"})
        comp = turn["comparison"]
        verdict = "b" if comp["b"]["content"] == f"You said: q{i}" else "a"
        web.api(user, "POST", f"/api/comparisons/{comp['id']}/vote", {"verdict": verdict})

    card.get_by_role("button", name="Stop").click()  # the card comes back with the result
    expect(card.locator('[data-role="status-badge"]')).to_have_text("stopped")
    brief = card.locator('tr[data-variant="brief"]')
    expect(brief.locator('[data-role="win-share"]')).to_have_text("100.0%")
    expect(brief.locator('[data-role="interval"]')).to_contain_text("67.6%–100.0%")
    expect(brief.locator("svg.ci-bar")).to_have_count(1)
    recommendation = card.locator('[data-role="recommendation"]')
    expect(recommendation).to_have_attribute("data-action", "make_default")
    expect(recommendation).to_contain_text("Make it the default: brief")
    assert page.evaluate("window.notReloaded") is True
    result = web.api(page, "GET", "/api/admin/experiments")[0]
    assert result["comparisons"] == 8 and result["status"] == "stopped"

    # On a phone the page fits the screen: tables scroll inside their own box.
    page.set_viewport_size({"width": 390, "height": 800})
    page.reload()
    expect(card.locator('[data-role="recommendation"]')).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
