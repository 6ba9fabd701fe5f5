"""Shared pieces of the server tests: handlers with real collectors, a running server."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from agent.alerting.history import History
from agent.alerting.query import query_range
from agent.notify.api import AlertmanagerAPI
from agent.notify.config import AlertingConfig
from agent.notify.notifier import Notifier
from agent.server.config import ServerConfig
from agent.server.handlers import ReloadStatus
from agent.server.pages.views import (
    AgentStatus,
    AlertCounts,
    GroupView,
    HistoryWindow,
    RangeResult,
    RangeSeries,
    RunningConfig,
    SourceStatus,
)
from agent.server.serve import Server
from agent.support.selfmetrics import SelfMetrics


class SeriesCollector(Collector):
    """A gauge family with `n` series, like the store's collector yields."""

    def __init__(self, name: str, n: int) -> None:
        self.name = name
        self.n = n

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(self.name, "Generated series.", labels=["route", "i"])
        for i in range(self.n):
            family.add_metric([f"/r{i % 50}", str(i)], float(i))
        yield family


class FailingCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        raise RuntimeError("store is broken")
        yield  # pragma: no cover


class Handlers:
    """What agent.app hands the server, with knobs the tests turn.

    `notifier` is a real one (no route, no receivers unless `alerting` says), so the
    Alertmanager API answers from real silences; its state goes to `state_dir`, which is
    only written when a test creates a silence."""

    def __init__(
        self,
        collectors: list[Collector] | None = None,
        state_dir: Path | None = None,
        alerting: AlertingConfig | None = None,
    ) -> None:
        self.stats = SelfMetrics()
        self.lines = self.stats.counter("chatwatch_lines_read_total", "Lines read.", ("source",))
        self.lines.inc(("chatbot",), 3)
        self.collectors: list[Collector] = collectors if collectors is not None else [self.stats]
        self.ready = False
        self.reload_result: tuple[ReloadStatus, str] | BaseException = ("ok", "config reloaded")
        self.reloads = 0
        self.alerts: dict[str, Any] = {"alerts": []}
        self.rules: dict[str, Any] = {"groups": []}
        state = state_dir or Path(tempfile.gettempdir()) / f"chatwatch-unwritten-{id(self)}"
        self.notifier = Notifier(
            alerting or AlertingConfig(), state, self.stats, "http://chatwatch.test:9317"
        )
        self.alertmanager_api = AlertmanagerAPI(self.notifier, started_at=1_700_000_000.0)

    def is_ready(self) -> bool:
        return self.ready

    async def values_current(self, timeout: float) -> bool:
        return True

    async def reload(self) -> tuple[ReloadStatus, str]:
        self.reloads += 1
        if isinstance(self.reload_result, BaseException):
            raise self.reload_result
        return self.reload_result

    def alerts_api(self) -> dict[str, Any]:
        return self.alerts

    def rules_api(self) -> dict[str, Any]:
        return self.rules

    # -- what the web pages ask (agent.server.pages) -------------------------------------
    # A test sets `status_view`, `groups_view` or `config_view`, or adds samples to
    # `samples` (a real History, so /graph evaluates expressions for real); the defaults
    # describe an agent with one quiet source, no rules and an empty history.

    @property
    def samples(self) -> History:
        if "_samples" not in self.__dict__:
            self.__dict__["_samples"] = History(retention=3600)
        history: History = self.__dict__["_samples"]
        return history

    def rule_groups(self) -> list[GroupView]:
        groups: list[GroupView] = self.__dict__.get("groups_view", [])
        return groups

    def status(self) -> AgentStatus:
        view: AgentStatus | None = self.__dict__.get("status_view")
        if view is not None:
            return view
        now = time.time()
        source = SourceStatus(
            "chatbot", "files", ["/var/log/chatbot/*.log"], [], 3, 0, {}, {}, None
        )
        return AgentStatus(
            self.ready, "0.1.0", now - 60, now, "/etc/chatwatch.yaml", True, now - 60, [],
            [source], AlertCounts(),
        )  # fmt: skip

    def history(self) -> HistoryWindow:
        now = time.time()
        return HistoryWindow(now - 600, now, 1.0)

    def query_range(self, expr: str, start: float, end: float, step: float) -> RangeResult:
        kind, first, series = query_range(expr, self.samples, start, end, step)
        return RangeResult(kind, first, end, step, [RangeSeries(*s) for s in series])

    def running_config(self) -> RunningConfig:
        view: RunningConfig | None = self.__dict__.get("config_view")
        return view or RunningConfig("/etc/chatwatch.yaml", "sources: []\n", [])


@contextlib.asynccontextmanager
async def running(
    handlers: Handlers, cfg: ServerConfig | None = None, base_dir: Path | None = None
) -> AsyncIterator[Server]:
    """A real server on 127.0.0.1 (a free port), stopped when the block ends."""
    server = Server(cfg or ServerConfig(listen="127.0.0.1:0"), handlers, base_dir=base_dir)
    started = asyncio.Event()
    task = asyncio.create_task(server.run(started))
    waiter = asyncio.create_task(started.wait())
    done, _ = await asyncio.wait({task, waiter}, timeout=20, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        waiter.cancel()
        task.result()  # raises the startup error
    assert waiter in done, "server did not start within 20 s"
    try:
        yield server
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=20)


@contextlib.asynccontextmanager
async def client_of(
    handlers: Handlers, cfg: ServerConfig | None = None, **client_kw: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client pointed at a running server."""
    async with (
        running(handlers, cfg) as server,
        httpx.AsyncClient(base_url=server.url, **client_kw) as client,
    ):
        yield client
