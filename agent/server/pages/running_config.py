"""`/config`: the running config with every secret redacted, and the rule files."""

from __future__ import annotations

from typing import TYPE_CHECKING

from agent.server.pages.render import Page, Query, render

if TYPE_CHECKING:
    from agent.server.handlers import ServerHandlers


def page(handlers: ServerHandlers, query: Query) -> Page:
    return render("config.html", "/config", config=handlers.running_config())
