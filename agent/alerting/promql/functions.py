"""PromQL functions, one `func_<name>` each, and `FUNCTIONS`, the table the engine calls.

As in Prometheus' promql/functions.go, a function receives its arguments already compiled
(a scalar or instant vector as its closure `(history, t_ms) -> value`, a range selector as
a `Matrix`, a string as the literal) together with the argument expressions, and returns
the closure that computes its result at each instant. The engine checks the arguments
against the table (`Function.args`) before calling it.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import promql_parser as pp

from agent.alerting.history import (
    History,
    RunSeries,
    Series,
    bisect_left,
    bisect_right,
    is_stale,
    window,
)
from agent.alerting.promql.gomath import (
    go_ceil,
    go_div,
    go_exp,
    go_floor,
    go_log,
    go_log2,
    go_log10,
    go_max,
    go_min,
    go_sort,
    go_sqrt,
)
from agent.alerting.promql.quantile import bucket_quantile, quantile
from agent.alerting.promql.values import (
    MATRIX,
    RANGE_SELECTOR,
    SCALAR,
    STRING,
    VECTOR,
    EvalError,
    Fn,
    IVec,
    Key,
    Matrix,
    UnsupportedExpr,
    check_unique,
    drop_name,
)
from agent.support.goformat import go_sprintf
from agent.support.goregexp import RegexpError, RegexpUnsupported, compile_go, expand

NAN = float("nan")

Builder = Callable[[list[Any], list[Any]], Fn]
"""(compiled arguments, argument expressions) -> the function's closure."""


@dataclass(frozen=True, slots=True)
class Function:
    build: Builder
    args: tuple[str, ...]
    """The kind of each argument (SCALAR, VECTOR, MATRIX, RANGE_SELECTOR, STRING); a call
    may leave out trailing ones the parser calls optional (round's `to_nearest`)."""
    returns: str = VECTOR
    variadic: bool = False
    """The last argument kind repeats (label_join's source labels)."""

    def arg_kinds(self, count: int) -> tuple[str, ...]:
        """The kind of each of `count` arguments."""
        if self.variadic and count > len(self.args):
            return self.args + (self.args[-1],) * (count - len(self.args))
        return self.args


# -- rate, increase, delta, irate, idelta ------------------------------------------------------


def _points(s: Series, lo: int, hi: int) -> tuple[Sequence[int], Sequence[float]]:
    """The window's timestamps and values without staleness markers."""
    ts, vals = s.ts[lo:hi], s.vals[lo:hi]
    if s.regular(lo, hi):
        return ts, vals
    keep = [i for i, v in enumerate(vals) if not is_stale(v)]
    return [ts[i] for i in keep], [vals[i] for i in keep]


def _extrapolated_rate(
    s: Series, lo: int, hi: int, t: int, m: Matrix, is_counter: bool, is_rate: bool
) -> float | None:
    """promql/functions.go extrapolatedRate, v2.42."""
    ts, vals = s.ts, s.vals
    if s.regular(lo, hi):
        # Fast path: no staleness marker and no counter reset inside the window.
        n = hi - lo
        if n < 2:
            return None
        t0, t1, v0 = ts[lo], ts[hi - 1], vals[lo]
        result = vals[hi - 1] - v0
    else:
        pts, pvals = _points(s, lo, hi)
        n = len(pts)
        if n < 2:
            return None
        t0, t1, v0 = pts[0], pts[-1], pvals[0]
        result = pvals[-1] - v0
        if is_counter:
            prev = v0
            for v in pvals[1:]:
                if v < prev:
                    result += prev
                prev = v
    range_end = m.end(t)
    range_start = range_end - m.range_ms
    duration_to_start = (t0 - range_start) / 1000
    duration_to_end = (range_end - t1) / 1000
    sampled = (t1 - t0) / 1000
    average = sampled / (n - 1)
    if is_counter and result > 0 and v0 >= 0:
        duration_to_zero = sampled * (v0 / result)
        if duration_to_zero < duration_to_start:
            duration_to_start = duration_to_zero
    threshold = average * 1.1
    interval = sampled
    interval += duration_to_start if duration_to_start < threshold else average / 2
    interval += duration_to_end if duration_to_end < threshold else average / 2
    factor = interval / sampled
    if is_rate:
        factor /= m.range_ms / 1000
    return result * factor


def _fast_rate(m: Matrix, is_counter: bool, is_rate: bool) -> Fn:
    """rate/increase/delta with the window lookup and the common case inlined: the hot
    loop of most alert rules. A series held as runs gives its window's ends from the runs
    (`RunSeries.span`), without building its samples. Windows with a reset or a staleness
    marker take the exact general path (`_extrapolated_rate`), as do subqueries."""
    if m.selector is None:
        return _rate_of_windows(m, is_counter, is_rate)
    ms, rng = m.matchers, m.range_ms
    range_s = rng / 1000

    # Dropping the name cannot create duplicates when every series has the same name.
    one_name = any(x.name == "__name__" and x.op == "=" for x in ms)

    def run(h: History, t: int) -> IVec:
        end = m.end(t)
        start = end - rng
        out: IVec = []
        append = out.append
        first_tick, last_tick = h.ticks_within(start, end)
        for s in h.series(ms):
            if isinstance(s, RunSeries):
                span = s.span(first_tick, last_tick, start, end)
                if span is None:  # not plain: the general path over its samples
                    ts = s.ts
                    if not ts or ts[-1] < start or ts[0] > end:
                        continue
                    lo, hi = window(ts, start, end)
                    if hi - lo < 2:
                        continue
                    v = _extrapolated_rate(s, lo, hi, t, m, is_counter, is_rate)
                    if v is not None:
                        append((s.key_noname, v))
                    continue
                n, t0, t1, v0, v1 = span
                if n < 2:
                    continue
                result = v1 - v0
            else:
                ts = s.ts
                n = len(ts)
                if n < 2:
                    continue
                last = ts[n - 1]
                first = ts[0]
                if last < start or first > end:
                    continue
                hi = n if last <= end else bisect_right(ts, end)
                if first >= start:
                    lo = 0
                else:
                    # Steady sample spacing: guess the first index in the window, check it.
                    g = n - 1 - (last - start) * (n - 1) // (last - first)
                    if 0 < g < n and ts[g - 1] < start <= ts[g]:
                        lo = g
                    else:
                        lo = bisect_left(ts, start, 0, hi)
                if hi - lo < 2:
                    continue
                vals = s.vals
                v0 = vals[lo]
                if v0 != v0 or (s.irregular and not s.regular(lo, hi)):
                    v = _extrapolated_rate(s, lo, hi, t, m, is_counter, is_rate)
                    if v is not None:
                        append((s.key_noname, v))
                    continue
                n = hi - lo
                t0 = ts[lo]
                t1 = ts[hi - 1]
                result = vals[hi - 1] - v0
            duration_to_start = (t0 - start) / 1000
            duration_to_end = (end - t1) / 1000
            sampled = (t1 - t0) / 1000
            average = sampled / (n - 1)
            if is_counter and result > 0 and v0 >= 0:
                duration_to_zero = sampled * (v0 / result)
                if duration_to_zero < duration_to_start:
                    duration_to_start = duration_to_zero
            threshold = average * 1.1
            interval = sampled
            interval += duration_to_start if duration_to_start < threshold else average / 2
            interval += duration_to_end if duration_to_end < threshold else average / 2
            factor = interval / sampled
            if is_rate:
                factor /= range_s
            append((s.key_noname, result * factor))
        return out if one_name else check_unique(out)

    return run


def _rate_of_windows(m: Matrix, is_counter: bool, is_rate: bool) -> Fn:
    def run(h: History, t: int) -> IVec:
        out: IVec = []
        for s, lo, hi in m.fn(h, t):
            v = _extrapolated_rate(s, lo, hi, t, m, is_counter, is_rate)
            if v is not None:
                out.append((s.key_noname, v))
        return check_unique(out)

    return run


def func_rate(args: list[Any], nodes: list[Any]) -> Fn:
    return _fast_rate(args[0], is_counter=True, is_rate=True)


def func_increase(args: list[Any], nodes: list[Any]) -> Fn:
    return _fast_rate(args[0], is_counter=True, is_rate=False)


def func_delta(args: list[Any], nodes: list[Any]) -> Fn:
    return _fast_rate(args[0], is_counter=False, is_rate=False)


def _instant_value(s: Series, lo: int, hi: int, is_rate: bool) -> float | None:
    """irate / idelta: the last two samples in the window."""
    ts, vals = s.ts, s.vals
    found: list[int] = []
    i = hi - 1
    while i >= lo and len(found) < 2:
        if not is_stale(vals[i]):
            found.append(i)
        i -= 1
    if len(found) < 2:
        return None
    last, prev = found
    lv, pv = vals[last], vals[prev]
    result = lv if is_rate and lv < pv else lv - pv
    interval = ts[last] - ts[prev]
    if interval == 0:
        return None
    if is_rate:
        result /= interval / 1000
    return result


def _instant_rate(m: Matrix, is_rate: bool) -> Fn:
    def run(h: History, t: int) -> IVec:
        out: IVec = []
        for s, lo, hi in m.fn(h, t):
            v = _instant_value(s, lo, hi, is_rate)
            if v is not None:
                out.append((s.key_noname, v))
        return check_unique(out)

    return run


def func_irate(args: list[Any], nodes: list[Any]) -> Fn:
    return _instant_rate(args[0], is_rate=True)


def func_idelta(args: list[Any], nodes: list[Any]) -> Fn:
    return _instant_rate(args[0], is_rate=False)


# -- <aggregation>_over_time, changes, resets ---------------------------------------------------


def _over_time(m: Matrix, reduce: Callable[[Sequence[float]], float], keep_name: bool) -> Fn:
    """`reduce` over each series' samples in the range (series without any are left out)."""

    def run(h: History, t: int) -> IVec:
        out: IVec = []
        for s, lo, hi in m.fn(h, t):
            _, vals = _points(s, lo, hi)
            if not vals:
                continue
            out.append((s.key if keep_name else s.key_noname, reduce(vals)))
        return out if keep_name else check_unique(out)

    return run


def _kahan_inc(inc: float, s: float, c: float) -> tuple[float, float]:
    t = s + inc
    if abs(s) >= abs(inc):
        c += (s - t) + inc
    else:
        c += (inc - t) + s
    return t, c


def _sum_over(vals: Sequence[float]) -> float:
    s = c = 0.0
    for v in vals:
        s, c = _kahan_inc(v, s, c)
    return s if math.isinf(s) else s + c


def func_sum_over_time(args: list[Any], nodes: list[Any]) -> Fn:
    return _over_time(args[0], _sum_over, keep_name=False)


def _avg_over(vals: Sequence[float]) -> float:
    mean = c = count = 0.0
    for v in vals:
        count += 1
        if math.isinf(mean):
            if math.isinf(v) and (mean > 0) == (v > 0):
                continue
            if not math.isinf(v) and v == v:
                continue
        mean, c = _kahan_inc(v / count - mean / count, mean, c)
    return mean if math.isinf(mean) else mean + c


def func_avg_over_time(args: list[Any], nodes: list[Any]) -> Fn:
    return _over_time(args[0], _avg_over, keep_name=False)


def _min_over(vals: Sequence[float]) -> float:
    total = sum(vals)
    if total == total:
        return min(vals)
    m = vals[0]
    for v in vals:
        if v < m or m != m:
            m = v
    return m


def func_min_over_time(args: list[Any], nodes: list[Any]) -> Fn:
    return _over_time(args[0], _min_over, keep_name=False)


def _max_over(vals: Sequence[float]) -> float:
    total = sum(vals)
    if total == total:
        return max(vals)
    m = vals[0]
    for v in vals:
        if v > m or m != m:
            m = v
    return m


def func_max_over_time(args: list[Any], nodes: list[Any]) -> Fn:
    return _over_time(args[0], _max_over, keep_name=False)


def func_count_over_time(args: list[Any], nodes: list[Any]) -> Fn:
    return _over_time(args[0], lambda vals: float(len(vals)), keep_name=False)


def func_last_over_time(args: list[Any], nodes: list[Any]) -> Fn:
    """The newest sample, keeping the metric name (as 2.42 does)."""
    return _over_time(args[0], lambda vals: vals[-1], keep_name=True)


def func_present_over_time(args: list[Any], nodes: list[Any]) -> Fn:
    return _over_time(args[0], lambda vals: 1.0, keep_name=False)


def _stdvar_over(vals: Sequence[float]) -> float:
    count = mean = c_mean = aux = c_aux = 0.0
    for v in vals:
        count += 1
        delta = v - (mean + c_mean)
        mean, c_mean = _kahan_inc(delta / count, mean, c_mean)
        aux, c_aux = _kahan_inc(delta * (v - (mean + c_mean)), aux, c_aux)
    return (aux + c_aux) / count


def func_stdvar_over_time(args: list[Any], nodes: list[Any]) -> Fn:
    return _over_time(args[0], _stdvar_over, keep_name=False)


def func_stddev_over_time(args: list[Any], nodes: list[Any]) -> Fn:
    return _over_time(args[0], lambda vals: math.sqrt(_stdvar_over(vals)), keep_name=False)


def func_quantile_over_time(args: list[Any], nodes: list[Any]) -> Fn:
    qfn: Fn = args[0]
    m: Matrix = args[1]

    def run(h: History, t: int) -> IVec:
        out: IVec = []
        q = qfn(h, t)
        for s, lo, hi in m.fn(h, t):
            _, vals = _points(s, lo, hi)
            if not vals:
                continue
            out.append((s.key_noname, quantile(q, list(vals))))
        return check_unique(out)

    return run


def _changes(vals: Sequence[float]) -> float:
    total = sum(vals)
    if total == total:  # no NaN: count in C
        return float(sum(map(operator.ne, vals[1:], vals[:-1])))
    n = 0
    prev = vals[0]
    for cur in vals[1:]:
        if cur != prev and not (cur != cur and prev != prev):
            n += 1
        prev = cur
    return float(n)


def func_changes(args: list[Any], nodes: list[Any]) -> Fn:
    return _over_time(args[0], _changes, keep_name=False)


def func_resets(args: list[Any], nodes: list[Any]) -> Fn:
    m: Matrix = args[0]

    def run(h: History, t: int) -> IVec:
        out: IVec = []
        for s, lo, hi in m.fn(h, t):
            if s.regular(lo, hi):
                out.append((s.key_noname, 0.0))  # no reset recorded inside the window
                continue
            _, vals = _points(s, lo, hi)
            if not vals:
                continue
            out.append((s.key_noname, float(sum(map(operator.lt, vals[1:], vals[:-1])))))
        return check_unique(out)

    return run


# -- math on each sample ------------------------------------------------------------------------


def _each(vfn: Fn, f: Callable[[float], float]) -> Fn:
    """`f` applied to every sample; the metric name is dropped."""
    return lambda h, t: check_unique([(drop_name(k), f(v)) for k, v in vfn(h, t)])


def func_abs(args: list[Any], nodes: list[Any]) -> Fn:
    return _each(args[0], math.fabs)


def func_ceil(args: list[Any], nodes: list[Any]) -> Fn:
    return _each(args[0], go_ceil)


def func_floor(args: list[Any], nodes: list[Any]) -> Fn:
    return _each(args[0], go_floor)


def func_exp(args: list[Any], nodes: list[Any]) -> Fn:
    return _each(args[0], go_exp)


def func_sqrt(args: list[Any], nodes: list[Any]) -> Fn:
    return _each(args[0], go_sqrt)


def func_ln(args: list[Any], nodes: list[Any]) -> Fn:
    return _each(args[0], go_log)


def func_log2(args: list[Any], nodes: list[Any]) -> Fn:
    return _each(args[0], go_log2)


def func_log10(args: list[Any], nodes: list[Any]) -> Fn:
    return _each(args[0], go_log10)


# Arguments are evaluated in order (Prometheus' rangeEval), which decides whose error wins.


def func_clamp_min(args: list[Any], nodes: list[Any]) -> Fn:
    vfn, minfn = args

    def run(h: History, t: int) -> IVec:
        vec = vfn(h, t)
        lo = minfn(h, t)
        return check_unique([(drop_name(k), go_max(lo, v)) for k, v in vec])

    return run


def func_clamp_max(args: list[Any], nodes: list[Any]) -> Fn:
    vfn, maxfn = args

    def run(h: History, t: int) -> IVec:
        vec = vfn(h, t)
        hi = maxfn(h, t)
        return check_unique([(drop_name(k), go_min(hi, v)) for k, v in vec])

    return run


def func_clamp(args: list[Any], nodes: list[Any]) -> Fn:
    vfn, minfn, maxfn = args

    def run(h: History, t: int) -> IVec:
        vec = vfn(h, t)
        lo = minfn(h, t)
        hi = maxfn(h, t)
        if hi < lo:
            return []
        return check_unique([(drop_name(k), go_max(lo, go_min(hi, v))) for k, v in vec])

    return run


def func_round(args: list[Any], nodes: list[Any]) -> Fn:
    """round(v, to_nearest=1): Prometheus rounds half up, via the inverse of to_nearest."""
    vfn: Fn = args[0]
    nearest: Fn | None = args[1] if len(args) > 1 else None

    def run(h: History, t: int) -> IVec:
        vec = vfn(h, t)
        to = nearest(h, t) if nearest is not None else 1.0
        inv = go_div(1.0, to)  # round(v, 0): +Inf, and every result NaN, as in Go
        return check_unique([(drop_name(k), go_div(go_floor(v * inv + 0.5), inv)) for k, v in vec])

    return run


# -- time, vector, scalar, timestamp ----------------------------------------------------------


def func_time(args: list[Any], nodes: list[Any]) -> Fn:
    return lambda h, t: t / 1000


def func_vector(args: list[Any], nodes: list[Any]) -> Fn:
    sfn: Fn = args[0]
    return lambda h, t: [((), float(sfn(h, t)))]


def func_scalar(args: list[Any], nodes: list[Any]) -> Fn:
    vfn: Fn = args[0]

    def run(h: History, t: int) -> float:
        vec = vfn(h, t)
        return vec[0][1] if len(vec) == 1 else NAN

    return run


def func_timestamp(args: list[Any], nodes: list[Any]) -> Fn:
    """timestamp() of a computed vector: the evaluation time. (Of a selector, the engine
    reads each sample's own timestamp instead, as Prometheus' engine does.)"""
    vfn: Fn = args[0]
    return lambda h, t: check_unique([(drop_name(k), t / 1000) for k, _ in vfn(h, t)])


# -- sort, sort_desc ----------------------------------------------------------------------------


def _sort_less(x: tuple[Key, float], y: tuple[Key, float]) -> bool:
    """sort(): sort.Reverse(vectorByReverseValueHeap), Less(i, j) being "j is NaN or
    greater": NaN last, and equal values in the order Go's unstable sort leaves them."""
    b = y[1]
    return b != b or b > x[1]


def _sort_desc_less(x: tuple[Key, float], y: tuple[Key, float]) -> bool:
    """sort_desc(): sort.Reverse(vectorByValueHeap), NaN last too."""
    b = y[1]
    return b != b or b < x[1]


def _sort(vfn: Fn, less: Callable[[tuple[Key, float], tuple[Key, float]], bool]) -> Fn:
    def run(h: History, t: int) -> IVec:
        vec = list(vfn(h, t))
        go_sort(vec, less)
        return vec

    return run


def func_sort(args: list[Any], nodes: list[Any]) -> Fn:
    return _sort(args[0], _sort_less)


def func_sort_desc(args: list[Any], nodes: list[Any]) -> Fn:
    return _sort(args[0], _sort_desc_less)


# -- absent, absent_over_time -------------------------------------------------------------------


def _absent_labels(node: Any) -> Key:
    """The labels of absent()'s one sample: the selector's `name="value"` matchers, except
    a label matched twice or matched by anything but `=` (Prometheus'
    createLabelsForAbsentFunction)."""
    labels: dict[str, str] = {}
    while isinstance(node, pp.ParenExpr):  # Prometheus' engine unwraps arguments first
        node = node.expr
    if isinstance(node, pp.MatrixSelector):
        node = node.vector_selector
    if isinstance(node, pp.VectorSelector):
        empty: list[str] = []
        for m in node.matchers.matchers:
            if m.name == "__name__":
                continue
            if m.op == pp.MatchOp.Equal and m.name not in labels:
                if m.value:
                    labels[m.name] = m.value
            else:
                empty.append(m.name)
        for n in empty:
            labels.pop(n, None)
    return tuple(sorted(labels.items()))


def func_absent(args: list[Any], nodes: list[Any]) -> Fn:
    vfn: Fn = args[0]
    key = _absent_labels(nodes[0])
    return lambda h, t: [] if vfn(h, t) else [(key, 1.0)]


def func_absent_over_time(args: list[Any], nodes: list[Any]) -> Fn:
    m: Matrix = args[0]
    node = nodes[0]
    key = _absent_labels(node)

    def run(h: History, t: int) -> IVec:
        for s, lo, hi in m.fn(h, t):
            if _points(s, lo, hi)[1]:
                return []
        return [(key, 1.0)]

    return run


# -- histogram_quantile -------------------------------------------------------------------------


def _parse_le(text: str) -> float | None:
    if "_" in text:
        return None
    try:
        return float(text)
    except ValueError:
        return None


def func_histogram_quantile(args: list[Any], nodes: list[Any]) -> Fn:
    """Classic buckets: the series of one histogram differ only in `le`. Histograms are told
    apart by their labels and their name, which the result drops: two histograms whose
    buckets share labels fail with "vector cannot contain metrics with the same labelset"
    (Prometheus 2.42, issue 9910), rather than being merged."""
    qfn, vfn = args

    def run(h: History, t: int) -> IVec:
        q = qfn(h, t)
        groups: dict[tuple[Key, str], list[tuple[float, float]]] = {}
        for key, v in vfn(h, t):
            le_text = None
            name = ""
            rest = []
            for p in key:
                if p[0] == "le":
                    le_text = p[1]
                elif p[0] == "__name__":
                    name = p[1]
                else:
                    rest.append(p)
            if le_text is None:
                continue
            le = _parse_le(le_text)
            if le is None:
                continue
            groups.setdefault((tuple(rest), name), []).append((le, v))
        return check_unique([(g, bucket_quantile(q, b)) for (g, _), b in groups.items()])

    return run


# -- deriv, predict_linear, holt_winters -------------------------------------------------------


def _linear_regression(
    ts: Sequence[int], vals: Sequence[float], intercept_ms: int
) -> tuple[float, float]:
    """promql/functions.go linearRegression (2.42): least squares with Kahan sums, x in
    seconds from `intercept_ms`; a constant series has slope 0 (NaN if it is infinite)."""
    n = sum_x = c_x = sum_y = c_y = sum_xy = c_xy = sum_x2 = c_x2 = 0.0
    init_y = vals[0]
    const_y = True
    for i, (t, v) in enumerate(zip(ts, vals, strict=True)):
        if const_y and i > 0 and v != init_y:
            const_y = False
        n += 1.0
        x = (t - intercept_ms) / 1e3
        sum_x, c_x = _kahan_inc(x, sum_x, c_x)
        sum_y, c_y = _kahan_inc(v, sum_y, c_y)
        sum_xy, c_xy = _kahan_inc(x * v, sum_xy, c_xy)
        sum_x2, c_x2 = _kahan_inc(x * x, sum_x2, c_x2)
    if const_y:
        if math.isinf(init_y):
            return NAN, NAN
        return 0.0, init_y
    sum_x += c_x
    sum_y += c_y
    sum_xy += c_xy
    sum_x2 += c_x2
    cov_xy = sum_xy - go_div(sum_x * sum_y, n)
    var_x = sum_x2 - go_div(sum_x * sum_x, n)
    slope = go_div(cov_xy, var_x)
    intercept = go_div(sum_y, n) - go_div(slope * sum_x, n)
    return slope, intercept


def func_deriv(args: list[Any], nodes: list[Any]) -> Fn:
    """The slope (per second) of a least-squares line through the samples."""
    m: Matrix = args[0]

    def run(h: History, t: int) -> IVec:
        out: IVec = []
        for s, lo, hi in m.fn(h, t):
            ts, vals = _points(s, lo, hi)
            if len(vals) < 2:
                continue
            # Near the samples' own time, against float error (Prometheus issue 2674).
            slope, _ = _linear_regression(ts, vals, ts[0])
            out.append((s.key_noname, slope))
        return check_unique(out)

    return run


def func_predict_linear(args: list[Any], nodes: list[Any]) -> Fn:
    """The least-squares line through the samples, `seconds` after the evaluation time."""
    m: Matrix = args[0]
    dfn: Fn = args[1]

    def run(h: History, t: int) -> IVec:
        out: IVec = []
        duration = dfn(h, t)
        for s, lo, hi in m.fn(h, t):
            ts, vals = _points(s, lo, hi)
            if len(vals) < 2:
                continue
            slope, intercept = _linear_regression(ts, vals, t)
            out.append((s.key_noname, slope * duration + intercept))
        return check_unique(out)

    return run


def func_holt_winters(args: list[Any], nodes: list[Any]) -> Fn:
    """holt_winters(v[range], sf, tf): Prometheus 2.42's double exponential smoothing (3.x
    renamed it double_exponential_smoothing). Factors outside (0, 1) fail, for each series."""
    m: Matrix = args[0]
    sf_fn: Fn = args[1]
    tf_fn: Fn = args[2]

    def run(h: History, t: int) -> IVec:
        sf = sf_fn(h, t)
        tf = tf_fn(h, t)
        out: IVec = []
        for s, lo, hi in m.fn(h, t):
            _, vals = _points(s, lo, hi)
            if not vals:
                continue
            if not sf > 0 or not sf < 1:
                raise EvalError(
                    go_sprintf("invalid smoothing factor. Expected: 0 < sf < 1, got: %f", sf)
                )
            if not tf > 0 or not tf < 1:
                raise EvalError(
                    go_sprintf("invalid trend factor. Expected: 0 < tf < 1, got: %f", tf)
                )
            if len(vals) < 2:
                continue
            s0 = 0.0
            s1 = vals[0]
            b = vals[1] - vals[0]
            for i in range(1, len(vals)):
                x = sf * vals[i]
                if i > 1:  # calcTrendValue(i - 1, ...) keeps b as it is for i - 1 == 0
                    b = tf * (s1 - s0) + (1 - tf) * b
                y = (1 - sf) * (s1 + b)
                s0, s1 = s1, x + y
            out.append((s.key_noname, s1))
        return check_unique(out)

    return run


# -- trigonometry, deg, rad, pi, sgn ----------------------------------------------------------


def _go_fn(f: Callable[[float], float]) -> Callable[[float], float]:
    """A math function with Go's answers where Python raises (NaN out of the domain,
    ±Inf on overflow)."""

    def g(x: float) -> float:
        try:
            return f(x)
        except ValueError:
            return NAN
        except OverflowError:
            return math.copysign(math.inf, x)

    return g


def _go_atanh(x: float) -> float:
    if x == 1 or x == -1:
        return math.copysign(math.inf, x)
    return _go_fn(math.atanh)(x)


def _go_sinh(x: float) -> float:
    """Go's math.Sinh (Hart & Cheney #2029 near 0, Exp beyond): +Inf from x > ~709.78, where
    Python's sinh still has a finite answer."""
    sign = x < 0
    if sign:
        x = -x  # not abs(): sinh(-0) is -0, as in Go
    if x > 21:
        temp = go_exp(x) * 0.5
    elif x > 0.5:
        ex = go_exp(x)
        temp = (ex - 1 / ex) * 0.5
    else:
        sq = x * x
        temp = (
            ((-0.2630563213397497062819489000e2 * sq - 0.2894211355989563807284660366e4) * sq
             - 0.8991272022039509355398013511e5) * sq - 0.6307673640497716991184787251e6
        ) * x  # fmt: skip
        temp = temp / (
            ((sq - 0.173678953558233699533450911e3) * sq + 0.1521517378790019070696485176e5) * sq
            - 0.6307673640497716991212077277e6
        )  # fmt: skip
    return -temp if sign else temp


def _go_cosh(x: float) -> float:
    """Go's math.Cosh: (e^x + e^-x) / 2 with Go's Exp, +Inf from x > ~709.78."""
    x = abs(x)
    if x > 21:
        return go_exp(x) * 0.5
    ex = go_exp(x)
    return (ex + 1 / ex) * 0.5


_TRIG: dict[str, Callable[[float], float]] = {
    "sin": _go_fn(math.sin),
    "cos": _go_fn(math.cos),
    "tan": _go_fn(math.tan),
    "asin": _go_fn(math.asin),
    "acos": _go_fn(math.acos),
    "atan": math.atan,
    "sinh": _go_sinh,
    "cosh": _go_cosh,
    "tanh": math.tanh,
    "asinh": math.asinh,
    "acosh": _go_fn(math.acosh),
    "atanh": _go_atanh,
}


def _trig(name: str) -> Builder:
    f = _TRIG[name]
    return lambda args, nodes: _each(args[0], f)


def func_deg(args: list[Any], nodes: list[Any]) -> Fn:
    return _each(args[0], lambda v: v * 180 / math.pi)


def func_rad(args: list[Any], nodes: list[Any]) -> Fn:
    return _each(args[0], lambda v: v * math.pi / 180)


def func_pi(args: list[Any], nodes: list[Any]) -> Fn:
    return lambda h, t: math.pi


def _sgn(v: float) -> float:
    if v < 0:
        return -1.0
    if v > 0:
        return 1.0
    return v  # 0, -0 and NaN stay as they are


def func_sgn(args: list[Any], nodes: list[Any]) -> Fn:
    return _each(args[0], _sgn)


# -- minute, hour, day_of_week, day_of_month, day_of_year, days_in_month, month, year ---------
#
# Go's time.Unix(int64(v), 0).UTC(), field by field, in Go's integer arithmetic: int64(v) of
# NaN, ±Inf or anything out of range is math.MinInt64 on amd64, and Go's calendar is
# proleptic Gregorian far beyond what Python's datetime holds (year(vector(1e12)) is 33658).

_U64 = (1 << 64) - 1
_SECONDS_PER_DAY = 86400
_DAYS_400, _DAYS_100, _DAYS_4 = 146097, 36524, 1461
_ABSOLUTE_ZERO_YEAR = -292277022399
_UNIX_TO_INTERNAL = (1969 * 365 + 1969 // 4 - 1969 // 100 + 1969 // 400) * _SECONDS_PER_DAY
_ABSOLUTE_TO_INTERNAL = (_ABSOLUTE_ZERO_YEAR - 1) * 146097 * _SECONDS_PER_DAY // 400
_DAYS_BEFORE = (0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334, 365)


def _int64(v: float) -> int:
    """Go's int64(v) on amd64 (CVTTSD2SQ): truncation, MinInt64 when it does not fit."""
    if v != v or not -(2.0**63) <= v < 2.0**63:
        return -(1 << 63)
    return int(v)


def _signed(u: int) -> int:
    u &= _U64
    return u - (1 << 64) if u >> 63 else u


def _abs_time(unix_s: int) -> int:
    """Go's Time.abs() of time.Unix(unix_s, 0).UTC(): seconds since the absolute zero year,
    as a uint64 (every step wraps as Go's int64 and uint64 arithmetic does)."""
    return (unix_s + _UNIX_TO_INTERNAL - _ABSOLUTE_TO_INTERNAL) & _U64


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _abs_date(abs_s: int) -> tuple[int, int, int, int]:
    """Go's absDate: (year, month 1-12, day of month, day of year from 0)."""
    d = abs_s // _SECONDS_PER_DAY
    n = d // _DAYS_400
    y = 400 * n
    d -= _DAYS_400 * n
    n = d // _DAYS_100
    n -= n >> 2
    y += 100 * n
    d -= _DAYS_100 * n
    n = d // _DAYS_4
    y += 4 * n
    d -= _DAYS_4 * n
    n = d // 365
    n -= n >> 2
    y += n
    d -= 365 * n
    year = _signed(y) + _ABSOLUTE_ZERO_YEAR
    yday = day = d
    if _is_leap(year):
        if day > 31 + 29 - 1:
            day -= 1
        elif day == 31 + 29 - 1:
            return year, 2, 29, yday
    month = day // 31
    end = _DAYS_BEFORE[month + 1]
    if day >= end:
        month += 1
        begin = end
    else:
        begin = _DAYS_BEFORE[month]
    return year, month + 1, day - begin + 1, yday


def _days_in_month(abs_s: int) -> int:
    """32 - time.Date(year, month, 32, 0, 0, 0, 0, time.UTC).Day(), in Go's arithmetic."""
    year, month, _, _ = _abs_date(abs_s)
    y = (year - _ABSOLUTE_ZERO_YEAR) & _U64
    n = y // 400
    y -= 400 * n
    d = _DAYS_400 * n
    n = y // 100
    y -= 100 * n
    d += _DAYS_100 * n
    n = y // 4
    y -= 4 * n
    d += _DAYS_4 * n + 365 * y
    d += _DAYS_BEFORE[month - 1]
    if _is_leap(year) and month >= 3:
        d += 1
    d += 31  # day 32
    date_abs = (d * _SECONDS_PER_DAY) & _U64
    unix = _signed(date_abs) + _ABSOLUTE_TO_INTERNAL - _UNIX_TO_INTERNAL
    return 32 - _abs_date(_abs_time(_signed(unix)))[2]


_DATE_FIELDS: dict[str, Callable[[int], int]] = {
    "minute": lambda a: a % 3600 // 60,
    "hour": lambda a: a % _SECONDS_PER_DAY // 3600,
    "day_of_week": lambda a: (a + _SECONDS_PER_DAY) % (7 * _SECONDS_PER_DAY) // _SECONDS_PER_DAY,
    "day_of_month": lambda a: _abs_date(a)[2],
    "day_of_year": lambda a: _abs_date(a)[3] + 1,
    "days_in_month": _days_in_month,
    "month": lambda a: _abs_date(a)[1],
    "year": lambda a: _abs_date(a)[0],
}


def _date(name: str) -> Builder:
    field = _DATE_FIELDS[name]

    def build(args: list[Any], nodes: list[Any]) -> Fn:
        if not args:  # of the evaluation time, as vector(time()) would be
            return lambda h, t: [((), float(field(_abs_time(int(t / 1000)))))]
        vfn: Fn = args[0]
        return lambda h, t: check_unique(
            [(drop_name(k), float(field(_abs_time(_int64(v))))) for k, v in vfn(h, t)]
        )

    return build


# -- label_join ---------------------------------------------------------------------------------


def func_label_join(args: list[Any], nodes: list[Any]) -> Fn:
    """label_join(v, dst, separator, src...): the source labels' values joined (an empty
    result removes `dst`); label names are checked when it runs, as in Prometheus."""
    vfn: Fn = args[0]
    dst, sep, *srcs = args[1:]

    def run(h: History, t: int) -> IVec:
        for src in srcs:
            if not _LABEL_NAME.match(src):
                raise EvalError(f"invalid source label name in label_join(): {src}")
        if not _LABEL_NAME.match(dst):
            raise EvalError(f"invalid destination label name in label_join(): {dst}")
        out: IVec = []
        for key, v in vfn(h, t):
            labels = dict(key)
            joined = sep.join(labels.get(src, "") for src in srcs)
            if joined:
                labels[dst] = joined
            else:
                labels.pop(dst, None)
            out.append((tuple(sorted(labels.items())), v))
        return check_unique(out)

    return run


# -- label_replace ------------------------------------------------------------------------------

_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")


def func_label_replace(args: list[Any], nodes: list[Any]) -> Fn:
    vfn: Fn = args[0]
    dst, repl, src, regex_text = args[1:]
    if not _LABEL_NAME.match(dst):
        raise ValueError(f"invalid destination label name in label_replace(): {dst}")
    # Prometheus compiles "^(?:" + regex + ")$" as one text (so "a)|(b" is valid here).
    try:
        regex = compile_go(f"^(?:{regex_text})$")
    except RegexpUnsupported as e:
        raise UnsupportedExpr(f"label_replace(): {e}") from None
    except RegexpError:
        raise ValueError(f"invalid regular expression in label_replace(): {regex_text}") from None

    def run(h: History, t: int) -> IVec:
        out: IVec = []
        for key, v in vfn(h, t):
            labels = dict(key)
            m = regex.search(labels.get(src, ""))
            if m is not None:
                res = expand(repl, m)
                if res:
                    labels[dst] = res
                else:
                    labels.pop(dst, None)
                key = tuple(sorted(labels.items()))
            out.append((key, v))
        return check_unique(out)

    return run


_CALLS_TO_RESPELL = re.compile(
    r"""("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)"""
    r"|(?<![\w:])(holt_winters|double_exponential_smoothing)(?=\s*\()"
)


def parser_spelling(text: str) -> str:
    """`text` as promql-parser must read it: that parser knows holt_winters() only by its
    Prometheus 3.x name, double_exponential_smoothing(), which 2.42 does not have. So calls
    of the 2.42 name are respelled (string literals left alone) and the 3.x name, written
    by the user, is refused."""

    def respell(m: re.Match[str]) -> str:
        if m.group(1) is not None:
            return m.group(1)
        if m.group(2) == "double_exponential_smoothing":
            raise UnsupportedExpr(
                "function double_exponential_smoothing() is not supported (a Prometheus 3.x "
                "name; 2.42 calls it holt_winters())"
            )
        return "double_exponential_smoothing"

    return _CALLS_TO_RESPELL.sub(respell, text)


FUNCTIONS: dict[str, Function] = {
    "abs": Function(func_abs, (VECTOR,)),
    "absent": Function(func_absent, (VECTOR,)),
    "absent_over_time": Function(func_absent_over_time, (MATRIX,)),
    "avg_over_time": Function(func_avg_over_time, (RANGE_SELECTOR,)),
    "ceil": Function(func_ceil, (VECTOR,)),
    "changes": Function(func_changes, (RANGE_SELECTOR,)),
    "clamp": Function(func_clamp, (VECTOR, SCALAR, SCALAR)),
    "clamp_max": Function(func_clamp_max, (VECTOR, SCALAR)),
    "clamp_min": Function(func_clamp_min, (VECTOR, SCALAR)),
    "count_over_time": Function(func_count_over_time, (RANGE_SELECTOR,)),
    "deg": Function(func_deg, (VECTOR,)),
    "delta": Function(func_delta, (RANGE_SELECTOR,)),
    "deriv": Function(func_deriv, (RANGE_SELECTOR,)),
    "exp": Function(func_exp, (VECTOR,)),
    "floor": Function(func_floor, (VECTOR,)),
    "histogram_quantile": Function(func_histogram_quantile, (SCALAR, VECTOR)),
    # promql-parser knows only the 3.x name; 2.42's holt_winters is spelled so for it.
    "double_exponential_smoothing": Function(func_holt_winters, (RANGE_SELECTOR, SCALAR, SCALAR)),
    "idelta": Function(func_idelta, (RANGE_SELECTOR,)),
    "increase": Function(func_increase, (RANGE_SELECTOR,)),
    "irate": Function(func_irate, (RANGE_SELECTOR,)),
    "label_join": Function(func_label_join, (VECTOR, STRING, STRING, STRING), variadic=True),
    "label_replace": Function(func_label_replace, (VECTOR, STRING, STRING, STRING, STRING)),
    "last_over_time": Function(func_last_over_time, (RANGE_SELECTOR,)),
    "ln": Function(func_ln, (VECTOR,)),
    "log10": Function(func_log10, (VECTOR,)),
    "log2": Function(func_log2, (VECTOR,)),
    "max_over_time": Function(func_max_over_time, (RANGE_SELECTOR,)),
    "min_over_time": Function(func_min_over_time, (RANGE_SELECTOR,)),
    "pi": Function(func_pi, (), returns=SCALAR),
    "predict_linear": Function(func_predict_linear, (RANGE_SELECTOR, SCALAR)),
    "present_over_time": Function(func_present_over_time, (RANGE_SELECTOR,)),
    "quantile_over_time": Function(func_quantile_over_time, (SCALAR, RANGE_SELECTOR)),
    "rad": Function(func_rad, (VECTOR,)),
    "rate": Function(func_rate, (RANGE_SELECTOR,)),
    "resets": Function(func_resets, (RANGE_SELECTOR,)),
    "round": Function(func_round, (VECTOR, SCALAR)),
    "scalar": Function(func_scalar, (VECTOR,), returns=SCALAR),
    "sgn": Function(func_sgn, (VECTOR,)),
    "sort": Function(func_sort, (VECTOR,)),
    "sort_desc": Function(func_sort_desc, (VECTOR,)),
    "sqrt": Function(func_sqrt, (VECTOR,)),
    "stddev_over_time": Function(func_stddev_over_time, (RANGE_SELECTOR,)),
    "stdvar_over_time": Function(func_stdvar_over_time, (RANGE_SELECTOR,)),
    "sum_over_time": Function(func_sum_over_time, (RANGE_SELECTOR,)),
    "time": Function(func_time, (), returns=SCALAR),
    "timestamp": Function(func_timestamp, (VECTOR,)),
    "vector": Function(func_vector, (SCALAR,)),
}
FUNCTIONS.update({name: Function(_trig(name), (VECTOR,)) for name in _TRIG})
FUNCTIONS.update({name: Function(_date(name), (VECTOR,)) for name in _DATE_FIELDS})
"""PromQL function name -> its implementation. A name missing here is unsupported."""
