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

from agent.alerting.history import History, Series, bisect_left, bisect_right, is_stale
from agent.alerting.promql.gomath import (
    go_ceil,
    go_exp,
    go_floor,
    go_log,
    go_log2,
    go_log10,
    go_max,
    go_min,
    go_sqrt,
)
from agent.alerting.promql.quantile import bucket_quantile, quantile
from agent.alerting.promql.values import (
    MATRIX,
    RANGE_SELECTOR,
    SCALAR,
    STRING,
    VECTOR,
    Fn,
    IVec,
    Key,
    Matrix,
    check_re2,
    check_unique,
    drop_name,
)
from agent.support.goregexp import expand

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
    range_start = t - (m.range_ms + m.offset_ms)
    range_end = t - m.offset_ms
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
    loop of most alert rules. Windows with a reset or a staleness marker take the exact
    general path (`_extrapolated_rate`)."""
    ms, off, rng = m.matchers, m.offset_ms, m.range_ms
    range_s = rng / 1000

    # Dropping the name cannot create duplicates when every series has the same name.
    one_name = any(x.name == "__name__" and x.op == "=" for x in ms)

    def run(h: History, t: int) -> IVec:
        end = t - off
        start = end - rng
        out: IVec = []
        append = out.append
        for s in h.series(ms):
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


# The parameters are evaluated before the vector, in every function that has both.


def func_clamp_min(args: list[Any], nodes: list[Any]) -> Fn:
    vfn, minfn = args

    def run(h: History, t: int) -> IVec:
        lo = minfn(h, t)
        return check_unique([(drop_name(k), go_max(lo, v)) for k, v in vfn(h, t)])

    return run


def func_clamp_max(args: list[Any], nodes: list[Any]) -> Fn:
    vfn, maxfn = args

    def run(h: History, t: int) -> IVec:
        hi = maxfn(h, t)
        return check_unique([(drop_name(k), go_min(hi, v)) for k, v in vfn(h, t)])

    return run


def func_clamp(args: list[Any], nodes: list[Any]) -> Fn:
    vfn, minfn, maxfn = args

    def run(h: History, t: int) -> IVec:
        lo = minfn(h, t)
        hi = maxfn(h, t)
        vec = vfn(h, t)
        if hi < lo:
            return []
        return check_unique([(drop_name(k), go_max(lo, go_min(hi, v))) for k, v in vec])

    return run


def func_round(args: list[Any], nodes: list[Any]) -> Fn:
    """round(v, to_nearest=1): Prometheus rounds half up, via the inverse of to_nearest."""
    vfn: Fn = args[0]
    nearest: Fn | None = args[1] if len(args) > 1 else None

    def run(h: History, t: int) -> IVec:
        to = nearest(h, t) if nearest is not None else 1.0
        vec = vfn(h, t)
        inv = 1.0 / to
        return check_unique([(drop_name(k), go_floor(v * inv + 0.5) / inv) for k, v in vec])

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


def _sort(vfn: Fn, desc: bool) -> Fn:
    def run(h: History, t: int) -> IVec:
        vec = list(vfn(h, t))
        vec.sort(key=lambda kv: (kv[1] != kv[1], -kv[1] if desc else kv[1]))
        return vec

    return run


def func_sort(args: list[Any], nodes: list[Any]) -> Fn:
    return _sort(args[0], desc=False)


def func_sort_desc(args: list[Any], nodes: list[Any]) -> Fn:
    return _sort(args[0], desc=True)


# -- absent, absent_over_time -------------------------------------------------------------------


def _absent_labels(node: Any) -> Key:
    """The labels of absent()'s one sample: the selector's `name="value"` matchers, except
    a label matched twice or matched by anything but `=` (Prometheus'
    createLabelsForAbsentFunction)."""
    labels: dict[str, str] = {}
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
    key = _absent_labels(node.vector_selector if isinstance(node, pp.MatrixSelector) else None)

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
    """Classic buckets: the series of one group differ only in `le` (the name is dropped)."""
    qfn, vfn = args

    def run(h: History, t: int) -> IVec:
        q = qfn(h, t)
        groups: dict[Key, list[tuple[float, float]]] = {}
        for key, v in vfn(h, t):
            le_text = None
            rest = []
            for p in key:
                if p[0] == "le":
                    le_text = p[1]
                elif p[0] != "__name__":
                    rest.append(p)
            if le_text is None:
                continue
            le = _parse_le(le_text)
            if le is None:
                continue
            groups.setdefault(tuple(rest), []).append((le, v))
        return [(g, bucket_quantile(q, b)) for g, b in groups.items()]

    return run


# -- label_replace ------------------------------------------------------------------------------

_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")


def func_label_replace(args: list[Any], nodes: list[Any]) -> Fn:
    vfn: Fn = args[0]
    dst, repl, src, regex_text = args[1:]
    if not _LABEL_NAME.match(dst):
        raise ValueError(f"invalid destination label name in label_replace(): {dst}")
    check_re2(regex_text)
    try:
        regex = re.compile(f"(?:{regex_text})\\Z")
    except re.error as e:
        raise ValueError(
            f"invalid regular expression in label_replace(): {regex_text}: {e}"
        ) from None

    def run(h: History, t: int) -> IVec:
        out: IVec = []
        for key, v in vfn(h, t):
            labels = dict(key)
            m = regex.match(labels.get(src, ""))
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
    "delta": Function(func_delta, (RANGE_SELECTOR,)),
    "exp": Function(func_exp, (VECTOR,)),
    "floor": Function(func_floor, (VECTOR,)),
    "histogram_quantile": Function(func_histogram_quantile, (SCALAR, VECTOR)),
    "idelta": Function(func_idelta, (RANGE_SELECTOR,)),
    "increase": Function(func_increase, (RANGE_SELECTOR,)),
    "irate": Function(func_irate, (RANGE_SELECTOR,)),
    "label_replace": Function(func_label_replace, (VECTOR, STRING, STRING, STRING, STRING)),
    "last_over_time": Function(func_last_over_time, (RANGE_SELECTOR,)),
    "ln": Function(func_ln, (VECTOR,)),
    "log10": Function(func_log10, (VECTOR,)),
    "log2": Function(func_log2, (VECTOR,)),
    "max_over_time": Function(func_max_over_time, (RANGE_SELECTOR,)),
    "min_over_time": Function(func_min_over_time, (RANGE_SELECTOR,)),
    "present_over_time": Function(func_present_over_time, (RANGE_SELECTOR,)),
    "quantile_over_time": Function(func_quantile_over_time, (SCALAR, RANGE_SELECTOR)),
    "rate": Function(func_rate, (RANGE_SELECTOR,)),
    "resets": Function(func_resets, (RANGE_SELECTOR,)),
    "round": Function(func_round, (VECTOR, SCALAR)),
    "scalar": Function(func_scalar, (VECTOR,), returns=SCALAR),
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
"""PromQL function name -> its implementation. A name missing here is unsupported."""
