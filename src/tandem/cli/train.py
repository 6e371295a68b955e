"""`tandem train sft|dpo|kto|reward` and the registry commands `tandem models lineage` and
`tandem models set-status`.

The training options are generated from `tandem.train.config.TrainConfig`: one `--option` per
field, with the field's help text, so the CLI, the YAML file and the saved config never drift.

    tandem train dpo --dataset prefs.jsonl --base smollm2-135m-instruct --max-steps 100
    tandem train sft --dataset SNAPSHOT --base smollm2-135m-instruct --config configs/train/sft.yaml
    accelerate launch --config_file configs/accelerate/deepspeed_zero2.yaml \
        -m tandem.train dpo --dataset SNAPSHOT --base smollm2-135m-instruct
    tandem models lineage [VERSION]
    tandem models set-status VERSION production
"""

from __future__ import annotations

import inspect
import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from tandem.cli.options import dataclass_options
from tandem.core.settings import DEFAULT_MODEL_VERSION, Settings
from tandem.train.config import (
    DEFAULT_LEARNING_RATE,
    METHODS,
    TrainConfig,
    field_help,
    field_types,
)

train_app = typer.Typer(
    help="Post-train a model version with TRL (LoRA by default) and register the result.",
    no_args_is_help=True,
)

_SUMMARY = {
    "sft": "Supervised fine-tuning on conversations (`messages`).",
    "dpo": "Direct preference optimisation on pairs (`prompt`/`chosen`/`rejected`).",
    "kto": "KTO on unpaired thumbs (`prompt`/`completion`/`label`).",
    "reward": "A reward model (sequence classifier) on preference pairs; not servable as chat.",
}


def _settings() -> Settings:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    return Settings.from_env()


def _run(method: str, values: dict[str, Any]) -> None:
    from tandem.train.config import ConfigError, resolve_config
    from tandem.train.run import train

    settings = _settings()
    overrides = {k: values.pop(k) for k in list(values) if k in field_types()}
    try:
        config = resolve_config(method, values["config"], overrides)
        result = train(
            method,
            values["dataset"],
            values["base"],
            home=settings.home,
            database_url=settings.database_url,
            config=config,
            output_version=values["output_version"],
            resume=values["resume"],
        )
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if result.root is None:  # a non-main process under accelerate launch
        return
    m = result.metrics
    typer.echo(
        f"registered {result.version} (candidate) in {result.root}\n"
        f"  steps {m['steps']}, final loss {m['final_loss']}, "
        f"{m['samples_per_s']} examples/s, {m['runtime_s']} s\n"
        f"  loss curve: {m['loss_curve']}\n"
        f"  chat with it: tandem chat --model {result.version}"
        if method != "reward"
        else f"registered reward model {result.version} in {result.root}"
    )


def _make_command(method: str) -> Any:
    def command(**values: Any) -> None:
        _run(method, values)

    fixed = [
        inspect.Parameter(
            "dataset",
            inspect.Parameter.KEYWORD_ONLY,
            annotation=Annotated[
                str, typer.Option(help="A dataset snapshot id, or a JSONL file in TRL's columns.")
            ],
        ),
        inspect.Parameter(
            "base",
            inspect.Parameter.KEYWORD_ONLY,
            default=DEFAULT_MODEL_VERSION,
            annotation=Annotated[str, typer.Option(help="The model version to start from.")],
        ),
        inspect.Parameter(
            "config",
            inspect.Parameter.KEYWORD_ONLY,
            default=None,
            annotation=Annotated[
                Path | None,
                typer.Option(help="A YAML file of training options (options given here win)."),
            ],
        ),
        inspect.Parameter(
            "output_version",
            inspect.Parameter.KEYWORD_ONLY,
            default=None,
            annotation=Annotated[
                str | None,
                typer.Option(
                    help="Name of the new version (default: base-method-hash of data+config, "
                    "so re-running the same command resumes the same run)."
                ),
            ],
        ),
        inspect.Parameter(
            "resume",
            inspect.Parameter.KEYWORD_ONLY,
            default=None,
            annotation=Annotated[
                bool | None,
                typer.Option(
                    "--resume/--restart",
                    help="Resume from the run's newest checkpoint / start over. "
                    "Default: resume when a checkpoint exists.",
                ),
            ],
        ),
    ]
    params = fixed + dataclass_options(
        TrainConfig, field_help(), defaults=False, panel="Training config"
    )
    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params} | {"return": None}
    lr = DEFAULT_LEARNING_RATE[method]
    command.__doc__ = f"{_SUMMARY[method]} Default learning rate {lr:g} (LoRA)."
    command.__name__ = method
    return command


for _method in METHODS:
    train_app.command(_method)(_make_command(_method))


# -- registry commands (attached to `tandem models` by tandem.cli.main) ---------------------


def lineage(
    version: Annotated[str | None, typer.Argument(help="Show only this version's branch.")] = None,
) -> None:
    """Print the tree of model versions (parent -> children) with status, method, data hash."""
    from tandem.cli.main import _session
    from tandem.registry.lineage import render_lineage
    from tandem.store import ModelVersionRepo

    with _session(_settings()) as session:
        rows = ModelVersionRepo(session).list()
        try:
            text = render_lineage(rows, focus=version)
        except LookupError:
            typer.echo(f"no model version {version!r}", err=True)
            raise typer.Exit(1) from None
    typer.echo(text or "no model versions yet: `tandem models prepare` or `tandem serve`")


def set_status(
    version: Annotated[str, typer.Argument(help="The model version.")],
    status: Annotated[str, typer.Argument(help="candidate, production or retired.")],
) -> None:
    """Set a version's status (candidate / production / retired)."""
    from tandem.cli.main import _session
    from tandem.registry.versions import set_status as set_version_status
    from tandem.store import InvalidInput, NotFound

    with _session(_settings()) as session:
        try:
            row = set_version_status(session, version, status)
        except NotFound:
            typer.echo(f"no model version {version!r}", err=True)
            raise typer.Exit(1) from None
        except InvalidInput as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
        typer.echo(json.dumps({"id": row.id, "status": row.status}))


def add_models_commands(models_app: typer.Typer) -> None:
    models_app.command("lineage")(lineage)
    models_app.command("set-status")(set_status)
