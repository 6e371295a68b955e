"""Settings, read from the environment (prefix TANDEM_). One frozen dataclass, documented fields.

TANDEM_HOME            data directory: database, model registry, caches
                       (default ~/.local/share/tandem)
TANDEM_DATABASE_URL    SQLAlchemy URL (default sqlite:///$TANDEM_HOME/tandem.db);
                       postgresql+psycopg://user:pass@host/db for PostgreSQL
TANDEM_ADMIN_API_KEY   bootstraps an admin account with this API key (for automation)
TANDEM_DEFAULT_MODEL   model id answered when a request names none
TANDEM_BACKENDS        OpenAI-compatible servers, JSON list of
                       {"name", "base_url", "api_key"?, "models"?}
TANDEM_ALLOW_SIGNUP    "0" closes open sign-up (the first user can always sign up)
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_MODEL_VERSION = "smollm2-135m-instruct"


def default_home() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "tandem"


@dataclass(frozen=True)
class BackendConfig:
    """An OpenAI-compatible server (vLLM, Ollama, llama.cpp server, OpenAI) used as an engine."""

    name: str
    base_url: str
    api_key: str | None = None
    models: tuple[str, ...] = ()  # empty: ask the server's /models
    accepts_images: bool = False  # its models take image inputs (OpenAI image_url parts)


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    admin_api_key: str | None = None
    default_model: str = DEFAULT_MODEL_VERSION
    backends: tuple[BackendConfig, ...] = ()
    allow_signup: bool = True
    max_body_bytes: int = 1_000_000
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def registry_dir(self) -> Path:
        return self.home / "models"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        home = Path(env.get("TANDEM_HOME") or default_home()).expanduser()
        db = env.get("TANDEM_DATABASE_URL") or f"sqlite:///{home / 'tandem.db'}"
        backends = tuple(
            BackendConfig(
                name=b["name"],
                base_url=b["base_url"],
                api_key=b.get("api_key"),
                models=tuple(b.get("models") or ()),
                accepts_images=bool(b.get("accepts_images", False)),
            )
            for b in json.loads(env.get("TANDEM_BACKENDS") or "[]")
        )
        return cls(
            home=home,
            database_url=db,
            admin_api_key=env.get("TANDEM_ADMIN_API_KEY") or None,
            default_model=env.get("TANDEM_DEFAULT_MODEL") or DEFAULT_MODEL_VERSION,
            backends=backends,
            allow_signup=env.get("TANDEM_ALLOW_SIGNUP", "1") != "0",
        )
