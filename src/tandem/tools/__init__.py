"""tandem.tools: files with citations, a code interpreter, web search, image generation.

See `tandem.tools.base` for the interface, `tandem.tools.workspace` for what a tool may touch
of the user's data (the chat hands it over: tools never open the database) and docs/tools.md for
the user's view.
"""

from tandem.tools.base import (
    Citation,
    Tool,
    ToolContext,
    ToolResult,
    get_tool,
    prompt_block,
    register_tool,
    tool_names,
)

__all__ = [
    "Citation",
    "Tool",
    "ToolContext",
    "ToolResult",
    "get_tool",
    "prompt_block",
    "register_tool",
    "tool_names",
]
