"""Who may call each route: one declared rule per (method, path), checked by
tests/security/test_authz_matrix.py against the app's real routes, so a route added without a
rule fails the suite. It ships beside the routes (not in tests/) because it is the access
policy an operator audits: docs/security.md points here.

Rules:
    PUBLIC       no credential (sign-up, log-in, the API docs, static assets)
    ANY_USER     any signed-in user, acting on their own account or their own lists
    OWNER        the path names a resource the caller owns: another user's id answers 404,
                 exactly like a missing id. Admins are no exception: user routes stay per-user,
                 and admins see other users' data only through ADMIN routes.
    ADMIN        admins only; other signed-in users get 403
    PAGE         a web page for a signed-in session cookie; anonymous visitors are redirected
                 to /login (the page's data comes from the API, which applies its own rule)
    ADMIN_PAGE   the same for admins; other users get a 403 page
    RATER        raters only (`is_rater`, set by an admin; an admin is no exception); other
                 signed-in users get 403. A path id names the rater's own assignment: another
                 rater's id answers 404, exactly like a missing id
    RATER_PAGE   a web page for raters; anonymous visitors go to /login, others get a 403 page

    from tandem.api.access import ROUTE_RULES, Rule, app_routes
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from enum import StrEnum

from fastapi import FastAPI
from starlette.routing import BaseRoute, Mount


class Rule(StrEnum):
    PUBLIC = "public"
    ANY_USER = "any user"
    OWNER = "owner"
    ADMIN = "admin"
    PAGE = "page"
    ADMIN_PAGE = "admin page"
    RATER = "rater"
    RATER_PAGE = "rater page"


P, U, OWN, A = Rule.PUBLIC, Rule.ANY_USER, Rule.OWNER, Rule.ADMIN

ROUTE_RULES: dict[tuple[str, str], Rule] = {
    # FastAPI's own documentation routes and the web app's assets
    ("GET", "/openapi.json"): P,
    ("GET", "/docs"): P,
    ("GET", "/redoc"): P,
    ("GET", "/static"): P,
    # OpenAI-compatible
    ("GET", "/v1/models"): U,
    ("GET", "/api/models"): U,
    ("GET", "/api/tools"): U,
    ("POST", "/v1/chat/completions"): U,
    ("POST", "/v1/audio/transcriptions"): U,
    ("POST", "/v1/audio/speech"): U,
    # accounts
    ("POST", "/api/auth/signup"): P,
    ("POST", "/api/auth/login"): P,
    ("POST", "/api/auth/logout"): P,
    ("GET", "/api/auth/csrf"): P,
    ("GET", "/api/auth/me"): U,
    ("PATCH", "/api/auth/me"): U,
    ("POST", "/api/auth/password"): U,
    ("DELETE", "/api/auth/me/data"): U,
    ("POST", "/api/keys"): U,
    ("GET", "/api/keys"): U,
    ("DELETE", "/api/keys/{key_id}"): OWN,
    # conversations, messages, streams
    ("POST", "/api/conversations"): U,
    ("GET", "/api/conversations"): U,
    ("GET", "/api/conversations/{conversation_id}"): OWN,
    ("GET", "/api/conversations/{conversation_id}/branch"): OWN,
    ("PATCH", "/api/conversations/{conversation_id}"): OWN,
    ("DELETE", "/api/conversations/{conversation_id}"): OWN,
    ("POST", "/api/conversations/{conversation_id}/messages"): OWN,
    ("PUT", "/api/conversations/{conversation_id}/current"): OWN,
    ("POST", "/api/messages/{message_id}/regenerate"): OWN,
    ("POST", "/api/messages/{message_id}/continue"): OWN,
    ("POST", "/api/messages/{message_id}/edit"): OWN,
    ("POST", "/api/messages/{message_id}/improve"): OWN,
    ("POST", "/api/messages/{message_id}/remember"): OWN,
    ("POST", "/api/messages/{message_id}/signals"): OWN,
    # feedback
    ("POST", "/api/messages/{message_id}/feedback"): OWN,
    ("GET", "/api/messages/{message_id}/feedback"): OWN,
    ("DELETE", "/api/messages/{message_id}/feedback"): OWN,
    ("POST", "/api/generations/{generation_id}/feedback"): OWN,
    ("DELETE", "/api/generations/{generation_id}/feedback"): OWN,
    ("GET", "/api/feedback"): U,
    ("DELETE", "/api/feedback/{feedback_id}"): OWN,
    # comparisons
    ("POST", "/api/conversations/{conversation_id}/comparisons"): OWN,
    ("GET", "/api/comparisons"): U,
    ("GET", "/api/comparisons/{comparison_id}"): OWN,
    ("POST", "/api/comparisons/{comparison_id}/vote"): OWN,
    # profiles and custom instructions
    ("POST", "/api/profiles"): U,
    ("GET", "/api/profiles"): U,
    ("GET", "/api/profiles/{profile_id}"): OWN,
    ("PATCH", "/api/profiles/{profile_id}"): OWN,
    ("DELETE", "/api/profiles/{profile_id}"): OWN,
    ("GET", "/api/custom-instructions"): U,
    ("PUT", "/api/custom-instructions"): U,
    # memories and improvements
    ("GET", "/api/memories"): U,
    ("POST", "/api/memories"): U,
    ("PATCH", "/api/memories/{memory_id}"): OWN,
    ("DELETE", "/api/memories/{memory_id}"): OWN,
    ("GET", "/api/improvements"): U,
    ("DELETE", "/api/improvements/{improvement_id}"): OWN,
    # uploads and files
    ("POST", "/api/uploads"): U,
    ("GET", "/api/uploads/{upload_id}"): OWN,
    ("POST", "/api/files"): U,
    ("POST", "/api/files/from-url"): U,
    ("GET", "/api/files"): U,
    ("GET", "/api/files/{file_id}"): OWN,
    ("GET", "/api/files/{file_id}/chunks/{ordinal}"): OWN,
    ("GET", "/api/files/{file_id}/content"): OWN,
    ("DELETE", "/api/files/{file_id}"): OWN,
    # administration: users, site settings (engines, model versions), datasets, eval runs,
    # rollouts
    ("GET", "/api/users"): A,
    ("PATCH", "/api/users/{user_id}"): A,
    ("POST", "/api/users/{user_id}/password"): A,
    ("GET", "/api/admin/settings"): A,
    ("PUT", "/api/admin/settings"): A,
    ("POST", "/api/datasets"): A,
    ("GET", "/api/datasets"): A,
    ("GET", "/api/datasets/{snapshot_id}"): A,
    ("GET", "/api/datasets/{snapshot_id}/signals"): A,
    ("GET", "/api/datasets/{snapshot_id}/files/{filename}"): A,
    ("GET", "/api/evals/runs"): A,
    ("GET", "/api/evals/runs/{run_id}"): A,
    ("GET", "/api/evals/compare"): A,
    ("GET", "/api/evals/report"): A,
    ("GET", "/api/evals/report/scatter.png"): A,
    ("GET", "/api/admin/rollouts"): A,
    ("POST", "/api/admin/rollouts"): A,
    ("GET", "/api/admin/rollouts/{rollout_id}"): A,
    ("PATCH", "/api/admin/rollouts/{rollout_id}"): A,
    ("PUT", "/api/admin/rollouts/{rollout_id}/candidates"): A,
    ("POST", "/api/admin/rollouts/{rollout_id}/candidates/remove"): A,
    ("POST", "/api/admin/rollouts/{rollout_id}/check"): A,
    ("POST", "/api/admin/rollouts/{rollout_id}/promote"): A,
    ("POST", "/api/admin/rollouts/{rollout_id}/rollback"): A,
    ("GET", "/api/admin/experiments"): A,
    ("POST", "/api/admin/experiments"): A,
    ("GET", "/api/admin/experiments/{experiment_id}"): A,
    ("POST", "/api/admin/experiments/{experiment_id}/start"): A,
    ("POST", "/api/admin/experiments/{experiment_id}/stop"): A,
    ("GET", "/api/admin/experiments/{experiment_id}/result"): A,
    ("GET", "/api/admin/signals"): A,
    ("GET", "/api/admin/signals/agreement"): A,
    ("POST", "/api/admin/signals/{feedback_id}/regression"): A,
    ("GET", "/api/admin/models"): A,
    ("GET", "/api/admin/models/{version}"): A,
    ("POST", "/api/admin/models/{version}/archive"): A,
    ("POST", "/api/admin/models/{version}/restore"): A,
    ("GET", "/api/admin/jobs"): A,
    ("POST", "/api/admin/jobs/train"): A,
    ("POST", "/api/admin/jobs/eval"): A,
    ("GET", "/api/admin/jobs/{job_id}"): A,
    ("GET", "/api/admin/jobs/{job_id}/log"): A,
    ("POST", "/api/admin/jobs/{job_id}/cancel"): A,
    ("POST", "/api/admin/jobs/{job_id}/resume"): A,
    ("GET", "/api/admin/tasks"): A,
    ("POST", "/api/admin/tasks"): A,
    ("GET", "/api/admin/tasks/{task_id}"): A,
    ("POST", "/api/admin/tasks/{task_id}/items/{item_id}/resolve"): A,
    # raters: their own queue and assignments
    ("GET", "/api/rater/queue"): Rule.RATER,
    ("GET", "/api/rater/assignments/{assignment_id}"): Rule.RATER,
    ("POST", "/api/rater/assignments/{assignment_id}/generate"): Rule.RATER,
    ("POST", "/api/rater/assignments/{assignment_id}/submit"): Rule.RATER,
    # web pages
    ("GET", "/"): Rule.PAGE,
    ("GET", "/c/{conversation_id}"): Rule.PAGE,
    ("GET", "/settings"): Rule.PAGE,
    ("GET", "/profiles"): Rule.PAGE,
    ("GET", "/login"): P,
    ("GET", "/signup"): P,
    ("GET", "/admin"): Rule.ADMIN_PAGE,
    ("GET", "/admin/users"): Rule.ADMIN_PAGE,
    ("GET", "/admin/datasets"): Rule.ADMIN_PAGE,
    ("GET", "/admin/evals"): Rule.ADMIN_PAGE,
    ("GET", "/admin/report"): Rule.ADMIN_PAGE,
    ("GET", "/admin/rollouts"): Rule.ADMIN_PAGE,
    ("GET", "/admin/experiments"): Rule.ADMIN_PAGE,
    ("GET", "/admin/signals"): Rule.ADMIN_PAGE,
    ("GET", "/admin/models"): Rule.ADMIN_PAGE,
    ("GET", "/admin/jobs"): Rule.ADMIN_PAGE,
    ("GET", "/admin/tasks"): Rule.ADMIN_PAGE,
    ("GET", "/rate"): Rule.RATER_PAGE,
}


def _flatten(routes: Iterable[BaseRoute]) -> Iterator[object]:
    """Every route, looking inside included routers (newer FastAPI keeps them nested)."""
    for route in routes:
        candidates = getattr(route, "effective_candidates", None)
        if candidates is not None:
            yield from _flatten(candidates())
        else:
            yield route


def app_routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path) of every route the app serves; HEAD, which Starlette adds to each GET,
    is left out. A mount (the static assets) counts as one GET."""
    out: set[tuple[str, str]] = set()
    for route in _flatten(app.routes):
        path = getattr(route, "path", "")
        if isinstance(route, Mount):
            out.add(("GET", path))
            continue
        for method in getattr(route, "methods", None) or ():
            if method != "HEAD":
                out.add((method, path))
    return sorted(out)
