"""The JSON half of the app: OpenAI-compatible `/v1`, the native `/api`, authentication, and
the middleware, state and lifespan every route relies on. The served app adds the web pages on
top of it (the app factory in the web layer calls `create_api`).

    app = create_api(Settings.from_env())          # catalog from tandem.engines.setup

On startup the database is migrated to the latest schema and, when TANDEM_ADMIN_API_KEY is
set, an admin account that this key logs into is created (once).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.middleware.trustedhost import TrustedHostMiddleware

import tandem
from tandem.api.access_log import install_access_log_redaction
from tandem.api.body_limit import BodySizeLimit
from tandem.api.errors import install_error_handlers
from tandem.api.lora_rollouts import load_served_adapters
from tandem.api.rate_limit import RateLimiter
from tandem.api.responses import ERROR_RESPONSES
from tandem.api.routes import (
    audio,
    auth,
    capabilities,
    comparisons,
    conversations,
    datasets,
    evals,
    experiments,
    feedback,
    files,
    improvements,
    jobs,
    keys,
    memories,
    messages,
    models_admin,
    openai,
    privacy,
    profiles,
    rater,
    rater_tasks,
    rollouts,
    signals,
    uploads,
    users,
)
from tandem.api.security_headers import SecurityHeaders
from tandem.chat import ChatService
from tandem.core.images import MAX_UPLOAD_BYTES
from tandem.core.settings import Settings, make_private_dir
from tandem.engines import ModelCatalog
from tandem.engines.lora import LoraAdapters
from tandem.jobs.worker import JobWorker
from tandem.store import bootstrap_admin, make_engine, make_session_factory, migrate
from tandem.store.credentials import check_admin_api_key
from tandem.store.files import MAX_FILE_BYTES
from tandem.store.group_commit import GroupCommit
from tandem.store.users import SESSION_TIMEOUTS, SessionTimeouts
from tandem.voice import MAX_AUDIO_BYTES, VoiceService

log = logging.getLogger("tandem.api")

ROUTERS = (
    openai.router,
    audio.router,
    auth.router,
    keys.router,
    capabilities.router,
    conversations.router,
    messages.router,
    feedback.router,
    comparisons.router,
    profiles.router,
    users.router,
    rater_tasks.router,
    rater.router,
    memories.router,
    improvements.router,
    uploads.router,
    files.router,
    privacy.router,
    datasets.router,
    evals.router,
    jobs.router,
    rollouts.router,
    experiments.router,
    models_admin.router,
    signals.router,
)


def create_api(settings: Settings, catalog: ModelCatalog | None = None) -> FastAPI:
    """Build the JSON app. Without `catalog`, engines come from `tandem.engines.setup`, and the app
    closes them on shutdown; a catalog passed in belongs to the caller."""
    # Before anything else: a guessable admin key outside development mode stops the start.
    if warning := check_admin_api_key(settings.admin_api_key, settings.development):
        log.warning("%s (allowed because TANDEM_ENV=development)", warning)
    install_access_log_redaction()
    owns_catalog = catalog is None
    if catalog is None:
        from tandem.engines.setup import build_catalog  # heavy imports only when serving

        catalog = build_catalog(settings)
    # Every user's data lives under the home: this account only (tandem.core.settings).
    make_private_dir(settings.home)
    db = make_engine(settings.database_url)
    session_factory = make_session_factory(db)
    # Every session the app opens knows the web-session timeouts (tandem.store.users).
    session_factory.configure(
        info={SESSION_TIMEOUTS: SessionTimeouts(settings.session_idle, settings.session_max_age)}
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        migrate(db)
        # Adapters the rollouts serve go (back) into their vLLM servers (tandem.engines.lora).
        load_served_adapters(app.state.lora_adapters, session_factory)
        if settings.admin_api_key:
            with session_factory() as session:
                bootstrap_admin(session, settings.admin_api_key)
        # Documents a stopped server was still ingesting start again from the beginning.
        ingestor.resume_unfinished()
        # Training and eval jobs run beside the server (tandem.jobs.worker); starting, it marks
        # the jobs a stopped server left running as interrupted.
        if settings.job_worker:
            app.state.job_worker.start()
        yield
        if settings.job_worker:
            app.state.job_worker.stop()
        ingestor.shutdown()
        app.state.voice.close()  # tests may have swapped in their own
        signal_writes.close()
        if owns_catalog:
            catalog.close()
        db.dispose()

    app = FastAPI(
        title="tandem",
        version=tandem.__version__,
        description="Chat with a model whose users' signals post-train its next version.",
        lifespan=lifespan,
        # FastAPI's docs pages load Swagger UI from a CDN: the web layer serves its own.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.catalog = catalog
    app.state.lora_adapters = LoraAdapters(settings.backends, settings.home)
    app.state.session_factory = session_factory
    app.state.rate_limiter = RateLimiter()  # tandem.api.rate_limit: per process
    # Ratings and votes: many concurrent ones share one commit (tandem.store.group_commit).
    signal_writes = GroupCommit(session_factory)
    app.state.signal_writes = signal_writes
    # The catalog names the default model (built from settings.default_model by setup).
    app.state.chat = ChatService(
        session_factory, catalog, uploads_root=settings.home / "uploads", settings=settings
    )
    # Files with citations: parsing and embedding run in one background thread.
    from tandem.retrieval.ingest import Ingestor

    ingestor = Ingestor(session_factory, settings.home / "files")
    app.state.ingestor = ingestor
    app.state.job_worker = JobWorker(session_factory, settings)
    # Speech to text and text to speech: models load on first use (tandem.voice).
    app.state.voice = VoiceService(settings)
    install_error_handlers(app)
    # Uploads may be larger (plus the multipart envelope); each route checks its file.
    upload_limit = {
        "/api/uploads": MAX_UPLOAD_BYTES + 64 * 1024,
        "/api/files": MAX_FILE_BYTES + 64 * 1024,
        "/v1/audio/transcriptions": MAX_AUDIO_BYTES + 64 * 1024,
    }
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes, larger=upload_limit)
    if settings.cors_origins:
        # An exact allowlist, never "*"; no credentials mode: another origin's page calls the
        # API with an API key in Authorization, never with this site's session cookie.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_credentials=False,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
            max_age=600,
        )
    if settings.allowed_hosts:
        # Behind a proxy or on a public name: answer only to the names this server has, so a
        # forged Host cannot steer anything built from it. No Host ever changes an auth rule.
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(settings.allowed_hosts))
    app.add_middleware(SecurityHeaders)  # outermost: 413s and CORS answers get them too
    for router in ROUTERS:
        app.include_router(router, responses=ERROR_RESPONSES)  # documented for every route
    return app
