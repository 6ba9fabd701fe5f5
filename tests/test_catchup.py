"""Catch-up in the log's own time (agent/catchup.py), without files or processes.

The backlog a restart finds is fed to the agent's own Pipeline with the events' times
as the clock: the history is built and the rules evaluated on the grid at those times,
so an hour read in a second is no rate spike, errors written while the agent was down
fire at the time they were written, and an alert that fired and resolved meanwhile is
found. The file sources, the ordering across files and the live agent are covered by
tests/test_catchup_downtime.py.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from agent.alerting.query import query_range
from agent.alerting.rule_file import parse_rule_file
from agent.catchup import CatchUp, LogClock
from agent.config import ConfigError, load
from agent.decode.config import TimestampConfig
from agent.decode.events import Origin
from agent.decode.formats import make_decoder
from agent.decode.timestamps import event_time_reader
from agent.metrics.config import MetricConfig
from agent.pipeline import Pipeline
from agent.sources.config import SourceConfig
from agent.support.selfmetrics import SelfMetrics

T0 = 1_796_083_200.0  # 2026-12-01T00:00:00Z
ORIGIN = Origin("bot", "/var/log/bot.log")
METRICS = [
    {"name": "requests_total", "type": "counter", "match": {"event": "request"}},
    {"name": "errors_total", "type": "counter", "match": {"level": "error"}},
]


def catch_up(rules: str, *, since: float = T0, until: float = T0 + 3600) -> CatchUp:
    groups, problems = parse_rule_file(rules, "rules.yml")
    assert problems == []
    clock = LogClock()
    pipeline = Pipeline(
        [MetricConfig.model_validate(m) for m in METRICS],
        groups,
        stats=SelfMetrics(),
        notify=lambda alerts, now: None,
        evaluation_interval=1.0,
        clock=clock,
    )
    return CatchUp(
        pipeline, clock, SelfMetrics(), evaluation_interval=1.0, since=since, until=until
    )


def source(fmt: str = "auto") -> SourceConfig:
    return SourceConfig(
        name="bot", paths=["/var/log/bot.log"], timestamp=TimestampConfig(field="ts", format=fmt)
    )


def value(c: CatchUp, name: str) -> float:
    return sum(v for key, v in c.pipeline.store.snapshot() if dict(key)["__name__"] == name)


def firing(c: CatchUp) -> list[Any]:
    return [
        a
        for g in c.pipeline.rules.groups
        for r in g.alerting_rules()
        for a in r.active_alerts()
        if a.state == "firing"
    ]


def test_an_hour_of_backlog_read_at_once_is_no_rate_spike() -> None:
    c = catch_up(
        """
groups:
  - name: g
    rules:
      - alert: TrafficSpike
        expr: rate(requests_total[1m]) > 2
"""
    )
    live: list[Any] = []
    sink = c.sink(source(), lambda origin, events: live.append(events))
    events = [{"ts": T0 + i, "event": "request"} for i in range(3600)]
    for i in range(0, 3600, 500):  # in batches, as a file source hands them on
        sink(ORIGIN, events[i : i + 500])
    assert c.finish() == []
    assert firing(c) == []
    assert c.stats.evaluations >= 3600
    end = T0 + 3599
    _, _, [(_, _, [rate])] = query_range(
        "rate(requests_total[1m])", c.pipeline.history, end, end, 1
    )
    assert rate == pytest.approx(1.0)
    assert live == []
    sink(ORIGIN, [{"ts": T0 + 3601, "event": "request"}])  # after catch-up: live
    assert len(live) == 1


def test_errors_written_while_down_fire_at_the_time_they_were_written() -> None:
    c = catch_up(
        """
groups:
  - name: g
    rules:
      - alert: Errors
        expr: increase(errors_total[5m]) > 0
""",
        until=T0 + 200,
    )
    sink = c.sink(source(), lambda origin, events: None)
    sink(ORIGIN, [{"ts": T0 + 10 + i / 10, "level": "info"} for i in range(900)])
    sink(ORIGIN, [{"ts": T0 + 100, "level": "error"}] * 3)
    assert c.finish() == []
    [alert] = firing(c)
    assert alert.fired_at == T0 + 100  # the evaluation at the errors' own time


def test_an_alert_that_fired_and_resolved_while_down_is_returned_once() -> None:
    c = catch_up(
        """
groups:
  - name: g
    rules:
      - alert: Errors
        expr: increase(errors_total[1m]) > 0
""",
        until=T0 + 600,
    )
    sink = c.sink(source(), lambda origin, events: None)
    sink(ORIGIN, [{"ts": T0 + 50, "level": "error"}])
    sink(ORIGIN, [{"ts": T0 + 60 + i, "level": "info"} for i in range(400)])
    [missed] = c.finish()
    assert missed.labels == {"alertname": "Errors"}
    assert missed.starts_at == T0 + 50
    assert missed.ends_at is not None and T0 + 110 <= missed.ends_at <= T0 + 112
    assert firing(c) == []


def test_a_missed_alert_carries_its_own_rules_link_when_rules_share_a_name() -> None:
    """Severity tiers: two rules named Errors. The resolved episode that catch-up hands on
    links to the rule that held it, not to the first rule of that name."""
    c = catch_up(
        """
groups:
  - name: g
    rules:
      - alert: Errors
        expr: increase(errors_total[1m]) > 100
        labels: {severity: critical}
      - alert: Errors
        expr: increase(errors_total[1m]) > 0
        labels: {severity: warning}
""",
        until=T0 + 600,
    )
    sink = c.sink(source(), lambda origin, events: None)
    sink(ORIGIN, [{"ts": T0 + 50, "level": "error"}])
    sink(ORIGIN, [{"ts": T0 + 60 + i, "level": "info"} for i in range(400)])
    [missed] = c.finish()
    assert missed.labels == {"alertname": "Errors", "severity": "warning"}
    assert missed.generator_url.endswith("%3E%200&g0.tab=1")  # "> 0", not "> 100"


def test_an_alert_that_resolved_and_fires_again_is_only_told_as_firing() -> None:
    c = catch_up(
        """
groups:
  - name: g
    rules:
      - alert: Errors
        expr: increase(errors_total[1m]) > 0
""",
        until=T0 + 530,
    )
    sink = c.sink(source(), lambda origin, events: None)
    sink(ORIGIN, [{"ts": T0 + 50, "level": "error"}])
    sink(ORIGIN, [{"ts": T0 + 60 + i, "level": "info"} for i in range(400)])
    sink(ORIGIN, [{"ts": T0 + 500, "level": "error"}])
    assert c.finish() == []
    [alert] = firing(c)
    assert alert.fired_at == T0 + 500


def test_events_without_a_time_or_out_of_order_are_taken_at_the_time_before() -> None:
    c = catch_up("groups: []", until=T0 + 100)
    sink = c.sink(source("unix"), lambda origin, events: None)
    sink(
        ORIGIN,
        [
            {"ts": T0 + 5, "event": "request"},
            {"event": "request"},  # no time: counted at T0 + 5
            {"ts": T0 + 3, "event": "request"},  # older: counted at T0 + 5
            {"ts": T0 + 10_000, "event": "request"},  # after the start: counted at its end
        ],
    )
    c.finish()
    assert (c.stats.no_timestamp, c.stats.out_of_order) == (1, 1)
    assert c.stats.last_ts == T0 + 100
    assert value(c, "requests_total") == 4


class FakeSource:
    """What CatchUp reads of a FileSource: whether it scanned its files, and how much
    backlog each file has left."""

    def __init__(self, left: dict[Origin, int]) -> None:
        self.opened = asyncio.Event()
        self.opened.set()
        self.left = left
        self.cfg = source()

    def backlog(self) -> dict[Origin, int]:
        return dict(self.left)


def test_two_files_are_merged_by_time() -> None:
    c = catch_up("groups: []", until=T0 + 100)
    a, b = Origin("bot", "a.log"), Origin("bot", "b.log")
    files = FakeSource({a: 100, b: 100})
    c.add(files)  # type: ignore[arg-type]
    fed: list[tuple[str, float]] = []
    c.pipeline.feed = lambda origin, events: fed.extend(  # type: ignore[method-assign]
        (origin.path, e["ts"]) for e in events
    )
    sink = c.sink(source("unix"), lambda origin, events: None)
    sink(a, [{"ts": T0 + t} for t in (1, 4, 7)])
    assert fed == []  # b.log may still hold something older
    sink(b, [{"ts": T0 + t} for t in (2, 3, 8)])
    # Both have more to read: only what both got past (7) is fed.
    assert [(path, t - T0) for path, t in fed] == [
        ("a.log", 1),
        ("b.log", 2),
        ("b.log", 3),
        ("a.log", 4),
        ("a.log", 7),
    ]
    files.left = {a: 0, b: 0}
    c.finish()
    assert [t - T0 for _, t in fed] == [1, 2, 3, 4, 7, 8]


CRI_LINE = b'2026-11-30T16:05:45.123456789Z stdout F {"level": "error"}'


@pytest.mark.parametrize(
    ("fmt", "value", "expected"),
    [
        ("auto", "2026-11-30T16:05:45.123Z", 1796054745.123),
        ("auto", "2026-11-30T17:05:45.123+01:00", 1796054745.123),
        ("auto", "2026-11-30 16:05:45,123", 1796054745.123),  # Python's %(asctime)s
        ("auto", 1796054745123, 1796054745.123),  # epoch ms, told by size
        ("auto", 1796054745123456789, 1796054745.123456789),  # epoch ns
        ("rfc3339", "2026-11-30T16:05:45.123456789Z", 1796054745.123456),
        ("python", "2026-11-30 16:05:45,123", 1796054745.123),
        ("unix", "1796054745.5", 1796054745.5),
        ("unix_ms", 1796054745123, 1796054745.123),
        ("unix_us", 1796054745123456, 1796054745.123456),
        ("unix_ns", 1796054745123456789, 1796054745.123456789),
        ("%d/%b/%Y:%H:%M:%S %z", "30/Nov/2026:17:05:45 +0100", 1796054745.0),
    ],
)
def test_timestamp_formats(fmt: str, value: Any, expected: float) -> None:
    ts_of = event_time_reader("at", TimestampConfig(field="at", format=fmt).format)
    assert ts_of({"at": value}) == pytest.approx(expected, abs=1e-6)


def test_cri_wrapper_time_is_the_event_time() -> None:
    src = SourceConfig(name="k8s", paths=["/var/log/pods/*.log"], format="cri", timestamp="time")
    events: list[Any] = []
    make_decoder(src, lambda reason: None).decode([CRI_LINE], events)
    assert src.timestamp is not None
    ts_of = event_time_reader(src.timestamp.field, src.timestamp.format)
    assert ts_of(events[0]) == pytest.approx(1796054745.123457, abs=1e-6)


def test_a_wrong_timestamp_format_names_the_key_and_what_was_expected(tmp_path: Path) -> None:
    config = tmp_path / "chatwatch.yaml"
    config.write_text(
        'sources: [{name: bot, paths: ["/var/log/bot.log"], timestamp: {field: ts, format: iso}}]\n'
    )
    with pytest.raises(ConfigError) as caught:
        load(str(config))
    [problem] = caught.value.problems
    assert problem.startswith(f"{config}: sources[0].timestamp.format: expected one of auto, ")
    assert "got 'iso'" in problem


def test_replay_reads_the_time_the_source_names(tmp_path: Path) -> None:
    from agent.commands.replay import Replay

    config = tmp_path / "chatwatch.yaml"
    config.write_text(
        "sources: [{name: bot, paths: [bot.log], timestamp: {field: at, format: unix_ms}}]\n"
    )
    log = tmp_path / "bot.log"
    log.write_text("".join(f'{{"at": {int((T0 + i) * 1000)}}}\n' for i in range(10)))
    stats = Replay(load(str(config)), []).run([str(log)])
    assert (stats.no_timestamp, stats.first_ts, stats.last_ts) == (0, T0, T0 + 9)
