"""Config of metric definitions (`metrics:`). Compiled by agent.extract."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator

from agent.configtypes import Duration, Model

METRIC_NAME_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL_NAME_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


class LabelFrom(Model):
    """A label computed from a field in the manner of Prometheus relabelling."""

    field: str
    regex: str | None = None
    replacement: str = "$1"
    default: str | None = None


class MetricConfig(Model):
    name: str
    type: Literal["counter", "gauge", "histogram"]
    help: str = ""
    match: dict[str, Any] = {}
    labels: dict[str, str | LabelFrom] = {}
    static_labels: dict[str, str] = {}
    value: str | None = None
    scale: float = 1.0
    buckets: list[float] | None = None
    action: str | dict[str, str] | None = None
    action_field: str | None = None
    max_series: int = Field(default=1000, gt=0)
    expire_after: Duration | None = None

    @field_validator("name")
    @classmethod
    def _metric_name(cls, value: str) -> str:
        if not METRIC_NAME_RE.match(value):
            raise ValueError(f"not a valid Prometheus metric name: {value!r}")
        return value
