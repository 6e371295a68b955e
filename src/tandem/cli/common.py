"""What every `tandem` command shares: one way to start (offline, a migrated database, the
embedded model prepared) and one way to fail (an exit code per kind of error, one line on
stderr).

A command raises the domain error it meets (or `CommandError` for its own checks) and does not
catch it to print: `TandemGroup`, the class of each root app (`tandem`, `python -m tandem.train`),
prints `error: MESSAGE` on stderr and exits with the error's code. The codes mirror the API's
statuses (tandem.api.errors); docs/cli.md ("Exit status") documents them, and tests/test_cli.py
holds the two to the same table.

    app = typer.Typer(cls=TandemGroup, help="...")
    with cli_session() as session: ...
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from enum import IntEnum
from typing import TYPE_CHECKING, Any

import typer
from typer.core import TyperGroup

from tandem.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from tandem.core.offline import stay_offline
from tandem.core.settings import Settings
from tandem.engines import ContextLengthExceeded, EngineError, ModelNotFound
from tandem.store.credentials import WeakSecret
from tandem.train.config import ConfigError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from tandem.engines import ModelCatalog
    from tandem.registry.embedded import PreparedModel


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1
    USAGE = 2  # Click exits with 2 for a bad option; a bad value found later is the same mistake
    NOT_FOUND = 3
    CONFLICT = 4
    FORBIDDEN = 5


class CommandError(Exception):
    """Raise from a command to fail with this message and exit code: its own checks, or an
    error from a library whose type says nothing about whose fault it is (a ValueError from a
    file being parsed)."""

    def __init__(self, message: str, code: ExitCode = ExitCode.FAILED) -> None:
        super().__init__(message)
        self.code = code


# Checked in order, so a subclass comes before its base: ContextLengthExceeded is an
# EngineError (the prompt is the caller's, as the API's 400 says).
EXIT_CODES: tuple[tuple[type[Exception], ExitCode], ...] = (
    (NotFound, ExitCode.NOT_FOUND),
    (ModelNotFound, ExitCode.NOT_FOUND),
    (InvalidInput, ExitCode.USAGE),
    (ConfigError, ExitCode.USAGE),
    (WeakSecret, ExitCode.USAGE),
    (ContextLengthExceeded, ExitCode.USAGE),
    (Conflict, ExitCode.CONFLICT),
    (PermissionDenied, ExitCode.FORBIDDEN),
    (EngineError, ExitCode.FAILED),
)


def exit_code_for(exc: BaseException) -> ExitCode | None:
    """The exit code of a domain error; None for anything else, which is a bug and keeps its
    traceback."""
    if isinstance(exc, CommandError):
        return exc.code
    for kind, code in EXIT_CODES:
        if isinstance(exc, kind):
            return code
    return None


def print_error(message: str) -> None:
    """The one way a command reports failing: `error: MESSAGE` on stderr, stdout left clean for
    the JSON a caller may be parsing."""
    typer.echo(f"error: {message}", err=True)


class TandemGroup(TyperGroup):
    """A root command group: offline before any command imports a hub library (the commands
    import lazily, so this runs first), and domain errors ended as `print_error` + exit code."""

    # ctx is typer's vendored click Context, which typer does not export under a public name.
    def invoke(self, ctx: Any) -> Any:
        stay_offline()
        try:
            return super().invoke(ctx)
        except Exception as exc:
            code = exit_code_for(exc)
            if code is None:
                raise
            print_error(str(exc))
            raise typer.Exit(code) from None


@contextmanager
def cli_session(settings: Settings | None = None) -> Iterator[Session]:
    """A session on the configured database, migrated first; the engine is disposed after, so
    a command leaves no connection behind."""
    from tandem.store import make_engine, make_session_factory, migrate

    engine = make_engine((settings or Settings.from_env()).database_url)
    migrate(engine)
    try:
        with make_session_factory(engine)() as session:
            yield session
    finally:
        engine.dispose()


def prepare_models(settings: Settings) -> PreparedModel:
    """What `tandem serve` does on first start: the embedded model converted into the registry
    and registered, and the files tool's embedding model exported."""
    from tandem.registry.embedded import load_prepared, prepare_embedded_model
    from tandem.registry.versions import register_prepared
    from tandem.retrieval.embedding_model import prepare_embedding_model

    if load_prepared(settings.home) is None:
        typer.echo(
            f"Preparing the embedded model into {settings.registry_dir} "
            "(first start only, about a minute)…",
            err=True,
        )
    prepared = prepare_embedded_model(settings.home)
    with cli_session(settings) as session:
        register_prepared(session, prepared)
    # ONNX export in a child process, once, ~10 s: done here so the first upload does not wait.
    prepare_embedding_model(settings.home)
    return prepared


def prepared_catalog(settings: Settings) -> ModelCatalog:
    """The catalog `tandem serve` builds, the embedded model prepared first; engines load on
    first use. Tests swap this out for a catalog of fake engines."""
    from tandem.engines.setup import build_catalog

    prepare_models(settings)
    return build_catalog(settings)
