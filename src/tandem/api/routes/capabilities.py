"""What this server offers the person using it: the models to pick from and the tools that can
run here. The chat's model picker and tool switches come from these, so the UI never offers a
switch that cannot work (web search without a search provider, images without a backend).

    GET /api/models    [{"id", "accepts_images", "supports_tools", "default"}]
    GET /api/tools     [{"name", "title"}]   only tools that can run on this server
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel

from tandem.api.deps import CatalogDep, CurrentUser, SettingsDep
from tandem.tools.base import get_tool, tool_names

router = APIRouter(prefix="/api", tags=["capabilities"])


class ModelPublic(BaseModel):
    id: str
    accepts_images: bool
    supports_tools: bool
    default: bool


class ToolPublic(BaseModel):
    name: str
    title: str


@router.get("/models", response_model=list[ModelPublic])
def list_models(user: CurrentUser, catalog: CatalogDep):
    """The models a person can chat with. Engine variants of a model (`<id>@transformers`,
    for comparing engines) are listed for admins only."""
    return [
        ModelPublic(
            id=m.id,
            accepts_images=m.accepts_images,
            supports_tools=m.supports_tools,
            default=m.id == catalog.default_model,
        )
        for m in catalog.list()
        if user.is_admin or m.variant_of is None
    ]


@router.get("/tools", response_model=list[ToolPublic])
def list_tools(_: CurrentUser, settings: SettingsDep, request: Request):
    """The tools that can run on this server (a configured search provider, image backend,
    sandbox); the same for everyone, worked out once."""
    cached = getattr(request.app.state, "available_tools", None)
    if cached is None:
        cached = []
        for name in tool_names():
            tool = get_tool(name)
            if tool.available(settings) is None:
                cached.append(ToolPublic(name=name, title=tool.title))
        request.app.state.available_tools = cached
    return cached
