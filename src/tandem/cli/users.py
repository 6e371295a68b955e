"""`tandem users`: accounts and API keys.

tandem users create EMAIL [--admin] [--password P]
tandem users api-key EMAIL [--name LABEL]
"""

from __future__ import annotations

import getpass
from typing import Annotated

import typer

from tandem.cli.common import cli_session

users_app = typer.Typer(help="Accounts and API keys.")


@users_app.command("create")
def users_create(
    email: str,
    password: Annotated[
        str | None, typer.Option(help="Omit to be asked; '-' for an API-key-only account.")
    ] = None,
    admin: Annotated[bool, typer.Option(help="Make the account an administrator.")] = False,
) -> None:
    """Create an account."""
    from tandem.store import UserRepo

    if password is None:
        password = getpass.getpass("password: ")
    with cli_session() as session:
        user = UserRepo(session).create(
            email, None if password == "-" else password, is_admin=admin
        )
        typer.echo(f"created {user.email}{' (admin)' if user.is_admin else ''}")


@users_app.command("api-key")
def users_api_key(
    email: str, name: Annotated[str, typer.Option(help="A label for the key.")] = "cli"
) -> None:
    """Create an API key for an account and print it (shown once; only its hash is stored).
    The one place tandem prints a secret, by design: it goes to stdout for the caller to keep,
    never to a log."""
    from tandem.core.errors import NotFound
    from tandem.store import ApiKeyRepo, UserRepo

    with cli_session() as session:
        user = UserRepo(session).get_by_email(email)
        if user is None:
            raise NotFound("account", email)
        _, key = ApiKeyRepo(session).create(user.id, name=name)
        typer.echo(key)
