"""Settings, read from the environment (prefix TANDEM_). One frozen dataclass, documented fields.

TANDEM_HOME            data directory: database, model registry, caches
                       (default ~/.local/share/tandem)
TANDEM_DATABASE_URL    SQLAlchemy URL (default sqlite:///$TANDEM_HOME/tandem.db);
                       postgresql+psycopg://user:pass@host/db for PostgreSQL
TANDEM_ADMIN_API_KEY   bootstraps an admin account with this API key (for automation)
TANDEM_DEFAULT_MODEL   model id answered when a request names none
TANDEM_BACKENDS        OpenAI-compatible servers, JSON list of
                       {"name", "base_url", "api_key"?, "models"?, "accepts_images"?,
                        "supports_tools"?}
TANDEM_IMAGE_BACKEND   the image tool's renderer, JSON
                       {"kind": "openai", "base_url", "api_key"?, "model"?, "size"?,
                        "timeout_s"?}; unset: the image tool says it is not configured
TANDEM_ALLOW_SIGNUP    "0" closes open sign-up (the first user can always sign up)
TANDEM_SEARCH          the web tool's search provider, "kind:argument":
                       "searxng:http://host:8888" or "local:/path/to/docs"; unset: no web tool
TANDEM_FETCH_ALLOW_PRIVATE  comma-separated CIDRs and host names that fetching may reach
                       although they are private (an intranet SearXNG); default empty
"""

from __future__ import annotations

import json
import os
import re
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
    # Its models take OpenAI `tools` and answer with `tool_calls` (tandem.chat runs them).
    supports_tools: bool = False


@dataclass(frozen=True)
class ImageBackendConfig:
    """The image tool's renderer (tandem.tools.image_backends), set by admins only: its
    base URL is trusted like a backend's, so no request body may ever choose it."""

    kind: str  # a registered image backend: "openai"
    base_url: str
    # Never in a repr, a log line or an error message.
    api_key: str | None = field(default=None, repr=False)
    model: str | None = None
    size: str = "1024x1024"
    timeout_s: float = 120.0

    @classmethod
    def from_json(cls, text: str) -> ImageBackendConfig:
        try:
            raw = json.loads(text)
        except json.JSONDecodeError:
            # The text may hold the api key: say what is wrong, not what was given.
            raise ValueError("TANDEM_IMAGE_BACKEND is not valid JSON") from None
        if not isinstance(raw, dict) or not raw.get("base_url"):
            raise ValueError('TANDEM_IMAGE_BACKEND needs a JSON object with a "base_url"')
        size = str(raw.get("size") or "1024x1024")
        if not re.fullmatch(r"[1-9][0-9]{1,4}x[1-9][0-9]{1,4}", size):
            raise ValueError('TANDEM_IMAGE_BACKEND "size" must look like "1024x1024"')
        timeout_s = raw.get("timeout_s", 120.0)
        if not isinstance(timeout_s, int | float) or timeout_s <= 0:
            raise ValueError('TANDEM_IMAGE_BACKEND "timeout_s" must be a positive number')
        return cls(
            kind=str(raw.get("kind") or "openai"),
            base_url=str(raw["base_url"]),
            api_key=raw.get("api_key") or None,
            model=raw.get("model") or None,
            size=size,
            timeout_s=float(timeout_s),
        )


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    admin_api_key: str | None = None
    default_model: str = DEFAULT_MODEL_VERSION
    backends: tuple[BackendConfig, ...] = ()
    image_backend: ImageBackendConfig | None = None
    allow_signup: bool = True
    max_body_bytes: int = 1_000_000
    search: str | None = None  # TANDEM_SEARCH (tandem.tools.search_providers)
    fetch_allow_private: tuple[str, ...] = ()  # TANDEM_FETCH_ALLOW_PRIVATE (tandem.net)
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
                supports_tools=bool(b.get("supports_tools", False)),
            )
            for b in json.loads(env.get("TANDEM_BACKENDS") or "[]")
        )
        return cls(
            home=home,
            database_url=db,
            admin_api_key=env.get("TANDEM_ADMIN_API_KEY") or None,
            default_model=env.get("TANDEM_DEFAULT_MODEL") or DEFAULT_MODEL_VERSION,
            backends=backends,
            image_backend=(
                ImageBackendConfig.from_json(env["TANDEM_IMAGE_BACKEND"])
                if env.get("TANDEM_IMAGE_BACKEND")
                else None
            ),
            allow_signup=env.get("TANDEM_ALLOW_SIGNUP", "1") != "0",
            search=env.get("TANDEM_SEARCH") or None,
            fetch_allow_private=tuple(
                item.strip()
                for item in env.get("TANDEM_FETCH_ALLOW_PRIVATE", "").split(",")
                if item.strip()
            ),
        )
