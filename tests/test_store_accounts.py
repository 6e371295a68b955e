"""Store: migrations, users, sessions, API keys, site settings, model versions."""

from datetime import timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from tandem.core.errors import Conflict, NotFound, PermissionDenied
from tandem.store import (
    ApiKeyRepo,
    ModelVersionRepo,
    SiteSettingsRepo,
    UserRepo,
    WebSessionRepo,
    bootstrap_admin,
    make_engine,
    migrate,
)
from tandem.store.models import Base


def test_migrations_match_the_models_and_are_idempotent(db_url):
    engine = make_engine(db_url)
    migrate(engine)
    migrate(engine)  # a second start is a no-op
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        tables = set(inspect(conn).get_table_names())
    engine.dispose()
    assert diff == []
    assert {"users", "messages", "generation_records", "feedback", "model_versions"} <= tables


def test_sqlite_pragmas(sqlite_url):
    engine = make_engine(sqlite_url)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    engine.dispose()


def test_users_email_is_unique_case_insensitively(session):
    users = UserRepo(session)
    user = users.create("Ada@Example.com", "correct horse", "Ada")
    assert user.email == "ada@example.com" and user.use_for_training and not user.is_admin
    with pytest.raises(Conflict):
        users.create("ADA@example.COM", "other")
    assert users.authenticate("ada@EXAMPLE.com", "correct horse").id == user.id
    assert users.authenticate("ada@example.com", "wrong") is None
    assert users.authenticate("nobody@example.com", "x") is None
    assert user.password_hash.startswith("$argon2")


def test_disabled_users_cannot_log_in_and_only_admins_disable(session):
    users = UserRepo(session)
    admin = users.create("admin@x.io", "pw-admin-1", is_admin=True)
    bob = users.create("bob@x.io", "pw-bob-12")
    with pytest.raises(PermissionDenied):
        users.set_disabled(bob.id, admin.id, True)
    with pytest.raises(Conflict):
        users.set_disabled(admin.id, admin.id, True)
    token = WebSessionRepo(session).create(bob.id)
    _, key = ApiKeyRepo(session).create(bob.id, "laptop")
    users.set_disabled(admin.id, bob.id, True)
    assert users.authenticate("bob@x.io", "pw-bob-12") is None
    assert WebSessionRepo(session).user_for(token) is None
    assert ApiKeyRepo(session).user_for(key) is None
    assert [u.email for u in users.list(admin.id)] == ["admin@x.io", "bob@x.io"]


def test_web_sessions_expire_and_log_out(session):
    user = UserRepo(session).create("s@x.io", "pw-123456")
    sessions = WebSessionRepo(session)
    token = sessions.create(user.id)
    assert sessions.user_for(token).id == user.id
    assert sessions.user_for(token + "x") is None
    sessions.delete(token)
    assert sessions.user_for(token) is None
    expired = sessions.create(user.id, lifetime=timedelta(seconds=-1))
    assert sessions.user_for(expired) is None


def test_api_keys_store_only_a_hash_and_revoke_per_user(session):
    alice = UserRepo(session).create("a@x.io", "pw-123456")
    bob = UserRepo(session).create("b@x.io", "pw-123456")
    keys = ApiKeyRepo(session)
    row, key = keys.create(alice.id, "ci")
    assert key.startswith("tk-") and len(key) == 43
    assert row.prefix == key[:11] and key not in row.key_hash
    assert keys.user_for(key).id == alice.id
    assert keys.user_for("tk-" + "x" * 40) is None
    with pytest.raises(NotFound):
        keys.revoke(bob.id, row.id)  # someone else's key looks missing
    assert keys.user_for(key) is not None
    keys.revoke(alice.id, row.id)
    assert keys.user_for(key) is None
    assert [k.id for k in keys.list(alice.id)] == [row.id] and keys.list(bob.id) == []


def test_bootstrap_admin_is_idempotent(session):
    first = bootstrap_admin(session, "tk-bootstrap-secret")
    second = bootstrap_admin(session, "tk-bootstrap-secret")
    assert first.id == second.id and first.is_admin
    assert ApiKeyRepo(session).user_for("tk-bootstrap-secret").id == first.id
    assert UserRepo(session).count() == 1


def test_site_settings_need_an_admin(session):
    admin = UserRepo(session).create("root@x.io", "pw-123456", is_admin=True)
    user = UserRepo(session).create("u@x.io", "pw-123456")
    settings = SiteSettingsRepo(session)
    assert settings.get("allow_signup", True) is True
    settings.set(admin.id, "allow_signup", False)
    assert settings.get("allow_signup", True) is False
    with pytest.raises(PermissionDenied):
        settings.set(user.id, "allow_signup", True)


def test_model_versions_upsert_get_list_lineage(session):
    repo = ModelVersionRepo(session)
    base = repo.upsert(
        "smollm2-135m-instruct", base_path="/m/base", formats={"hf": "hf"}, status="production"
    )
    child = repo.upsert(
        "smollm2-135m-dpo-1", parent_id=base.id, base_path="/m/dpo1", config={"beta": 0.1}
    )
    assert child.status == "candidate"
    repo.upsert("smollm2-135m-dpo-1", status="production", metrics={"win_rate": 0.6})
    got = repo.get("smollm2-135m-dpo-1")
    assert got.metrics == {"win_rate": 0.6} and got.config == {"beta": 0.1}
    assert [m.id for m in repo.list()] == ["smollm2-135m-instruct", "smollm2-135m-dpo-1"]
    assert [m.id for m in repo.list(status="candidate")] == []
    assert [m.id for m in repo.lineage(child.id)] == [child.id, base.id]
    with pytest.raises(NotFound):
        repo.get("nope")
    with pytest.raises(ValueError):
        repo.upsert("x", status="shipping")
