"""Rendering shared by every page: the template environment, formatting, the response.

Templates are Jinja2 with autoescaping on for every template: label values and
annotations come from logs, so they are attacker-controlled, and nothing reaches the
HTML without being escaped. No page has inline script or style; the Content-Security-
Policy says so to the browser, so even a missed escape could not run a script.
"""

from __future__ import annotations

import datetime
import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
from markupsafe import Markup

from agent import __version__
from agent.support.duration import format_duration

if TYPE_CHECKING:
    import jinja2

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
"""Only our own static files run or style; no inline script, no framing, forms post home."""

_SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]

Query = Mapping[str, list[str]]
"""The query string's parameters, every value of each (`urllib.parse.parse_qs`)."""


def first(query: Query, name: str, default: str = "") -> str:
    values = query.get(name)
    return values[0] if values else default


@dataclass(slots=True)
class Page:
    """A rendered page (or a static file) and its status."""

    body: bytes
    status: int = 200
    content_type: str = "text/html; charset=utf-8"
    cache_control: str = "no-store"
    """Pages show the agent's state now; static files may be kept a while."""

    def headers(self) -> list[tuple[bytes, bytes]]:
        return [
            (b"content-type", self.content_type.encode()),
            (b"cache-control", self.cache_control.encode()),
            *_SECURITY_HEADERS,
        ]


NAV = (
    ("/", "Overview"),
    ("/alerts", "Alerts"),
    ("/rules", "Rules"),
    ("/graph", "Graph"),
    ("/silences", "Silences"),
    ("/config", "Config"),
)
"""The navigation bar, in order."""


def render(template: str, active: str, **context: Any) -> Page:
    """`template` with the page frame (navigation with `active` marked)."""
    page = _environment().get_template(template)
    html = page.render(nav=NAV, active=active, version=__version__, **context)
    return Page(html.encode())


def error_page(status: int, message: str) -> Page:
    page = render("error.html", "", title=f"{status}", message=message)
    page.status = status
    return page


# -- formatting for templates ---------------------------------------------------------------


def when(ts: float | None) -> str:
    """`2024-05-01 12:00:03 UTC`; `never` for None."""
    if ts is None or not math.isfinite(ts) or ts <= 0:
        return "never"
    t = datetime.datetime.fromtimestamp(ts, datetime.UTC)
    return t.strftime("%Y-%m-%d %H:%M:%S UTC")


def ago(ts: float | None, now: float) -> str:
    """`3m12s ago`, `in 5s`, `never`."""
    if ts is None or not math.isfinite(ts) or ts <= 0:
        return "never"
    delta = now - ts
    if abs(delta) < 1:
        return "just now"
    text = human_duration(abs(delta))
    return f"{text} ago" if delta > 0 else f"in {text}"


def human_duration(seconds: float) -> str:
    """Whole seconds, Prometheus-style (`1h2m3s`); milliseconds under ten seconds."""
    if seconds < 0.001:
        return f"{seconds * 1e6:.0f}µs" if seconds > 0 else "0s"
    if seconds < 1:
        return f"{seconds * 1000:.3g}ms"
    if seconds < 10:
        return f"{seconds:.3g}s"
    return format_duration(round(seconds))


def human_value(value: float | str) -> str:
    """A sample value for people: at most 6 significant digits (`0.0734`, `1.25e+06`)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if v == int(v) and abs(v) < 1e15:
        return str(int(v))
    return f"{v:.6g}"


def count(n: int, singular: str, plural: str = "") -> str:
    """`1 rule`, `2 rules`."""
    return f"{n} {singular if n == 1 else plural or singular + 's'}"


def per_second(value: float) -> str:
    """A rate for people: `19.7`, `0.25`, `1234`."""
    return f"{value:.3g}" if value < 100 else f"{value:.0f}"


def human_bytes(n: float) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(size) < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"  # pragma: no cover


def json_script(data: Any) -> Markup:
    """JSON for a `<script type="application/json">` block: `<`, `>` and `&` escaped, so
    no label value can close the element (NaN and infinities become null, a gap)."""
    text = orjson.dumps(data).decode()
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(text)


@functools.cache
def _environment() -> jinja2.Environment:
    """The template environment, made on the first page asked for: Jinja2 is imported
    then, not at start-up (the agent is ready without it; pages are for later)."""
    import jinja2  # lazy: ~40 ms of start-up that readiness does not need

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("agent.server.pages", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        when=when,
        duration=human_duration,
        value=human_value,
        per_second=per_second,
        bytes=human_bytes,
    )
    env.globals.update(ago=ago, count=count)
    return env
