"""The signal log (admin only): every current thumbs, vote and improved answer, and every
implicit signal (regenerate, stop, copy, edit-and-resend, corrective follow-up), with the
generation record it judges, and one click from a thumbs-down to a regression item.

GET  /api/admin/signals?kind=thumbs&reason=too_long&version=…&profile=…&user=…&since=…&until=…
                        &limit=50&cursor=…       newest first; `next_cursor` fetches the next page
GET  /api/admin/signals/agreement?bootstrap=2000&seed=0   how each implicit kind agrees with
                                                  thumbs and votes (tandem.evals.implicit_agreement)
POST /api/admin/signals/{feedback_id}/regression  201 added to the regression suite, 200 already
                                                  in it (the item is the same either way)

What is listed follows the dataset rules (tandem.store.signals): consenting users only, current
signals only, nothing from a deleted conversation.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status
from pydantic import BaseModel

from tandem.api.deps import AdminUser, SessionDep, SettingsDep
from tandem.api.errors import ApiError
from tandem.api.schemas import Id
from tandem.core.signals import FeedbackReason, RatingValue, SignalKind
from tandem.evals.implicit_agreement import implicit_agreement
from tandem.evals.regressions import add_regression_case, current_suite, item_id, suite_case_ids
from tandem.store.signals import Cursor, SignalLog, SignalQuery, SignalRow

router = APIRouter(prefix="/api/admin/signals", tags=["signals"])

MAX_PAGE = 200


class JudgedGenerationPublic(BaseModel):
    id: str
    model_version: str
    engine: str
    sampling: dict[str, Any]
    seed: int | None
    rendered_prompt: str | None
    input_messages: list[dict[str, Any]]
    output_text: str
    tool_calls: list[Any]
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    created_at: datetime


class SignalPublic(BaseModel):
    kind: SignalKind
    id: str
    at: datetime
    user_id: str
    user_email: str
    conversation_id: str | None
    profile_id: str | None
    profile_name: str | None
    rating: str | None
    reasons: list[str]
    comment: str
    verdict: str | None
    improved_text: str | None
    # An implicit signal's detail: the correcting message and the rule that matched, …
    detail: dict[str, Any] = {}
    # A vote's two answers (a, then b); one generation for the other kinds.
    generations: list[JudgedGenerationPublic]
    # Thumbs-down only: whether the current regression suite holds it already.
    in_regressions: bool | None


class SignalPage(BaseModel):
    signals: list[SignalPublic]
    next_cursor: str | None


class RegressionItem(BaseModel):
    feedback_id: str
    item_id: str
    suite: str
    added: bool
    items: int


def encode_cursor(cursor: Cursor) -> str:
    at, ident = cursor
    return base64.urlsafe_b64encode(f"{at.isoformat()}|{ident}".encode()).decode()


def decode_cursor(text: str) -> Cursor:
    """A cursor this API gave out, or 422: a tampered one never reaches the query."""
    try:
        at_text, ident = base64.urlsafe_b64decode(text.encode()).decode().split("|")
        at = datetime.fromisoformat(at_text)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ApiError(422, "cursor: not a cursor from a previous page", "invalid_value") from None
    if at.tzinfo is None or not 0 < len(ident) <= 64:
        raise ApiError(422, "cursor: not a cursor from a previous page", "invalid_value")
    return at, ident


def _utc(value: datetime | None) -> datetime | None:
    """A time without a zone is UTC, as every time the API returns is."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _public(row: SignalRow, in_suite: set[str]) -> SignalPublic:
    down = row.kind == "thumbs" and row.rating == "down"
    return SignalPublic(
        kind=row.kind,
        id=row.id,
        at=row.at,
        user_id=row.user_id,
        user_email=row.user_email,
        conversation_id=row.conversation_id,
        profile_id=row.profile_id,
        profile_name=row.profile_name,
        rating=row.rating,
        reasons=list(row.reasons),
        comment=row.comment,
        verdict=row.verdict,
        improved_text=row.improved_text,
        detail=dict(row.detail),
        generations=[JudgedGenerationPublic(**vars(g)) for g in row.generations],
        in_regressions=item_id(row.id) in in_suite if down else None,
    )


@router.get("")
def list_signals(
    _: AdminUser,
    session: SessionDep,
    settings: SettingsDep,
    kind: SignalKind | None = None,
    rating: RatingValue | None = None,
    reason: FeedbackReason | None = None,
    version: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    profile: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    user: Annotated[
        str | None, Query(min_length=1, max_length=320, description="a user id or email")
    ] = None,
    since: Annotated[datetime | None, Query(description="signals at or after this time")] = None,
    until: Annotated[datetime | None, Query(description="signals before this time")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    cursor: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
) -> SignalPage:
    since, until = _utc(since), _utc(until)
    if since is not None and until is not None and since >= until:
        raise ApiError(422, "since must be before until", "invalid_value")
    query = SignalQuery(
        kind=kind,
        rating=rating,
        reason=reason,
        model_version=version,
        profile_id=profile,
        user=user,
        since=since,
        until=until,
    )
    page = SignalLog(session).page(
        query, limit=limit, cursor=decode_cursor(cursor) if cursor else None
    )
    suite = current_suite(settings.home)
    in_suite = suite_case_ids(suite) if suite is not None else set()
    return SignalPage(
        signals=[_public(row, in_suite) for row in page.rows],
        next_cursor=encode_cursor(page.next_cursor) if page.next_cursor else None,
    )


@router.get("/agreement")
def implicit_signal_agreement(
    _: AdminUser,
    session: SessionDep,
    bootstrap: Annotated[int, Query(ge=100, le=5000, description="bootstrap resamples")] = 2000,
    seed: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> dict[str, Any]:
    """How each implicit signal agrees with explicit thumbs and votes on the same answers
    (consenting users only): the `tandem eval implicit-agreement --json` report."""
    return implicit_agreement(session, seed=seed, samples=bootstrap).to_dict()


@router.post(
    "/{feedback_id}/regression",
    status_code=status.HTTP_201_CREATED,
    responses={200: {"model": RegressionItem, "description": "already in the suite: unchanged"}},
)
def add_to_regressions(
    feedback_id: Id, _: AdminUser, session: SessionDep, settings: SettingsDep, response: Response
) -> RegressionItem:
    """Add a thumbs-down to the regression suite the `regressions` eval task reads (its newest
    file). 201 when added; 200 when the suite holds it already. 404 for an unknown rating, 422
    for a thumbs-up, 409 for a rating since changed or withdrawn or one whose author opted out."""
    path, added = add_regression_case(session, settings.home, feedback_id)
    if not added:
        response.status_code = status.HTTP_200_OK
    return RegressionItem(
        feedback_id=feedback_id,
        item_id=item_id(feedback_id),
        suite=path.name,
        added=added,
        items=len(suite_case_ids(path)),
    )
