"""`tandem data`: dataset snapshots from signals.

tandem data build sft|preference|kto [--since 2025-01-01] [--model-version V] [--reason R]…
                                     [--per-user-cap N] [--test-fraction 0.1]
                                     [--demonstrations FILE.jsonl]  (sft only)
tandem data list
tandem data show ID|HASH-PREFIX
tandem data export ID --to DIR
tandem data import FILE --kind sft|preference|kto [--name NAME]
"""

from __future__ import annotations

import json
import shutil
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from tandem.cli.common import CommandError, cli_session
from tandem.core.settings import Settings
from tandem.data.build import BuildConfig, BuildResult

data_app = typer.Typer(help="Dataset snapshots built from users' signals (docs/datasets.md).")

_HELP = {f.name: f.metadata.get("help", "") for f in fields(BuildConfig)}


def _when(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not an ISO 8601 date or time") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _report(result: BuildResult, as_json: bool) -> None:
    snap = result.snapshot
    counts = snap.manifest.get("counts", {})
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "id": snap.id,
                    "kind": snap.kind,
                    "hash": snap.hash,
                    "path": str(snap.path),
                    "created": result.created,
                    "counts": counts,
                    "scrubbed": snap.manifest.get("scrubbed", {}),
                },
                indent=2,
            )
        )
        return
    typer.echo(f"{'built' if result.created else 'unchanged (already built)'}: {snap.id}")
    typer.echo(f"  hash  {snap.hash}")
    typer.echo(f"  rows  {counts.get('train', 0)} train, {counts.get('test', 0)} test")
    dropped = counts.get("dropped", {})
    if any(dropped.values()):
        typer.echo("  dropped " + ", ".join(f"{k} {v}" for k, v in dropped.items() if v))
    scrubbed = snap.manifest.get("scrubbed", {})
    if scrubbed:
        typer.echo("  scrubbed " + ", ".join(f"{k} {v}" for k, v in scrubbed.items()))
    typer.echo(f"  path  {snap.path}")


@data_app.command("build")
def build(
    kind: Annotated[str, typer.Argument(help=_HELP["kind"])],
    since: Annotated[str | None, typer.Option(help=_HELP["since"])] = None,
    until: Annotated[str | None, typer.Option(help=_HELP["until"])] = None,
    profile: Annotated[str | None, typer.Option(help=_HELP["profile_id"])] = None,
    model_version: Annotated[str | None, typer.Option(help=_HELP["model_version"])] = None,
    reason: Annotated[
        list[str] | None, typer.Option(help=_HELP["reasons"] + " (repeatable)")
    ] = None,
    per_user_cap: Annotated[int | None, typer.Option(help=_HELP["per_user_cap"])] = None,
    test_fraction: Annotated[float, typer.Option(help=_HELP["test_fraction"])] = 0.1,
    near_duplicate_threshold: Annotated[
        float, typer.Option(help=_HELP["near_duplicate_threshold"])
    ] = 0.9,
    implicit_weight: Annotated[float, typer.Option(help=_HELP["implicit_weight"])] = 0.0,
    demonstrations: Annotated[
        Path | None, typer.Option(help='SFT only: a JSONL file of {"messages": [...]} rows')
    ] = None,
    name: Annotated[str, typer.Option(help=_HELP["name"])] = "",
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Build a snapshot from the signals (opted-out users are never read)."""
    from tandem.data.build import build_snapshot
    from tandem.data.builders import load_demonstrations

    settings = Settings.from_env()
    config = BuildConfig(
        kind=kind,
        since=_when(since),
        until=_when(until),
        profile_id=profile,
        model_version=model_version,
        reasons=tuple(reason or ()),
        per_user_cap=per_user_cap,
        test_fraction=test_fraction,
        near_duplicate_threshold=near_duplicate_threshold,
        implicit_weight=implicit_weight,
        name=name,
    )
    demos: list[Any] = []
    demo_source = None
    if demonstrations is not None:
        demos, digest = load_demonstrations(demonstrations)
        demo_source = f"{demonstrations.name} (sha256:{digest})"
    with cli_session(settings) as session:
        result = build_snapshot(
            session,
            settings.home,
            config,
            demonstrations=demos,
            demonstrations_source=demo_source,
        )
    _report(result, as_json)


@data_app.command("list")
def list_(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Snapshots, newest first."""
    from tandem.store import DatasetRepo

    with cli_session() as session:
        rows = DatasetRepo(session).list_snapshots()
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {
                        "id": r.id,
                        "kind": r.kind,
                        "name": r.name,
                        "hash": r.hash,
                        "source": r.source,
                        "counts": r.counts,
                        "created_at": r.created_at.isoformat(),
                    }
                    for r in rows
                ],
                indent=2,
            )
        )
        return
    if not rows:
        typer.echo("no snapshots yet: tandem data build sft|preference|kto")
    for r in rows:
        c = r.counts or {}
        typer.echo(
            f"{r.id:<24} {r.kind:<10} {c.get('train', 0):>6} train {c.get('test', 0):>5} test  "
            f"{r.created_at:%Y-%m-%d %H:%M}  {r.source}  {r.name}"
        )


@data_app.command("show")
def show(ref: Annotated[str, typer.Argument(help="Snapshot id or hash prefix.")]) -> None:
    """A snapshot's card, and the number of signal ids it read."""
    from tandem.core.errors import NotFound
    from tandem.data.snapshots import resolve_dataset, verify_snapshot
    from tandem.store import DatasetRepo

    settings = Settings.from_env()
    snap = resolve_dataset(settings.home, ref)
    typer.echo(snap.card_file.read_text(encoding="utf-8") if snap.card_file.exists() else "")
    typer.echo(f"path: {snap.path}")
    typer.echo(f"hash verified: {'yes' if verify_snapshot(snap) else 'NO, files were changed'}")
    with cli_session(settings) as session:
        try:
            signals = DatasetRepo(session).snapshot_signals(snap.id)
        except NotFound:
            signals = {}
    if signals:
        typer.echo("signal ids: " + ", ".join(f"{k} {len(v)}" for k, v in signals.items()))


@data_app.command("export")
def export(
    ref: Annotated[str, typer.Argument(help="Snapshot id or hash prefix.")],
    to: Annotated[Path, typer.Option("--to", help="Directory to copy the snapshot into.")],
) -> None:
    """Copy a snapshot's files into DIR/<id>/ (readable by `datasets.load_dataset` as is)."""
    from tandem.data.snapshots import SNAPSHOT_FILES, resolve_dataset

    snap = resolve_dataset(Settings.from_env().home, ref)
    target = to / snap.id
    if target.exists():
        raise CommandError(f"{target} already exists")
    target.mkdir(parents=True)
    for name in SNAPSHOT_FILES:
        if (snap.path / name).exists():
            shutil.copyfile(snap.path / name, target / name)
    typer.echo(str(target))


@data_app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="A JSONL, JSON or Parquet file in TRL's columns.")],
    kind: Annotated[str, typer.Option(help="sft, preference or kto")],
    name: Annotated[str, typer.Option(help="A label (default: the file name).")] = "",
    test_fraction: Annotated[float, typer.Option(help=_HELP["test_fraction"])] = 0.1,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Make external data a snapshot. Benchmark data (../shared/data/benchmarks/) is refused:
    it is evaluation-only."""
    from tandem.data.importing import import_file

    settings = Settings.from_env()
    with cli_session(settings) as session:
        result = import_file(
            session, settings.home, file, kind, name=name, test_fraction=test_fraction
        )
    _report(result, as_json)
