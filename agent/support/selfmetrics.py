"""chatwatch's own metrics (`chatwatch_*`): plain dicts on the hot path, families on scrape.

Components register what they count at construction (`stats.counter(...)`) and update
it with a dict operation; `/metrics` turns the registry into metric families through a
prometheus_client custom collector. One registry per running agent (tests make their own).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal, TypeVar

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

Labels = tuple[str, ...]


class _Family:
    __slots__ = ("help", "labelnames", "name", "values")
    kind: Literal["counter", "gauge", "histogram"]

    def __init__(self, name: str, help: str, labelnames: Labels) -> None:
        self.name = name
        self.help = help
        self.labelnames = labelnames
        self.values: dict[Labels, float] = {}

    def get(self, labels: Labels = ()) -> float:
        return self.values.get(labels, 0.0)

    def remove(self, labels: Labels) -> None:
        self.values.pop(labels, None)


F = TypeVar("F", bound=_Family)


class SelfCounter(_Family):
    kind = "counter"

    def inc(self, labels: Labels = (), amount: float = 1.0) -> None:
        values = self.values
        values[labels] = values.get(labels, 0.0) + amount


class SelfGauge(_Family):
    kind = "gauge"

    def set(self, labels: Labels, value: float) -> None:
        self.values[labels] = value

    def inc(self, labels: Labels = (), amount: float = 1.0) -> None:
        values = self.values
        values[labels] = values.get(labels, 0.0) + amount

    def dec(self, labels: Labels = (), amount: float = 1.0) -> None:
        self.inc(labels, -amount)


class SelfHistogram(_Family):
    """Cumulative buckets per label set; `values` holds the observation count."""

    __slots__ = ("buckets", "series")
    kind = "histogram"

    def __init__(
        self, name: str, help: str, labelnames: Labels, buckets: tuple[float, ...]
    ) -> None:
        super().__init__(name, help, labelnames)
        self.buckets = tuple(sorted(buckets))
        self.series: dict[Labels, list[float]] = {}
        """Per label set: a count per bucket (non-cumulative), then the sum."""

    def observe(self, labels: Labels, value: float) -> None:
        row = self.series.get(labels)
        if row is None:
            row = self.series[labels] = [0.0] * (len(self.buckets) + 2)
        i = 0
        for i, bound in enumerate(self.buckets):  # noqa: B007
            if value <= bound:
                break
        else:
            i = len(self.buckets)
        row[i] += 1
        row[-1] += value
        self.values[labels] = self.values.get(labels, 0.0) + 1


class SelfMetrics:
    """Registry of chatwatch's own counters and gauges."""

    def __init__(self) -> None:
        self._families: dict[str, _Family] = {}

    def counter(self, name: str, help: str, labelnames: Labels = ()) -> SelfCounter:
        return self._register(SelfCounter, name, help, labelnames)

    def gauge(self, name: str, help: str, labelnames: Labels = ()) -> SelfGauge:
        return self._register(SelfGauge, name, help, labelnames)

    def histogram(
        self,
        name: str,
        help: str,
        labelnames: Labels = (),
        buckets: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    ) -> SelfHistogram:
        existing = self._families.get(name)
        if existing is not None:
            if not isinstance(existing, SelfHistogram) or existing.labelnames != labelnames:
                raise ValueError(f"self-metric {name} registered twice with different shapes")
            return existing
        family = SelfHistogram(name, help, labelnames, buckets)
        self._families[name] = family
        return family

    def _register(self, cls: type[F], name: str, help: str, labelnames: Labels) -> F:
        existing = self._families.get(name)
        if existing is not None:
            if not isinstance(existing, cls) or existing.labelnames != labelnames:
                raise ValueError(f"self-metric {name} registered twice with different shapes")
            return existing
        family = cls(name, help, labelnames)
        self._families[name] = family
        return family

    def family(self, name: str) -> _Family | None:
        return self._families.get(name)

    def collect(self) -> Iterator[Metric]:
        for fam in self._families.values():
            metric: Metric
            if isinstance(fam, SelfHistogram):
                yield _histogram_family(fam)
                continue
            if fam.kind == "counter":
                base = fam.name.removesuffix("_total")
                metric = CounterMetricFamily(base, fam.help, labels=fam.labelnames)
            else:
                metric = GaugeMetricFamily(fam.name, fam.help, labels=fam.labelnames)
            for labels, value in list(fam.values.items()):
                metric.add_metric(list(labels), value)
            yield metric


def _histogram_family(fam: SelfHistogram) -> HistogramMetricFamily:
    metric = HistogramMetricFamily(fam.name, fam.help, labels=fam.labelnames)
    for labels, row in list(fam.series.items()):
        cumulative = 0.0
        buckets = []
        for bound, n in zip(fam.buckets, row, strict=False):
            cumulative += n
            buckets.append((str(bound), cumulative))
        buckets.append(("+Inf", cumulative + row[len(fam.buckets)]))
        metric.add_metric(list(labels), buckets, row[-1])
    return metric
