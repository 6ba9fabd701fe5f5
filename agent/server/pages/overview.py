"""`/`: is the agent healthy, what does each source read, how many alerts fire."""

from __future__ import annotations

from typing import TYPE_CHECKING

from agent.server.pages.render import Page, Query, render

if TYPE_CHECKING:
    from agent.server.handlers import ServerHandlers


def page(handlers: ServerHandlers, query: Query) -> Page:
    status = handlers.status()
    return render("overview.html", "/", status=status, counts=status.alerts)
