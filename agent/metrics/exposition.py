"""A prometheus_client custom collector over the store: families built at scrape time.

No per-event calls into prometheus_client: the extractor writes plain dicts, and only a
scrape turns them into metric families (the text format and OpenMetrics both come from
these). Counter names end in `_total` in config; prometheus_client wants the family name
without it and adds it back to the sample, so `foo_total` comes out as `foo_total`.
"""

from __future__ import annotations

import platform
from collections.abc import Iterator

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from agent import __version__
from agent.metrics.store import ExternalFamily, Family, Store
from agent.support.selfmetrics import SelfMetrics


def _family(fam: Family) -> Metric:
    names = [*fam.labelnames, *(n for n, _ in fam.static)]
    static = [v for _, v in fam.static]
    series = list(fam.series.items())
    if fam.kind == "counter":
        counter = CounterMetricFamily(fam.name.removesuffix("_total"), fam.help, labels=names)
        for values, cell in series:
            counter.add_metric([*values, *static], cell[0])
        return counter
    if fam.kind == "gauge":
        gauge = GaugeMetricFamily(fam.name, fam.help, labels=names)
        for values, cell in series:
            gauge.add_metric([*values, *static], cell[0])
        return gauge
    histogram = HistogramMetricFamily(fam.name, fam.help, labels=names)
    les = fam.le_strings
    for values, counts in series:
        buckets = []
        total = 0.0
        for le, c in zip(les, counts, strict=False):
            total += c
            buckets.append((le, total))
        histogram.add_metric([*values, *static], buckets, counts[-1])
    return histogram


def _external(ext: ExternalFamily) -> Metric:
    """Recording-rule results and ALERTS; a counter whose name lacks `_total` is untyped."""
    kind = ext.kind
    name = ext.name
    sample_name = name
    if kind == "counter":
        if name.endswith("_total"):
            name = name.removesuffix("_total")
        else:
            kind = "unknown"
    elif kind not in ("gauge", "unknown"):
        kind = "unknown"
    metric = Metric(name, ext.help or f"{ext.name} (computed by chatwatch rules)", kind)
    for labels, value in ext.samples:
        metric.add_sample(sample_name, labels, value)
    return metric


class StoreCollector(Collector):
    """Yields every configured metric, families set by the rules, and self-metrics."""

    def __init__(self, store: Store, stats: SelfMetrics) -> None:
        self.store = store
        self.stats = stats

    def collect(self) -> Iterator[Metric]:
        for fam in list(self.store.families.values()):
            yield _family(fam)
        for ext in list(self.store.external.values()):
            yield _external(ext)
        build = GaugeMetricFamily(
            "chatwatch_build_info",
            "chatwatch build information; the value is always 1.",
            labels=["version", "python"],
        )
        build.add_metric([__version__, platform.python_version()], 1)
        yield build
        yield from self.stats.collect()

    def describe(self) -> Iterator[Metric]:
        return iter(())


def collector(store: Store, stats: SelfMetrics) -> Collector:
    """The collector to register with a prometheus_client CollectorRegistry."""
    return StoreCollector(store, stats)
