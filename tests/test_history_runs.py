"""The history stores snapshots as runs, and every expression reads them as samples.

`History.append` writes a new point only for a series whose value changed; an unchanged
series still has a sample at every snapshot, as in Prometheus with one scrape per
evaluation interval. Checked against the explicit way (each snapshot written sample by
sample with `History.add`, the path the promtool differential tests cover) on random
snapshots: unchanged stretches, counter resets, series that leave and come back (staleness
markers), NaN and -0.0, new counters with their created 0, jittered, repeated and
backward snapshot times, retention trimming, rule results written into a snapshot series,
and a series that changes at every snapshot for a while (kept explicit then) and then not
at all (runs again). Every expression must give the same result, bit for bit, at every
instant.
"""

from __future__ import annotations

import math
import random
import struct

import pytest

from agent.alerting.history import STALE_NAN, History, Interest, Matcher, RunSeries, SeriesKey
from agent.alerting.promql.engine import compile_expr, evaluate

EXPRS = [
    "c",
    "g",
    "c offset 30s",
    "g offset 2m",
    "rate(c[5m])",
    "rate(c[1m])",
    "increase(c[2m])",
    "increase(c[30s] offset 20s)",
    "delta(g[3m])",
    "irate(c[1m])",
    "idelta(g[2m])",
    "changes(g[5m])",
    "resets(c[5m])",
    "sum_over_time(g[2m])",
    "avg_over_time(g[1m])",
    "min_over_time(g[4m])",
    "max_over_time(c[4m])",
    "count_over_time(c[5m])",
    "count_over_time(g[90s])",
    "last_over_time(g[1m])",
    "present_over_time(c[30s])",
    "absent_over_time(g[20s])",
    "stddev_over_time(g[2m])",
    "quantile_over_time(0.9, g[3m])",
    "deriv(g[2m])",
    "predict_linear(c[2m], 60)",
    "timestamp(c)",
    "timestamp(g offset 10s)",
    "absent(c)",
    "sum(rate(c[2m]))",
    "count(g)",
    "max_over_time(rate(c[1m])[3m:20s])",
    "min_over_time(g[2m:])",
    'rate({__name__=~"c|g"}[2m])',
    '{__name__="g", k=~"[13]"}',
    "d",
    "rate(d[1m])",
    "changes(d[2m])",
    "count_over_time(d[1m])",
]


def _bits(v: float) -> int:
    return int(struct.unpack("<Q", struct.pack("<d", v))[0])


def _result(h: History, text: str, t: float) -> object:
    expr = compile_expr(text, subquery_step=1.0)
    try:
        value = evaluate(expr, h, t)
    except ValueError as e:
        return ("error", str(e))
    if isinstance(value, float):
        return _bits(value)
    return sorted((tuple(sorted(s.labels.items())), _bits(s.value)) for s in value)


def _key(name: str, k: int) -> SeriesKey:
    return (("__name__", name), ("k", str(k)))


class Explicit:
    """Today's way, written out: every sample of a snapshot through `History.add`."""

    def __init__(self, retention: float) -> None:
        self.h = History(retention=retention)
        self.previous: dict[SeriesKey, float] = {}
        self.stale: set[SeriesKey] = set()
        self.started = False

    def append(
        self,
        t: float,
        samples: list[tuple[SeriesKey, float]],
        created: list[tuple[SeriesKey, float]],
    ) -> None:
        h = self.h
        t_ms = round(t * 1000)
        if self.started:
            for key, at in created:
                if key not in h._series:
                    h.add(key, min(round(at * 1000), t_ms - 1) / 1000, 0.0)
        self.started = True
        current = dict(samples)
        for key, value in samples:
            h.add(key, t, value)
        for key in self.previous.keys() - current.keys():
            s = h._series.get(key)
            if s is not None and not s.last_is_stale():
                h.add(key, t, STALE_NAN)
        self.previous = current


def _scenario(seed: int, retention: float, ticks: int) -> None:
    rnd = random.Random(seed)
    runs = History(retention=retention)
    explicit = Explicit(retention)
    values: dict[SeriesKey, float] = {}
    present: set[SeriesKey] = set()
    for k in range(4):
        for name in ("c", "g"):
            key = _key(name, k)
            values[key] = 0.0 if name == "c" else float(k)
            present.add(key)
    dense = _key("d", 0)  # changes at every snapshot for a while, then not at all
    values[dense] = 0.0
    present.add(dense)
    t = 1_700_000_000.0
    checked = packed = 0
    for step in range(ticks):
        created: list[tuple[SeriesKey, float]] = []
        if (step // 30) % 2 == 0:
            values[dense] += 1.0
        for key in list(values):
            name = key[0][1]
            if name == "d":
                continue
            roll = rnd.random()
            if key in present and roll < 0.05:
                present.discard(key)  # leaves the snapshots: a staleness marker
            elif key not in present and roll < 0.3:
                present.add(key)
            elif roll < 0.35:
                if name == "c":
                    values[key] += rnd.choice((1.0, 2.0, 0.5))
                else:
                    values[key] = rnd.choice((0.0, -0.0, 1.5, -2.0, math.nan, 7.0, math.inf))
            elif roll < 0.37 and name == "c":
                values[key] = 0.0  # a counter reset
        if rnd.random() < 0.05:  # a new counter, created between the snapshots
            key = _key("c", len(values) + 10)
            values[key] = float(rnd.randint(1, 3))
            present.add(key)
            created.append((key, t + rnd.random() * 0.9))
        move = rnd.random()
        if move < 0.04:
            dt = 0.0  # the same instant again
        elif move < 0.06:
            dt = -rnd.choice((0.5, 3.0))  # the clock went back
        else:
            dt = rnd.choice((1.0, 1.0, 1.0, 0.998, 1.003, 2.0, 15.0))
        t = round(t + dt, 3)
        samples = [(k, v) for k, v in values.items() if k in present]
        runs.append(t, samples, created)
        explicit.append(t, samples, created)
        if rnd.random() < 0.03:  # a rule result written into a snapshot series
            key = rnd.choice(sorted(values))
            runs.add(key, t, 123.0)
            explicit.h.add(key, t, 123.0)
        packed = max(packed, sum(isinstance(s, RunSeries) for s in runs._series.values()))
        for when in (t, t - rnd.random() * 120):
            for text in EXPRS:
                got, want = _result(runs, text, when), _result(explicit.h, text, when)
                assert got == want, (seed, step, when, text)
                checked += 1
        assert runs.sample_count() == explicit.h.sample_count(), (seed, step)
    assert checked and packed


@pytest.mark.parametrize("seed", range(6))
def test_runs_read_as_the_explicit_samples(seed: int) -> None:
    _scenario(seed, retention=400.0, ticks=120)


@pytest.mark.parametrize("seed", range(3))
def test_runs_read_as_the_explicit_samples_across_trimming(seed: int) -> None:
    _scenario(100 + seed, retention=40.0, ticks=150)


def test_an_unchanged_counter_is_read_at_every_snapshot_but_stored_once() -> None:
    h = History(retention=600)
    key = _key("c", 1)
    t0 = 1_700_000_000.0
    for i in range(301):
        h.append(t0 + i, [(key, 3.0)])
    s = h._series[key]
    assert isinstance(s, RunSeries) and len(s.starts) == 1
    assert h.sample_count() == 301
    expr = compile_expr("count_over_time(c[5m])")
    [sample] = evaluate(expr, h, t0 + 300)  # type: ignore[misc]
    assert sample.value == 301.0  # [t-5m, t], closed in 2.42: one sample per snapshot
    [sample] = evaluate(compile_expr("c"), h, t0 + 300)  # type: ignore[misc]
    assert sample.value == 3.0


def test_no_interest_keeps_nothing_and_a_reload_forgets_what_no_rule_reads() -> None:
    h = History(retention=600, interest=Interest([]))
    h.append(1_700_000_000.0, [(_key("c", 1), 1.0), (_key("g", 1), 2.0)])
    assert len(h) == 0
    h.set_interest(Interest([(Matcher("__name__", "=", "g"),)]))
    h.append(1_700_000_001.0, [(_key("c", 1), 1.0), (_key("g", 1), 2.0)])
    assert [s.key for s in h._series.values()] == [_key("g", 1)]
    h.set_interest(Interest([(Matcher("__name__", "=~", "c|x"), Matcher("k", "=", "1"))]))
    assert len(h) == 0
    h.append(1_700_000_002.0, [(_key("c", 1), 1.0), (_key("c", 2), 1.0), (_key("g", 1), 2.0)])
    assert [s.key for s in h._series.values()] == [_key("c", 1)]
