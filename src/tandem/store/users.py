"""Accounts and credentials: users, web sessions, API keys, and the site's sign-up switch.

Secrets are never stored: passwords as argon2 hashes, session tokens and API keys as sha256
(both are long random strings, so a fast hash is enough and lets a lookup use an index).
New passwords follow `tandem.store.credentials.password_problem`; old ones still log in.

A web session ends after `session_idle` without use or `session_max_age` after log-in,
whichever comes first; the app puts both (from Settings) in its sessions' `info` under
SESSION_TIMEOUTS, and other callers get the defaults.

`BOOTSTRAP_ADMIN_EMAIL` belongs to the account `bootstrap_admin` makes for
TANDEM_ADMIN_API_KEY: nobody can sign up (or be created) with it, and the bootstrap promotes
only an account it created itself, so a server that ran without the key for a while cannot
have had its admin account squatted.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import CursorResult, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tandem.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from tandem.store.credentials import password_problem
from tandem.store.models import ApiKey, SiteSetting, User, WebSession, utcnow

log = logging.getLogger("tandem.store.users")

API_KEY_PREFIX = "tk-"
BOOTSTRAP_ADMIN_EMAIL = "admin@localhost"
RESERVED_EMAIL_MESSAGE = (
    f"{BOOTSTRAP_ADMIN_EMAIL} is reserved for the admin account the server makes for "
    "TANDEM_ADMIN_API_KEY; use another address"
)
SESSION_LIFETIME = timedelta(days=30)  # the default absolute lifetime
SESSION_TIMEOUTS = "web_session_timeouts"  # the key in Session.info
FIRST_ADMIN_CLAIM = "first_admin"  # the site_settings row the first sign-up claims
# A live session's idle deadline moves forward at most this often: one write a minute, not one
# per request.
_SLIDE_EVERY = timedelta(minutes=1)
_hasher = PasswordHasher()


@dataclass(frozen=True)
class SessionTimeouts:
    idle: timedelta = timedelta(hours=24)
    max_age: timedelta = SESSION_LIFETIME


def sha256_hex(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_api_key() -> str:
    """`tk-` followed by 40 url-safe characters (240 bits)."""
    return API_KEY_PREFIX + secrets.token_urlsafe(30)


def key_prefix(key: str) -> str:
    """What is shown in listings and used to find the row: `tk-` and the next 8 characters."""
    return key[:11]


def is_reserved_email(email: str) -> bool:
    return email.strip().lower() == BOOTSTRAP_ADMIN_EMAIL


class UserRepo:
    def __init__(self, session: Session) -> None:
        self.session = session

    def create(
        self,
        email: str,
        password: str | None,
        display_name: str = "",
        is_admin: bool = False,
    ) -> User:
        if is_reserved_email(email):
            raise Conflict(RESERVED_EMAIL_MESSAGE)
        return self._insert(email, password, display_name, is_admin)

    def create_bootstrap_admin(self, email: str = BOOTSTRAP_ADMIN_EMAIL) -> User:
        """The key-only admin account `bootstrap_admin` (and the eval owner) stands for,
        marked as made by the server, not by a person."""
        return self._insert(email, None, "admin", is_admin=True, created_by_bootstrap=True)

    def _insert(
        self,
        email: str,
        password: str | None,
        display_name: str,
        is_admin: bool,
        created_by_bootstrap: bool = False,
    ) -> User:
        email = email.strip().lower()
        if self.session.scalar(select(User.id).where(User.email == email)) is not None:
            raise Conflict("an account with this email already exists")
        if password is not None and (problem := password_problem(password, [email, display_name])):
            raise InvalidInput(problem)
        user = User(
            email=email,
            password_hash=_hasher.hash(password) if password is not None else None,
            display_name=display_name or email.split("@")[0],
            is_admin=is_admin,
            created_by_bootstrap=created_by_bootstrap,
        )
        self.session.add(user)
        try:
            self.session.commit()
        except IntegrityError:
            # Another sign-up with this email committed between the check and here.
            self.session.rollback()
            raise Conflict("an account with this email already exists") from None
        return user

    def create_first_admin(
        self, email: str, password: str | None, display_name: str = ""
    ) -> User | None:
        """Create the server's first account as its admin, or return None when another
        account claimed that first. Exactly one account ever wins, even when sign-ups race:
        the claim is a `site_settings` row with a fixed primary key, committed in the same
        transaction as the user, so a concurrent second claim fails on the key (PostgreSQL
        makes it wait for the first to commit; SQLite serialises writers) and rolls back."""
        if self.session.get(SiteSetting, FIRST_ADMIN_CLAIM) is not None or self.count() > 0:
            return None
        self.session.add(SiteSetting(key=FIRST_ADMIN_CLAIM, value=email.strip().lower()))
        try:
            self.session.flush()
        except IntegrityError:
            self.session.rollback()
            return None
        try:
            return self.create(email, password, display_name, is_admin=True)  # commits both
        except BaseException:
            self.session.rollback()  # a refused password or email must not keep the claim
            raise

    def get(self, user_id: str) -> User:
        user = self.session.get(User, user_id)
        if user is None:
            raise NotFound("user", user_id)
        return user

    def get_by_email(self, email: str) -> User | None:
        return self.session.scalar(select(User).where(User.email == email.strip().lower()))

    def count(self) -> int:
        return self.session.scalar(select(func.count()).select_from(User)) or 0

    def authenticate(self, email: str, password: str) -> User | None:
        """The user if the password matches and the account is enabled, else None."""
        user = self.get_by_email(email)
        if user is None or user.password_hash is None:
            _hasher.hash(password)  # same cost either way: timing does not reveal accounts
            return None
        try:
            _hasher.verify(user.password_hash, password)
        except (VerificationError, InvalidHashError):
            return None
        if user.is_disabled:
            return None
        return user

    def change_password(self, user_id: str, current: str, new: str) -> User:
        """Set a new password after checking the current one (an API-key-only account, which
        has none, cannot set one here)."""
        user = self.get(user_id)
        try:
            if user.password_hash is None:
                raise VerificationError
            _hasher.verify(user.password_hash, current)
        except (VerificationError, InvalidHashError):
            raise PermissionDenied("the current password is wrong") from None
        if problem := password_problem(new, [user.email, user.display_name]):
            raise InvalidInput(problem)
        user.password_hash = _hasher.hash(new)
        self.session.commit()
        return user

    def update_me(
        self,
        user_id: str,
        display_name: str | None = None,
        use_for_training: bool | None = None,
        memory_enabled: bool | None = None,
    ) -> User:
        user = self.get(user_id)
        if display_name is not None:
            user.display_name = display_name
        if use_for_training is not None:
            user.use_for_training = use_for_training
        if memory_enabled is not None:
            user.memory_enabled = memory_enabled
        self.session.commit()
        return user

    def _require_admin(self, acting_user_id: str) -> None:
        if not self.get(acting_user_id).is_admin:
            raise PermissionDenied("admin only")

    def list(self, acting_user_id: str) -> list[User]:
        self._require_admin(acting_user_id)
        return list(self.session.scalars(select(User).order_by(User.created_at)))

    def set_disabled(self, acting_user_id: str, user_id: str, disabled: bool) -> User:
        self._require_admin(acting_user_id)
        if acting_user_id == user_id and disabled:
            raise Conflict("an admin cannot disable their own account")
        user = self.get(user_id)
        user.is_disabled = disabled
        if disabled:  # signed out at once, and no old cookie comes back on re-enabling
            self.session.execute(delete(WebSession).where(WebSession.user_id == user_id))
        self.session.commit()
        return user

    def set_admin(self, acting_user_id: str, user_id: str, is_admin: bool) -> User:
        self._require_admin(acting_user_id)
        if acting_user_id == user_id and not is_admin:
            # Also what keeps a site from losing its last admin through the console.
            raise Conflict("an admin cannot remove their own admin role")
        user = self.get(user_id)
        user.is_admin = is_admin
        self.session.commit()
        return user

    def set_rater(self, acting_user_id: str, user_id: str, is_rater: bool) -> User:
        """Make or unmake a rater (tandem.store.rater_tasks): their queue opens or closes at
        once; what they already submitted stays."""
        self._require_admin(acting_user_id)
        user = self.get(user_id)
        user.is_rater = is_rater
        self.session.commit()
        return user

    def reset_password(self, acting_user_id: str, user_id: str, new: str) -> User:
        """An admin sets a temporary password for someone else; every web session of that
        user ends (their API keys stay: revoking those is the user's, under /api/keys)."""
        self._require_admin(acting_user_id)
        if acting_user_id == user_id:
            raise Conflict("change your own password in Settings, which asks for the current one")
        user = self.get(user_id)
        if problem := password_problem(new, [user.email, user.display_name]):
            raise InvalidInput(problem)
        user.password_hash = _hasher.hash(new)
        self.session.execute(delete(WebSession).where(WebSession.user_id == user_id))
        self.session.commit()
        return user


class WebSessionRepo:
    def __init__(self, session: Session) -> None:
        self.session = session

    def create(self, user_id: str, lifetime: timedelta | None = None) -> str:
        """Start a session; returns the token for the cookie (only its hash is stored).
        `expires_at` is the idle deadline (`lifetime` overrides it); the absolute one is
        `created_at + max_age`."""
        token = secrets.token_urlsafe(32)
        now, limits = utcnow(), self.timeouts
        if lifetime is None:
            lifetime = min(limits.idle, limits.max_age)
        self.session.add(
            WebSession(
                token_hash=sha256_hex(token),
                user_id=user_id,
                created_at=now,
                expires_at=now + lifetime,
            )
        )
        self.session.commit()
        return token

    @property
    def timeouts(self) -> SessionTimeouts:
        return self.session.info.get(SESSION_TIMEOUTS) or SessionTimeouts()

    def user_for(self, token: str) -> User | None:
        """The enabled user behind a live session token, else None. Using a session pushes
        its idle deadline forward, never past its absolute one."""
        row = self.session.get(WebSession, sha256_hex(token))
        if row is None:
            return None
        now, limits = utcnow(), self.timeouts
        ends = row.created_at + limits.max_age
        if row.expires_at <= now or ends <= now:
            self.session.delete(row)  # expired: gone for good, not just refused
            self.session.commit()
            return None
        user = self.session.get(User, row.user_id)
        if user is None or user.is_disabled:
            return None
        slid = min(now + limits.idle, ends)
        # A deadline further out than today's idle setting allows (the setting was lowered)
        # comes in at once.
        if slid - row.expires_at >= _SLIDE_EVERY or row.expires_at > slid:
            row.expires_at = slid
            self.session.commit()
        return user

    def delete_all(self, user_id: str) -> int:
        """End every web session of the user ("log out everywhere"); returns how many."""
        # A DELETE's result is a CursorResult, which counts the rows it removed.
        result = cast(
            CursorResult[Any],
            self.session.execute(delete(WebSession).where(WebSession.user_id == user_id)),
        )
        self.session.commit()
        return result.rowcount or 0

    def delete(self, token: str) -> None:
        row = self.session.get(WebSession, sha256_hex(token))
        if row is not None:
            self.session.delete(row)
            self.session.commit()


class ApiKeyRepo:
    def __init__(self, session: Session) -> None:
        self.session = session

    def create(self, user_id: str, name: str = "", key: str | None = None) -> tuple[ApiKey, str]:
        """A new key for the user: the row and the full key, which is shown once."""
        key = key or new_api_key()
        row = ApiKey(user_id=user_id, name=name, prefix=key_prefix(key), key_hash=sha256_hex(key))
        self.session.add(row)
        self.session.commit()
        return row, key

    def list(self, user_id: str) -> list[ApiKey]:
        return list(
            self.session.scalars(
                select(ApiKey).where(ApiKey.user_id == user_id).order_by(ApiKey.created_at.desc())
            )
        )

    def revoke(self, user_id: str, key_id: str) -> ApiKey:
        row = self.session.scalar(
            select(ApiKey).where(ApiKey.id == key_id, ApiKey.user_id == user_id)
        )
        if row is None:
            raise NotFound("api key", key_id)
        if row.revoked_at is None:
            row.revoked_at = utcnow()
            self.session.commit()
        return row

    def user_for(self, key: str) -> User | None:
        """The enabled user owning this unrevoked key, else None."""
        digest = sha256_hex(key)
        # The key and its user in one query: every API request runs it (on PostgreSQL each
        # query is a round trip; bench/durability.py).
        found = self.session.execute(
            select(ApiKey.key_hash, ApiKey.revoked_at, User)
            .join(User, User.id == ApiKey.user_id)
            .where(ApiKey.prefix == key_prefix(key))
        )
        for key_hash, revoked_at, user in found:
            if hmac.compare_digest(key_hash, digest):
                if revoked_at is not None:
                    return None
                return None if user.is_disabled else user
        return None


class SiteSettingsRepo:
    """Settings an admin changes at run time; they override the defaults from `Settings`."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, key: str, default: object = None) -> object:
        row = self.session.get(SiteSetting, key)
        return default if row is None else row.value

    def get_float(self, key: str, default: float = 0.0) -> float:
        """A numeric setting; an unset or empty one is `default`."""
        value = self.get(key)
        return float(value) if isinstance(value, int | float | str) and value != "" else default

    def set(self, acting_user_id: str, key: str, value: object) -> None:
        UserRepo(self.session)._require_admin(acting_user_id)
        row = self.session.get(SiteSetting, key)
        if row is None:
            self.session.add(SiteSetting(key=key, value=value))
        else:
            row.value = value
        self.session.commit()


def bootstrap_admin(
    session: Session, api_key: str, email: str = BOOTSTRAP_ADMIN_EMAIL
) -> User | None:
    """Make sure an admin account exists that `api_key` logs into. Idempotent.

    Only an account this function created (`created_by_bootstrap`) is ever promoted or given
    the key. When someone else's account holds the address (signed up before the address was
    reserved), nothing is changed: an error is logged, the key logs nobody in, and None is
    returned, until an operator deletes or renames that account."""
    users, keys = UserRepo(session), ApiKeyRepo(session)
    existing = session.scalar(select(ApiKey).where(ApiKey.key_hash == sha256_hex(api_key)))
    if existing is not None:
        # Already bootstrapped. A key an admin revoked stays revoked across restarts.
        owner = users.get(existing.user_id)
        if not owner.created_by_bootstrap:
            log.error(
                "the TANDEM_ADMIN_API_KEY account %s was not created by the bootstrap: it was "
                "signed up by someone and promoted by an earlier version of tandem; check it, "
                "revoke its keys and delete it",
                owner.email,
            )
        return owner
    user = users.get_by_email(email)
    if user is None:
        user = users.create_bootstrap_admin(email)
    elif not user.created_by_bootstrap:
        log.error(
            "not promoting %s for TANDEM_ADMIN_API_KEY: that account was signed up by someone, "
            "not created by the bootstrap (possibly to squat the admin address); the key logs "
            "nobody in until an operator deletes or renames that account",
            email,
        )
        return None
    if not user.is_admin or user.is_disabled:
        user.is_admin, user.is_disabled = True, False
        session.commit()
    keys.create(user.id, name="bootstrap (TANDEM_ADMIN_API_KEY)", key=api_key)
    return user
