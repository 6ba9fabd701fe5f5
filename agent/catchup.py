"""Catch-up: what was written while chatwatch was down, read in the log's own time.

After a restart the files hold what was written since the checkpoint: the backlog.
Counted as it is read, an hour of it lands in the first second (a rate spike), and
`increase()` never sees it arrive (the history starts after it). For sources that name
their event time (`timestamp:`), the agent reads the backlog the way `chatwatch replay`
reads a log instead: events in time order, the history built and the rules evaluated on
the evaluation grid at the events' own times, from the checkpoint's instant on. Then
it evaluates once at the wall clock and tails live (agent/app.py).

- Order. Each file's events keep their file order: an event older than the one before
  it, or with no readable time, is taken at the time of the one before. The files of
  every source read this way are merged by time: an event is fed once every file that
  still has backlog to read has got past its time.
- Time. Evaluations run on the grid (multiples of `evaluation_interval`) from just
  before the checkpoint's instant (or the first event, if earlier) to the instant the
  agent started; an event is counted before the evaluation at or after its time, as
  replay does. Once nothing has happened for longer than any rule can look back (the
  history's retention, plus `for` and `keep_firing_for`), evaluations skip ahead to just
  before the next event: nothing a rule reads changes in between.
- Notifications. During catch-up the rules' alerts go nowhere. At its end the live agent
  evaluates at once, and alerts still firing are notified as usual (`startsAt` is when
  they fired, in the log's time). Alerts that fired and resolved within the backlog are
  logged, and `finish()` returns them, for the notifier to send once as resolved
  notifications to integrations with `send_resolved` (Notifier.send_missed).
- Exactly once. The events taken but not fed yet (merging files) are not in the store,
  so no checkpoint is written during catch-up; after `kill -9` the next start catches up
  again from the same checkpoint, and a shutdown during catch-up leaves it as it is too.
"""

from __future__ import annotations

import heapq
import logging
import math
import time
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from agent.alerting.alert import Alert
from agent.alerting.alerting_rule import ActiveAlert
from agent.alerting.api import rfc3339
from agent.decode.events import Event, Origin, Sink
from agent.decode.timestamps import event_time_reader
from agent.pipeline import Pipeline
from agent.sources.checkpoint import Checkpoints
from agent.sources.config import SourceConfig
from agent.sources.tail import FileSource
from agent.support.selfmetrics import SelfMetrics

log = logging.getLogger("chatwatch.catchup")

LabelKey = tuple[tuple[str, str], ...]


class LogClock:
    """The pipeline's clock: the log's time during catch-up, the wall clock otherwise
    (what a new series' creation time and an idle series' last update are taken from)."""

    __slots__ = ("now",)

    def __init__(self) -> None:
        self.now: float | None = None

    def __call__(self) -> float:
        now = self.now
        return time.time() if now is None else now


@dataclass(slots=True)
class _Stream:
    """The events of one file taken but not fed yet, with their times (never going back)."""

    origin: Origin
    clock: float = -math.inf
    times: list[float] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)


@dataclass(slots=True)
class CatchUpStats:
    events: int = 0
    no_timestamp: int = 0
    out_of_order: int = 0
    evaluations: int = 0
    first_ts: float | None = None
    last_ts: float | None = None
    seconds: float = 0.0


class CatchUp:
    """Feeds the backlog of the sources with a `timestamp:` to the pipeline in log time.

    `sink(src)` is what those sources hand their events to (the live sink once catch-up
    is over); `add(source)` names their FileSources (how much backlog each file still
    has decides how far the merge may go); `finish()` ends it."""

    def __init__(
        self,
        pipeline: Pipeline,
        clock: LogClock,
        stats: SelfMetrics,
        *,
        evaluation_interval: float,
        since: float,
        until: float,
    ) -> None:
        self.pipeline = pipeline
        self.clock = clock
        self.interval = evaluation_interval
        self.since = since
        """The checkpoint's instant: the log time catch-up starts from."""
        self.until = until
        """When the agent started: the backlog ends there, and so does catch-up."""
        self.stats = CatchUpStats()
        self.active = True
        self._started = time.perf_counter()
        self.files: list[FileSource] = []
        """The sources read in log time."""
        self._streams: dict[Origin, _Stream] = {}
        self._step: int | None = None
        """The next evaluation is at `_step * interval` (None before the first)."""
        self._last_event = since
        rules = pipeline.rules
        holds = [r.hold + r.keep_firing_for for g in rules.groups for r in g.alerting_rules()]
        self._settle = pipeline.history.retention + max(holds, default=0.0) + evaluation_interval
        self._fired: dict[LabelKey, ActiveAlert] = {}
        """Alerts that started firing during catch-up, by labels."""
        self._missed: dict[LabelKey, Alert] = {}
        """Alerts that fired and resolved during catch-up (the last time, per labels)."""
        self._live_notify = rules.notify
        rules.notify = _nowhere
        clock.now = since

        self._in_progress = stats.gauge(
            "chatwatch_catchup_in_progress",
            "1 while the backlog written during the downtime is read in its own time.",
        )
        self._events = stats.counter(
            "chatwatch_catchup_events_total",
            "Events read in their own time during catch-up.",
            ("source",),
        )
        self._remaining = stats.gauge(
            "chatwatch_catchup_remaining_bytes",
            "Bytes of backlog left to catch up.",
            ("source",),
        )
        self._position = stats.gauge(
            "chatwatch_catchup_log_time_seconds",
            "The log time catch-up has evaluated up to (Unix seconds).",
        )
        self._duration = stats.gauge(
            "chatwatch_catchup_duration_seconds", "How long the last catch-up took."
        )
        self._missed_total = stats.counter(
            "chatwatch_catchup_alerts_resolved_total",
            "Alerts that fired and resolved within the backlog (during the downtime).",
        )
        self._in_progress.set((), 1.0)

    # -- taking events -------------------------------------------------------------------

    def sink(self, src: SourceConfig, live: Sink) -> Sink:
        """The sink of source `src` (which has a `timestamp`): its events in log time
        while catching up, to `live` afterwards."""
        assert src.timestamp is not None
        ts_of = event_time_reader(src.timestamp.field, src.timestamp.format)
        label = (src.name,)
        counter = self._events

        def take(origin: Origin, events: list[Event]) -> None:
            if not self.active:
                live(origin, events)
                return
            counter.inc(label, len(events))
            self._take(origin, events, ts_of)
            self._merge(final=False)
            self._show_remaining()

        return take

    def add(self, source: FileSource) -> None:
        """A file source read in log time (its sink is `sink(...)`): until each has scanned
        its files, nothing is fed (a file not opened yet may hold older events)."""
        self.files.append(source)

    def _take(
        self,
        origin: Origin,
        events: list[Event],
        ts_of: Callable[[Mapping[str, Any]], float | None],
    ) -> None:
        stream = self._streams.get(origin)
        if stream is None:
            stream = self._streams[origin] = _Stream(origin)
        stats = self.stats
        clock = stream.clock
        until = self.until
        times = stream.times
        for event in events:
            ts = ts_of(event)
            if ts is None:
                stats.no_timestamp += 1
                ts = clock if clock != -math.inf else self.since
            elif ts < clock:
                stats.out_of_order += 1
                ts = clock
            elif ts > until:
                ts = until  # written after start (or a clock ahead): no later than now
            clock = ts
            times.append(ts)
        stream.clock = clock
        stream.events.extend(events)
        stats.events += len(events)

    def _watermark(self) -> float:
        """Events up to this time may be fed: every file with backlog left is past it."""
        if not all(f.opened.is_set() for f in self.files):
            return -math.inf
        mark = math.inf
        for f in self.files:
            for origin, left in f.backlog().items():
                if left > 0:
                    stream = self._streams.get(origin)
                    mark = min(mark, stream.clock if stream is not None else -math.inf)
        return mark

    def _merge(self, final: bool) -> None:
        """Feed what every file has got past (everything, when `final`), in time order."""
        mark = math.inf if final else self._watermark()
        ready = [s for s in self._streams.values() if s.times and s.times[0] <= mark]
        if not ready:
            return
        if len(ready) == 1:  # one file (or one with events in reach): no merge needed
            s = ready[0]
            n = len(s.times) if mark == math.inf else bisect_right(s.times, mark)
            times, events = s.times[:n], s.events[:n]
            del s.times[:n], s.events[:n]
            self._feed_sorted(times, events, s.origin)
            return
        runs: list[Iterable[tuple[float, int, Event]]] = []
        for i, s in enumerate(ready):
            n = len(s.times) if mark == math.inf else bisect_right(s.times, mark)
            runs.append(zip(s.times[:n], [i] * n, s.events[:n], strict=True))
            del s.times[:n], s.events[:n]
        batch_times: list[float] = []
        batch: list[Event] = []
        current = -1
        for ts, i, event in heapq.merge(*runs, key=lambda x: (x[0], x[1])):
            if i != current and batch:
                self._feed_sorted(batch_times, batch, ready[current].origin)
                batch_times, batch = [], []
            current = i
            batch_times.append(ts)
            batch.append(event)
        if batch:
            self._feed_sorted(batch_times, batch, ready[current].origin)

    # -- log time ------------------------------------------------------------------------

    def _feed_sorted(self, times: list[float], events: list[Event], origin: Origin) -> None:
        """Feed events whose times never go back, evaluating at each grid point passed."""
        if not times:
            return
        stats = self.stats
        if stats.first_ts is None:
            stats.first_ts = times[0]
        stats.last_ts = times[-1]
        feed = self.pipeline.feed
        interval = self.interval
        n = len(times)
        i = 0
        while i < n:
            self._evaluate_before(times[i])
            assert self._step is not None
            j = bisect_right(times, self._step * interval, i)
            self.clock.now = last = times[j - 1]
            feed(origin, events[i:j])
            if last > self._last_event:
                self._last_event = last
            i = j

    def _evaluate_before(self, ts: float) -> None:
        """Evaluate at every grid point before `ts` not evaluated yet."""
        interval = self.interval
        if self._step is None:
            # The first evaluation, just before anything happened: the checkpoint's
            # values (and what sources without a timestamp read) as they were then.
            self._step = math.ceil(min(self.since, ts) / interval) - 1
            self._tick()
        while self._step * interval < ts:
            if self._step * interval > self._last_event + self._settle:
                # Quiet for longer than any rule looks back: skip to just before `ts`.
                self._step = max(self._step, math.ceil(ts / interval) - 1)
            self._tick()

    def _tick(self) -> None:
        assert self._step is not None
        now = self._step * self.interval
        self._step += 1
        self.clock.now = now
        self.pipeline.tick(now)
        self.stats.evaluations += 1
        self._position.set((), now)
        for change in self.pipeline.rules.last_changes:
            alert = change.alert
            key = tuple(sorted(alert.labels.items()))
            if change.new == "firing":
                self._fired[key] = alert
                self._missed.pop(key, None)  # firing again: told as firing, if at all
            elif change.new == "resolved" and self._fired.pop(key, None) is not None:
                rule = change.rule
                missed = self._missed[key] = (
                    alert.to_alert(rule.generator_url, rule.cooldown)
                    if rule is not None
                    else alert.to_alert()
                )
                assert missed.ends_at is not None
                log.warning(
                    "alert fired and resolved while chatwatch was down",
                    extra={
                        "alertname": missed.name,
                        "labels": missed.labels,
                        "starts_at": rfc3339(missed.starts_at),
                        "ends_at": rfc3339(missed.ends_at),
                    },
                )
                self._missed_total.inc()

    # -- the end -------------------------------------------------------------------------

    def finish(self) -> list[Alert]:
        """Feed what is left, evaluate up to the instant the agent started, and hand the
        rules back to the live notifier. Returns the alerts that fired and resolved
        within the backlog (each episode was logged when it resolved), the last episode
        of each alert, unless it fired again and still fires."""
        if not self.active:
            return []
        self._merge(final=True)
        end = min(self.until, self._last_event + self._settle)
        self._evaluate_before(end)
        self.active = False
        self.clock.now = None
        self.pipeline.rules.notify = self._live_notify
        stats = self.stats
        stats.seconds = time.perf_counter() - self._started
        self._in_progress.set((), 0.0)
        self._duration.set((), stats.seconds)
        self._show_remaining()
        missed = list(self._missed.values())
        log.info(
            "caught up with the backlog in its own time",
            extra={
                "events": stats.events,
                "seconds": round(stats.seconds, 3),
                "from": rfc3339(stats.first_ts) if stats.first_ts is not None else None,
                "to": rfc3339(stats.last_ts) if stats.last_ts is not None else None,
                "evaluations": stats.evaluations,
                "no_timestamp": stats.no_timestamp,
                "out_of_order": stats.out_of_order,
                "resolved_while_down": len(missed),
            },
        )
        return missed

    def _show_remaining(self) -> None:
        for f in self.files:
            self._remaining.set((f.cfg.name,), float(sum(f.backlog().values())))


def _nowhere(alerts: list[Alert], now: float) -> None:
    """The rules' alerts during catch-up: what still fires at its end is sent then."""


def in_log_time(src: SourceConfig, checkpoints: Checkpoints) -> bool:
    """Whether a restart reads the backlog of `src` in log time: it names its timestamp,
    reads files, and was read before (it has checkpoints: on a first run `start_at`
    applies and what is read at start is counted as it is read)."""
    return src.timestamp is not None and not src.stdin and bool(checkpoints.for_source(src.name))
