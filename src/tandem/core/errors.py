"""Domain errors every layer raises: the store for rows, the data layer for snapshots, the
services for requests. The API turns them into HTTP statuses (tandem.api.errors) and the CLI
into exit codes (tandem.cli.common); nothing in between translates them."""


class NotFound(LookupError):
    """The row does not exist, or belongs to someone else: the two are indistinguishable on
    purpose, so that probing ids never tells a user whether another user's data exists."""

    def __init__(self, what: str, ident: object = None) -> None:
        super().__init__(what, ident)
        self.what = what
        self.ident = ident

    def __str__(self) -> str:
        return (
            f"{self.what} not found"
            if self.ident is None
            else f"{self.what} {self.ident!r} not found"
        )


class Conflict(ValueError):
    """The write contradicts existing data (a taken email, a comparison already voted on)."""


class PermissionDenied(PermissionError):
    """The acting user may see the row but not do this (a non-admin disabling a user)."""


class InvalidInput(ValueError):
    """A value the schema allows but the data does not (rating an answer no model wrote)."""
