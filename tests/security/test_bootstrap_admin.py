"""The admin account `TANDEM_ADMIN_API_KEY` creates cannot be squatted.

The attack: a server started without the key (as `make run` does) lets anyone sign up as
`admin@localhost`; when the operator later restarts with the key set, the bootstrap used to
promote that existing account, and the attacker's own password then logged in as an admin.
Now the address is reserved at sign-up, and the bootstrap promotes only an account it created
itself (marked `created_by_bootstrap`); any other holder of the address is refused loudly.

    .venv/bin/python -m pytest -q tests/security/test_bootstrap_admin.py
"""

from __future__ import annotations

import dataclasses
import logging

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from tandem.store import bootstrap_admin, make_engine, make_session_factory, migrate
from tandem.store.models import User
from tandem.store.users import BOOTSTRAP_ADMIN_EMAIL, UserRepo
from tandem.web.app import create_app

ADMIN_KEY = "tk-" + "Q7vR2mXw9LpZ4sKt8NbY3cHd6FgJ1aUe5WqTz0Ro"
NEW_ADMIN_KEY = "tk-" + "Lm3Nb8Vc2Xz7Qw4Er9Ty1Ui6Op5As0DfGhJkPz2W"
THIRD_ADMIN_KEY = "tk-" + "Zx8Cv7Bn6Mq5Wr4Et3Yu2Io1Pa9Sd0FgHjKlQw3E"
ATTACKER_PASSWORD = "squatting-the-admin-42"


@pytest.mark.parametrize("email", ["admin@localhost", "ADMIN@LocalHost"])
def test_signing_up_as_the_bootstrap_address_is_refused(client, email):
    r = client.post("/api/auth/signup", json={"email": email, "password": ATTACKER_PASSWORD})
    assert r.status_code == 409, r.text
    assert r.json()["error"]["code"] == "email_reserved"
    assert "reserved" in r.json()["error"]["message"]
    assert "tandem_session" not in client.cookies
    # Not even as the very first account (which would have been the admin).
    r = client.post("/api/auth/login", json={"email": email, "password": ATTACKER_PASSWORD})
    assert r.status_code == 401


def test_the_cli_cannot_create_the_bootstrap_address_either(session):
    from tandem.core.errors import Conflict

    with pytest.raises(Conflict, match="reserved"):
        UserRepo(session).create(BOOTSTRAP_ADMIN_EMAIL, ATTACKER_PASSWORD)


def _squat(settings) -> None:
    """The attacker's account, as a server from before the fix let anyone sign it up: a
    password they know, no admin rights."""
    engine = make_engine(settings.database_url)
    migrate(engine)
    with make_session_factory(engine)() as session:
        session.add(
            User(
                email=BOOTSTRAP_ADMIN_EMAIL,
                password_hash=PasswordHasher().hash(ATTACKER_PASSWORD),
                display_name="admin",
            )
        )
        session.commit()
    engine.dispose()


def test_an_account_the_bootstrap_did_not_create_is_never_promoted(settings, fake_catalog, caplog):
    _squat(settings)
    keyed = dataclasses.replace(settings, admin_api_key=ADMIN_KEY)
    with caplog.at_level(logging.ERROR), TestClient(create_app(keyed, fake_catalog)) as client:
        r = client.post(
            "/api/auth/login",
            json={"email": BOOTSTRAP_ADMIN_EMAIL, "password": ATTACKER_PASSWORD},
        )
        assert r.status_code == 200 and r.json()["is_admin"] is False
        assert client.get("/api/users").status_code == 403
        client.cookies.clear()
        # The key was not attached to the squatter's account either: it logs nobody in.
        r = client.get("/api/users", headers={"Authorization": f"Bearer {ADMIN_KEY}"})
        assert r.status_code == 401
    refusals = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert refusals, "the refusal must be loud"
    assert BOOTSTRAP_ADMIN_EMAIL in refusals[0].getMessage()
    assert "TANDEM_ADMIN_API_KEY" in refusals[0].getMessage()


def test_the_bootstrap_account_is_created_marked_and_keeps_working(settings, fake_catalog):
    keyed = dataclasses.replace(settings, admin_api_key=ADMIN_KEY)
    for key in (ADMIN_KEY, ADMIN_KEY, NEW_ADMIN_KEY):  # a restart, then a rotated key
        keyed = dataclasses.replace(settings, admin_api_key=key)
        with TestClient(create_app(keyed, fake_catalog)) as client:
            r = client.get("/api/users", headers={"Authorization": f"Bearer {key}"})
            assert r.status_code == 200, r.text
            assert [u["email"] for u in r.json()] == [BOOTSTRAP_ADMIN_EMAIL]
    engine = make_engine(settings.database_url)
    with make_session_factory(engine)() as session:
        admin = UserRepo(session).get_by_email(BOOTSTRAP_ADMIN_EMAIL)
        assert admin.created_by_bootstrap and admin.is_admin and admin.password_hash is None
        # Demoted and disabled, then a start with another new key: its own account is restored.
        admin.is_admin, admin.is_disabled = False, True
        session.commit()
        assert bootstrap_admin(session, THIRD_ADMIN_KEY).id == admin.id
        session.refresh(admin)
        assert admin.is_admin and not admin.is_disabled
    engine.dispose()


def test_the_eval_owner_is_the_bootstrap_account_not_a_new_holder_of_the_address(session):
    from tandem.evals.runs import eval_owner_id

    owner = UserRepo(session).get(eval_owner_id(session))
    assert owner.email == BOOTSTRAP_ADMIN_EMAIL and owner.created_by_bootstrap
    assert bootstrap_admin(session, ADMIN_KEY).id == owner.id


def test_an_earlier_bootstrap_account_is_marked_by_the_migration(sqlite_url):
    """A database whose admin@localhost was made by the bootstrap before the mark existed (no
    password: sign-up always sets one) keeps working with a rotated key; a squatted one
    (with a password) is not marked."""
    engine = make_engine(sqlite_url)
    migrate(engine, "0012_context_notices_search")
    users = sa.table(
        "users",
        *(sa.column(c) for c in ("id", "email", "password_hash", "display_name", "is_admin")),
        sa.column("is_disabled"),
        sa.column("use_for_training"),
        sa.column("memory_enabled"),
        sa.column("created_at", sa.DateTime(timezone=True)),
    )
    from tandem.store.models import utcnow

    row = {"is_disabled": False, "use_for_training": True, "memory_enabled": True}
    with engine.begin() as conn:
        conn.execute(
            users.insert(),
            [
                {
                    **row,
                    "id": "a" * 32,
                    "email": BOOTSTRAP_ADMIN_EMAIL,
                    "password_hash": None,
                    "display_name": "admin",
                    "is_admin": True,
                    "created_at": utcnow(),
                },
                {
                    **row,
                    "id": "b" * 32,
                    "email": "ada@example.com",
                    "password_hash": "x",
                    "display_name": "ada",
                    "is_admin": False,
                    "created_at": utcnow(),
                },
            ],
        )
    migrate(engine)
    with make_session_factory(engine)() as session:
        marked = {u.email: u.created_by_bootstrap for u in session.scalars(sa.select(User))}
        assert marked == {BOOTSTRAP_ADMIN_EMAIL: True, "ada@example.com": False}
        assert bootstrap_admin(session, NEW_ADMIN_KEY).id == "a" * 32
    engine.dispose()
