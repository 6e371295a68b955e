"""Access log lines without query values: a query string may carry a secret someone put in a
URL (`?api_key=…`, `?token=…`) or private text (`?q=…`), and log files are read by more people
and kept longer than the database. Paths carry only ids.

    install_access_log_redaction()    # idempotent; create_api calls it
"""

from __future__ import annotations

import logging

# uvicorn's access logger formats '%s - "%s %s HTTP/%s" %d' with the full path third.
ACCESS_LOGGER = "uvicorn.access"


def redact_query(path: str) -> str:
    """`/x?key=tk-abc&limit=5` -> `/x?key=[redacted]&limit=[redacted]`: names stay for
    debugging, values go."""
    base, sep, query = path.partition("?")
    if not query:
        return path
    parts = []
    for part in query.split("&"):
        name, eq, _ = part.partition("=")
        # A bare `?tk-…` is all value.
        parts.append(f"{name}=[redacted]" if eq else "[redacted]" if part else "")
    return base + sep + "&".join(parts)


class RedactQueryValues(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], redact_query(args[2]), *args[3:])
        return True


def install_access_log_redaction() -> None:
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, RedactQueryValues) for f in logger.filters):
        logger.addFilter(RedactQueryValues())
