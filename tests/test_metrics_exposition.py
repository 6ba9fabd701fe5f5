"""The text a scraper gets: valid for promtool, for OpenMetrics, named as configured."""

from __future__ import annotations

import platform
import random
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.openmetrics.exposition import (
    ALLOWUTF8,
    DOTS,
    UNDERSCORES,
    VALUES,
    _escape,
    _is_legacy_labelname_rune,
    escape_metric_name,
)
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from prometheus_client.parser import text_string_to_metric_families as parse_text
from prometheus_client.registry import Collector

from agent import __version__
from agent.metrics.exposition import Exposition
from agent.metrics.store import ExternalFamily, Family
from agent.support.selfmetrics import SelfMetrics
from bench.workload import METRICS, make_event
from tests.metrics_support import Pipeline, promtool_check
from tests.server_support import Handlers, client_of

EVENTS: list[dict[str, Any]] = [
    {"event": "http_request", "level": "info", "route": "/api/chat", "status_code": 200,
     "duration_ms": 120.5},
    {"event": "http_request", "level": "error", "route": "/api/chat", "status_code": 503,
     "duration_ms": 3000},
    {"event": "llm_call", "level": "info", "model": "gpt-4o", "cost_usd": 0.002,
     "usage": {"prompt_tokens": 100, "completion_tokens": 20}, "latency_ms": 800},
    {"event": "conversation_ended", "level": "info", "category": "billing",
     "resolution": "resolved"},
    {"event": "auth_failed", "level": "warning", "reason": 'bad "token"\nsecond line'},
]  # fmt: skip


def reference_pipeline() -> Pipeline:
    p = Pipeline(
        *METRICS,
        {
            "name": "chatbot_active_sessions",
            "type": "gauge",
            "help": "Sessions open now.",
            "match": {"event": {"in": ["session_started", "session_ended"]}},
            "action": {"session_started": "inc", "session_ended": "dec"},
        },
        {"name": "chatbot_unlabelled_total", "type": "counter", "labels": {"x": "missing"}},
    )
    p.feed(*EVENTS, {"event": "session_started"})
    p.feed({"event": "http_request", "duration_ms": "not a number"})
    p.extractor.errors.inc(("chatbot_x", "internal"), 0)  # an error family with a zero sample
    p.store.set_family("job:errors:rate5m", "gauge", "Recorded.", [({"route": "/a"}, 0.5)])
    p.store.set_family("ALERTS", "gauge", "", [({"alertname": "A", "alertstate": "firing"}, 1)])
    return p


def test_promtool_check_metrics_passes_on_the_text_format() -> None:
    text = reference_pipeline().text()
    # Recording-rule names (`level:metric:operation`) contain colons by convention, which
    # promtool's linter reports as a style problem; every other line must pass cleanly.
    result = promtool_check(text)
    assert result.returncode == 3, result.stdout + result.stderr + "\n" + text
    assert result.stderr.strip() == "job:errors:rate5m metric names should not contain ':'"
    without_recorded = "\n".join(line for line in text.splitlines() if "job:errors" not in line)
    result = promtool_check(without_recorded + "\n")
    assert result.returncode == 0, result.stdout + result.stderr + "\n" + text
    assert result.stdout.strip() == "" and result.stderr.strip() == ""


def test_promtool_catches_what_we_guard_against() -> None:
    # The check is real: a counter without _total is reported.
    result = promtool_check("# HELP x X.\n# TYPE x counter\nx 1\n")
    assert result.returncode != 0
    assert "_total" in result.stdout + result.stderr


def test_counter_names_keep_total_in_text_and_openmetrics() -> None:
    p = reference_pipeline()
    text = p.text()
    assert "# TYPE chatbot_http_requests_total counter" in text
    assert 'chatbot_http_requests_total{route="/api/chat",status_code="200"} 1.0' in text
    assert "_total_total" not in text
    om = p.openmetrics()
    assert om.endswith("# EOF\n")
    assert "# TYPE chatbot_http_requests counter" in om
    assert 'chatbot_http_requests_total{route="/api/chat",status_code="200"} 1.0' in om
    families = {f.name: f for f in parse_om(om)}
    assert families["chatbot_http_requests"].type == "counter"
    assert families["chatbot_http_request_duration_seconds"].type == "histogram"
    assert families["chatbot_active_sessions"].type == "gauge"
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in families.values()
        for s in f.samples
    }
    key = ("chatbot_http_request_duration_seconds_bucket", (("le", "+Inf"), ("route", "/api/chat")))
    assert samples[key] == 2.0
    assert samples[("chatbot_auth_failures_total", (("reason", 'bad "token"\nsecond line'),))] == 1


def test_help_texts_build_info_and_self_metrics_are_exposed() -> None:
    p = reference_pipeline()
    text = p.text()
    assert "# HELP chatbot_http_requests_total HTTP requests handled by the chatbot." in text
    assert "# HELP chatbot_unlabelled_total chatbot_unlabelled_total: a counter" in text
    build = p.value("chatwatch_build_info", version=__version__, python=platform.python_version())
    assert build == 1.0
    assert p.value("chatwatch_series", metric="chatbot_http_requests_total") == 3.0
    reason = {"metric": "chatbot_http_request_duration_seconds", "reason": "not_a_number"}
    assert p.value("chatwatch_extract_errors_total", **reason) == 1.0
    assert p.value("chatbot_active_sessions") == 1.0
    assert p.value("job:errors:rate5m", route="/a") == 0.5


def test_an_empty_store_still_exposes_valid_text() -> None:
    p = Pipeline()
    result = promtool_check(p.text())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "chatwatch_build_info" in p.text()


# -- the direct writer against prometheus_client --------------------------------------
# What /metrics was before the store's families were written directly: one
# prometheus_client family per store family, encoded by prometheus_client. Kept here
# only, as the judge of the writer's bytes.


def _reference_family(fam: Family) -> Metric:
    names = [*fam.labelnames, *(n for n, _ in fam.static)]
    static = [v for _, v in fam.static]
    if fam.kind == "counter":
        counter = CounterMetricFamily(fam.name.removesuffix("_total"), fam.help, labels=names)
        for values, cell in fam.series.items():
            counter.add_metric([*values, *static], cell[0])
        return counter
    if fam.kind == "gauge":
        gauge = GaugeMetricFamily(fam.name, fam.help, labels=names)
        for values, cell in fam.series.items():
            gauge.add_metric([*values, *static], cell[0])
        return gauge
    histogram = HistogramMetricFamily(fam.name, fam.help, labels=names)
    for values, counts in fam.series.items():
        buckets = []
        total = 0.0
        for le, c in zip(fam.le_strings, counts, strict=False):
            total += c
            buckets.append((le, total))
        histogram.add_metric([*values, *static], buckets, counts[-1])
    return histogram


def _reference_external(ext: ExternalFamily) -> Metric:
    kind, name = ext.kind, ext.name
    if kind == "counter":
        if name.endswith("_total"):
            name = name.removesuffix("_total")
        else:
            kind = "unknown"
    elif kind not in ("gauge", "unknown"):
        kind = "unknown"
    metric = Metric(name, ext.help or f"{ext.name} (computed by chatwatch rules)", kind)
    for labels, value in ext.samples:
        metric.add_sample(ext.name, labels, value)
    return metric


class _Reference(Collector):
    def __init__(self, p: Pipeline) -> None:
        self.p = p

    def collect(self) -> Iterator[Metric]:
        yield from map(_reference_family, self.p.store.families.values())
        yield from map(_reference_external, self.p.store.external.values())
        yield from self.p.exposition.collect()


def _reference(p: Pipeline, openmetrics: bool = False, escaping: str = UNDERSCORES) -> str:
    if not openmetrics:
        return generate_latest(_Reference(p), escaping=escaping).decode()
    text = generate_openmetrics(_Reference(p), escaping=escaping).decode()
    # One deliberate difference: prometheus_client's OpenMetrics writer escapes a sample
    # name as if it were a label name, so `job:errors:rate5m` (a recording rule's name)
    # comes out as samples `job_errors_rate5m` under `# TYPE job:errors:rate5m`: samples
    # of no family (and with escaping=values every name gets `U__`). The writer escapes a
    # sample name as a metric name, as the text format does.
    names = {s.name for f in _Reference(p).collect() for s in f.samples}
    fix = {
        _escape(n, escaping, _is_legacy_labelname_rune): escape_metric_name(n, escaping)
        for n in names
    }
    lines = []
    for line in text.splitlines(keepends=True):
        if not line.startswith("#"):
            name, brace, rest = line.partition("{")
            if not brace:
                name, _, rest = line.partition(" ")
                brace = " "
            line = fix.get(name, name) + brace + rest
        lines.append(line)
    return "".join(lines)


def awkward_pipeline() -> Pipeline:
    """The reference workload, plus what stresses escaping and number formatting."""
    p = reference_pipeline()
    rng = random.Random(7)
    p.feed(*(make_event(rng, i) for i in range(3000)))
    p2 = Pipeline(
        {
            "name": "chatbot_odd_total",
            "type": "counter",
            "help": 'back\\slash "quoted"\nnew line',
            "labels": {"zz": "z", "a": "a", "b_le": "b"},
            "static_labels": {"env": 'pr"o%s\\d', "mm": "m"},
        },
        {
            "name": "chatbot_odd_seconds",
            "type": "histogram",
            "labels": {"zz": "z", "a": "a"},
            "static_labels": {"kk": "%d"},
            "value": "v",
            "buckets": [1e-7, 0.001, 2.5, 1234567.0, 1e20],
        },
        {"name": "chatbot_odd_level", "type": "gauge", "action": "set", "value": "v",
         "labels": {"a": "a"}},
        {"name": "chatbot_plain_seconds", "type": "histogram", "value": "v"},
        {"name": "chatbot_static_only_total", "type": "counter", "static_labels": {"p": "9%"}},
        {"name": "chatbot_static_seconds", "type": "histogram", "value": "v",
         "static_labels": {"a": "5%s"}},
        {"name": "chatbot_after_seconds", "type": "histogram", "value": "v",
         "labels": {"zz": "z"}, "static_labels": {"a": "1%", "x": "%"}},
    )  # fmt: skip
    odd = ["", 'q"uote', "back\\slash", "new\nline", "ütf-8 ✓", "%s%%", "le"]
    for i, v in enumerate(
        [0.0, -0.0, 1.0, 1e6, 12345678.9, 1e16, 1e-9, 3, -2.5, float("inf"), float("nan"), 2**70]
    ):
        a, z = odd[i % len(odd)], odd[(i * 3) % len(odd)]
        p2.feed({"a": a, "z": z, "b": str(i), "v": v})
    p2.store.set_family("job:odd:sum", "counter", "", [({"x": 'a"b'}, 1e21), ({}, 2)])
    p2.store.set_family("job:odd_total", "counter", "C.", [({"b": "1", "a": "2"}, 0.1)])
    p.store.families.update(p2.store.families)
    p.store.external.update(p2.store.external)
    return p


def test_written_text_is_byte_for_byte_what_prometheus_client_writes() -> None:
    p = awkward_pipeline()
    text = p.text()
    assert text == _reference(p)
    assert 'chatbot_odd_total{a="q\\"uote",b_le="1",env="pr\\"o%s\\\\d",mm="m",zz=' in text
    assert 'chatbot_odd_seconds_bucket{a="",kk="%d",le="1.234567e+06",zz=""}' in text


def test_written_openmetrics_is_byte_for_byte_what_prometheus_client_writes() -> None:
    p = awkward_pipeline()
    om = p.openmetrics()
    assert om == _reference(p, openmetrics=True)
    # The strict OpenMetrics parser accepts it (the awkward values include a negative
    # histogram sum, which OpenMetrics forbids, so the plain workload is parsed).
    assert list(parse_om(reference_pipeline().openmetrics()))


@pytest.mark.parametrize("escaping", [ALLOWUTF8, DOTS, VALUES])
def test_every_escaping_a_scraper_may_ask_for_matches_too(escaping: str) -> None:
    p = awkward_pipeline()
    for openmetrics in (False, True):
        written = "".join(p.exposition.snapshot().write(openmetrics, escaping))
        reference = _reference(p, openmetrics, escaping)
        assert reference.startswith(written), (openmetrics, escaping)


def test_an_unchanged_family_is_served_from_the_cache_and_a_change_is_seen() -> None:
    p = reference_pipeline()
    first = p.text()
    assert p.text() == first
    cached = p.exposition.snapshot()._cache
    assert "chatbot_http_requests_total" in cached
    p.feed(EVENTS[0])
    second = p.text()
    assert second == _reference(p)
    assert 'chatbot_http_requests_total{route="/api/chat",status_code="200"} 2.0' in second


def test_large_families_are_written_in_chunks_and_match() -> None:
    p = Pipeline(*({**m, "max_series": 10_000} for m in METRICS))
    rng = random.Random(3)
    events = [make_event(rng, i) for i in range(5000)]
    for i, ev in enumerate(events):
        if ev["event"] == "http_request":
            ev["route"] = f"/r/{i}"
    p.feed(*events)
    assert len(p.store.families["chatbot_http_request_duration_seconds"].series) > 2000
    assert p.text() == _reference(p)
    assert p.openmetrics() == _reference(p, openmetrics=True)


def test_promtool_accepts_the_text_with_process_and_python_metrics() -> None:
    p = awkward_pipeline()
    p.exposition = Exposition(p.store, p.stats)
    text = p.text()
    assert "\nprocess_resident_memory_bytes " in text
    assert "\npython_info{" in text
    assert "\npython_gc_objects_collected_total{" in text
    result = promtool_check(text)
    problems = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if "should not contain ':'" not in line  # recording-rule names, by convention
    ]
    assert problems == [], text
    plain = reference_pipeline()
    plain.exposition = Exposition(plain.store, plain.stats)
    om = plain.openmetrics()
    assert "\nprocess_resident_memory_bytes " in om
    assert len(list(parse_om(om))) == len(list(parse_text(plain.text())))


async def test_the_server_serves_what_the_writer_writes_gzipped_in_both_formats() -> None:
    p = Pipeline(*({**m, "max_series": 10_000} for m in METRICS))
    rng = random.Random(5)
    events = [make_event(rng, i) for i in range(6000)]
    for i, ev in enumerate(events):
        ev["route"] = f"/r/{i}"  # thousands of histogram label sets: written in a thread
    p.feed(*events)
    exposition = Exposition(p.store, p.stats, runtime=False)
    # A self-metric named like a configured metric is left out, not exposed twice.
    other = SelfMetrics()
    other.counter("chatbot_http_requests_total", "Twice.", ("route",)).inc(("/x",))
    handlers = Handlers([exposition, other])
    gzip = {"Accept-Encoding": "gzip"}
    openmetrics = {**gzip, "Accept": "application/openmetrics-text; version=1.0.0"}
    async with client_of(handlers, timeout=60) as client:
        text = await client.get("/metrics", headers=gzip)
        om = await client.get("/metrics", headers=openmetrics)
    assert text.headers["content-encoding"] == om.headers["content-encoding"] == "gzip"
    assert text.text == exposition.text()
    assert om.text == exposition.openmetrics()
    assert om.headers["content-type"].startswith("application/openmetrics-text; version=1.0.0")
    assert 'route="/x"' not in text.text
