"""Helpers for the metrics tests: a pipeline from events to the text a scrape returns."""

from __future__ import annotations

import subprocess
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from agent.decode.events import Event, Origin
from agent.metrics.config import MetricConfig
from agent.metrics.exposition import Exposition
from agent.metrics.extract import Extractor
from agent.metrics.store import Store
from agent.support.selfmetrics import SelfMetrics

ORIGIN = Origin("chatbot", "/var/log/chatbot/app.log")


class Pipeline:
    """Extractor -> Store -> exposition, with a clock the test moves."""

    def __init__(self, *metrics: dict[str, Any] | MetricConfig, now: float = 1_000_000.0) -> None:
        self.now = now
        self.stats = SelfMetrics()
        self.store = Store(self.stats)
        self.extractor = Extractor(
            [m if isinstance(m, MetricConfig) else MetricConfig.model_validate(m) for m in metrics],
            self.store,
            self.stats,
            clock=lambda: self.now,
        )
        self.exposition = Exposition(self.store, self.stats, runtime=False)

    def feed(self, *events: Event, origin: Origin = ORIGIN) -> None:
        self.extractor(origin, list(events))

    def text(self) -> str:
        return self.exposition.text()

    def openmetrics(self) -> str:
        return self.exposition.openmetrics()

    def samples(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        """What a scraper parses from the text format: (name, labels) -> value."""
        out = {}
        for fam in text_string_to_metric_families(self.text()):
            for s in fam.samples:
                out[(s.name, frozenset(s.labels.items()))] = s.value
        return out

    def value(self, name: str, **labels: str) -> float | None:
        return self.samples().get((name, frozenset(labels.items())))

    def lines(self, prefix: str) -> list[str]:
        return [line for line in self.text().splitlines() if line.startswith(prefix)]


def promtool_check(text: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["promtool", "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
