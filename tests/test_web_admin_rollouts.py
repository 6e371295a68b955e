"""The admin Rollouts page: the forms it renders (only servable versions, only profiles without a
rollout, everything escaped), and in a real browser every rollout action from the page: set
production, add a candidate, change its share and blind flag, check gates, promote (refused,
then passed), roll back, and the history that records it all.

    .venv/bin/python -m pytest -q tests/test_web_admin_rollouts.py            # hermetic + browser
    .venv/bin/python -m pytest -q tests/test_web_admin_rollouts.py -m browser
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import expect

from conftest import new_user
from fake_engine import FakeEngine
from tandem.store import EvalRepo

PASSWORD = "password-123"
PHONE = {"width": 390, "height": 800}


class _Page(HTMLParser):
    """The page's controls, keyed by the section they sit in (`set-production`, `rollout-ID`):
    each select's options as (value, text), each input's and button's attributes."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.section = ""
        self.select: str | None = None
        self.option: dict[str, str | None] | None = None
        self.options: dict[tuple[str, str], list[tuple[str, str]]] = {}
        self.inputs: list[tuple[str, dict[str, str | None]]] = []
        self.buttons: list[tuple[str, dict[str, str | None]]] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "section":
            self.section = a.get("id") or ""
        elif tag == "select":
            self.select = a.get("name") or ""
            self.options[(self.section, self.select)] = []
        elif tag == "option":
            self.option = a | {"text": ""}
        elif tag == "input":
            self.inputs.append((self.section, a))
        elif tag == "button":
            self.buttons.append((self.section, a))

    def handle_data(self, data: str) -> None:
        if self.option is not None:
            self.option["text"] = (self.option["text"] or "") + data

    def handle_endtag(self, tag: str) -> None:
        if tag == "option" and self.option is not None and self.select is not None:
            pair = (self.option.get("value") or "", (self.option["text"] or "").strip())
            self.options[(self.section, self.select)].append(pair)
            self.option = None
        elif tag == "select":
            self.select = None
        elif tag == "section":
            self.section = ""

    def values(self, section: str, select: str) -> list[str]:
        return [value for value, _ in self.options[(section, select)]]

    def input(self, section: str, **match: str) -> dict[str, str | None]:
        found = [a for s, a in self.inputs if s == section and match.items() <= a.items()]
        assert len(found) == 1, (section, match, found)
        return found[0]

    def actions(self, section: str) -> list[tuple[str | None, str | None]]:
        """The (action, version) of each button the page script acts on."""
        return [
            (a.get("data-action"), a.get("data-version"))
            for s, a in self.buttons
            if s == section and a.get("data-action")
        ]


def _admin_page(client: TestClient) -> _Page:
    client.cookies.clear()
    client.post("/api/auth/login", json={"email": "admin@x.io", "password": PASSWORD})
    page = client.get("/admin/rollouts")
    assert page.status_code == 200, page.text
    return _Page(page.text)


def test_the_page_offers_servable_versions_and_profiles_without_a_rollout(client, app):
    admin = new_user(client, "admin@x.io")  # the first account is the admin
    alice = new_user(client, "alice@x.io")
    nasty = "<b>Nasty</b>"
    pirate = client.post("/api/profiles", json={"name": "Pirate"}, headers=alice).json()
    other = client.post("/api/profiles", json={"name": nasty}, headers=alice).json()
    r = client.post(
        "/api/admin/rollouts",
        json={"profile_id": pirate["id"], "version": "fake-model", "reason": nasty},
        headers=admin,
    )
    assert r.status_code == 200, r.text
    rid = r.json()["id"]

    page = _admin_page(client)
    # Set production: the site default (no rollout yet) and the profile without a rollout;
    # Pirate's rollout is changed on its own card. Versions: what the catalog serves.
    assert page.values("set-production", "profile_id") == ["", other["id"]]
    assert page.options[("set-production", "profile_id")][0][1] == "Site default"
    assert page.values("set-production", "version") == ["fake-model", "other-model"]
    # Add candidate: servable versions that are not in the rollout already.
    card = f"rollout-{rid}"
    assert page.values(card, "version") == ["other-model"]
    assert page.actions(card) == []  # no candidate to promote, nothing to roll back to
    text = client.get("/admin/rollouts").text
    assert nasty not in text and html.escape(nasty, quote=False) in text  # name and reason
    assert re.search(r'<script[^>]+src="/static/admin_rollouts\.js\?v=', text)

    # A version registered while the server runs is offered at once.
    app.state.catalog.add(FakeEngine("third-model"))
    r = client.put(
        f"/api/admin/rollouts/{rid}/candidates",
        json={"version": "other-model", "traffic_share": 0.25, "in_comparisons": True},
        headers=admin,
    )
    assert r.status_code == 200, r.text
    page = _admin_page(client)
    assert page.values(card, "version") == ["third-model"]
    assert (
        page.input(card, **{"aria-label": "Traffic share of other-model, percent"})["value"]
        == "25.0"
    )
    assert page.input(card, name="share_range")["value"] == "25.0"
    blind = page.input(card, name="in_comparisons", **{"data-version": "other-model"})
    assert "checked" in blind
    assert ("promote", "other-model") in page.actions(card)
    assert ("check", "other-model") in page.actions(card)
    assert ("remove", "other-model") in page.actions(card)
    assert "rollback" not in [action for action, _ in page.actions(card)]


def test_rollback_is_offered_once_production_was_replaced(client):
    admin = new_user(client, "admin@x.io")
    for version in ("fake-model", "other-model"):
        r = client.post(
            "/api/admin/rollouts", json={"version": version, "reason": "go"}, headers=admin
        )
        assert r.status_code == 200, r.text
    rid = r.json()["id"]
    page = _admin_page(client)
    assert ("rollback", "fake-model") in page.actions(f"rollout-{rid}")
    # The site default has a rollout: setting it again replaces production, and says so.
    assert page.options[("set-production", "profile_id")] == [
        ("", "Site default (replaces production)")
    ]
    assert page.values(f"rollout-{rid}", "version") == ["fake-model"]


# -- in a browser -------------------------------------------------------------------------------


def _seed_passing_evals(session, production: str, candidate: str) -> None:
    """Finished runs of the required suites, the candidate level with production."""
    repo = EvalRepo(session)
    for model in (production, candidate):
        for suite, summary in (
            ("ifeval", {"average_strict": 0.5}),
            ("xstest", {"safe_refusal_rate": 0.1}),
        ):
            run = repo.start_run(suite, model, "fake", {})
            repo.finish_run(run.id, [], summary, 1.0)


@pytest.mark.browser
def test_an_admin_runs_a_rollout_from_the_page(web):
    page = web.signed_in("admin@example.com")  # the first account is the admin
    page.goto("/admin/rollouts")
    expect(page.locator("#no-rollouts")).to_be_visible()
    page.evaluate("window.notReloaded = true")  # every step below happens without a reload

    # Set production for the site default.
    start = page.locator("#set-production-form")
    start.get_by_label("For").select_option(value="")
    start.get_by_label("Version").select_option("fake-model")
    start.get_by_label("Reason").fill("first serve")
    start.get_by_role("button", name="Set production").click()
    expect(page.locator("#set-production .status")).to_contain_text(
        "Site default now serves fake-model"
    )
    card = page.locator("section.rollout")
    expect(card).to_have_count(1)
    status = card.locator("> .status")
    production = card.locator(".production-row")
    expect(production).to_contain_text("fake-model")
    expect(production).to_contain_text("100.0%")

    # Add a candidate with a share and the blind flag, then change its share.
    add = card.locator("form.add-form")
    add.get_by_label("Version").select_option("other-model")
    add.get_by_label("Share, %").fill("10")
    add.get_by_label("In blind comparisons").check()
    add.get_by_label("Reason").fill("A/B 10%")
    add.get_by_role("button", name="Add candidate").click()
    row = card.locator('tr.candidate-row[data-version="other-model"]')
    share = row.get_by_label("Traffic share of other-model, percent")
    expect(share).to_have_value("10.0")
    expect(row.get_by_label("other-model in blind comparisons")).to_be_checked()
    expect(production).to_contain_text("90.0%")
    expect(card.locator("form.add-form")).to_have_count(0)  # nothing else is servable
    share.fill("25")
    row.get_by_role("button", name="Save").click()
    expect(status).to_contain_text("other-model gets 25.0% of the traffic")
    expect(production).to_contain_text("75.0%")
    blind = row.get_by_label("other-model in blind comparisons")
    blind.uncheck()
    expect(status).to_contain_text("other-model is no longer in blind comparisons")
    expect(blind).not_to_be_checked()
    rollout = web.api(page, "GET", "/api/admin/rollouts")[0]
    assert rollout["candidates"] == [
        {"version": "other-model", "traffic_share": 0.25, "in_comparisons": False}
    ]

    # Check gates: the live report, redrawn in place.
    block = card.locator('.gates-block[data-version="other-model"]')
    with page.expect_response(lambda r: r.url.endswith("/check")) as checked:
        block.get_by_role("button", name="Check gates").click()
    assert checked.value.status == 200
    ifeval = block.locator('tr[data-check="offline:ifeval"]')
    expect(ifeval).to_contain_text("fail")
    expect(ifeval).to_contain_text("no run of ifeval")
    expect(status).to_contain_text("Gates checked: other-model fails")
    expect(card.locator('.history tr[data-kind="gate_check"]')).to_have_count(1)

    # Promote: refused, the failed checks shown in the card; nothing changes.
    row.get_by_role("button", name="Promote…").click()
    dialog = page.locator("#reason-dialog")
    expect(dialog).to_contain_text("Promote other-model?")
    dialog.get_by_label("Reason").fill("looks good")
    dialog.get_by_role("button", name="Promote").click()
    expect(dialog).to_be_hidden()
    expect(status).to_contain_text("Promotion of other-model refused")
    expect(status.locator('.failed-checks li[data-check="offline:ifeval"]')).to_contain_text(
        "no run of ifeval"
    )
    expect(production).to_contain_text("fake-model")

    # With the required eval runs in, the same promotion passes.
    with web.app.state.session_factory() as session:
        _seed_passing_evals(session, "fake-model", "other-model")
    row.get_by_role("button", name="Promote…").click()
    dialog.get_by_label("Reason").fill("IFEval flat, XSTest flat")
    dialog.get_by_role("button", name="Promote").click()
    expect(status).to_contain_text("other-model is production now")
    expect(production).to_contain_text("other-model")
    expect(card.locator("tr.candidate-row")).to_have_count(0)

    # Roll back: a reason is required.
    card.get_by_role("button", name="Roll back…").click()
    expect(dialog).to_contain_text("Roll back to fake-model?")
    dialog.get_by_label("Reason").fill("   ")
    dialog.get_by_role("button", name="Roll back").click()
    expect(dialog.locator("#reason-error")).to_contain_text("A reason is required")
    dialog.get_by_label("Reason").fill("users report loops")
    dialog.get_by_role("button", name="Roll back").click()
    expect(status).to_contain_text("Rolled back: fake-model is production again")
    expect(production).to_contain_text("fake-model")

    # The history, newest first: who, what, from → to, why.
    rows = card.locator(".history tbody tr")
    kinds = rows.evaluate_all("rows => rows.map((r) => r.dataset.kind)")
    assert kinds == [
        "rollback",
        "promote",
        "gate_check",  # the refused promotion's report
        "gate_check",  # Check gates
        "update_candidate",  # blind comparisons off
        "update_candidate",  # the share
        "add_candidate",
        "set_production",
    ]
    for text in ("other-model → fake-model", "admin@example.com", "users report loops"):
        expect(rows.first).to_contain_text(text)
    expect(rows.nth(1)).to_contain_text("fake-model → other-model")
    expect(rows.nth(4)).to_contain_text("blind off")
    expect(rows.nth(5)).to_contain_text("share 25.0%")
    expect(rows.nth(6)).to_contain_text("A/B 10%")
    assert page.evaluate("window.notReloaded") is True

    # At phone width the page does not scroll sideways.
    page.set_viewport_size(PHONE)
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"the page scrolls sideways by {overflow}px at phone width"
