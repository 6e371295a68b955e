"""How strong a credential must be: the password rule (OWASP ASVS 5.0 level 2) and the check
that refuses a guessable TANDEM_ADMIN_API_KEY.

    password_problem("password123")               # "this password is one of the most common…"
    password_problem("a long passphrase", ["ada@example.com"])   # None: fine
    weak_secret_reason("changeme")                # "it is shorter than 32 characters"

Passwords: at least 8 characters, up to 200 accepted (argon2 hashes all of them, nothing is
truncated), no composition rules, and refused when they are one of the 30,000 most common
passwords (the list the `zxcvbn` wheel ships, read offline) or just a context word (the site's
name, the email address or its local part) with digits and symbols around it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache

PASSWORD_MIN_CHARS = 8
PASSWORD_MAX_CHARS = 200
SECRET_MIN_CHARS = 32
# Words a person picks because they are in front of them (ASVS 6.2.11).
SITE_WORDS = ("tandem",)
# Values that appear in examples, tutorials and compose files for this kind of setting.
KNOWN_DEFAULT_SECRETS = frozenset(
    {"changeme", "change-me", "change_me", "admin", "secret", "password", "tandem", "test"}
)


@cache
def common_passwords() -> frozenset[str]:
    """The most common passwords that the length rule alone would let through, lower-cased.
    Loaded on first use (~80 ms) from the frequency lists inside the `zxcvbn` wheel (MIT);
    nothing is downloaded."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(p.lower() for p in FREQUENCY_LISTS["passwords"] if len(p) >= 8)


def _context_words(context: Iterable[str]) -> set[str]:
    words = set(SITE_WORDS)
    for item in context:
        item = item.strip().lower()
        if item:
            words.add(item)
            local = item.split("@", 1)[0]
            if len(local) >= 3:
                words.add(local)
    return words


def password_problem(password: str, context: Iterable[str] = ()) -> str | None:
    """Why `password` may not be set, as a sentence for the person choosing it; None if fine.
    `context`: the account's email and names, refused as passwords on their own."""
    if len(password) < PASSWORD_MIN_CHARS:
        return f"the password needs at least {PASSWORD_MIN_CHARS} characters"
    if len(password) > PASSWORD_MAX_CHARS:
        return f"the password may have at most {PASSWORD_MAX_CHARS} characters"
    lowered = password.lower()
    if lowered in common_passwords():
        return "this password is one of the most common passwords; choose another"
    # "Tandem2024!" or "ada@example.com1": a context word dressed up with digits and symbols.
    letters = re.sub(r"[^a-z]", "", lowered)
    words = _context_words(context)
    if lowered in words or letters in words:
        return "the password may not be the site's name or your email address"
    return None


def weak_secret_reason(secret: str) -> str | None:
    """Why `secret` (a bearer credential set in the environment) is too weak to serve with,
    or None. Long random strings pass; examples, words and short values do not."""
    lowered = secret.strip().lower()
    if lowered in KNOWN_DEFAULT_SECRETS or lowered.removeprefix("tk-") in KNOWN_DEFAULT_SECRETS:
        return "it is a well-known default value"
    if len(secret) < SECRET_MIN_CHARS:
        return f"it is shorter than {SECRET_MIN_CHARS} characters"
    if lowered in common_passwords():
        return "it is a common password"
    if len(set(secret)) < 10:
        return "it repeats too few distinct characters"
    return None


class WeakSecret(ValueError):
    """A secret the server refuses to start with outside development mode."""


def check_admin_api_key(key: str | None, development: bool) -> str | None:
    """Refuse (raise WeakSecret) a guessable TANDEM_ADMIN_API_KEY unless in development mode,
    where the reason comes back as a warning to log instead. The key is never in the text."""
    reason = weak_secret_reason(key) if key else None
    if reason is None:
        return None
    message = (
        f"TANDEM_ADMIN_API_KEY is too weak to serve with: {reason}. Use a long random value, "
        "e.g. python -c \"import secrets; print('tk-' + secrets.token_urlsafe(30))\""
    )
    if not development:
        raise WeakSecret(message + " (or set TANDEM_ENV=development on a machine of your own)")
    return message
