"""`/rules`: rule groups and their rules: health, last error, last evaluation, duration."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from agent.server.pages.render import Page, Query, render

if TYPE_CHECKING:
    from agent.server.handlers import ServerHandlers


def page(handlers: ServerHandlers, query: Query) -> Page:
    groups = handlers.rule_groups()
    rules = [r for g in groups for r in g.rules]
    failing = sum(1 for r in rules if r.health == "err")
    return render(
        "rules.html", "/rules", groups=groups, total=len(rules), failing=failing, now=time.time()
    )
