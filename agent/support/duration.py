"""Durations, in one place: Prometheus' spelling and the config's.

Prometheus' `model.ParseDuration` / `Duration.String` (`1h30m`, `90s`, `500ms`, `0`;
units y w d h m s ms, each at most once, in that order, whole numbers) is what rule
files and rule tests use, so they read exactly as promtool reads them. The config is
more forgiving (`1.5h`, `90` for seconds) and prints durations the same way.
"""

from __future__ import annotations

import re
from typing import Any

_PROMETHEUS = re.compile(
    r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$"
)
_UNITS_MS = (
    ("y", 365 * 86_400_000),
    ("w", 7 * 86_400_000),
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1000),
    ("ms", 1),
)
_CONFIG = re.compile(r"^\s*((?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w|y))+)\s*$")
_CONFIG_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)")
_UNIT_SECONDS = {unit: ms / 1000 for unit, ms in _UNITS_MS}


def parse_prometheus_ms(text: str) -> int:
    """Prometheus' model.ParseDuration, in milliseconds; ValueError as Prometheus words it."""
    if text == "0":
        return 0
    m = _PROMETHEUS.match(text)
    if not text or m is None:
        raise ValueError(f'not a valid duration string: "{text}"')
    return sum(int(n) * size for (_, size), n in zip(_UNITS_MS, m.groups(), strict=True) if n)


def format_prometheus_ms(ms: int) -> str:
    """Prometheus' model.Duration.String (`1m30s`, `1w`, `0s`): years and weeks only when
    they divide the whole duration, as `90d` reads better than `12w6d`."""
    if ms == 0:
        return "0s"
    out = []
    for unit, size in _UNITS_MS:
        if unit in ("y", "w") and ms % size:
            continue
        n, ms = divmod(ms, size)
        if n:
            out.append(f"{n}{unit}")
    return "".join(out)


def parse_duration(value: Any) -> float:
    """A config duration in seconds: `500ms`, `5s`, `1.5h`, `1h30m`, or a plain number of
    seconds (so `interval: 5` also works)."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 500ms, 5s, 15m, 1h or 1d")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    if isinstance(value, str):
        m = _CONFIG.match(value)
        if m:
            return sum(float(n) * _UNIT_SECONDS[u] for n, u in _CONFIG_PART.findall(m.group(1)))
    raise ValueError(f"expected a duration such as 500ms, 5s, 15m, 1h or 1d, got {value!r}")


def format_duration(seconds: float) -> str:
    """The shortest Prometheus spelling of a duration in seconds (`90` -> `1m30s`)."""
    return format_prometheus_ms(round(seconds * 1000))
