"""`tandem models`: model versions in the registry.

tandem models list
tandem models show VERSION
tandem models prepare [--fp32]
tandem models import PATH [--name NAME] [--copy|--link] [--build-onnx|--no-build-onnx]
tandem models import ADAPTER_DIR --adapter-of BASE [--name NAME]
tandem models merge VERSION [--onnx]
tandem models lineage [VERSION]
tandem models set-status VERSION candidate|production|retired
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from tandem.cli.common import cli_session, prepare_models
from tandem.core.settings import Settings

models_app = typer.Typer(help="Model versions in the registry.")

NO_VERSIONS = "no model versions yet: `tandem models prepare` or `tandem serve`"


@models_app.command("list")
def models_list() -> None:
    """List model versions with their status and parent."""
    from tandem.store import ModelVersionRepo

    with cli_session() as session:
        rows = ModelVersionRepo(session).list()
        if not rows:
            typer.echo(NO_VERSIONS)
        for row in rows:
            parent = f"  parent={row.parent_id}" if row.parent_id else ""
            typer.echo(f"{row.id}  {row.status}  formats={','.join(row.formats)}{parent}")


@models_app.command("show")
def models_show(model_id: str) -> None:
    """Show one version: status, files, lineage, card."""
    from tandem.store import ModelVersionRepo

    with cli_session() as session:
        repo = ModelVersionRepo(session)
        row = repo.get(model_id)
        lineage = " <- ".join(v.id for v in repo.lineage(model_id))
        typer.echo(f"id:       {row.id}\nstatus:   {row.status}\npath:     {row.base_path}")
        typer.echo(f"formats:  {json.dumps(row.formats)}\nlineage:  {lineage}")
        typer.echo(f"created:  {row.created_at:%Y-%m-%d %H:%M}")
        if row.config:
            typer.echo(f"config:   {json.dumps(row.config)}")
        if row.card:
            typer.echo("\n" + row.card)


@models_app.command("prepare")
def models_prepare(
    fp32: Annotated[
        bool,
        typer.Option(
            "--fp32",
            help="Also build the fp32 ONNX model (~550 MB), served as <id>@onnx-fp32: the "
            "reference's answers for evaluations, at int8's speed over 16 streams.",
        ),
    ] = False,
) -> None:
    """Prepare the embedded model now (serve does this on first start)."""
    prepared = prepare_models(Settings.from_env())
    typer.echo(f"{prepared.version} ready in {prepared.root}")
    if fp32:
        from tandem.registry.embedded import FP32_ONNX_DIR, build_fp32_onnx

        out = build_fp32_onnx(prepared.hf_dir, prepared.root / FP32_ONNX_DIR)
        typer.echo(f"{prepared.version}@onnx-fp32 ready in {out}")


@models_app.command("import")
def models_import(
    path: Annotated[
        Path,
        typer.Argument(
            help="A local Hugging Face causal-LM checkpoint directory: config.json, safetensors "
            "weights, tokenizer files and a chat template."
        ),
    ],
    name: Annotated[
        str | None,
        typer.Option(help="Version name (default: the directory's name, sanitized)."),
    ] = None,
    copy: Annotated[
        bool,
        typer.Option(
            "--copy/--link",
            help="Copy the files into $TANDEM_HOME/models/NAME/hf, or symlink them there (big "
            "checkpoints; the version breaks if they move).",
        ),
    ] = True,
    build_onnx: Annotated[
        bool | None,
        typer.Option(
            "--build-onnx/--no-build-onnx",
            help="Build the default CPU engine's int8 ONNX model (default: only at 2B "
            "parameters or fewer).",
            show_default=False,
        ),
    ] = None,
    adapter_of: Annotated[
        str | None,
        typer.Option(
            help="PATH is a PEFT LoRA adapter trained on this registry version: register it as "
            "an adapter version of it.",
        ),
    ] = None,
) -> None:
    """Register a local checkpoint as a base version (no parent) that training can start from,
    or, with --adapter-of, a LoRA adapter trained elsewhere as a candidate of its base."""
    from tandem.registry.checkpoint_import import import_adapter, import_checkpoint

    settings = Settings.from_env()
    with cli_session(settings) as session:
        if adapter_of is not None:
            row = import_adapter(session, settings.home, path, base=adapter_of, name=name)
            typer.echo(json.dumps({"id": row.id, "adapter_of": adapter_of, "path": row.base_path}))
            return
        row = import_checkpoint(
            session, settings.home, path, name=name, link=not copy, build_onnx=build_onnx
        )
        config = row.config or {}
        shown: dict[str, object] = {"id": row.id, "status": row.status, "path": row.base_path}
        shown["formats"] = row.formats
        shown.update({k: config.get(k) for k in ("architecture", "parameters", "dtype")})
    typer.echo(json.dumps(shown))


@models_app.command("merge")
def models_merge(
    version: Annotated[str, typer.Argument(help="The model version (an adapter version).")],
    onnx: Annotated[
        bool,
        typer.Option(
            "--onnx",
            help="Also build the int8 ONNX model the default engine serves from the merged "
            "weights.",
        ),
    ] = False,
) -> None:
    """Merge a LoRA adapter version into full weights (`hf/`: base + adapter, recursively
    through adapters of adapters), for the transformers engine, an export or a server that
    takes no adapters. A version that has them already is left as it is."""
    from tandem.core.errors import InvalidInput
    from tandem.registry.versions import build_version_onnx, merged_checkpoint

    settings = Settings.from_env()
    with cli_session(settings) as session:
        shown: dict[str, object] = {"id": version}
        try:
            shown["hf"] = str(merged_checkpoint(settings.home, version, session))
            if onnx:
                shown["onnx"] = str(build_version_onnx(settings.home, version, session))
        except FileNotFoundError as e:  # e.g. a version served from another server
            raise InvalidInput(str(e)) from e
    typer.echo(json.dumps(shown))


@models_app.command("lineage")
def lineage(
    version: Annotated[str | None, typer.Argument(help="Show only this version's branch.")] = None,
) -> None:
    """Print the tree of model versions (parent -> children) with status, method, data hash."""
    from tandem.core.errors import NotFound
    from tandem.registry.lineage import render_lineage
    from tandem.store import ModelVersionRepo

    with cli_session() as session:
        rows = ModelVersionRepo(session).list()
        try:
            text = render_lineage(rows, focus=version)
        except LookupError:
            raise NotFound("model version", version) from None
    typer.echo(text or NO_VERSIONS)


@models_app.command("set-status")
def set_status(
    version: Annotated[str, typer.Argument(help="The model version.")],
    status: Annotated[str, typer.Argument(help="candidate, production or retired.")],
) -> None:
    """Set a version's status (candidate / production / retired). Retiring a version that a
    rollout still serves is refused, saying where, as the console's Archive is."""
    from tandem.registry.inventory import ARCHIVED, archive_version
    from tandem.registry.versions import set_status as set_version_status

    settings = Settings.from_env()
    with cli_session(settings) as session:
        if status == ARCHIVED:
            new_status = archive_version(session, version, settings.default_model)
        else:
            new_status = set_version_status(session, version, status).status
        typer.echo(json.dumps({"id": version, "status": new_status}))
