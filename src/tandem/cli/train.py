"""`tandem train sft|dpo|kto|reward`: post-train a model version and register the result.

The training options are generated from `tandem.train.config.TrainConfig`: one `--option` per
field, with the field's help text, so the CLI, the YAML file and the saved config never drift.

    tandem train dpo --dataset prefs.jsonl --base smollm2-135m-instruct --max-steps 100
    tandem train sft --dataset SNAPSHOT --base smollm2-135m-instruct --config configs/train/sft.yaml
    accelerate launch --config_file configs/accelerate/deepspeed_zero2.yaml \
        -m tandem.train dpo --dataset SNAPSHOT --base smollm2-135m-instruct
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Annotated, Any

import typer

from tandem.cli.common import TandemGroup
from tandem.cli.options import dataclass_options
from tandem.core.settings import DEFAULT_MODEL_VERSION, Settings
from tandem.core.signals import TRAIN_METHODS
from tandem.train.config import (
    DEFAULT_LEARNING_RATE,
    TrainConfig,
    field_help,
    field_types,
)

# Its own root group too: `python -m tandem.train` (tandem.train.__main__) runs it without `tandem`.
train_app = typer.Typer(
    cls=TandemGroup,
    help="Post-train a model version with TRL (LoRA by default) and register the result.",
    no_args_is_help=True,
)

_SUMMARY = {
    "sft": "Supervised fine-tuning on conversations (`messages`).",
    "dpo": "Direct preference optimisation on pairs (`prompt`/`chosen`/`rejected`).",
    "kto": "KTO on unpaired thumbs (`prompt`/`completion`/`label`).",
    "reward": "A reward model (sequence classifier) on preference pairs; not servable as chat.",
}


def _run(method: str, values: dict[str, Any]) -> None:
    from tandem.train.config import resolve_config
    from tandem.train.run import train

    settings = Settings.from_env()
    overrides = {k: values.pop(k) for k in list(values) if k in field_types()}
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
    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]  # Typer reads __signature__; functions do not declare it
    command.__annotations__ = {p.name: p.annotation for p in params} | {"return": None}
    lr = DEFAULT_LEARNING_RATE[method]
    command.__doc__ = f"{_SUMMARY[method]} Default learning rate {lr:g} (LoRA)."
    command.__name__ = method
    return command


for _method in TRAIN_METHODS:
    train_app.command(_method)(_make_command(_method))
