"""CLI options generated from a config dataclass: one `--option` per field, with the field's
help text, so a command's options, its config file and the saved config never drift apart.

    params = dataclass_options(TrainConfig, field_help(), defaults=False, panel="Training config")
    command.__signature__ = inspect.Signature(fixed_params + params)
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Mapping
from typing import Annotated, Any, get_type_hints

import typer


def dataclass_options(
    cls: type, helps: Mapping[str, str], *, defaults: bool, panel: str | None = None
) -> list[inspect.Parameter]:
    """Keyword parameters for `cls`'s fields. With `defaults`, each option defaults to the
    field's default; without, to None ("not given"), so a config file's value is overridden only
    by an option the user actually typed."""
    hints = get_type_hints(cls)
    params = []
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        kinds = [t for t in getattr(hint, "__args__", (hint,)) if t is not type(None)]
        optional = type(None) in getattr(hint, "__args__", ())
        flag = "--" + f.name.replace("_", "-")
        decls = [f"{flag}/--no-{flag[2:]}"] if kinds[0] is bool else [flag]
        option = typer.Option(*decls, help=helps.get(f.name, ""), rich_help_panel=panel)
        default: Any = f.default if defaults else None
        nullable = optional or not defaults
        params.append(
            inspect.Parameter(
                f.name,
                inspect.Parameter.KEYWORD_ONLY,
                default=default,
                annotation=Annotated[kinds[0] | None if nullable else kinds[0], option],
            )
        )
    return params
