"""The gap report: offline runs and online signals per model version, disagreement warnings with
their significance, Kendall's tau, the scatter PNG, the admin API/page and `tandem eval report`."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from conftest import new_user
from tandem.cli.main import app as cli
from tandem.core import GenerationRecord, SamplingParams
from tandem.core.settings import Settings
from tandem.evals.report import (
    UnknownMetric,
    _kendall_tau,
    format_gap_report,
    format_markdown,
    gap_report,
    headline,
    render_scatter,
)
from tandem.store import (
    EvalRepo,
    FeedbackRepo,
    GenerationRepo,
    UserRepo,
    make_engine,
    make_session_factory,
    migrate,
)

runner = CliRunner()
PNG = b"\x89PNG\r\n\x1a\n"


def add_run(session, suite: str, version: str, **summary: float) -> str:
    repo = EvalRepo(session)
    run = repo.start_run(suite, version, "fake", {})
    repo.finish_run(run.id, [], {"n": 50, **summary}, wall_seconds=0.1)
    return run.id


def add_thumbs(session, version: str, up: int, total: int) -> None:
    """`total` rated answers from `version`, `up` of them thumbs-up, by one rater."""
    users = UserRepo(session)
    rater = users.get_by_email("rater@x.io") or users.create("rater@x.io", "pw-123456")
    record = GenerationRecord(
        model_version=version,
        engine="fake",
        sampling=SamplingParams(),
        seed=None,
        rendered_prompt=None,
        prompt_tokens=1,
        completion_tokens=1,
        latency_s=0.0,
        time_to_first_token_s=None,
        finish_reason="stop",
    )
    # The repositories commit per call; flushing instead and committing once keeps the real
    # write path while saving ~1 s of SQLite fsyncs per test.
    session.commit = session.flush
    try:
        for i in range(total):
            gen = GenerationRepo(session).add(rater.id, record, output_text="ok")
            FeedbackRepo(session).rate_generation(rater.id, gen.id, "up" if i < up else "down")
    finally:
        del session.commit
    session.commit()


# Far apart at n=24: Wilson intervals [2%, 26%], [31%, 69%], [74%, 98%] do not overlap.
THUMBS = {"A": (2, 24), "B": (12, 24), "C": (22, 24)}


def seed_thumbs(session, thumbs=THUMBS) -> None:
    for version, (up, total) in thumbs.items():
        add_thumbs(session, version, up, total)


def test_opposite_orders_warn_with_significance_and_tau(session):
    add_run(session, "ifeval", "A", average_strict=0.30)  # superseded by the newer run below
    add_run(session, "ifeval", "A", average_strict=0.80)
    add_run(session, "ifeval", "B", average_strict=0.60)
    add_run(session, "ifeval", "C", average_strict=0.40)
    failed = EvalRepo(session).start_run("ifeval", "C", "fake", {})
    EvalRepo(session).fail_run(failed.id, "boom")
    seed_thumbs(session)

    report = gap_report(session, bootstrap=10)
    rows = {r["model_version"]: r for r in report["rows"]}
    assert list(rows) == ["A", "B", "C"]
    assert rows["A"]["offline"]["ifeval"]["value"] == 0.8
    assert rows["C"]["offline"]["ifeval"]["value"] == 0.4  # the failed run is not "latest"
    assert rows["C"]["online"]["thumbs_up"]["up"] == 22
    pairs = {(w["offline_better"], w["online_better"]) for w in report["warnings"]}
    assert pairs == {("A", "B"), ("A", "C"), ("B", "C")}
    assert all(w["significant"] for w in report["warnings"])
    ab = next(
        w for w in report["warnings"] if w["offline_better"] == "A" and w["online_better"] == "B"
    )
    assert "ranks A above B" in ab["message"] and "ranks B above A" in ab["message"]
    assert "significant: the online 95% intervals do not overlap" in ab["message"]
    [comparison] = report["comparisons"]  # arena has no votes, so only ifeval vs thumbs-up
    assert comparison["kendall_tau"] == -1.0 and comparison["significant_disagreements"] == 3

    text = format_gap_report(report)
    assert "Warnings (3)" in text and "Kendall's tau -1.0" in text
    assert "ifeval average_strict" in text.splitlines()[0]
    assert "| A |" in format_markdown(report)


def test_agreeing_orders_give_no_warning(session):
    for version, score in (("A", 0.4), ("B", 0.6), ("C", 0.8)):
        add_run(session, "ifeval", version, average_strict=score)
    seed_thumbs(session)
    report = gap_report(session, bootstrap=0)
    assert report["warnings"] == []
    assert report["comparisons"][0]["kendall_tau"] == 1.0
    assert "none: the rankings agree" in format_gap_report(report)


def test_overlapping_intervals_say_not_significant(session):
    add_run(session, "ifeval", "A", average_strict=0.8)
    add_run(session, "ifeval", "B", average_strict=0.6)
    seed_thumbs(session, {"A": (2, 5), "B": (3, 5)})
    [warning] = gap_report(session, bootstrap=0)["warnings"]
    assert not warning["significant"]
    assert "not significant yet" in warning["message"] and "needs more votes" in warning["message"]
    # Two versions make one pair: too few for a rank correlation.
    assert gap_report(session, bootstrap=0)["comparisons"][0]["kendall_tau"] is None


def test_xstest_lower_refusal_rate_is_better(session):
    # A refuses fewer safe prompts (better) and users like A more: agreement, no warning.
    add_run(session, "xstest", "A", safe_refusal_rate=0.1)
    add_run(session, "xstest", "B", safe_refusal_rate=0.5)
    seed_thumbs(session, {"A": (20, 24), "B": (4, 24)})
    report = gap_report(session, bootstrap=0)
    assert report["warnings"] == []
    assert next(m for m in report["metrics"] if m["id"] == "xstest")["higher_is_better"] is False
    assert "(lower better)" in format_gap_report(report)
    # Now B refuses less, yet users still prefer A: the offline order flips, so they disagree.
    add_run(session, "xstest", "B", safe_refusal_rate=0.05)
    [warning] = gap_report(session, bootstrap=0)["warnings"]
    assert (warning["offline_better"], warning["online_better"]) == ("B", "A")
    assert "lower is better" in warning["message"] and warning["significant"]


def test_headlines_and_kendall_tau():
    assert headline("pairwise:v1-vs-v2").key == "win_rate"
    assert headline("regressions").key == "pass_rate"
    assert headline("some-new-suite").key == "pass_rate"
    assert _kendall_tau([1, 2, 3, 4], [10, 20, 30, 40]) == 1.0
    assert _kendall_tau([1, 2, 3], [3, 2, 1]) == -1.0
    # One discordant pair out of three: (2 - 1) / 3.
    assert _kendall_tau([1, 2, 3], [1, 3, 2]) == pytest.approx(1 / 3, abs=1e-4)
    assert _kendall_tau([1, 1, 1], [1, 2, 3]) is None


def test_scatter_png_and_metric_validation(session):
    for version, score in (("A", 0.8), ("B", 0.6)):
        add_run(session, "ifeval", version, average_strict=score)
        add_run(session, "regressions", version, pass_rate=score)
    seed_thumbs(session, {"A": (2, 5), "B": (3, 5)})
    report = gap_report(session, bootstrap=0)
    assert render_scatter(report).startswith(PNG)
    assert render_scatter(report, "regressions", "arena").startswith(PNG)  # no arena data: empty
    with pytest.raises(UnknownMetric, match="ifeval, regressions"):
        render_scatter(report, "nope", "thumbs_up")
    with pytest.raises(UnknownMetric, match="thumbs_up, arena"):
        render_scatter(report, "ifeval", "likes")
    # A fresh install: no suite, no signal; still a (labelled, empty) plot, not an error.
    assert render_scatter({"metrics": [], "rows": []}).startswith(PNG)


def _seed_app_db(tandem_home, rows) -> None:
    engine = make_engine(f"sqlite:///{tandem_home / 'tandem.db'}")
    with make_session_factory(engine)() as session:
        for version, score in rows:
            add_run(session, "ifeval", version, average_strict=score)
        seed_thumbs(session, {rows[0][0]: (2, 24), rows[1][0]: (22, 24)})
    engine.dispose()


def test_api_and_page_are_admin_only_and_escape_names(client, tandem_home):
    admin = new_user(client, "admin@x.io")
    user = new_user(client, "user@x.io")
    evil = "<b>evil</b>"
    _seed_app_db(tandem_home, [(evil, 0.9), ("plain", 0.5)])

    paths = ("/api/evals/report", "/api/evals/report/scatter.png")
    for path in paths:
        assert client.get(path).status_code == 401
        assert client.get(path, headers=user).status_code == 403
    report = client.get("/api/evals/report?bootstrap=5", headers=admin).json()
    assert [w["offline_better"] for w in report["warnings"]] == [evil]
    png = client.get("/api/evals/report/scatter.png?x=ifeval&y=thumbs_up", headers=admin)
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert png.content.startswith(PNG)
    bad = client.get("/api/evals/report/scatter.png?x=nope", headers=admin)
    assert bad.status_code == 422 and "offline suite" in bad.json()["error"]["message"]
    assert client.get("/api/evals/report/scatter.png?y=likes", headers=admin).status_code == 422
    assert client.get("/api/evals/report?bootstrap=-1", headers=admin).status_code == 422

    r = client.get("/admin/report", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    client.post("/api/auth/login", json={"email": "admin@x.io", "password": "password-123"})
    page = client.get("/admin/report?x=nope")
    assert page.status_code == 200 and 'id="gap-warnings" role="alert"' in page.text
    assert "&lt;b&gt;evil&lt;/b&gt;" in page.text and evil not in page.text
    assert "Significant" in page.text and "unknown offline suite" in page.text
    assert 'src="/api/evals/report/scatter.png?x=ifeval&amp;y=thumbs_up"' in page.text
    assert client.get("/api/evals/report/scatter.png?x=ifeval").status_code == 200  # cookie
    assert 'href="/admin/report"' in client.get("/admin/evals").text
    client.post("/api/auth/logout", headers={"X-CSRF-Token": client.cookies.get("tandem_csrf")})
    client.cookies.clear()
    client.post("/api/auth/login", json={"email": "user@x.io", "password": "password-123"})
    assert client.get("/admin/report").status_code == 403


def test_cli_report_prints_and_writes_three_files(tandem_home, tmp_path):
    engine = make_engine(Settings.from_env().database_url)
    migrate(engine)
    with make_session_factory(engine)() as session:
        for version, score in (("A", 0.8), ("B", 0.6), ("C", 0.4)):
            add_run(session, "ifeval", version, average_strict=score)
        seed_thumbs(session)
    engine.dispose()

    out = tmp_path / "gap"
    result = runner.invoke(cli, ["eval", "report", "--output", str(out), "--bootstrap", "5"])
    assert result.exit_code == 0, result.output
    assert "Warnings (3)" in result.output and "significant" in result.output
    assert json.loads((out / "report.json").read_text())["comparisons"][0]["kendall_tau"] == -1.0
    assert "## Warnings" in (out / "report.md").read_text()
    assert (out / "scatter.png").read_bytes().startswith(PNG)
    as_json = runner.invoke(cli, ["eval", "report", "--json", "--bootstrap", "0"])
    assert as_json.exit_code == 0 and len(json.loads(as_json.output)["warnings"]) == 3
    bad = runner.invoke(cli, ["eval", "report", "--output", str(out), "--x", "nope"])
    assert bad.exit_code == 1 and "offline suite" in bad.output
