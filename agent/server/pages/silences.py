"""`/silences`: the silences (active, pending, expired), a form to create one, Expire.

The list is what `GET /api/v2/silences` answers; the form and the Expire buttons write
through the same API (`POST /api/v2/silences`, `DELETE /api/v2/silence/{id}`) from
static/silences.js, so the page never has a write path of its own and the server's
write guard applies to it as to amtool. When writes are off the page says why and shows
neither form nor buttons.

`/silences?filter={alertname="X", route="/api/chat"}` prefills the form's matchers: the
"Silence" link of each alert on /alerts passes its labels that way (Alertmanager's own
`#/silences/new?filter=` shape).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agent.server.pages.alerts import parse_filter
from agent.server.pages.render import Page, Query, first, render
from agent.support.goformat import parse_rfc3339

if TYPE_CHECKING:
    from agent.server.handlers import ServerHandlers

OPS = ("=", "!=", "=~", "!~")
DEFAULT_DURATION = "2h"
WRITES_OFF = (
    "Silences cannot be created or expired here: writes are off. Configure "
    "server.basic_auth (or client certificates), or set server.enable_admin_api: true "
    "on a trusted network."
)


@dataclass(frozen=True, slots=True)
class SilenceRow:
    id: str
    state: str
    matchers: list[tuple[str, str, str]]
    """(name, op, value)."""
    created_by: str
    comment: str
    starts_at: float
    ends_at: float
    updated_at: float

    @classmethod
    def of(cls, s: dict[str, Any]) -> SilenceRow:
        """A gettableSilence of the API as the page shows it."""
        return cls(
            id=s["id"],
            state=s["status"]["state"],
            matchers=[(m["name"], _op(m), m["value"]) for m in s["matchers"]],
            created_by=s["createdBy"],
            comment=s["comment"],
            starts_at=parse_rfc3339(s["startsAt"]),
            ends_at=parse_rfc3339(s["endsAt"]),
            updated_at=parse_rfc3339(s["updatedAt"]),
        )


def _op(matcher: dict[str, Any]) -> str:
    if matcher["isRegex"]:
        return "=~" if matcher["isEqual"] else "!~"
    return "=" if matcher["isEqual"] else "!="


def page(handlers: ServerHandlers, query: Query, writes_allowed: bool) -> Page:
    now = time.time()
    rows = [SilenceRow.of(s) for s in handlers.alertmanager_api.get_silences({}, now)]
    counts = {state: sum(1 for r in rows if r.state == state) for state in _STATES}
    text = first(query, "filter")
    try:
        prefill = [(f.name, f.op, f.value) for f in parse_filter(text)]
        error = ""
    except ValueError as exc:
        prefill, error = [], str(exc)
    return render(
        "silences.html",
        "/silences",
        silences=rows,
        counts=counts,
        prefill=prefill,
        filter_error=error,
        ops=OPS,
        default_duration=DEFAULT_DURATION,
        writes_allowed=writes_allowed,
        writes_off=WRITES_OFF,
        created=first(query, "created"),
        now=now,
    )


_STATES = ("active", "pending", "expired")
