"""The app factory: the JSON API (`tandem.api`) with the web app on top of it.

    from tandem.web.app import create_app
    app = create_app(Settings.from_env())          # catalog from tandem.engines.setup
    uvicorn.run(app, host="127.0.0.1", port=8000)  # or: tandem serve

The API's routes, middleware and lifespan come from `tandem.api.app.create_api`; this adds the
chat pages, the admin console, the API docs and the static files. `tandem serve` and the tests
build their app here.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from tandem.api.app import create_api
from tandem.core.settings import Settings
from tandem.engines import ModelCatalog
from tandem.web import (
    admin,
    admin_experiments,
    admin_jobs,
    admin_models,
    admin_signals,
    api_docs,
    pages,
    raters,
)
from tandem.web.page_access import install_page_access
from tandem.web.templating import STATIC_DIR


def create_app(settings: Settings, catalog: ModelCatalog | None = None) -> FastAPI:
    """Build the whole app. Without `catalog`, engines come from `tandem.engines.setup`, and
    the app closes them on shutdown; a catalog passed in belongs to the caller."""
    app = create_api(settings, catalog)
    install_page_access(app)  # pages answer a missing session with /login, not JSON
    for router in (
        pages.router,
        admin.router,
        admin_experiments.router,
        admin_jobs.router,
        admin_models.router,
        admin_signals.router,
        raters.router,
        api_docs.router,
    ):
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
