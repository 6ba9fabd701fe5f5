"""What the web pages ask of the running agent, as plain values.

`ServerHandlers` (agent.server.routes) returns these; agent.status builds them from the
live agent and tests build them by hand. Everything here is a snapshot: the pages render
it without touching the agent's state again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True, slots=True)
class FileStatus:
    """One file a source holds open."""

    path: str
    offset: int
    """Bytes handed on (the checkpoint)."""
    size: int
    lag_bytes: int
    """Written to the file but not handed on yet."""
    lag_seconds: float
    """How long the unread bytes have waited (0 when caught up)."""


@dataclass(frozen=True, slots=True)
class SourceStatus:
    name: str
    kind: Literal["files", "stdin"]
    paths: list[str]
    """The globs (files) or `-` (stdin)."""
    files: list[FileStatus]
    lines_total: float
    lines_per_second: float
    """Over the last minute."""
    decode_errors: dict[str, float]
    """Lines that gave no event, by reason; only reasons that happened."""
    open_errors: dict[str, float]
    """Failed attempts to open or list a matching file, by reason."""
    last_line_at: float | None
    """Unix time lines were last handed on (None: none yet)."""


@dataclass(frozen=True, slots=True)
class AlertCounts:
    """Alerts by state, and alerting rules by state (a rule is as bad as its worst alert)."""

    firing: int = 0
    pending: int = 0
    rules: int = 0
    rules_firing: int = 0
    rules_pending: int = 0
    rules_inactive: int = 0
    rules_failing: int = 0
    """Rules of any kind whose last evaluation failed."""


@dataclass(frozen=True, slots=True)
class AgentStatus:
    """The overview page: health, config reload, sources."""

    ready: bool
    version: str
    started_at: float
    now: float
    config_file: str
    reload_ok: bool
    """Whether the last config load (start or reload) succeeded."""
    reloaded_at: float
    """Unix time of the last successful config load."""
    reload_problems: list[str]
    """Why the last reload failed (empty when it did not)."""
    sources: list[SourceStatus]
    alerts: AlertCounts


@dataclass(frozen=True, slots=True)
class AlertView:
    """An active alert: pending or firing."""

    labels: dict[str, str]
    annotations: dict[str, str]
    state: Literal["inactive", "pending", "firing"]
    value: float
    active_at: float
    """When it became pending."""


@dataclass(frozen=True, slots=True)
class RuleView:
    """An alerting or recording rule and how its last evaluation went."""

    name: str
    kind: Literal["alerting", "recording"]
    query: str
    health: Literal["unknown", "ok", "err"]
    last_error: str
    last_evaluation: float | None
    evaluation_time: float
    labels: dict[str, str]
    """Alerting rules: the label templates as written; recording rules: the labels."""
    state: Literal["inactive", "pending", "firing"] = "inactive"
    hold: float = 0.0
    """`for`, seconds."""
    keep_firing_for: float = 0.0
    annotations: dict[str, str] = field(default_factory=dict)
    """The annotation templates as written."""
    alerts: list[AlertView] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class GroupView:
    name: str
    file: str
    interval: float
    limit: int
    last_evaluation: float | None
    evaluation_time: float
    rules: list[RuleView]


@dataclass(frozen=True, slots=True)
class HistoryWindow:
    """What the in-memory history can answer: samples from `start` to `end` (now), one
    every `interval` seconds (the evaluation interval)."""

    start: float
    end: float
    interval: float


@dataclass(frozen=True, slots=True)
class RangeSeries:
    labels: dict[str, str]
    times: list[float]
    values: list[float]


@dataclass(frozen=True, slots=True)
class RangeResult:
    """An expression evaluated at every `step` from `start` to `end` (Unix seconds)."""

    kind: Literal["vector", "scalar"]
    start: float
    end: float
    step: float
    series: list[RangeSeries] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class RunningConfig:
    """The config the agent runs with, secrets replaced by `<secret>`, and its rule files."""

    path: str
    yaml: str
    rule_files: list[tuple[str, str]]
    """(path, text) of every rule file the config loads."""
