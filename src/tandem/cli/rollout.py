"""`tandem rollout`: production, candidates, gates, promotion and rollback (docs/rollout.md).

tandem rollout status [--profile ID] [--json]
tandem rollout set-production VERSION --reason "..." [--profile ID]
tandem rollout add-candidate VERSION --share 0.1 [--comparisons] [--reason "..."] [--profile ID]
tandem rollout update-candidate VERSION [--share 0.2] [--comparisons/--no-comparisons]
tandem rollout remove-candidate VERSION [--reason "..."]
tandem rollout check VERSION [--json]
tandem rollout promote VERSION --reason "..." [--force]
tandem rollout rollback --reason "..." [--profile ID]

Without --profile, the site default rollout (chats without a profile). Versions must be in the
registry (`tandem models list`). A change takes effect on the next chat turn of a running
server: nothing to restart. A LoRA adapter served by vLLM (TANDEM_BACKENDS with "lora": true)
is loaded there before it becomes served and unloaded once nothing serves it, as through the
API (docs/howto/vllm.md).
"""

from __future__ import annotations

import getpass
import json
from collections.abc import Callable
from typing import Annotated, TypeVar

import typer
from sqlalchemy.orm import Session

from tandem.cli.common import CommandError, ExitCode, cli_session

T = TypeVar("T")

rollout_app = typer.Typer(help="Roll model versions out: A/B shares, comparisons, gates.")

ProfileOpt = Annotated[
    str | None, typer.Option("--profile", help="Profile id; default: the site default rollout.")
]
ReasonOpt = Annotated[str, typer.Option("--reason", help="Why: recorded in the history.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _serving(session: Session, becoming: list[str], change: Callable[[], T]) -> T:
    """Run a rollout change with vLLM's LoRA adapters kept in step (tandem.api.lora_rollouts)."""
    from tandem.api.lora_rollouts import change_serving
    from tandem.core.settings import Settings
    from tandem.engines.lora import LoraAdapters

    settings = Settings.from_env()
    adapters = LoraAdapters(settings.backends, settings.home)
    return change_serving(adapters, session, becoming, change)


def _registered(session: Session, version: str) -> None:
    from tandem.store import ModelVersionRepo

    ModelVersionRepo(session).get(version)  # NotFound: "model version 'x' not found"


def _rollout(session: Session, profile: str | None):
    from tandem.store import RolloutRepo

    return RolloutRepo(session).get_for_profile(profile)


def _print_report(report) -> None:
    verdict = "PASS" if report.passed else "FAIL"
    typer.echo(f"gates for {report.candidate} against {report.production}: {verdict}")
    for c in report.checks:
        mark = "skip" if c.skipped else ("ok" if c.passed else "FAIL")
        typer.echo(f"  [{mark:>4}] {c.name:<24} {c.why}")


@rollout_app.command("status")
def status(profile: ProfileOpt = None, as_json: JsonOpt = False) -> None:
    """Production, candidates (shares, comparisons), gate verdicts and recent history."""
    from tandem.api.routes.rollouts import rollout_detail

    with cli_session() as session:
        detail = rollout_detail(session, _rollout(session, profile))
    if as_json:
        typer.echo(json.dumps(detail, indent=2, default=str))
        return
    typer.echo(f"production: {detail['production_version']}")
    for c in detail["candidates"]:
        gate = detail["gates"][c["version"]]
        typer.echo(
            f"candidate:  {c['version']}  share {c['traffic_share']:.1%}"
            f"  comparisons {'on' if c['in_comparisons'] else 'off'}"
            f"  gates {'pass' if gate['passed'] else 'FAIL'}"
        )
    typer.echo(f"rollback would restore: {detail['previous_version'] or '-'}")
    for e in detail["events"][:10]:
        who = e["details"].get("actor") or e["actor_id"] or "-"
        typer.echo(
            f"  {e['at']:%Y-%m-%d %H:%M}  {e['kind']:<16} {e['version'] or '':<24}"
            f" {who}  {e['reason']}"
        )


@rollout_app.command("set-production")
def set_production(version: str, reason: ReasonOpt = "", profile: ProfileOpt = None) -> None:
    """Make VERSION production directly (the first time, or to override); no gates."""
    from tandem.store import RolloutRepo

    with cli_session() as session:
        _registered(session, version)
        repo = RolloutRepo(session)
        _serving(
            session,
            [version],
            lambda: repo.set_production(
                profile, version, None, reason, details={"actor": _actor()}
            ),
        )
    typer.echo(f"production: {version}")


@rollout_app.command("add-candidate")
def add_candidate(
    version: str,
    share: Annotated[float, typer.Option(min=0.0, max=1.0, help="Share of users, 0..1.")] = 0.0,
    comparisons: Annotated[
        bool, typer.Option("--comparisons", help="Also in blind comparisons against production.")
    ] = False,
    reason: ReasonOpt = "",
    profile: ProfileOpt = None,
) -> None:
    """Serve VERSION to a sticky share of users and/or pit it against production."""
    from tandem.store import RolloutRepo

    with cli_session() as session:
        _registered(session, version)
        rollout = _rollout(session, profile)
        repo = RolloutRepo(session)
        _serving(
            session,
            [version],
            lambda: repo.add_candidate(rollout.id, version, share, comparisons, None, reason),
        )
    typer.echo(
        f"candidate {version}: share {share:.1%}, comparisons {'on' if comparisons else 'off'}"
    )


@rollout_app.command("update-candidate")
def update_candidate(
    version: str,
    share: Annotated[float | None, typer.Option(min=0.0, max=1.0)] = None,
    comparisons: Annotated[bool | None, typer.Option("--comparisons/--no-comparisons")] = None,
    reason: ReasonOpt = "",
    profile: ProfileOpt = None,
) -> None:
    """Change a candidate's traffic share or comparison flag."""
    from tandem.store import RolloutRepo

    with cli_session() as session:
        rollout = _rollout(session, profile)
        c = RolloutRepo(session).update_candidate(
            rollout.id, version, None, reason, traffic_share=share, in_comparisons=comparisons
        )
    typer.echo(f"candidate {version}: share {c.traffic_share:.1%}, comparisons {c.in_comparisons}")


@rollout_app.command("remove-candidate")
def remove_candidate(version: str, reason: ReasonOpt = "", profile: ProfileOpt = None) -> None:
    """Stop serving a candidate."""
    from tandem.store import RolloutRepo

    with cli_session() as session:
        rollout = _rollout(session, profile)
        repo = RolloutRepo(session)
        _serving(session, [], lambda: repo.remove_candidate(rollout.id, version, None, reason))
    typer.echo(f"removed candidate {version}")


@rollout_app.command("check")
def check(version: str, profile: ProfileOpt = None, as_json: JsonOpt = False) -> None:
    """Run the gates for VERSION against production (recorded in the history). Exit status 1
    when they fail."""
    from tandem.rollout.gates import check_gates
    from tandem.store import RolloutRepo

    with cli_session() as session:
        rollout = _rollout(session, profile)
        report = check_gates(session, rollout, version)
        RolloutRepo(session).record_gate_check(rollout.id, version, report.to_dict(), None)
    if as_json:
        typer.echo(json.dumps(report.to_dict(), indent=2))
    else:
        _print_report(report)
    if not report.passed:
        raise typer.Exit(ExitCode.FAILED)


@rollout_app.command("promote")
def promote(
    version: str,
    reason: ReasonOpt,
    force: Annotated[
        bool, typer.Option("--force", help="Promote despite failing gates (recorded as forced).")
    ] = False,
    profile: ProfileOpt = None,
) -> None:
    """Make candidate VERSION production if the gates pass."""
    from tandem.rollout.promotion import GatesFailed
    from tandem.rollout.promotion import promote as do_promote

    with cli_session() as session:
        rollout = _rollout(session, profile)
        try:
            report, _ = _serving(
                session,
                [version],
                lambda: do_promote(
                    session, rollout, version, None, reason, force=force, actor_name=_actor()
                ),
            )
        except GatesFailed as exc:  # a Conflict, but failing gates are `check`'s exit 1 too
            _print_report(exc.report)
            raise CommandError("promotion refused: the gates failed") from None
    _print_report(report)
    typer.echo(f"production: {version}{' (forced)' if not report.passed else ''}")


@rollout_app.command("rollback")
def rollback(reason: ReasonOpt, profile: ProfileOpt = None) -> None:
    """Production back to the version it replaced, in one command."""
    from tandem.rollout.promotion import rollback as do_rollback
    from tandem.store import RolloutRepo

    with cli_session() as session:
        current = _rollout(session, profile)
        previous = RolloutRepo(session).previous_production(current.id)
        rollout = _serving(
            session,
            [previous] if previous else [],
            lambda: do_rollback(session, current, None, reason, _actor()),
        )
        version = rollout.production_version
    typer.echo(f"production: {version} (rolled back)")
