"""`chatwatch replay -c CONFIG LOG...`: backtesting, the alerts these logs would have raised.

Replay runs the agent's own pipeline (decoder, then `Pipeline`: extractor, store, history,
rule manager) with a simulated clock: each log line's timestamp moves the clock forward,
and the pipeline ticks every `evaluation_interval` of log time, so a week of logs replays
in minutes and the timeline it prints is the one the agent would have produced live. With
`--notifications` the alerts also go through the agent's own dispatcher (routes,
grouping, timers, cooldown; pure, so it runs on the simulated clock too), and the
timeline shows each notification it would have sent; nothing is sent.

`--format` chooses the output: `lines` (the default) streams the timeline as it happens,
then a summary and the final metrics; `table` prints one row per time an alert fired
(alert, labels, fired at, resolved at, how long, peak value); `json` prints all of it as
one JSON document for scripts.
"""

from __future__ import annotations

import argparse
import datetime
import gzip
import heapq
import json
import math
import sys
import time
from bisect import bisect_right
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TextIO

from agent.alerting.alert import Alert
from agent.alerting.group import RuleGroup
from agent.alerting.rule_file import RuleError
from agent.config import Config, ConfigError, load
from agent.decode.events import Origin
from agent.decode.formats import make_decoder
from agent.decode.timestamps import DEFAULT_TIMESTAMP_FIELDS, field_getter, timestamp_parser
from agent.metrics.exposition import collector
from agent.notify.dispatcher import Dispatcher
from agent.notify.notification import Notification
from agent.notify.notifier import build_dispatcher
from agent.pipeline import Pipeline, load_rules
from agent.support.duration import format_duration, parse_duration
from agent.support.goformat import go_float
from agent.support.selfmetrics import SelfMetrics


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "replay", help="replay logs in their own time and print the alerts they raise"
    )
    p.add_argument("-c", "--config", required=True, help="config file (YAML)")
    p.add_argument("logs", nargs="+", metavar="LOG", help="log files (.gz allowed; - is stdin)")
    p.add_argument(
        "--timestamp-field",
        default=None,
        help="event field holding the time (dots nest); default: the source's "
        "`timestamp.field`, else the first of ts, time, timestamp, @timestamp that the event "
        "has (cri/docker logs carry `time`)",
    )
    p.add_argument(
        "--timestamp-format",
        default="auto",
        help="rfc3339, unix, unix_ms, unix_us, unix_ns, python (logging's asctime), a "
        "strptime format such as '%%d/%%b/%%Y:%%H:%%M:%%S %%z', or auto (numbers: epoch "
        "seconds to nanoseconds, by size; text: ISO 8601, UTC unless it says otherwise); "
        "default: the source's `timestamp.format`, else auto",
    )
    p.add_argument("--source", default=None, help="source whose format decodes the logs")
    p.add_argument(
        "--evaluation-interval", default=None, help="override the config's evaluation_interval"
    )
    p.add_argument("--pending", action="store_true", help="also show alerts becoming pending")
    p.add_argument(
        "--notifications",
        action="store_true",
        help="also route the alerts through the config's alerting: section and show each "
        "notification it would send (NOTIFY lines: receiver, firing/resolved, group, "
        "alerts); nothing is sent",
    )
    p.add_argument("--no-metrics", action="store_true", help="do not print the final metrics")
    p.add_argument(
        "--format",
        choices=("lines", "table", "json"),
        default="lines",
        help="lines: the timeline as it happens (default); table: one row per firing "
        "(alert, labels, fired at, resolved at, peak value); json: everything, for scripts",
    )
    p.set_defaults(func=main)


@dataclass
class ReplayStats:
    lines: int = 0
    events: int = 0
    decode_errors: int = 0
    no_timestamp: int = 0
    out_of_order: int = 0
    evaluations: int = 0
    first_ts: float | None = None
    last_ts: float | None = None
    wall_seconds: float = 0.0
    fired: int = 0
    resolved: int = 0


@dataclass
class TimelineEntry:
    ts: float
    kind: str  # "pending" "firing" "resolved"
    labels: dict[str, str]
    value: float
    annotations: dict[str, str] = field(default_factory=dict)
    since: float | None = None


@dataclass
class Episode:
    """One time an alert fired: from firing to resolved (or the end of the logs)."""

    labels: dict[str, str]
    fired_at: float
    active_at: float
    """When it became pending (`fired_at` minus the rule's `for`)."""
    peak: float
    annotations: dict[str, str]
    resolved_at: float | None = None
    alert: Any = field(default=None, repr=False)
    """The rule's ActiveAlert while firing: its value moves each evaluation."""

    @property
    def name(self) -> str:
        return self.labels.get("alertname", "")

    def see(self, value: float) -> None:
        if value > self.peak or math.isnan(self.peak):
            self.peak = value


@dataclass
class NotifyEntry:
    """A notification the agent would have sent: one alert group to one integration."""

    ts: float
    target: str
    """The receiver, or `receiver/kind[i]` when the receiver has several integrations."""
    notification: Notification


_CHUNK = 1 << 20


def _open(path: str) -> IO[bytes]:
    if path == "-":
        return sys.stdin.buffer
    if path.endswith(".gz"):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


Chunk = tuple[list[float], list[dict[str, Any]]]


class _LogReader:
    """Decoded events of one log with their timestamps, a chunk at a time.

    The timestamps of a chunk never go back: an event older than the one before it is
    taken at the later time (and counted), as the live agent would see it."""

    def __init__(
        self,
        path: str,
        decoder: Any,
        ts_of: Callable[[Mapping[str, Any]], float | None],
        stats: ReplayStats,
    ) -> None:
        self.path = path
        self.decoder = decoder
        self.ts_of = ts_of
        self.stats = stats
        self.clock = float("-inf")

    def chunks(self) -> Iterator[Chunk]:
        with _open(self.path) as f:
            rest = b""
            while True:
                data = f.read(_CHUNK)
                if not data:
                    break
                lines = (rest + data).split(b"\n")
                rest = lines.pop()
                events: list[dict[str, Any]] = []
                self.decoder.decode(_strip_cr(lines), events)
                self.stats.lines += len(lines)
                yield self._stamp(events)
            events = []
            if rest:
                self.decoder.decode(_strip_cr([rest]), events)
                self.stats.lines += 1
            self.decoder.flush(events)
            yield self._stamp(events)

    def _stamp(self, events: list[dict[str, Any]]) -> Chunk:
        stats = self.stats
        stats.events += len(events)
        ts_of = self.ts_of
        clock = self.clock
        times: list[float] = []
        kept: list[dict[str, Any]] = []
        for event in events:
            ts = ts_of(event)
            if ts is None:
                stats.no_timestamp += 1
                continue
            if ts < clock:
                stats.out_of_order += 1
                ts = clock
            else:
                clock = ts
            times.append(ts)
            kept.append(event)
        self.clock = clock
        return times, kept

    def events(self, idx: int) -> Iterator[tuple[float, int, dict[str, Any]]]:
        for times, events in self.chunks():
            for ts, event in zip(times, events, strict=True):
                yield ts, idx, event


def _strip_cr(lines: list[bytes]) -> list[bytes]:
    if lines and lines[-1].endswith(b"\r"):
        return [ln.rstrip(b"\r") for ln in lines]
    return lines


class Replay:
    """Runs logs through extraction and the rules with the logs' timestamps as the clock."""

    def __init__(
        self,
        cfg: Config,
        groups: list[RuleGroup],
        *,
        timestamp_field: str | None = None,
        timestamp_format: str = "auto",
        source: str | None = None,
        evaluation_interval: float | None = None,
        notifications: bool = False,
    ) -> None:
        self.cfg = cfg
        self.interval = evaluation_interval or cfg.evaluation_interval
        if source is None:
            self.source = cfg.sources[0]
        else:
            matches = [s for s in cfg.sources if s.name == source]
            if not matches:
                known = ", ".join(s.name for s in cfg.sources)
                raise ValueError(f"--source: no source named {source!r} (sources: {known})")
            self.source = matches[0]
        self.now = 0.0
        self.stats = ReplayStats()
        self.pipeline = Pipeline(
            cfg.metrics,
            groups,
            stats=SelfMetrics(),
            notify=self._notified,
            evaluation_interval=self.interval,
            clock=self._clock,
        )
        self.store = self.pipeline.store
        self.manager = self.pipeline.rules
        self.timeline: list[TimelineEntry] = []
        self.episodes: list[Episode] = []
        self._firing: dict[tuple[tuple[str, str], ...], Episode] = {}
        named = self.source.timestamp  # the source's `timestamp:`, unless the flags say
        if named is not None:
            timestamp_field = timestamp_field if timestamp_field is not None else named.field
            timestamp_format = timestamp_format if timestamp_format != "auto" else named.format
        self._ts_of_value = timestamp_parser(timestamp_format)
        self._get_ts = field_getter(timestamp_field)
        self.on_entry: Callable[[TimelineEntry], None] | None = None
        self.show_pending = False
        self.dispatcher: Dispatcher | None = None
        if notifications:
            self.dispatcher = build_dispatcher(cfg.alerting, cfg.server.advertised_url)
        self.notifications: list[NotifyEntry] = []
        self.on_notification: Callable[[NotifyEntry], None] | None = None
        self._reported: list[Alert] | None = None

    def _clock(self) -> float:
        return self.now

    def _ts_of(self, event: Mapping[str, Any]) -> float | None:
        return self._ts_of_value(self._get_ts(event))

    def _notified(self, alerts: list[Alert], now: float) -> None:
        """The alerts the live notifier would be handed. Without a dispatcher they go
        nowhere (the timeline comes from the state changes); with one they are routed
        after this evaluation's timeline entries."""
        if self.dispatcher is not None:
            self._reported = alerts

    @property
    def notify_targets(self) -> list[str]:
        """Every `target` a NotifyEntry can have, in config order."""
        if self.dispatcher is None:
            return []
        return [
            spec.name if len(specs) > 1 else receiver
            for receiver, specs in self.dispatcher.integrations.items()
            for spec in specs
        ]

    def _flush_due_before(self, now: float) -> None:
        """Groups due between two evaluations flush at their own time, as the live
        notifier wakes for them (a group_wait or group_interval off the evaluation grid)."""
        assert self.dispatcher is not None
        while (deadline := self.dispatcher.next_deadline()) is not None and deadline < now:
            self._sent(self.dispatcher.flush_due(deadline), deadline)

    def _sent(self, notifications: list[Notification], now: float) -> None:
        assert self.dispatcher is not None
        for n in notifications:
            several = len(self.dispatcher.integrations.get(n.receiver, [])) > 1
            entry = NotifyEntry(now, n.integration if several else n.receiver, n)
            self.notifications.append(entry)
            if self.on_notification is not None:
                self.on_notification(entry)

    def run(self, paths: Sequence[str]) -> ReplayStats:
        """Replay the logs (merged in time order) and evaluate the rules along the way."""
        started = time.perf_counter()
        stats = self.stats

        def on_error(reason: str) -> None:
            stats.decode_errors += 1

        readers = [
            _LogReader(path, make_decoder(self.source, on_error), self._ts_of, stats)
            for path in paths
        ]
        origins = [Origin(self.source.name, path) for path in paths]
        if len(readers) == 1:
            self._run_one(readers[0], origins[0])
        else:
            self._run_merged(readers, origins)
        if self._next_eval is not None:
            self._evaluate(self._next_eval)
        stats.wall_seconds = time.perf_counter() - started
        return stats

    _next_eval: float | None = None

    def _start(self, ts: float) -> None:
        self._next_eval = (ts // self.interval + 1) * self.interval
        self.stats.first_ts = ts
        self.now = ts

    def _run_one(self, reader: _LogReader, origin: Any) -> None:
        """One log: whole slices of a chunk go to the extractor between evaluations."""
        feed = self.pipeline.feed
        interval = self.interval
        for times, events in reader.chunks():
            if not times:
                continue
            if self._next_eval is None:
                self._start(times[0])
            n = len(times)
            i = 0
            while i < n:
                assert self._next_eval is not None
                j = bisect_right(times, self._next_eval, i)
                if j > i:
                    self.now = times[j - 1]
                    feed(origin, events[i:j])
                if j < n:
                    while times[j] > self._next_eval:
                        self._evaluate(self._next_eval)
                        self._next_eval += interval
                i = j
            self.stats.last_ts = times[-1]

    def _run_merged(self, readers: list[_LogReader], origins: list[Any]) -> None:
        """Several logs (replicas, rotated files): events merged by time."""
        streams = [r.events(i) for i, r in enumerate(readers)]
        merged = heapq.merge(*streams, key=lambda x: (x[0], x[1]))
        interval = self.interval
        batches: dict[int, list[dict[str, Any]]] = {}
        feed = self.pipeline.feed
        for ts, idx, event in merged:
            if self._next_eval is None:
                self._start(ts)
            assert self._next_eval is not None
            while ts > self._next_eval:
                self._flush(batches, origins)
                self._evaluate(self._next_eval)
                self._next_eval += interval
            self.now = ts
            batch = batches.get(idx)
            if batch is None:
                batches[idx] = batch = []
            batch.append(event)
            if len(batch) >= 512:
                feed(origins[idx], batch)
                batches[idx] = []
            self.stats.last_ts = ts
        self._flush(batches, origins)

    def _flush(self, batches: dict[int, list[dict[str, Any]]], origins: list[Any]) -> None:
        for idx, batch in batches.items():
            if batch:
                self.pipeline.feed(origins[idx], batch)
        batches.clear()

    def _evaluate(self, now: float) -> None:
        dispatcher = self.dispatcher
        if dispatcher is not None:
            self._flush_due_before(now)
        self.now = now
        self.pipeline.tick(now)
        self.stats.evaluations += 1
        for episode in self._firing.values():
            episode.see(episode.alert.value)
        for change in self.manager.last_changes:
            a = change.alert
            self._track(change.new, a, now)
            if change.new == "firing":
                entry = TimelineEntry(now, "firing", a.labels, a.value, a.annotations, a.active_at)
                self.stats.fired += 1
            elif change.new == "resolved":
                entry = TimelineEntry(now, "resolved", a.labels, a.value, a.annotations, a.fired_at)
                self.stats.resolved += 1
            elif change.new == "pending":
                if not self.show_pending:
                    continue
                entry = TimelineEntry(now, "pending", a.labels, a.value, a.annotations)
            else:
                continue
            self.timeline.append(entry)
            if self.on_entry is not None:
                self.on_entry(entry)
        if dispatcher is not None:
            if self._reported is not None:
                dispatcher.ingest(self._reported, now)
                self._reported = None
            self._sent(dispatcher.flush_due(now), now)

    def _track(self, new: str, a: Any, now: float) -> None:
        key = tuple(sorted(a.labels.items()))
        if new == "firing":
            episode = Episode(dict(a.labels), now, a.active_at, a.value, dict(a.annotations))
            episode.alert = a
            self.episodes.append(episode)
            self._firing[key] = episode
        elif new == "resolved":
            ended = self._firing.pop(key, None)
            if ended is not None:
                ended.see(a.value)
                ended.resolved_at = now
                ended.alert = None

    def still_firing(self) -> list[Any]:
        return [
            a
            for g in self.manager.groups
            for r in g.alerting_rules()
            for a in r.active_alerts()
            if a.state == "firing"
        ]

    def metrics_text(self) -> str:
        """The final /metrics of the replayed metrics (no chatwatch_* self-metrics)."""
        return collector(self.store, SelfMetrics(), runtime=False).text()


def _iso(ts: float) -> str:
    t = datetime.datetime.fromtimestamp(ts, datetime.UTC)
    return (
        t.strftime("%Y-%m-%dT%H:%M:%S")
        + (f".{t.microsecond // 1000:03d}" if t.microsecond else "")
        + "Z"
    )


def _labels_text(labels: Mapping[str, str]) -> str:
    name = labels.get("alertname", "")
    rest = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != "alertname")
    return f"{name}{{{rest}}}"


def format_entry(e: TimelineEntry) -> str:
    line = f"{_iso(e.ts)}  {e.kind.upper():<8}  {_labels_text(e.labels)}"
    if e.kind == "resolved" and e.since is not None:
        line += f"  after {format_duration(e.ts - e.since)}"
    else:
        line += f"  value={go_float(e.value)}"
    summary = e.annotations.get("summary")
    if summary and e.kind != "resolved":
        line += f"  summary={summary!r}"
    return line


def format_notification(e: NotifyEntry, width: int = 0) -> str:
    """`<time>  NOTIFY    <target>  <status>  group={...}  <n> alerts: <names>`; `width`
    pads the target so the columns of several receivers line up."""
    n = e.notification
    counts: dict[str, int] = {}
    for a in n.alerts:
        counts[a.name] = counts.get(a.name, 0) + 1
    names = ", ".join(name if c == 1 else f"{name} ({c})" for name, c in counts.items())
    total = len(n.alerts)
    alerts = f"{total} alert" + ("s" if total != 1 else "")
    resolved = len(n.resolved)
    if n.status == "firing" and resolved:
        alerts += f" ({resolved} resolved)"
    group = ",".join(f'{k}="{v}"' for k, v in sorted(n.group_labels.items()))
    return (
        f"{_iso(e.ts)}  {'NOTIFY':<8}  {e.target:<{width}}  {n.status:<8}  "
        f"group={{{group}}}  {alerts}: {names}"
    )


def _notifications_summary(cfg: Config, replay: Replay) -> list[str]:
    if cfg.alerting.route is None:
        return [
            "# --notifications: the config has no alerting.route, so the agent sends no "
            "notifications (docs/notify.md shows how to add one)"
        ]
    per_target: dict[str, int] = dict.fromkeys(replay.notify_targets, 0)
    for e in replay.notifications:
        per_target[e.target] = per_target.get(e.target, 0) + 1
    total = len(replay.notifications)
    counts = ", ".join(f"{target} {n}" for target, n in per_target.items())
    lines = [f"# {total} notification{'s' if total != 1 else ''} would have been sent: {counts}"]
    if cfg.alerting.alertmanagers:
        lines.append(
            "# alerts forwarded to alerting.alertmanagers are routed by those Alertmanagers; "
            "not replayed"
        )
    return lines


def main(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    try:
        cfg = load(args.config)
        groups = load_rules(cfg)
    except (ConfigError, RuleError) as exc:
        for p in exc.problems:
            print(p, file=sys.stderr)
        return 1
    try:
        interval = None
        if args.evaluation_interval:
            interval = parse_duration(args.evaluation_interval)
            if interval <= 0:
                raise ValueError("--evaluation-interval must be more than 0")
        replay = Replay(
            cfg,
            groups,
            timestamp_field=args.timestamp_field,
            timestamp_format=args.timestamp_format,
            source=args.source,
            evaluation_interval=interval,
            notifications=args.notifications,
        )
    except ValueError as exc:
        print(f"chatwatch replay: {exc}", file=sys.stderr)
        return 2
    replay.show_pending = args.pending
    fmt = args.format
    width = max((len(t) for t in replay.notify_targets), default=0)
    if fmt == "lines":  # streamed as it happens; the other formats print at the end
        replay.on_entry = lambda e: print(format_entry(e), file=out, flush=False)
        replay.on_notification = lambda e: print(
            format_notification(e, width), file=out, flush=False
        )
    for path in args.logs:
        if path != "-" and not Path(path).is_file():
            print(f"chatwatch replay: {path}: no such file", file=sys.stderr)
            return 2
    stats = replay.run(args.logs)
    span = (stats.last_ts or 0.0) - (stats.first_ts or 0.0)
    summary = (
        f"replayed {stats.lines} lines ({stats.events} events) spanning "
        f"{_span(span)} in {stats.wall_seconds:.1f}s: {stats.evaluations} evaluations, "
        f"{stats.fired} alerts fired, {stats.resolved} resolved"
    )
    skipped = []
    if stats.decode_errors:
        skipped.append(f"{stats.decode_errors} lines could not be decoded")
    if stats.no_timestamp:
        field_name = args.timestamp_field or "/".join(DEFAULT_TIMESTAMP_FIELDS)
        skipped.append(f"{stats.no_timestamp} events had no usable {field_name!r}")
    if stats.out_of_order:
        skipped.append(f"{stats.out_of_order} events were out of order (taken at the latest time)")
    notes = skipped + (
        [line.removeprefix("# ") for line in _notifications_summary(cfg, replay)]
        if args.notifications
        else []
    )
    if fmt == "json":
        json.dump(
            replay_json(replay, summary, notes, not args.no_metrics), out, indent=2, default=str
        )
        out.write("\n")
        out.flush()
        return 0
    if fmt == "table":
        for line in format_table(replay.episodes):
            print(line, file=out)
        if replay.notifications:
            print(file=out)
            for e in replay.notifications:
                print(format_notification(e, width), file=out)
    else:
        for a in replay.still_firing():
            print(f"{'(end)':<24}  {'FIRING':<8}  {_labels_text(a.labels)}  still firing", file=out)
    print(file=out)
    print(f"# {summary}", file=out)
    for note in notes:
        print(f"# {note}", file=out)
    if not args.no_metrics:
        print(file=out)
        out.write(replay.metrics_text())
    out.flush()
    return 0


TABLE_HEADER = ("ALERT", "LABELS", "FIRED AT", "RESOLVED AT", "LASTED", "PEAK")


def format_table(episodes: Sequence[Episode]) -> list[str]:
    """One row per firing, in the order they fired; columns padded to line up."""
    if not episodes:
        return ["no alert fired"]
    rows = [TABLE_HEADER]
    for e in episodes:
        labels = " ".join(f"{k}={v}" for k, v in sorted(e.labels.items()) if k != "alertname")
        end = e.resolved_at
        rows.append(
            (
                e.name,
                labels or "-",
                _iso(e.fired_at),
                _iso(end) if end is not None else "still firing",
                format_duration(round(end - e.fired_at)) if end is not None else "-",
                go_float(e.peak),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(TABLE_HEADER))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def replay_json(replay: Replay, summary: str, notes: list[str], metrics: bool) -> dict[str, Any]:
    """`--format json`: the firings, the timeline, the notifications and the summary."""
    stats = replay.stats
    return {
        "alerts": [
            {
                "alertname": e.name,
                "labels": e.labels,
                "annotations": e.annotations,
                "activeAt": _iso(e.active_at),
                "firedAt": _iso(e.fired_at),
                "resolvedAt": _iso(e.resolved_at) if e.resolved_at is not None else None,
                "peakValue": go_float(e.peak),
            }
            for e in replay.episodes
        ],
        "timeline": [
            {
                "time": _iso(e.ts),
                "state": e.kind,
                "labels": e.labels,
                "value": go_float(e.value),
                "annotations": e.annotations,
            }
            for e in replay.timeline
        ],
        "notifications": [
            {
                "time": _iso(e.ts),
                "target": e.target,
                "status": e.notification.status,
                "groupLabels": e.notification.group_labels,
                "alerts": [a.labels for a in e.notification.alerts],
            }
            for e in replay.notifications
        ],
        "stats": {
            "lines": stats.lines,
            "events": stats.events,
            "decodeErrors": stats.decode_errors,
            "noTimestamp": stats.no_timestamp,
            "outOfOrder": stats.out_of_order,
            "evaluations": stats.evaluations,
            "fired": stats.fired,
            "resolved": stats.resolved,
            "firstTime": _iso(stats.first_ts) if stats.first_ts is not None else None,
            "lastTime": _iso(stats.last_ts) if stats.last_ts is not None else None,
        },
        "summary": summary,
        "notes": notes,
        **({"metrics": replay.metrics_text()} if metrics else {}),
    }


def _span(seconds: float) -> str:
    return format_duration(round(seconds)) if seconds >= 1 else f"{seconds:.3f}s"
