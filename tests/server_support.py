"""Shared pieces of the server tests: handlers with real collectors, a running server."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from agent.server.config import ServerConfig
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
    """What agent.app hands the server, with knobs the tests turn."""

    def __init__(self, collectors: list[Collector] | None = None) -> None:
        self.stats = SelfMetrics()
        self.lines = self.stats.counter("chatwatch_lines_read_total", "Lines read.", ("source",))
        self.lines.inc(("chatbot",), 3)
        self.collectors: list[Collector] = collectors if collectors is not None else [self.stats]
        self.ready = False
        self.reload_result: tuple[str, str] | BaseException = ("ok", "config reloaded")
        self.reloads = 0
        self.alerts: dict[str, Any] = {"alerts": []}
        self.rules: dict[str, Any] = {"groups": []}

    def is_ready(self) -> bool:
        return self.ready

    async def reload(self) -> tuple[str, str]:
        self.reloads += 1
        if isinstance(self.reload_result, BaseException):
            raise self.reload_result
        return self.reload_result

    def alerts_api(self) -> dict[str, Any]:
        return self.alerts

    def rules_api(self) -> dict[str, Any]:
        return self.rules


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
