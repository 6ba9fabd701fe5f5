"""The running agent: wires the stages, owns every long-running task, signals and reload.

sources -> decode -> Pipeline (extract, store, history, rules) -> Notifier: the sources
feed the pipeline, and every evaluation_interval on the wall-clock grid the pipeline
ticks, handing alerts to the Notifier. At start the files are read up to where they
ended (after a restart: what was written meanwhile, in the log's own time where the
source names its timestamp: agent/catchup.py) before live tailing and the evaluations
begin (`_go_live`). All long-running work (sources, server, rule
ticks, checkpoints, notifier, reloads) is a task in one TaskGroup, so shutdown happens
in one place:
`stop()` stops the sources (they hand on what they read) and the notifier's deliveries,
the last checkpoint is written (offsets, metric values, alerts and notifications of one
instant: agent/state.py), and the remaining tasks are cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from typing import Any

from prometheus_client.registry import Collector

from agent.alerting.rule_file import RuleError
from agent.catchup import CatchUp, LogClock, in_log_time
from agent.config import Config, ConfigError, load
from agent.decode.events import Event, Origin, Sink
from agent.early import Evaluations
from agent.metrics.exposition import collector
from agent.notify.api import AlertmanagerAPI
from agent.notify.notifier import Notifier
from agent.pipeline import Pipeline, load_rules
from agent.server import tls
from agent.server.config import ServerError
from agent.server.handlers import ReloadStatus
from agent.server.pages.views import (
    AgentStatus,
    GroupView,
    HistoryWindow,
    RangeResult,
    RunningConfig,
)
from agent.server.serve import Server
from agent.sources.checkpoint import Checkpoints
from agent.sources.config import SourceConfig
from agent.sources.stdin import StdinSource
from agent.sources.tail import FileSource
from agent.state import AgentState, CheckpointFile
from agent.status import (
    SourceActivity,
    agent_status,
    history_window,
    range_query,
    rule_groups,
    running_config,
)
from agent.support.selfmetrics import SelfMetrics

log = logging.getLogger("chatwatch")

SHUTDOWN_GRACE = 4.0
"""Seconds `stop()` gives the sources to hand on what they read (SIGTERM must exit in 5 s)."""
RECOUNT_LIMIT = 60.0
"""Seconds after a restart that scrapes wait at most for the lines since the checkpoint to
be counted again (see `values_current`); past it values are shown as they are."""


def resolve_sources(cfg: Config) -> list[SourceConfig]:
    """Source globs relative to the config file's folder, as Prometheus does for rule_files."""
    out = []
    for src in cfg.sources:
        paths = [str(cfg.resolve(p)) for p in src.paths]
        exclude = [str(cfg.resolve(p)) for p in src.exclude]
        out.append(src.model_copy(update={"paths": paths, "exclude": exclude}))
    return out


class Agent:
    def __init__(self, config_path: str, cfg: Config, *, install_signals: bool = True) -> None:
        self.config_path = config_path
        self.cfg = cfg
        self.install_signals = install_signals
        self.started_at = time.time()
        self.stats = SelfMetrics()
        self.activity = SourceActivity(self.stats)
        """Lines/s and last line of each source, for the overview page."""
        self.reload_problems: list[str] = []
        """Why the last reload failed (shown on the overview page); empty after a good one."""
        self._reload_ok = self.stats.gauge(
            "chatwatch_config_last_reload_successful", "Whether the last config load succeeded."
        )
        self._reload_ts = self.stats.gauge(
            "chatwatch_config_last_reload_success_timestamp_seconds",
            "Unix time of the last successful config load.",
        )
        self._reloads = self.stats.counter(
            "chatwatch_config_reloads_total", "Config reloads attempted, by result.", ("result",)
        )
        self._unwritable: set[str] = set()
        """State files whose last write failed."""
        self._reload_ok.set((), 1.0)
        self._reload_ts.set((), time.time())

        self.checkpoints = Checkpoints(cfg.checkpoint_path, self.stats)
        self.notifier = Notifier(
            cfg.alerting,
            cfg.resolve(cfg.state_dir),
            self.stats,
            cfg.server.advertised_url,
            checkpoint=self._checkpoint_soon,
        )
        self.alertmanager_api = AlertmanagerAPI(self.notifier, self.started_at)
        """Alertmanager's API v2 (silences, alerts) for amtool and Grafana."""
        self.clock = LogClock()
        """The pipeline's clock: the log's time while catching up (agent/catchup.py)."""
        self.pipeline = Pipeline(
            cfg.metrics,
            load_rules(cfg),
            stats=self.stats,
            notify=self.notifier.send,
            evaluation_interval=cfg.evaluation_interval,
            clock=self.clock,
        )
        self.evaluations = Evaluations(
            lambda now, early: self.pipeline.tick(now, early=early),
            cfg.evaluation_interval,
            lambda: self.pipeline.rules.evaluates_early,
        )
        """Rule evaluations on the grid, and early after new samples (agent/early.py)."""
        self.state = AgentState(
            CheckpointFile(cfg.checkpoint_path, cfg.resolve(cfg.state_dir)),
            self.stats,
            self.checkpoints,
            self.pipeline.store,
            self.pipeline.rules,
            self.notifier,
        )
        """The checkpoint: offsets, metric values, alerts and notifications of one instant."""
        self._checkpoint_wanted = asyncio.Event()
        self._values_current = asyncio.Event()
        self.sources: list[FileSource | StdinSource] = []
        self.collectors: list[Collector] = [collector(self.pipeline.store, self.stats)]
        self._stop = asyncio.Event()
        self._live = asyncio.Event()
        """Set once the backlog found at start is read and the sources tail live."""
        self.catchup: CatchUp | None = None
        self._reload_lock = asyncio.Lock()
        self.server_started = asyncio.Event()
        self.server = Server(cfg.server, self, base_dir=cfg.base_dir)
        self._tg: asyncio.TaskGroup | None = None

    # -- ServerHandlers ----------------------------------------------------------------

    def is_ready(self) -> bool:
        """Every source open, and the state writable: an agent that cannot save its
        checkpoints or alerts would count twice or page anew after a restart."""
        return (
            self._live.is_set()
            and all(s.opened.is_set() for s in self.sources)
            and not self._unwritable
            and self.notifier.state_ok
        )

    async def reload(self) -> tuple[ReloadStatus, str]:
        """`POST /-/reload`: sources restart live, so not while the backlog is read; the
        request is answered at once (503) rather than held for the whole catch-up."""
        if not self._live.is_set():
            return "not_ready", "still reading the backlog found at start; reload once ready"
        async with self._reload_lock:
            return await self._reload()

    async def _reload_when_live(self) -> None:
        """SIGHUP: nobody waits for an answer, so a reload asked for during catch-up runs
        once it is done."""
        await self._live.wait()
        async with self._reload_lock:
            await self._reload()

    async def values_current(self, timeout: float) -> bool:
        """Wait (at most `timeout`) until the metric values may be shown.

        After a restart the store holds the checkpoint's values, which may be lower than
        what /metrics showed just before (the lines since the checkpoint were counted
        then and are counted again now): a scrape in between would see counters go
        back, a reset to Prometheus. Scrapes wait until every file was read to its end."""
        if not self._values_current.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._values_current.wait()
        return self._values_current.is_set()

    def alerts_api(self) -> dict[str, Any]:
        return self.pipeline.rules.alerts_api()

    def rules_api(self) -> dict[str, Any]:
        return self.pipeline.rules.rules_api()

    def status(self) -> AgentStatus:
        return agent_status(self, resolve_sources(self.cfg), time.time())

    def rule_groups(self) -> list[GroupView]:
        return rule_groups(self.pipeline.rules)

    def history(self) -> HistoryWindow:
        return history_window(self, time.time())

    def query_range(self, expr: str, start: float, end: float, step: float) -> RangeResult:
        return range_query(self, expr, start, end, step)

    def running_config(self) -> RunningConfig:
        return running_config(self.cfg, self.config_path)

    # -- lifecycle -----------------------------------------------------------------------

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        if self.install_signals:
            loop.add_signal_handler(signal.SIGTERM, self.stop)
            loop.add_signal_handler(signal.SIGINT, self.stop)
            loop.add_signal_handler(signal.SIGHUP, self._reload_soon)
        timestamped = [s.name for s in self.cfg.sources if s.timestamp is not None]
        saved = self.state.restore(time.time(), log_time=timestamped)
        try:
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                self.catchup = self._catch_up(saved.saved_at)
                self._start_sources(tg, self.cfg, self.catchup)
                tg.create_task(self._go_live(tg), name="backlog")
                tg.create_task(self._recount(), name="recount")
                tg.create_task(
                    self.server.run(self.server_started),
                    name="server",
                )
                tg.create_task(self._checkpoint_forever(), name="checkpoints")
                tg.create_task(self.notifier.run(), name="notifier")
                log.info(
                    "chatwatch started",
                    extra={"listen": self.cfg.server.listen, "sources": len(self.sources)},
                )
                await self._stop.wait()
                await self._shutdown()
                raise _Stopped
        except* _Stopped:
            pass
        log.info("chatwatch stopped")
        return 0

    async def _shutdown(self) -> None:
        log.info("shutting down")
        await self._stop_sources()
        try:  # deliveries in flight stay queued, in the checkpoint
            await asyncio.wait_for(self.notifier.stop(), timeout=1.0)
        except TimeoutError:
            log.warning("notifier not stopped before the shutdown deadline")
        if self.catchup is not None and self.catchup.active:
            # Stopped while catching up: the checkpoint catch-up started from stays as it
            # is, and the next start reads the same backlog again, as after kill -9. What
            # was read meanwhile is not half in the store and half in a merge buffer with
            # its offsets committed, and alerts, offsets and values stay of one instant.
            log.info("stopped while catching up; the checkpoint is kept as it was")
            return
        await self._save_checkpoint()

    def _start_sources(
        self, tg: asyncio.TaskGroup, cfg: Config, catchup: CatchUp | None = None
    ) -> None:
        """Start the sources; at start (not live yet) held at their backlog, which
        `_go_live` reads, and stdin only once live."""
        self.sources = []
        starting = not self._live.is_set()
        for src in resolve_sources(cfg):
            source: FileSource | StdinSource
            feed: Sink = self._feed
            caught_up = catchup is not None and in_log_time(src, self.checkpoints)
            if catchup is not None and caught_up:
                feed = catchup.sink(src, feed)
            sink = self.activity.sink(src.name, feed)
            if src.stdin:
                source = StdinSource(src, sink, self.stats)
            else:
                source = FileSource(src, sink, self.checkpoints, self.stats)
                if starting:
                    source.hold_at_start(read_backlog=not caught_up)
                if catchup is not None and caught_up:
                    catchup.add(source)
            self.sources.append(source)
            if not (starting and src.stdin):
                tg.create_task(source.run(), name=f"source:{src.name}")

    def _catch_up(self, saved_at: float | None) -> CatchUp | None:
        """A catch-up in log time when some source names its timestamp and was read
        before the restart (agent/catchup.py); None otherwise."""
        if not any(in_log_time(s, self.checkpoints) for s in self.cfg.sources):
            return None
        now = time.time()
        return CatchUp(
            self.pipeline,
            self.clock,
            self.stats,
            evaluation_interval=self.cfg.evaluation_interval,
            since=saved_at if saved_at is not None else now,
            until=now,
        )

    async def _go_live(self, tg: asyncio.TaskGroup) -> None:
        """Read the backlog the files held at start, evaluate once, then tail live.

        Sources without a timestamp read theirs first, counted as it is read, as before
        catch-up existed; then those with one, in the log's own time (`self.catchup`).
        The evaluation at the end comes before any line read live, so each of those is
        new to the history (its series gets its created zero) and alerts."""
        catchup = self.catchup
        caught_up = catchup.files if catchup is not None else []
        files = [s for s in self.sources if isinstance(s, FileSource)]
        await asyncio.gather(*(s.backlog_read.wait() for s in files if s not in caught_up))
        if catchup is not None:
            for source in caught_up:
                source.read_backlog()
            await asyncio.gather(*(s.backlog_read.wait() for s in caught_up))
            if self._stop.is_set():
                return
            missed = catchup.finish()
            self.notifier.send_missed(missed, time.time())
        if self._stop.is_set():
            return
        self.pipeline.tick(time.time())
        for s in self.sources:
            if isinstance(s, FileSource):
                s.release()
            else:
                tg.create_task(s.run(), name=f"source:{s.cfg.name}")
        self._live.set()
        tg.create_task(self._evaluate_forever(), name="rules")

    async def _stop_sources(self) -> None:
        stops = [s.stop() for s in self.sources]
        try:
            await asyncio.wait_for(asyncio.gather(*stops), timeout=SHUTDOWN_GRACE)
        except TimeoutError:
            log.warning("sources did not stop in time; saving checkpoints of what was handed on")

    async def _recount(self) -> None:
        """Scrapes may show values once the lines since the checkpoint are counted again
        (`values_current`): at once when no values were restored."""
        if self.state.restored_values:
            files = [s.caught_up.wait() for s in self.sources if isinstance(s, FileSource)]
            try:
                async with asyncio.timeout(RECOUNT_LIMIT):
                    await self._live.wait()  # (catch-up counts the backlog in log time)
                    await asyncio.gather(*files)
            except TimeoutError:
                log.warning(
                    "files not read to their end %.0f s after the restart; /metrics shows "
                    "the values as they are (counters may look reset to Prometheus)",
                    RECOUNT_LIMIT,
                )
        self._values_current.set()

    def _checkpoint_soon(self) -> None:
        """The notifier has something to keep: write a checkpoint now, not at the interval
        (at shutdown the last one is written anyway, once everything has stopped)."""
        if not self._stop.is_set():
            self._checkpoint_wanted.set()

    async def _save_checkpoint(self) -> None:
        if await self.state.save():
            self._unwritable.discard("checkpoints")
        else:
            self._unwritable.add("checkpoints")

    async def _checkpoint_forever(self) -> None:
        # The first one once the backlog is read and the files are tailed live: a crash
        # from then on restarts from a whole instant (with `start_at: end`, from the
        # offsets chosen now); one during catch-up, from the checkpoint it started from.
        await self._live.wait()
        while True:
            await self._save_checkpoint()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.cfg.checkpoint.interval):
                    await self._checkpoint_wanted.wait()
            self._checkpoint_wanted.clear()

    async def _evaluate_forever(self) -> None:
        """Every evaluation_interval, on the wall-clock grid: expire, snapshot, evaluate;
        and early, soon after new samples, for the alerts that fire at once."""
        await self.evaluations.run()

    def _feed(self, origin: Origin, events: list[Event]) -> None:
        """The sources' sink: count the events, then let the rules see them soon."""
        self.pipeline.feed(origin, events)
        self.evaluations.samples_arrived()

    # -- reload --------------------------------------------------------------------------

    def _reload_soon(self) -> None:
        """SIGHUP: the reload runs as a task of the agent's TaskGroup, so shutdown awaits it."""
        if self._tg is not None:
            self._tg.create_task(self._reload_when_live(), name="reload")

    async def _reload(self) -> tuple[ReloadStatus, str]:
        """Load the file again; a config that fails validation is logged and the running kept.

        Everything that can be checked is checked before anything is applied: the config,
        the rule files, the server's TLS files."""
        try:
            cfg = load(self.config_path)
            groups = load_rules(cfg)
            tls.server_context(cfg.server, cfg.base_dir)
            self.pipeline.reload(cfg.metrics, groups, cfg.evaluation_interval)
        except (ConfigError, RuleError, ServerError) as exc:
            problems = exc.problems if not isinstance(exc, ServerError) else [str(exc)]
            self._reloads.inc(("failure",))
            self._reload_ok.set((), 0.0)
            self.reload_problems = problems
            log.error(
                "config reload failed; keeping the running config",
                extra={"problems": problems},
            )
            return "failed", "\n".join(problems)
        old = self.cfg
        self.cfg = cfg
        restart = self.server.apply(cfg.server, cfg.base_dir)
        self.notifier.reload(cfg.alerting)
        if resolve_sources(cfg) != resolve_sources(old):
            await self._stop_sources()
            await self._save_checkpoint()
            assert self._tg is not None  # reloads run inside run()
            self._start_sources(self._tg, cfg)
        self._reload_ok.set((), 1.0)
        self._reload_ts.set((), time.time())
        self.reload_problems = []
        if restart:
            self._reloads.inc(("needs_restart",))
            message = f"config reloaded, except {' and '.join(restart)}: that needs a restart"
            log.warning(message, extra={"config": self.config_path, "keys": restart})
            return "needs_restart", message
        self._reloads.inc(("success",))
        log.info("config reloaded", extra={"config": self.config_path})
        return "ok", "config reloaded"


class _Stopped(Exception):
    """Raised inside the TaskGroup to cancel its remaining tasks after a clean shutdown."""
