"""What the web pages show of the running agent, gathered from its parts.

agent.app's `ServerHandlers` methods delegate here, so app.py stays about tasks, signals
and reload. `SourceActivity` wraps each source's sink to note when it last handed lines
on (per file) and how fast; the rest reads the agent's self-metrics, checkpoints, config
and history as they are at the moment of the request.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import yaml

from agent import __version__
from agent.alerting.alerting_rule import AlertingRule
from agent.alerting.group import RuleGroup
from agent.alerting.manager import RuleManager
from agent.alerting.query import query_range
from agent.alerting.rule_file import expand_rule_paths
from agent.config import Config
from agent.decode.events import Event, Origin
from agent.pipeline import Pipeline
from agent.server.pages.views import (
    AgentStatus,
    AlertCounts,
    AlertView,
    FileStatus,
    GroupView,
    HistoryWindow,
    RangeResult,
    RangeSeries,
    RuleView,
    RunningConfig,
    SourceStatus,
)
from agent.sources.checkpoint import Checkpoints
from agent.sources.config import SourceConfig
from agent.support.configmodel import redacted
from agent.support.selfmetrics import SelfMetrics

log = logging.getLogger("chatwatch.status")

Sink = Callable[[Origin, list[Event]], None]


class Agent(Protocol):
    """What the pages read of the live agent (agent.app.Agent has all of it)."""

    started_at: float
    config_path: str
    cfg: Config
    stats: SelfMetrics
    checkpoints: Checkpoints
    pipeline: Pipeline
    reload_problems: list[str]
    activity: SourceActivity

    def is_ready(self) -> bool: ...


RATE_WINDOW = 60.0
"""lines/s is measured over the last minute."""


class SourceActivity:
    """When each source (and each of its files) last handed lines on, and its lines/s.

    The line counts are the sources' own `chatwatch_lines_read_total`; this only samples
    them, at most once a second, when a batch is handed on."""

    def __init__(self, stats: SelfMetrics, clock: Callable[[], float] = time.time) -> None:
        self._stats = stats
        self._clock = clock
        self.last_batch: dict[str, float] = {}
        self.last_file_batch: dict[tuple[str, str], float] = {}
        self._samples: dict[str, deque[tuple[float, float]]] = {}

    def sink(self, source: str, sink: Sink) -> Sink:
        """`sink`, noting each batch `source` hands on."""
        samples = self._samples.setdefault(source, deque())
        samples.append((self._clock(), self.lines(source)))

        def noted(origin: Origin, events: list[Event]) -> None:
            sink(origin, events)
            now = self._clock()
            self.last_batch[source] = now
            self.last_file_batch[(source, origin.path)] = now
            if now - samples[-1][0] >= 1.0:
                samples.append((now, self.lines(source)))
                while len(samples) > 2 and samples[1][0] <= now - RATE_WINDOW:
                    samples.popleft()

        return noted

    def lines(self, source: str) -> float:
        family = self._stats.family("chatwatch_lines_read_total")
        return family.get((source,)) if family is not None else 0.0

    def lines_per_second(self, source: str, now: float) -> float:
        """Lines read over the last minute (or since the source started), per second."""
        samples = self._samples.get(source)
        if not samples:
            return 0.0
        base = samples[0]
        for sample in samples:
            if sample[0] > now - RATE_WINDOW:
                break
            base = sample
        elapsed = now - base[0]
        if elapsed < 1.0:
            return 0.0
        return max(0.0, self.lines(source) - base[1]) / elapsed


def agent_status(agent: Agent, sources: list[SourceConfig], now: float) -> AgentStatus:
    """`sources`: the config's, with their globs resolved (app.resolve_sources)."""
    return AgentStatus(
        ready=agent.is_ready(),
        version=__version__,
        started_at=agent.started_at,
        now=now,
        config_file=str(Path(agent.config_path).resolve()),
        reload_ok=_gauge(agent.stats, "chatwatch_config_last_reload_successful", ()) == 1.0,
        reloaded_at=_gauge(
            agent.stats, "chatwatch_config_last_reload_success_timestamp_seconds", ()
        ),
        reload_problems=list(agent.reload_problems),
        sources=[
            source_status(
                agent.stats, agent.checkpoints, agent.activity, src, now, agent.started_at
            )
            for src in sources
        ],
        alerts=alert_counts(agent.pipeline.rules.groups),
    )


def alert_counts(groups: list[RuleGroup]) -> AlertCounts:
    """Counted from the rules themselves: cheaper than the API views on a busy agent."""
    firing = pending = failing = 0
    rule_states = {"firing": 0, "pending": 0, "inactive": 0}
    for group in groups:
        for rule in group.rules:
            if rule.health == "err":
                failing += 1
            if not isinstance(rule, AlertingRule):
                continue
            for alert in rule.active.values():
                if alert.state == "firing":
                    firing += 1
                elif alert.state == "pending":
                    pending += 1
            rule_states[rule.state()] += 1
    return AlertCounts(
        firing=firing,
        pending=pending,
        rules=sum(rule_states.values()),
        rules_firing=rule_states["firing"],
        rules_pending=rule_states["pending"],
        rules_inactive=rule_states["inactive"],
        rules_failing=failing,
    )


def source_status(
    stats: SelfMetrics,
    checkpoints: Checkpoints,
    activity: SourceActivity,
    src: SourceConfig,
    now: float,
    started_at: float,
) -> SourceStatus:
    name, stdin = src.name, src.stdin
    files: list[FileStatus] = []
    if not stdin:
        offsets = {
            cp.path: cp.offset
            for cp in checkpoints.for_source(name)
            if checkpoints.is_live(name, cp.key)
        }
        lag = stats.family("chatwatch_file_lag_bytes")
        for labels, value in sorted(lag.values.items()) if lag is not None else ():
            if labels[0] != name:
                continue
            path = labels[1]
            behind = int(value)
            offset = offsets.get(path, 0)
            waited = 0.0
            if behind > 0:
                waited = now - activity.last_file_batch.get((name, path), started_at)
            files.append(FileStatus(path, offset, offset + behind, behind, max(0.0, waited)))
    return SourceStatus(
        name=name,
        kind="stdin" if stdin else "files",
        paths=["-"] if stdin else list(src.paths),
        files=files,
        lines_total=activity.lines(name),
        lines_per_second=activity.lines_per_second(name, now),
        decode_errors=_by_reason(stats, "chatwatch_decode_errors_total", name),
        open_errors=_by_reason(stats, "chatwatch_file_open_errors_total", name),
        last_line_at=activity.last_batch.get(name),
    )


def _gauge(stats: SelfMetrics, name: str, labels: tuple[str, ...]) -> float:
    family = stats.family(name)
    return family.get(labels) if family is not None else 0.0


def _by_reason(stats: SelfMetrics, name: str, source: str) -> dict[str, float]:
    family = stats.family(name)
    if family is None:
        return {}
    return {
        labels[1]: value
        for labels, value in family.values.items()
        if labels[0] == source and value > 0
    }


def rule_groups(manager: RuleManager) -> list[GroupView]:
    """The rule groups as the /alerts and /rules pages show them: the API's content
    (agent.alerting.api) as values, without formatting every number and time as text."""
    out = []
    for group in manager.groups:
        rules = []
        for rule in group.rules:
            if isinstance(rule, AlertingRule):
                view = RuleView(
                    name=rule.name,
                    kind="alerting",
                    query=rule.expr_text,
                    health=rule.health,
                    last_error=rule.last_error,
                    last_evaluation=rule.last_evaluation,
                    evaluation_time=rule.evaluation_time,
                    labels={k: t.text for k, t in rule.labels.items()},
                    state=rule.state(),
                    hold=rule.hold,
                    keep_firing_for=rule.keep_firing_for,
                    annotations={k: t.text for k, t in rule.annotations.items()},
                    alerts=[
                        AlertView(
                            dict(a.labels), dict(a.annotations), a.state, a.value, a.active_at
                        )
                        for a in rule.active_alerts()  # pending and firing
                    ],
                )
            else:
                view = RuleView(
                    name=rule.name,
                    kind="recording",
                    query=rule.expr_text,
                    health=rule.health,
                    last_error=rule.last_error,
                    last_evaluation=rule.last_evaluation,
                    evaluation_time=rule.evaluation_time,
                    labels=dict(rule.labels),
                )
            rules.append(view)
        out.append(
            GroupView(
                name=group.name,
                file=group.file,
                interval=manager.interval_of(group),
                limit=group.limit,
                last_evaluation=group.last_evaluation,
                evaluation_time=group.evaluation_time,
                rules=rules,
            )
        )
    return out


def history_window(agent: Agent, now: float) -> HistoryWindow:
    retention = agent.pipeline.history.retention
    return HistoryWindow(
        start=max(agent.started_at, now - retention),
        end=now,
        interval=agent.cfg.evaluation_interval,
    )


def range_query(agent: Agent, expr: str, start: float, end: float, step: float) -> RangeResult:
    kind, first, series = query_range(expr, agent.pipeline.history, start, end, step)
    return RangeResult(
        kind=kind,
        start=first,
        end=end,
        step=step,
        series=[RangeSeries(labels, times, values) for labels, times, values in series],
    )


def running_config(cfg: Config, config_path: str) -> RunningConfig:
    """The config as loaded, secrets redacted, and the rule files as they are on disk."""
    text = yaml.safe_dump(
        redacted(cfg), sort_keys=False, allow_unicode=True, width=100, default_flow_style=None
    )
    files, _ = expand_rule_paths(cfg.rule_files, cfg.base_dir)
    rule_files = []
    for file in files:
        try:
            rule_files.append((str(file), Path(file).read_text(encoding="utf-8")))
        except OSError as exc:
            rule_files.append((str(file), f"# cannot read: {exc.strerror}"))
    return RunningConfig(str(Path(config_path).resolve()), text, rule_files)
