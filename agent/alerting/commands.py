"""The rule commands of the `chatwatch` CLI, and the rule check of `chatwatch check`.

    chatwatch test rules FILE...            promtool's rule unit tests, run by chatwatch
    chatwatch export-rules -c CONFIG        the rules for a central Prometheus (or a
                                            prometheus-operator PrometheusRule)
    chatwatch replay -c CONFIG LOG...       backtesting: the alerts these logs would have
                                            raised, in the logs' own time

Replay runs the real pipeline (decoder, extractor, store, history, rule manager) with a
simulated clock: each log line's timestamp moves the clock forward, and the rules are
evaluated every `evaluation_interval` of log time, so a week of logs replays in minutes
and the timeline it prints is the one the agent would have produced live. With
`--notifications` the alerts also go through the agent's own dispatcher (routes,
grouping, timers, cooldown; pure, so it runs on the simulated clock too), and the
timeline shows each notification it would have sent; nothing is sent.
"""

from __future__ import annotations

import argparse
import datetime
import gzip
import heapq
import sys
import time
from bisect import bisect_right
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TextIO

import yaml

from agent.alerting.rules import (
    EXTENSION_KEYS,
    RuleError,
    RuleGroup,
    load_rule_files,
)
from agent.alerts import Alert
from agent.config import Config, ConfigError, load

if TYPE_CHECKING:
    from agent.notify.dispatcher import Dispatcher
    from agent.notify.notification import Notification


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `test rules`, `export-rules` and `replay` to the chatwatch command."""
    p = subparsers.add_parser("test", help="run unit tests")
    test_sub = p.add_subparsers(dest="test_command", required=True)
    t = test_sub.add_parser("rules", help="rule unit tests in promtool's format")
    t.add_argument("files", nargs="+", metavar="FILE", help="test files (promtool format)")
    t.set_defaults(func=_cmd_test_rules)

    p = subparsers.add_parser(
        "export-rules", help="print the config's rules for a central Prometheus"
    )
    p.add_argument("-c", "--config", required=True, help="config file (YAML)")
    p.add_argument(
        "--format",
        choices=["prometheus", "prometheusrule"],
        default="prometheus",
        help="a Prometheus rule file, or a prometheus-operator PrometheusRule resource",
    )
    p.add_argument("--name", default="chatwatch-rules", help="PrometheusRule metadata.name")
    p.add_argument("--namespace", default=None, help="PrometheusRule metadata.namespace")
    p.add_argument("-o", "--output", default="-", help="file to write (default: stdout)")
    p.set_defaults(func=_cmd_export)

    p = subparsers.add_parser(
        "replay", help="replay logs in their own time and print the alerts they raise"
    )
    p.add_argument("-c", "--config", required=True, help="config file (YAML)")
    p.add_argument("logs", nargs="+", metavar="LOG", help="log files (.gz allowed; - is stdin)")
    p.add_argument(
        "--timestamp-field",
        default=None,
        help="event field holding the time (dots nest); default: the first of ts, time, "
        "timestamp, @timestamp that the event has (cri/docker logs carry `time`)",
    )
    p.add_argument(
        "--timestamp-format",
        default="auto",
        help="rfc3339, unix, unix_ms, a strptime format such as '%%d/%%b/%%Y:%%H:%%M:%%S %%z', "
        "or auto (numbers: unix seconds or ms; text: ISO 8601, UTC unless it says otherwise)",
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
    p.set_defaults(func=_cmd_replay)


# -------------------------------------------------------------------------------------
# chatwatch check: rule files


def check_rule_files(cfg: Config) -> list[str]:
    """`chatwatch check`: every problem in the config's rule files."""
    try:
        groups = load_rule_files(cfg.rule_files, base_dir=cfg.base_dir)
    except RuleError as exc:
        return exc.problems
    configured = {m.name for m in cfg.metrics}
    problems = []
    for g in groups:
        for r in g.recording_rules():
            if r.name in configured:
                problems.append(
                    f"{g.file}: group {g.name!r}: recording rule {r.name!r}: the name is a "
                    "metric defined in metrics:; choose another name"
                )
    return problems


def _install_check() -> None:
    from agent import check

    if check_rule_files not in check.CHECKS:
        check.CHECKS.append(check_rule_files)


_install_check()


# -------------------------------------------------------------------------------------
# chatwatch test rules


def _cmd_test_rules(args: argparse.Namespace) -> int:
    from agent.alerting.ruletest import run_tests

    return run_tests(list(args.files))


# -------------------------------------------------------------------------------------
# chatwatch export-rules


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (long expressions, annotations) as YAML literal blocks."""


def _str_representer(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_Dumper.add_representer(str, _str_representer)


def exported_groups(groups: Sequence[RuleGroup]) -> list[dict[str, Any]]:
    """The groups as written, without chatwatch's extension keys (`cooldown`)."""
    names: dict[str, str] = {}
    out = []
    for g in groups:
        if g.name in names and names[g.name] != g.file:
            raise RuleError(
                [
                    f"{g.file}: group {g.name!r}: also defined in {names[g.name]}; group names "
                    "must be unique to export them as one file"
                ]
            )
        names[g.name] = g.file
        source = dict(g.source)
        source["rules"] = [
            {k: v for k, v in rule.items() if k not in EXTENSION_KEYS}
            for rule in (source.get("rules") or [])
        ]
        out.append(source)
    return out


def export_rules(
    groups: Sequence[RuleGroup],
    fmt: str = "prometheus",
    name: str = "chatwatch-rules",
    namespace: str | None = None,
) -> str:
    """YAML for a central Prometheus: a rule file, or a PrometheusRule resource."""
    doc: dict[str, Any] = {"groups": exported_groups(groups)}
    if fmt == "prometheusrule":
        metadata: dict[str, Any] = {"name": name}
        if namespace:
            metadata["namespace"] = namespace
        metadata["labels"] = {"app.kubernetes.io/managed-by": "chatwatch"}
        doc = {
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "PrometheusRule",
            "metadata": metadata,
            "spec": doc,
        }
    text: str = yaml.dump(
        doc, Dumper=_Dumper, sort_keys=False, allow_unicode=True, default_flow_style=False
    )
    return text


def _load_config_and_rules(path: str) -> tuple[Config, list[RuleGroup]]:
    cfg = load(path)
    # The live agent's external URL: templates ($externalURL) and generatorURL see it.
    external_url = cfg.server.advertised_url
    return cfg, load_rule_files(cfg.rule_files, base_dir=cfg.base_dir, external_url=external_url)


def _cmd_export(args: argparse.Namespace) -> int:
    try:
        cfg, groups = _load_config_and_rules(args.config)
        text = export_rules(groups, args.format, args.name, args.namespace)
    except (ConfigError, RuleError) as exc:
        for p in exc.problems:
            print(p, file=sys.stderr)
        return 1
    if not groups and not cfg.rule_files:
        print(f"{args.config}: rule_files is empty; nothing to export", file=sys.stderr)
    if args.output == "-":
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text, encoding="utf-8")
    return 0


# -------------------------------------------------------------------------------------
# chatwatch replay


def timestamp_parser(fmt: str) -> Callable[[Any], float | None]:
    """A function from a field value to Unix seconds (None when it cannot be read)."""
    if fmt == "auto":
        from agent.extract import event_time

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
    if fmt in ("unix", "unix_ms"):
        scale = 1.0 if fmt == "unix" else 0.001

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
    raise ValueError(
        f"--timestamp-format: expected rfc3339, unix, unix_ms, auto or a strptime format "
        f"with % directives, got {fmt!r}"
    )


DEFAULT_TIMESTAMP_FIELDS = ("ts", "time", "timestamp", "@timestamp")


def _first_field(event: Mapping[str, Any]) -> Any:
    for name in DEFAULT_TIMESTAMP_FIELDS:
        value = event.get(name)
        if value is not None:
            return value
    return None


def _field_getter(path: str | None) -> Callable[[Mapping[str, Any]], Any]:
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
        from agent.alerting.history import History
        from agent.alerting.manager import RuleManager, required_retention
        from agent.extract import Extractor
        from agent.selfmetrics import SelfMetrics
        from agent.store import Store

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
        self.selfstats = SelfMetrics()
        self.store = Store(self.selfstats)
        self.extractor = Extractor(cfg.metrics, self.store, self.selfstats, clock=self._clock)
        self.history = History(retention=required_retention(groups, self.interval))
        self.timeline: list[TimelineEntry] = []
        self.manager = RuleManager(
            groups,
            self.history,
            store=self.store,
            stats=self.selfstats,
            notify=self._notified,
            evaluation_interval=self.interval,
        )
        self._ts_of_value = timestamp_parser(timestamp_format)
        self._get_ts = _field_getter(timestamp_field)
        self.on_entry: Callable[[TimelineEntry], None] | None = None
        self.show_pending = False
        self.dispatcher: Dispatcher | None = None
        if notifications:
            from agent.notify.notifier import build_dispatcher

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
        from agent.decode import make_decoder
        from agent.events import Origin

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
        extractor = self.extractor
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
                    extractor(origin, events[i:j])
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
        extractor = self.extractor
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
                extractor(origins[idx], batch)
                batches[idx] = []
            self.stats.last_ts = ts
        self._flush(batches, origins)

    def _flush(self, batches: dict[int, list[dict[str, Any]]], origins: list[Any]) -> None:
        for idx, batch in batches.items():
            if batch:
                self.extractor(origins[idx], batch)
        batches.clear()

    def _evaluate(self, now: float) -> None:
        dispatcher = self.dispatcher
        if dispatcher is not None:
            self._flush_due_before(now)
        self.now = now
        self.store.expire(now)
        self.history.append(now, self.store.snapshot(), self.store.take_created())
        self.manager.evaluate(now)
        self.stats.evaluations += 1
        for change in self.manager.last_changes:
            a = change.alert
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
        from prometheus_client import CollectorRegistry, generate_latest

        from agent.exposition import collector
        from agent.selfmetrics import SelfMetrics

        registry = CollectorRegistry()
        registry.register(collector(self.store, SelfMetrics()))
        return generate_latest(registry).decode()


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
    from agent.alerting.template import go_float
    from agent.configtypes import format_duration

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


def _cmd_replay(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    try:
        cfg, groups = _load_config_and_rules(args.config)
    except (ConfigError, RuleError) as exc:
        for p in exc.problems:
            print(p, file=sys.stderr)
        return 1
    try:
        interval = None
        if args.evaluation_interval:
            from agent.configtypes import parse_duration

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
    replay.on_entry = lambda e: print(format_entry(e), file=out, flush=False)
    width = max((len(t) for t in replay.notify_targets), default=0)
    replay.on_notification = lambda e: print(format_notification(e, width), file=out, flush=False)
    for path in args.logs:
        if path != "-" and not Path(path).is_file():
            print(f"chatwatch replay: {path}: no such file", file=sys.stderr)
            return 2
    stats = replay.run(args.logs)
    for a in replay.still_firing():
        print(f"{'(end)':<24}  {'FIRING':<8}  {_labels_text(a.labels)}  still firing", file=out)
    span = (stats.last_ts or 0.0) - (stats.first_ts or 0.0)
    print(file=out)
    print(
        f"# replayed {stats.lines} lines ({stats.events} events) spanning "
        f"{_span(span)} in {stats.wall_seconds:.1f}s: {stats.evaluations} evaluations, "
        f"{stats.fired} alerts fired, {stats.resolved} resolved",
        file=out,
    )
    skipped = []
    if stats.decode_errors:
        skipped.append(f"{stats.decode_errors} lines could not be decoded")
    if stats.no_timestamp:
        field_name = args.timestamp_field or "/".join(DEFAULT_TIMESTAMP_FIELDS)
        skipped.append(f"{stats.no_timestamp} events had no usable {field_name!r}")
    if stats.out_of_order:
        skipped.append(f"{stats.out_of_order} events were out of order (taken at the latest time)")
    for s in skipped:
        print(f"# {s}", file=out)
    if args.notifications:
        for line in _notifications_summary(cfg, replay):
            print(line, file=out)
    if not args.no_metrics:
        print(file=out)
        out.write(replay.metrics_text())
    out.flush()
    return 0


def _span(seconds: float) -> str:
    from agent.configtypes import format_duration

    return format_duration(round(seconds)) if seconds >= 1 else f"{seconds:.3f}s"
