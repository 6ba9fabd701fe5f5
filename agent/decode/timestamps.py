"""Event time: a field of the event read as Unix seconds (RFC 3339, epoch, strptime).

`timestamp_parser(format)` reads one field value; `event_time_reader(field, format)` reads
an event's time, as `chatwatch replay` and a source's `timestamp:` (catch-up) do.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Callable, Mapping
from typing import Any

UTC = datetime.UTC


def number(value: Any) -> float | None:
    """A finite float from a number or a numeric string; booleans are not numbers."""
    cls = value.__class__
    if cls is int or cls is float:
        return float(value)
    if cls is str:
        try:
            f = float(value)
        except ValueError:
            return None
        return f if math.isfinite(f) else None
    return None


def event_time(value: Any) -> float | None:
    """Epoch seconds from ISO 8601 text or an epoch number in seconds, milliseconds,
    microseconds or nanoseconds (told apart by size, as no log is from year 5000).
    Text without a zone is UTC, as `chatwatch replay` reads it, whatever TZ we run in."""
    f = number(value)
    if f is not None:
        if f > 1e17:
            return f / 1e9
        if f > 1e14:
            return f / 1e6
        return f / 1e3 if f > 1e11 else f
    if value.__class__ is str:
        try:
            t = datetime.datetime.fromisoformat(value)
        except ValueError:
            return None
        if t.tzinfo is None:
            t = t.replace(tzinfo=UTC)
        return t.timestamp()
    return None


def timestamp_parser(fmt: str) -> Callable[[Any], float | None]:
    """A function from a field value to Unix seconds (None when it cannot be read)."""
    if fmt == "auto":
        fromiso = datetime.datetime.fromisoformat
        utc = datetime.UTC

        def auto(value: Any) -> float | None:
            if value.__class__ is str:  # ISO 8601 first: the common case, and no exception
                try:
                    t = fromiso(value)
                except ValueError:
                    return event_time(value)
                return (t if t.tzinfo is not None else t.replace(tzinfo=utc)).timestamp()
            return event_time(value)

        return auto
    if fmt in UNIX_SCALES:
        scale = UNIX_SCALES[fmt]

        def numeric(value: Any) -> float | None:
            try:
                return float(value) * scale
            except (TypeError, ValueError):
                return None

        return numeric
    if fmt == "rfc3339":

        def rfc3339(value: Any) -> float | None:
            if not isinstance(value, str):
                return None
            try:
                t = datetime.datetime.fromisoformat(value)
            except ValueError:
                return None
            if t.tzinfo is None:
                t = t.replace(tzinfo=datetime.UTC)
            return t.timestamp()

        return rfc3339
    if "%" in fmt:

        def strptime(value: Any) -> float | None:
            if not isinstance(value, str):
                return None
            try:
                t = datetime.datetime.strptime(value, fmt)
            except ValueError:
                return None
            if t.tzinfo is None:
                t = t.replace(tzinfo=datetime.UTC)
            return t.timestamp()

        return strptime
    if fmt == "python":
        return timestamp_parser(PYTHON_ASCTIME)
    raise ValueError(
        f"--timestamp-format: expected {', '.join(FORMATS)} or a strptime format with % "
        f"directives, got {fmt!r}"
    )


UNIX_SCALES = {"unix": 1.0, "unix_ms": 1e-3, "unix_us": 1e-6, "unix_ns": 1e-9}
"""Epoch numbers (or numeric strings) in seconds, milliseconds, microseconds, nanoseconds."""
PYTHON_ASCTIME = "%Y-%m-%d %H:%M:%S,%f"
"""Python logging's `%(asctime)s`: `2026-11-30 16:05:45,123` (milliseconds after a comma)."""
FORMATS = ("auto", "rfc3339", *UNIX_SCALES, "python")
"""The named formats; anything else with `%` directives is a strptime format."""


DEFAULT_TIMESTAMP_FIELDS = ("ts", "time", "timestamp", "@timestamp")


def _first_field(event: Mapping[str, Any]) -> Any:
    for name in DEFAULT_TIMESTAMP_FIELDS:
        value = event.get(name)
        if value is not None:
            return value
    return None


def field_getter(path: str | None) -> Callable[[Mapping[str, Any]], Any]:
    if path is None:
        return _first_field
    parts = path.split(".")
    if len(parts) == 1:
        return lambda event: event.get(path)

    def get(event: Mapping[str, Any]) -> Any:
        value: Any = event
        for p in parts:
            if not isinstance(value, Mapping):
                return None
            value = value.get(p)
        return value

    return get


def event_time_reader(
    field: str | None, fmt: str = "auto"
) -> Callable[[Mapping[str, Any]], float | None]:
    """An event's time in Unix seconds, from `field` (None: the first of
    DEFAULT_TIMESTAMP_FIELDS the event has) read in `fmt`; None when it cannot be read."""
    get = field_getter(field)
    parse = timestamp_parser(fmt)
    return lambda event: parse(get(event))
