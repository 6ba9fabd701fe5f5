"""What each aggregation operator computes over one group's values, in Prometheus 2.42's
order of operations (so `avg` and `stddev` agree with promtool to the last bit).

The engine groups the samples (`by`/`without`) and calls these; `sum` and `count` it
accumulates itself in one pass, and `quantile` is quantile.quantile.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from agent.alerting.promql.values import Key


def _sum(vals: list[float]) -> float:
    total = vals[0]
    for v in vals[1:]:
        total += v
    return total


def _avg(vals: list[float]) -> float:
    mean = vals[0]
    count = 1.0
    for v in vals[1:]:
        count += 1
        if math.isinf(mean):
            if math.isinf(v) and (mean > 0) == (v > 0):
                continue
            if not math.isinf(v) and v == v:
                continue
        mean += v / count - mean / count
    return mean


def _max(vals: list[float]) -> float:
    m = vals[0]
    for v in vals[1:]:
        if m < v or m != m:
            m = v
    return m


def _min(vals: list[float]) -> float:
    m = vals[0]
    for v in vals[1:]:
        if m > v or m != m:
            m = v
    return m


def _stdvar(vals: list[float]) -> float:
    mean = vals[0]
    value = 0.0
    count = 1.0
    for v in vals[1:]:
        count += 1
        delta = v - mean
        mean += delta / count
        value += delta * (v - mean)
    return value / count


AGGREGATORS: dict[str, Callable[[list[float]], float]] = {
    "sum": _sum,
    "avg": _avg,
    "max": _max,
    "min": _min,
    "count": lambda vals: float(len(vals)),
    "group": lambda vals: 1.0,
    "stdvar": _stdvar,
    "stddev": lambda vals: math.sqrt(_stdvar(vals)),
}
"""Operator name -> the value of one non-empty group."""


def topk_order(kv: tuple[Key, float]) -> tuple[bool, float]:
    """Sort key for topk: largest first, NaN last."""
    v = kv[1]
    return (True, 0.0) if v != v else (False, -v)


def bottomk_order(kv: tuple[Key, float]) -> tuple[bool, float]:
    """Sort key for bottomk: smallest first, NaN last."""
    v = kv[1]
    return (True, 0.0) if v != v else (False, v)
