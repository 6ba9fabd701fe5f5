"""What each aggregation operator computes over one group's values, in Prometheus 2.42's
order of operations (so `avg` and `stddev` agree with promtool to the last bit).

The engine groups the samples (`by`/`without`) and calls these; `sum` and `count` it
accumulates itself in one pass, and `quantile` is quantile.quantile. `count_values`, whose
groups depend on the values, builds its own closure.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from decimal import Decimal

import promql_parser as pp

from agent.alerting.history import History
from agent.alerting.promql.values import EvalError, Fn, IVec, Key, UnsupportedExpr
from agent.support.goformat import go_quote


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


_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")


def _format_f(v: float) -> str:
    """strconv.FormatFloat(v, 'f', -1, 64): the shortest digits, never an exponent."""
    if v != v:
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return format(Decimal(repr(v)).normalize(), "f")


def count_values(node: pp.AggregateExpr, fn: Fn) -> Fn:
    """count_values("label", v): how many samples have each value, the value (Go's 'f'
    formatting) as the label `label`, which replaces a label of that name. With `by` the
    label joins the grouping labels; with `without` it is kept unless listed. An invalid
    label name fails at evaluation, as in Prometheus 2.42."""
    param = node.param
    while isinstance(param, pp.ParenExpr):
        param = param.expr
    if not isinstance(param, pp.StringLiteral):
        raise UnsupportedExpr("count_values() with a non-literal label name is not supported")
    label = str(param.val)
    mod = node.modifier
    without = mod is not None and mod.type == pp.AggModifierType.Without
    names = frozenset(mod.labels) if mod is not None else frozenset()
    dropped = names | {"__name__"}
    kept = names | {label}

    def run(h: History, t: int) -> IVec:
        if not _LABEL_NAME.match(label):
            raise EvalError(f"invalid label name {go_quote(label)}")
        counts: dict[Key, float] = {}
        for key, v in fn(h, t):
            labels = dict(key)
            labels[label] = _format_f(v)
            if without:
                group = tuple(sorted(p for p in labels.items() if p[0] not in dropped))
            else:
                group = tuple(sorted(p for p in labels.items() if p[0] in kept))
            counts[group] = counts.get(group, 0.0) + 1.0
        return list(counts.items())

    return run
