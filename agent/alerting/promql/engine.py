"""A PromQL subset evaluated over the agent's own `History`, with Prometheus 2.42 semantics.

`compile_expr` parses with `promql_parser`, walks the tree once, rejects every construct
outside the subset (docs/promql.md) with `UnsupportedExpr`, and turns the tree into nested
closures `(history, t_ms) -> value`. `evaluate` runs them for one instant: pure, no clock,
no I/O.

Inside the evaluator an instant vector is a list of `(key, value)` with `key` the sorted
tuple of label pairs (so grouping and matching hash tuples, not dicts); it becomes a list of
`Sample` only at the edge. Arithmetic follows Go's float64 semantics (x/0 is ±Inf, never an
exception) and sums are done in the order and with the algorithms Prometheus 2.42 uses, so
results agree with `promtool` to the last bit.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import promql_parser as pp

from agent.alerting.history import (
    History,
    Matcher,
    MatchOp,
    Series,
    SeriesKey,
    bisect_left,
    bisect_right,
    is_stale,
    window,
)

__all__ = [
    "EvalError",
    "Expr",
    "Sample",
    "UnsupportedExpr",
    "Vector",
    "compile_expr",
    "evaluate",
    "lookback",
]

LOOKBACK_MS = 5 * 60 * 1000
"""Instant selectors return the newest sample at most 5 minutes old (Prometheus' default)."""

NAN = float("nan")
INF = float("inf")


class UnsupportedExpr(ValueError):
    """The expression is valid PromQL but uses something chatwatch does not evaluate."""


class EvalError(ValueError):
    """Evaluation failed the way Prometheus fails (duplicate label sets, many-to-many...)."""


@dataclass(slots=True)
class Sample:
    labels: dict[str, str]
    value: float


Vector = list[Sample]

# Internal value shapes.
Key = SeriesKey
IVec = list[tuple[Key, float]]
Window = tuple[Series, int, int]  # series and the [lo, hi) index range inside the window
Fn = Callable[[History, int], Any]

SCALAR, VECTOR, MATRIX, STRING = "scalar", "vector", "range vector", "string"


class _Matrix:
    """A compiled range selector: the function that finds windows, plus its shape."""

    __slots__ = ("fn", "matchers", "offset_ms", "range_ms", "selector")

    def __init__(
        self,
        fn: Fn,
        range_ms: int,
        offset_ms: int,
        selector: pp.VectorSelector,
        matchers: tuple[Matcher, ...],
    ):
        self.fn = fn
        self.range_ms = range_ms
        self.offset_ms = offset_ms
        self.selector = selector
        self.matchers = matchers


@dataclass(frozen=True, slots=True)
class Expr:
    """A compiled expression: evaluate it with `evaluate(expr, history, now)`."""

    text: str
    kind: str  # "vector" or "scalar"
    fn: Fn
    lookback_s: float
    instant_selectors: tuple[tuple[Matcher, ...], ...] = ()
    """Matchers of each instant-vector selector (each reads only the newest sample)."""
    range_s: float = 0.0
    """The longest range (+ offset) a range selector reads: history this old must exist."""


def compile_expr(text: str) -> Expr:
    """Parse `text` and check it against the supported subset; raises ValueError."""
    try:
        node = pp.parse(text)
    except Exception as e:  # the parser raises plain exceptions with the reason
        raise ValueError(f"invalid PromQL expression {text!r}: {e}") from None
    c = _Compiler()
    kind, fn = c.compile(node)
    if kind not in (VECTOR, SCALAR):
        raise ValueError(f"expression must return an instant vector or a scalar, not a {kind}")
    return Expr(
        text,
        kind,
        fn,
        c.lookback_ms / 1000,
        tuple(c.instant_selectors),
        c.range_ms / 1000,
    )


def evaluate(expr: Expr, history: History, now: float) -> Vector | float:
    """Evaluate `expr` as an instant query at `now` (seconds) over `history`."""
    value = expr.fn(history, round(now * 1000))
    if expr.kind == SCALAR:
        return float(value)
    return [Sample(dict(k), v) for k, v in value]


def lookback(expr: Expr) -> float:
    """The longest span (range + offset, or the 5 minute lookback) the expression reads."""
    return expr.lookback_s


# -- Go float64 semantics ----------------------------------------------------------------


def _div(a: float, b: float) -> float:
    try:
        return a / b
    except ZeroDivisionError:
        if a != a or a == 0:
            return NAN
        return math.copysign(INF, a) * math.copysign(1.0, b)


def _mod(a: float, b: float) -> float:
    try:
        return math.fmod(a, b)
    except ValueError:
        return NAN


def _is_odd_int(y: float) -> bool:
    return math.isfinite(y) and y == math.floor(y) and int(y) % 2 == 1


def _go_pow(x: float, y: float) -> float:
    """Go's math.Pow: integer powers by repeated squaring (so x^2 matches to the bit)."""
    if y == 0 or x == 1:
        return 1.0
    if y == 1:
        return x
    if x != x or y != y:
        return NAN
    if x == 0 or math.isinf(x) or math.isinf(y) or abs(y) >= 2**63:
        return _pow(x, y)
    if y == 0.5:
        return math.sqrt(x) if x >= 0 else NAN
    if y == -0.5:
        return 1 / math.sqrt(x) if x > 0 else NAN
    yf, yi = math.modf(abs(y))
    if yf != 0 and x < 0:
        return NAN
    a1 = 1.0
    ae = 0
    if yf != 0:
        if yf > 0.5:
            yf -= 1
            yi += 1
        a1 = _safe(math.exp)(yf * _go_log(x))
    x1, xe = math.frexp(x)
    i = int(yi)
    while i != 0:
        if xe < -(1 << 12) or xe > (1 << 12):
            ae += xe
            break
        if i & 1 == 1:
            a1 *= x1
            ae += xe
        x1 *= x1
        xe <<= 1
        if x1 < 0.5:
            x1 += x1
            xe -= 1
        i >>= 1
    if y < 0:
        a1 = 1 / a1
        ae = -ae
    try:
        return math.ldexp(a1, ae)
    except OverflowError:
        return math.copysign(INF, a1)


def _pow(a: float, b: float) -> float:
    try:
        return math.pow(a, b)
    except (ValueError, ZeroDivisionError):
        if a == 0 and b < 0:
            return math.copysign(INF, a) if _is_odd_int(b) else INF
        return NAN
    except OverflowError:
        return -INF if a < 0 and _is_odd_int(b) else INF


def _floor(x: float) -> float:
    if not math.isfinite(x):
        return x
    r = float(math.floor(x))
    return math.copysign(0.0, x) if r == 0 else r


def _ceil(x: float) -> float:
    """Go's Ceil: -Floor(-x), so ceil(-0.5) is -0."""
    return -_floor(-x)


def _go_log(x: float) -> float:
    """Go's math.Log (FreeBSD's e_log.c algorithm), which can differ from libm in the last bit."""
    if x != x or x == INF:
        return x
    if x < 0:
        return NAN
    if x == 0:
        return -INF
    f1, ki = math.frexp(x)
    if f1 < math.sqrt(2) / 2:
        f1 *= 2
        ki -= 1
    f = f1 - 1
    k = float(ki)
    s = f / (2 + f)
    s2 = s * s
    s4 = s2 * s2
    t1 = s2 * (
        6.666666666666735130e-01
        + s4
        * (
            2.857142874366239149e-01
            + s4 * (1.818357216161805012e-01 + s4 * 1.479819860511658591e-01)
        )
    )
    t2 = s4 * (
        3.999999999940941908e-01 + s4 * (2.222219843214978396e-01 + s4 * 1.531383769920937332e-01)
    )
    r = t1 + t2
    hfsq = 0.5 * f * f
    return k * 6.93147180369123816490e-01 - (
        (hfsq - (s * (hfsq + r) + k * 1.90821492927058770002e-10)) - f
    )


# Go evaluates 1/Ln2 and 1/Ln10 as exact constants, then rounds once.
_INV_LN2 = 1.4426950408889634
_INV_LN10 = 0.4342944819032518


def _go_log2(x: float) -> float:
    """Go's math.Log2: exact for powers of two, else Log(frac)/Ln2 + exp."""
    if x != x or x <= 0 or math.isinf(x):
        return _go_log(x)
    frac, exp = math.frexp(x)
    if frac == 0.5:
        return float(exp - 1)
    return _go_log(frac) * _INV_LN2 + float(exp)


def _go_log10(x: float) -> float:
    """Go's math.Log10: Log(x) * (1/Ln10)."""
    return _go_log(x) * _INV_LN10


def _go_max(x: float, y: float) -> float:
    if x == INF or y == INF:
        return INF
    if x != x or y != y:
        return NAN
    if x == 0 and x == y:
        return y if math.copysign(1, x) < 0 else x
    return x if x > y else y


def _go_min(x: float, y: float) -> float:
    if x == -INF or y == -INF:
        return -INF
    if x != x or y != y:
        return NAN
    if x == 0 and x == y:
        return x if math.copysign(1, x) < 0 else y
    return x if x < y else y


def _safe(f: Callable[[float], float]) -> Callable[[float], float]:
    """A libm function with Go's answers instead of exceptions (sqrt(-1) is NaN)."""

    def g(x: float) -> float:
        try:
            return f(x)
        except ValueError:
            return NAN
        except OverflowError:
            return INF

    return g


def _kahan_inc(inc: float, s: float, c: float) -> tuple[float, float]:
    t = s + inc
    if abs(s) >= abs(inc):
        c += (s - t) + inc
    else:
        c += (inc - t) + s
    return t, c


_ARITH: dict[str, Callable[[float, float], float]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": _div,
    "%": _mod,
    "^": _go_pow,
    "atan2": math.atan2,
}
_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    ">": lambda a, b: a > b,
    "<": lambda a, b: a < b,
    ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b,
}
_SET_OPS = ("and", "or", "unless")


def _drop_name(key: Key) -> Key:
    return tuple(p for p in key if p[0] != "__name__")


def _check_unique(vec: IVec) -> IVec:
    if len({k for k, _ in vec}) != len(vec):
        raise EvalError("vector cannot contain metrics with the same labelset")
    return vec


def _ms(d: timedelta | None) -> int:
    if d is None:
        return 0
    return (d.days * 86400 + d.seconds) * 1000 + d.microseconds // 1000


# -- range-vector functions ----------------------------------------------------------------


def _points(s: Series, lo: int, hi: int) -> tuple[Sequence[int], Sequence[float]]:
    """The window's timestamps and values without staleness markers."""
    ts, vals = s.ts[lo:hi], s.vals[lo:hi]
    if s.regular(lo, hi):
        return ts, vals
    keep = [i for i, v in enumerate(vals) if not is_stale(v)]
    return [ts[i] for i in keep], [vals[i] for i in keep]


def _extrapolated_rate(
    s: Series, lo: int, hi: int, t: int, m: _Matrix, is_counter: bool, is_rate: bool
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


def _fast_rate(m: _Matrix, is_counter: bool, is_rate: bool) -> Fn:
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
        return out if one_name else _check_unique(out)

    return run


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


def _sum_over(vals: Sequence[float]) -> float:
    s = c = 0.0
    for v in vals:
        s, c = _kahan_inc(v, s, c)
    return s if math.isinf(s) else s + c


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


def _stdvar_over(vals: Sequence[float]) -> float:
    count = mean = c_mean = aux = c_aux = 0.0
    for v in vals:
        count += 1
        delta = v - (mean + c_mean)
        mean, c_mean = _kahan_inc(delta / count, mean, c_mean)
        aux, c_aux = _kahan_inc(delta * (v - (mean + c_mean)), aux, c_aux)
    return (aux + c_aux) / count


def _go_max_over(vals: Sequence[float]) -> float:
    total = sum(vals)
    if total == total:
        return max(vals)
    m = vals[0]
    for v in vals:
        if v > m or m != m:
            m = v
    return m


def _go_min_over(vals: Sequence[float]) -> float:
    total = sum(vals)
    if total == total:
        return min(vals)
    m = vals[0]
    for v in vals:
        if v < m or m != m:
            m = v
    return m


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


def _resets(vals: Sequence[float]) -> float:
    return float(sum(map(operator.lt, vals[1:], vals[:-1])))


def _nan_first(v: float) -> tuple[int, float]:
    return (0, 0.0) if v != v else (1, v)


def _quantile(q: float, values: list[float]) -> float:
    """promql/quantile.go quantile (linear interpolation between closest ranks)."""
    if not values:
        return NAN
    if q < 0:
        return -INF
    if q > 1:
        return INF
    values = sorted(values, key=_nan_first)
    n = float(len(values))
    rank = q * (n - 1)
    lower = max(0.0, math.floor(rank))
    upper = min(n - 1, lower + 1)
    weight = rank - math.floor(rank)
    return values[int(lower)] * (1 - weight) + values[int(upper)] * weight


_OVER_TIME: dict[str, Callable[[Sequence[float]], float]] = {
    "sum_over_time": _sum_over,
    "avg_over_time": _avg_over,
    "min_over_time": _go_min_over,
    "max_over_time": _go_max_over,
    "count_over_time": lambda vals: float(len(vals)),
    "last_over_time": lambda vals: vals[-1],
    "present_over_time": lambda vals: 1.0,
    "stddev_over_time": lambda vals: math.sqrt(_stdvar_over(vals)),
    "stdvar_over_time": _stdvar_over,
    "changes": _changes,
    "resets": _resets,
}


# -- histogram_quantile ----------------------------------------------------------------------


def _bucket_quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """promql/quantile.go bucketQuantile, v2.42 (classic buckets)."""
    if q != q:
        return NAN
    if q < 0:
        return -INF
    if q > 1:
        return INF
    buckets.sort(key=lambda b: b[0])
    if buckets[-1][0] != INF:
        return NAN
    bounds: list[float] = []
    counts: list[float] = []
    for ub, count in buckets:
        if bounds and bounds[-1] == ub:
            counts[-1] += count
        else:
            bounds.append(ub)
            counts.append(count)
    top = -INF
    for i, c in enumerate(counts):
        if c > top:
            top = c
        elif c < top:
            counts[i] = top
    if len(bounds) < 2:
        return NAN
    observations = counts[-1]
    if observations == 0:
        return NAN
    rank = q * observations
    b = 0
    last = len(bounds) - 1
    while b < last and not counts[b] >= rank:
        b += 1
    if b == last:
        return bounds[-2]
    if b == 0 and bounds[0] <= 0:
        return bounds[0]
    start = 0.0
    end = bounds[b]
    count = counts[b]
    if b > 0:
        start = bounds[b - 1]
        count -= counts[b - 1]
        rank -= counts[b - 1]
    return start + (end - start) * (rank / count)


def _parse_le(text: str) -> float | None:
    if "_" in text:
        return None
    try:
        return float(text)
    except ValueError:
        return None


# -- label_replace -----------------------------------------------------------------------------

_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
_TEMPLATE_VAR = re.compile(r"\$(?:\$|\{([A-Za-z0-9_]*)\}|([A-Za-z0-9_]+))")


def _go_expand(template: str, m: re.Match[str]) -> str:
    """Go's regexp.Expand: `$1`, `${1}`, `$name`, `$$`; unknown groups expand to ''."""

    def repl(v: re.Match[str]) -> str:
        if v.group(0) == "$$":
            return "$"
        name = v.group(1) if v.group(1) is not None else v.group(2)
        if name == "" and v.group(1) is not None:
            return v.group(0)  # "${}" is malformed: Go keeps it as text
        try:
            if name.isdigit():
                return m.group(int(name)) or ""
            return m.group(name) or ""
        except IndexError:
            return ""

    return _TEMPLATE_VAR.sub(repl, template)


# -- the compiler ------------------------------------------------------------------------------


_NOT_RE2 = re.compile(r"\(\?<?[=!]|\\[1-9]|\(\?P=")


def _check_re2(pattern: str) -> None:
    """Prometheus uses Go's RE2: no lookaround, no backreferences. Python's re has them, so
    refuse them rather than accept a rule Prometheus would reject."""
    if _NOT_RE2.search(pattern):
        raise UnsupportedExpr(
            f"regular expression {pattern!r}: lookarounds and backreferences are not "
            "supported (Prometheus uses RE2)"
        )


def _memoized(text: str, names: frozenset[str] | None, fn: Fn) -> Fn:
    """Share the result of a subexpression between the rules evaluated at one instant.

    Results are never mutated by their consumers, so one list can serve every rule that
    computes e.g. `sum by (route) (rate(http_requests_total[5m]))`. `names` are the metrics
    it reads (None: a selector without a fixed name), so a write can drop just those."""

    def run(h: History, t: int) -> Any:
        key = (text, t)
        hit = h.memo.get(key)
        if hit is None:
            hit = fn(h, t)
            h.remember(key, names, hit)
        return hit

    return run


def _ensure(kind: str, want: str, what: str) -> None:
    if kind != want:
        raise ValueError(f"{what} expects a {want}, got a {kind}")


_MATCH_OPS: dict[str, MatchOp] = {
    "MatchOp.Equal": "=",
    "MatchOp.NotEqual": "!=",
    "MatchOp.Re": "=~",
    "MatchOp.NotRe": "!~",
}


class _Compiler:
    def __init__(self) -> None:
        self.lookback_ms = 0
        self.range_ms = 0
        self.instant_selectors: list[tuple[Matcher, ...]] = []
        self.reads: list[str | None] = []  # per selector: its metric name, or None

    def names_read(self, start: int) -> frozenset[str] | None:
        reads = self.reads[start:]
        if None in reads:
            return None
        return frozenset(n for n in reads if n is not None)

    def compile(self, node: Any) -> tuple[str, Any]:
        if isinstance(node, pp.ParenExpr):
            return self.compile(node.expr)
        if isinstance(node, pp.NumberLiteral):
            val = float(node.val)
            return SCALAR, lambda h, t: val
        if isinstance(node, pp.StringLiteral):
            sval = str(node.val)
            return STRING, lambda h, t: sval
        if isinstance(node, pp.VectorSelector):
            return VECTOR, self.vector_selector(node)
        if isinstance(node, pp.MatrixSelector):
            return MATRIX, self.matrix_selector(node)
        if isinstance(node, pp.UnaryExpr):
            return self.unary(node)
        if isinstance(node, pp.BinaryExpr):
            return self.binary(node)
        if isinstance(node, pp.AggregateExpr):
            start = len(self.reads)
            kind, fn = self.aggregate(node)
            return kind, _memoized(str(node), self.names_read(start), fn)
        if isinstance(node, pp.Call):
            start = len(self.reads)
            kind, fn = self.call(node)
            if kind != VECTOR:
                return kind, fn
            return kind, _memoized(str(node), self.names_read(start), fn)
        if isinstance(node, pp.SubqueryExpr):
            raise UnsupportedExpr(f"subquery {node.prettify()} is not supported")
        raise UnsupportedExpr(f"{type(node).__name__} is not supported")

    # selectors

    def matchers(self, vs: pp.VectorSelector) -> tuple[Matcher, ...]:
        if vs.at is not None:
            raise UnsupportedExpr(f"the @ modifier in {vs} is not supported")
        if vs.matchers.or_matchers:
            raise UnsupportedExpr(f"'or' inside label matchers in {vs} is not supported")
        out: list[Matcher] = []
        if vs.name:
            out.append(Matcher("__name__", "=", vs.name))
        named = [
            m.value
            for m in vs.matchers.matchers
            if m.name == "__name__" and m.op == pp.MatchOp.Equal
        ]
        self.reads.append(vs.name or (named[0] if named else None))
        for m in vs.matchers.matchers:
            matcher = Matcher(m.name, _MATCH_OPS[str(m.op)], m.value)
            if matcher.op in ("=~", "!~"):
                _check_re2(m.value)
                try:
                    matcher.compile()
                except re.error as e:
                    raise ValueError(f"invalid regular expression in {vs}: {e}") from None
            out.append(matcher)
        return tuple(out)

    def vector_selector(self, vs: pp.VectorSelector, with_ts: bool = False) -> Fn:
        ms = self.matchers(vs)
        off = _ms(vs.offset)
        self.lookback_ms = max(self.lookback_ms, LOOKBACK_MS + max(off, 0))
        self.instant_selectors.append(ms)

        def select(h: History, t: int) -> IVec:
            ref = t - off
            oldest = ref - LOOKBACK_MS
            out: IVec = []
            for s in h.series(ms):
                ts = s.ts
                if not ts or ts[0] > ref:
                    continue
                i = len(ts) - 1 if ts[-1] <= ref else bisect_right(ts, ref) - 1
                if ts[i] < oldest:
                    continue
                v = s.vals[i]
                if v != v and is_stale(v):
                    continue
                out.append((s.key, v))
            return out

        def select_ts(h: History, t: int) -> IVec:
            """For timestamp(): the sample's own timestamp, with the metric name dropped."""
            ref = t - off
            oldest = ref - LOOKBACK_MS
            out: IVec = []
            for s in h.series(ms):
                ts = s.ts
                if not ts or ts[0] > ref:
                    continue
                i = len(ts) - 1 if ts[-1] <= ref else bisect_right(ts, ref) - 1
                if ts[i] < oldest or is_stale(s.vals[i]):
                    continue
                out.append((s.key_noname, ts[i] / 1000))
            return _check_unique(out)

        return select_ts if with_ts else select

    def matrix_selector(self, node: pp.MatrixSelector) -> _Matrix:
        vs = node.vector_selector
        ms = self.matchers(vs)
        off = _ms(vs.offset)
        rng = _ms(node.range)
        self.lookback_ms = max(self.lookback_ms, rng + max(off, 0))
        self.range_ms = max(self.range_ms, rng + max(off, 0))

        def windows(h: History, t: int) -> list[Window]:
            ref = t - off
            start = ref - rng
            out: list[Window] = []
            for s in h.series(ms):
                ts = s.ts
                if not ts or ts[-1] < start or ts[0] > ref:
                    continue
                lo, hi = window(ts, start, ref)
                if lo < hi:
                    out.append((s, lo, hi))
            return out

        return _Matrix(windows, rng, off, vs, ms)

    # operators

    def unary(self, node: pp.UnaryExpr) -> tuple[str, Fn]:
        kind, fn = self.compile(node.expr)
        if kind == SCALAR:
            return SCALAR, lambda h, t: -fn(h, t)
        _ensure(kind, VECTOR, "unary minus")

        def neg(h: History, t: int) -> IVec:
            return _check_unique([(_drop_name(k), -v) for k, v in fn(h, t)])

        return VECTOR, neg

    def binary(self, node: pp.BinaryExpr) -> tuple[str, Fn]:
        op = str(node.op)
        mod = node.modifier
        return_bool = bool(mod and mod.return_bool)
        lkind, lfn = self.compile(node.lhs)
        rkind, rfn = self.compile(node.rhs)
        for kind in (lkind, rkind):
            if kind not in (SCALAR, VECTOR):
                raise ValueError(f"binary operator {op} needs scalars or instant vectors")
        if mod is not None and mod.fill_values is not None:
            fill = mod.fill_values
            if fill.lhs is not None or fill.rhs is not None:
                raise UnsupportedExpr(f"fill modifiers on {op} are not supported")
        if op in _SET_OPS:
            if lkind != VECTOR or rkind != VECTOR:
                raise ValueError(f"set operator {op} needs instant vectors on both sides")
            return VECTOR, self.set_op(op, mod, lfn, rfn)
        is_cmp = op in _COMPARE
        if op not in _ARITH and not is_cmp:
            raise UnsupportedExpr(f"binary operator {op} is not supported")
        calc = _ARITH.get(op)
        cmp = _COMPARE.get(op)
        drops = not is_cmp and op != "atan2"  # arithmetic drops the name (2.42: not atan2)

        def elem(a: float, b: float) -> tuple[float, bool]:
            if cmp is not None:
                return a, cmp(a, b)
            assert calc is not None
            return calc(a, b), True

        if lkind == SCALAR and rkind == SCALAR:
            if is_cmp and not return_bool:
                raise ValueError("comparisons between scalars must use the bool modifier")

            def scalar_scalar(h: History, t: int) -> float:
                value, keep = elem(lfn(h, t), rfn(h, t))
                if is_cmp:
                    return 1.0 if keep else 0.0
                return value

            return SCALAR, scalar_scalar

        if lkind == VECTOR and rkind == VECTOR:
            return VECTOR, self.vector_vector(op, mod, elem, drops, return_bool, lfn, rfn)

        swap = lkind == SCALAR
        vfn, sfn = (rfn, lfn) if swap else (lfn, rfn)

        def vector_scalar(h: History, t: int) -> IVec:
            vec = vfn(h, t)
            sv = sfn(h, t)
            out: IVec = []
            dropped = False
            for key, v in vec:
                lv, rv = (sv, v) if swap else (v, sv)
                value, keep = elem(lv, rv)
                if is_cmp and swap:
                    value = rv
                if return_bool:
                    value = 1.0 if keep else 0.0
                    keep = True
                if keep:
                    if drops or return_bool:
                        key = _drop_name(key)
                        dropped = True
                    out.append((key, value))
            return _check_unique(out) if dropped else out

        return VECTOR, vector_scalar

    @staticmethod
    def signature(mod: pp.BinModifier | None) -> tuple[bool, frozenset[str], Callable[[Key], Key]]:
        matching = mod.matching if mod is not None else None
        on = matching is not None and matching.type == pp.LabelModifierType.Include
        names = frozenset(matching.labels) if matching is not None else frozenset()
        if on:

            def sig(key: Key) -> Key:
                return tuple(p for p in key if p[0] in names)
        else:
            ignored = names | {"__name__"}

            def sig(key: Key) -> Key:
                return tuple(p for p in key if p[0] not in ignored)

        return on, names, sig

    def set_op(self, op: str, mod: pp.BinModifier | None, lfn: Fn, rfn: Fn) -> Fn:
        _, _, sig = self.signature(mod)

        def and_(h: History, t: int) -> IVec:
            lhs, rhs = lfn(h, t), rfn(h, t)
            if not lhs or not rhs:
                return []
            right = {sig(k) for k, _ in rhs}
            return [(k, v) for k, v in lhs if sig(k) in right]

        def or_(h: History, t: int) -> IVec:
            lhs, rhs = lfn(h, t), rfn(h, t)
            if not lhs:
                return list(rhs)
            if not rhs:
                return list(lhs)
            left = {sig(k) for k, _ in lhs}
            return list(lhs) + [(k, v) for k, v in rhs if sig(k) not in left]

        def unless(h: History, t: int) -> IVec:
            lhs, rhs = lfn(h, t), rfn(h, t)
            if not lhs or not rhs:
                return list(lhs)
            right = {sig(k) for k, _ in rhs}
            return [(k, v) for k, v in lhs if sig(k) not in right]

        return {"and": and_, "or": or_, "unless": unless}[op]

    def vector_vector(
        self,
        op: str,
        mod: pp.BinModifier | None,
        elem: Callable[[float, float], tuple[float, bool]],
        drops: bool,
        return_bool: bool,
        lfn: Fn,
        rfn: Fn,
    ) -> Fn:
        card = mod.card if mod is not None else pp.VectorMatchCardinality.OneToOne
        one_to_one = card == pp.VectorMatchCardinality.OneToOne
        one_to_many = card == pp.VectorMatchCardinality.OneToMany
        on, names, sig = self.signature(mod)
        include = tuple((mod.group_labels or []) if mod is not None else [])

        def result_key(lk: Key, rk: Key) -> Key:
            labels = dict(lk)
            if drops:
                labels.pop("__name__", None)
            if one_to_one:
                if on:
                    labels = {n: v for n, v in labels.items() if n in names}
                else:
                    for n in names:
                        labels.pop(n, None)
            if include:
                one = dict(rk)
                for n in include:
                    v = one.get(n, "")
                    if v:
                        labels[n] = v
                    else:
                        labels.pop(n, None)
            if return_bool:
                labels.pop("__name__", None)
            return tuple(sorted(labels.items()))

        def run(h: History, t: int) -> IVec:
            lhs, rhs = lfn(h, t), rfn(h, t)
            if one_to_many:
                lhs, rhs = rhs, lhs
            right: dict[Key, tuple[Key, float]] = {}
            for rk, rv in rhs:
                s = sig(rk)
                dup = right.get(s)
                if dup is not None:
                    side = "left" if one_to_many else "right"
                    raise EvalError(
                        f"found duplicate series for the match group {_fmt_labels(s)} on the "
                        f"{side} hand-side of the operation: [{_fmt_labels(rk)}, "
                        f"{_fmt_labels(dup[0])}];many-to-many matching not allowed: matching "
                        "labels must be unique on one side"
                    )
                right[s] = (rk, rv)
            matched: dict[Key, set[Key] | None] = {}
            out: IVec = []
            for lk, lv in lhs:
                s = sig(lk)
                hit = right.get(s)
                if hit is None:
                    continue
                rk, rv = hit
                vl, vr = (rv, lv) if one_to_many else (lv, rv)
                value, keep = elem(vl, vr)
                if return_bool:
                    value = 1.0 if keep else 0.0
                elif not keep:
                    continue
                key = result_key(lk, rk)
                if one_to_one:
                    if s in matched:
                        raise EvalError(
                            "multiple matches for labels: many-to-one matching must be "
                            "explicit (group_left/group_right)"
                        )
                    matched[s] = None
                else:
                    seen = matched.get(s)
                    if seen is None:
                        seen = matched[s] = set()
                    elif key in seen:
                        raise EvalError(
                            "multiple matches for labels: grouping labels must ensure "
                            "unique matches"
                        )
                    seen.add(key)
                out.append((key, value))
            return _check_unique(out)

        return run

    # aggregations

    def aggregate(self, node: pp.AggregateExpr) -> tuple[str, Fn]:
        op = str(node.op)
        kind, fn = self.compile(node.expr)
        _ensure(kind, VECTOR, f"aggregation {op}")
        if op not in (
            "sum",
            "avg",
            "min",
            "max",
            "count",
            "group",
            "stddev",
            "stdvar",
        ) and op not in (
            "topk",
            "bottomk",
            "quantile",
        ):
            raise UnsupportedExpr(f"aggregation {op} is not supported")
        pfn: Fn | None = None
        if op in ("topk", "bottomk", "quantile"):
            pkind, pfn = self.compile(node.param)
            _ensure(pkind, SCALAR, f"the parameter of {op}")
        mod = node.modifier
        without = mod is not None and mod.type == pp.AggModifierType.Without
        names = frozenset(mod.labels) if mod is not None else frozenset()
        if without:
            dropped = names | {"__name__"}

            def group_of(key: Key) -> Key:
                return tuple(p for p in key if p[0] not in dropped)
        else:

            def group_of(key: Key) -> Key:
                return tuple(p for p in key if p[0] in names)

        cache: dict[Key, Key] = {}

        def grouped(vec: IVec) -> dict[Key, list[tuple[Key, float]]]:
            if len(cache) > 100_000:
                cache.clear()
            groups: dict[Key, list[tuple[Key, float]]] = {}
            for key, v in vec:
                g = cache.get(key)
                if g is None:
                    g = cache[key] = group_of(key)
                members = groups.get(g)
                if members is None:
                    groups[g] = [(key, v)]
                else:
                    members.append((key, v))
            return groups

        if op in ("topk", "bottomk"):
            top = op == "topk"

            def select_k(h: History, t: int) -> IVec:
                assert pfn is not None
                f = pfn(h, t)
                if not math.isfinite(f) or abs(f) >= 2**63:
                    raise EvalError(f"Scalar value {f} overflows int64")
                k = int(f)
                if k < 1:
                    return []
                out: IVec = []
                for members in grouped(fn(h, t)).values():
                    if top:
                        members.sort(
                            key=lambda kv: (kv[1] != kv[1], -kv[1] if kv[1] == kv[1] else 0)
                        )
                    else:
                        members.sort(
                            key=lambda kv: (kv[1] != kv[1], kv[1] if kv[1] == kv[1] else 0)
                        )
                    out.extend(members[:k])
                return out

            return VECTOR, select_k

        reduce = _AGGREGATORS.get(op)

        def running(h: History, t: int) -> IVec:
            """sum and count, accumulated in input order (the same additions as 2.42)."""
            vec = fn(h, t)
            if len(cache) > 100_000:
                cache.clear()
            acc: dict[Key, float] = {}
            get = acc.get
            is_sum = op == "sum"
            for key, v in vec:
                g = cache.get(key)
                if g is None:
                    g = cache[key] = group_of(key)
                prev = get(g)
                if prev is None:
                    acc[g] = v if is_sum else 1.0
                else:
                    acc[g] = prev + (v if is_sum else 1.0)
            return list(acc.items())

        if op in ("sum", "count"):
            return VECTOR, running

        def run(h: History, t: int) -> IVec:
            vec = fn(h, t)
            if not vec:
                return []
            groups = grouped(vec)
            if op == "quantile":
                assert pfn is not None
                q = pfn(h, t)
                return [(g, _quantile(q, [v for _, v in m])) for g, m in groups.items()]
            assert reduce is not None
            return [(g, reduce([v for _, v in m])) for g, m in groups.items()]

        return VECTOR, run

    # functions

    def call(self, node: pp.Call) -> tuple[str, Fn]:
        name = node.func.name
        args = list(node.args)
        if name in _MATRIX_FUNCS or name in _OVER_TIME or name in _OTHER_RANGE_FUNCS:
            return self.range_function(name, args)
        if name == "absent":
            return self.absent(args[0], over_time=False)
        if name == "time":
            return SCALAR, lambda h, t: t / 1000
        if name == "vector":
            kind, sfn = self.compile(args[0])
            _ensure(kind, SCALAR, "vector()")
            return VECTOR, lambda h, t: [((), float(sfn(h, t)))]
        if name == "scalar":
            kind, vfn = self.compile(args[0])
            _ensure(kind, VECTOR, "scalar()")

            def scalar(h: History, t: int) -> float:
                vec = vfn(h, t)
                return vec[0][1] if len(vec) == 1 else NAN

            return SCALAR, scalar
        if name == "timestamp":
            arg = args[0]
            while isinstance(arg, pp.ParenExpr):
                arg = arg.expr
            if isinstance(arg, pp.VectorSelector):
                return VECTOR, self.vector_selector(arg, with_ts=True)
            kind, vfn = self.compile(arg)
            _ensure(kind, VECTOR, "timestamp()")
            return VECTOR, lambda h, t: _check_unique(
                [(_drop_name(k), t / 1000) for k, _ in vfn(h, t)]
            )
        if name in _SIMPLE:
            f = _SIMPLE[name]
            kind, vfn = self.compile(args[0])
            _ensure(kind, VECTOR, f"{name}()")
            return VECTOR, lambda h, t: _check_unique([(_drop_name(k), f(v)) for k, v in vfn(h, t)])
        if name in ("clamp_min", "clamp_max", "clamp", "round"):
            return self.clamp_round(name, args)
        if name in ("sort", "sort_desc"):
            kind, vfn = self.compile(args[0])
            _ensure(kind, VECTOR, f"{name}()")
            desc = name == "sort_desc"

            def sort(h: History, t: int) -> IVec:
                vec = list(vfn(h, t))
                vec.sort(key=lambda kv: (kv[1] != kv[1], -kv[1] if desc else kv[1]))
                return vec

            return VECTOR, sort
        if name == "histogram_quantile":
            return self.histogram_quantile(args)
        if name == "label_replace":
            return self.label_replace(args)
        raise UnsupportedExpr(f"function {name}() is not supported")

    def range_function(self, name: str, args: list[Any]) -> tuple[str, Fn]:
        qfn: Fn | None = None
        if name == "quantile_over_time":
            qkind, qfn = self.compile(args[0])
            _ensure(qkind, SCALAR, "the first argument of quantile_over_time()")
            args = args[1:]
        if name == "absent_over_time":
            return self.absent(args[0], over_time=True)
        if not isinstance(args[0], pp.MatrixSelector):
            raise UnsupportedExpr(
                f"{name}() over anything but a range selector (e.g. a subquery) is not supported"
            )
        m = self.matrix_selector(args[0])
        keep_name = name == "last_over_time"

        if name in _MATRIX_FUNCS:
            is_counter, is_rate, instant = _MATRIX_FUNCS[name]

            def rate_like(h: History, t: int) -> IVec:
                out: IVec = []
                for s, lo, hi in m.fn(h, t):
                    if instant:
                        v = _instant_value(s, lo, hi, is_rate)
                    else:
                        v = _extrapolated_rate(s, lo, hi, t, m, is_counter, is_rate)
                    if v is not None:
                        out.append((s.key_noname, v))
                return _check_unique(out)

            if instant:
                return VECTOR, rate_like
            return VECTOR, _fast_rate(m, is_counter, is_rate)

        reduce = _OVER_TIME.get(name)

        def over_time(h: History, t: int) -> IVec:
            out: IVec = []
            q = qfn(h, t) if qfn is not None else 0.0
            for s, lo, hi in m.fn(h, t):
                if name == "resets" and s.regular(lo, hi):
                    out.append((s.key_noname, 0.0))  # no reset recorded inside the window
                    continue
                _, vals = _points(s, lo, hi)
                if not vals:
                    continue
                v = _quantile(q, list(vals)) if reduce is None else reduce(vals)
                out.append((s.key if keep_name else s.key_noname, v))
            return out if keep_name else _check_unique(out)

        return VECTOR, over_time

    def absent(self, arg: Any, over_time: bool) -> tuple[str, Fn]:
        node = arg
        kind, fn = self.compile(arg)
        if over_time:
            _ensure(kind, MATRIX, "absent_over_time()")
            node = arg.vector_selector if isinstance(arg, pp.MatrixSelector) else None
        else:
            _ensure(kind, VECTOR, "absent()")
        labels: dict[str, str] = {}
        if isinstance(node, pp.VectorSelector):
            empty: list[str] = []
            for m in self.matchers(node):
                if m.name == "__name__":
                    continue
                if m.op == "=" and m.name not in labels:
                    if m.value:
                        labels[m.name] = m.value
                else:
                    empty.append(m.name)
            for n in empty:
                labels.pop(n, None)
        key: Key = tuple(sorted(labels.items()))

        if over_time:
            matrix: _Matrix = fn

            def absent_over(h: History, t: int) -> IVec:
                for s, lo, hi in matrix.fn(h, t):
                    if _points(s, lo, hi)[1]:
                        return []
                return [(key, 1.0)]

            return VECTOR, absent_over
        return VECTOR, lambda h, t: [] if fn(h, t) else [(key, 1.0)]

    def clamp_round(self, name: str, args: list[Any]) -> tuple[str, Fn]:
        kind, vfn = self.compile(args[0])
        _ensure(kind, VECTOR, f"{name}()")
        sfns: list[Fn] = []
        for a in args[1:]:
            skind, sfn = self.compile(a)
            _ensure(skind, SCALAR, f"the parameters of {name}()")
            sfns.append(sfn)

        def run(h: History, t: int) -> IVec:
            ps = [f(h, t) for f in sfns]
            vec = vfn(h, t)
            if name == "clamp_min":
                out = [(_drop_name(k), _go_max(ps[0], v)) for k, v in vec]
            elif name == "clamp_max":
                out = [(_drop_name(k), _go_min(ps[0], v)) for k, v in vec]
            elif name == "clamp":
                lo, hi = ps
                if hi < lo:
                    return []
                out = [(_drop_name(k), _go_max(lo, _go_min(hi, v))) for k, v in vec]
            else:
                inv = 1.0 / (ps[0] if ps else 1.0)
                out = [(_drop_name(k), _floor(v * inv + 0.5) / inv) for k, v in vec]
            return _check_unique(out)

        return VECTOR, run

    def histogram_quantile(self, args: list[Any]) -> tuple[str, Fn]:
        qkind, qfn = self.compile(args[0])
        _ensure(qkind, SCALAR, "the first argument of histogram_quantile()")
        vkind, vfn = self.compile(args[1])
        _ensure(vkind, VECTOR, "the second argument of histogram_quantile()")

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
            return [(g, _bucket_quantile(q, b)) for g, b in groups.items()]

        return VECTOR, run

    def label_replace(self, args: list[Any]) -> tuple[str, Fn]:
        kind, vfn = self.compile(args[0])
        _ensure(kind, VECTOR, "label_replace()")
        strs = []
        for a in args[1:]:
            while isinstance(a, pp.ParenExpr):
                a = a.expr
            if not isinstance(a, pp.StringLiteral):
                raise UnsupportedExpr(
                    "label_replace() with non-literal string arguments is not supported"
                )
            strs.append(str(a.val))
        dst, repl, src, regex_text = strs
        if not _LABEL_NAME.match(dst):
            raise ValueError(f"invalid destination label name in label_replace(): {dst}")
        _check_re2(regex_text)
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
                    res = _go_expand(repl, m)
                    if res:
                        labels[dst] = res
                    else:
                        labels.pop(dst, None)
                    key = tuple(sorted(labels.items()))
                out.append((key, v))
            return _check_unique(out)

        return VECTOR, run


# name -> (is_counter, is_rate, instant)
_MATRIX_FUNCS: dict[str, tuple[bool, bool, bool]] = {
    "rate": (True, True, False),
    "increase": (True, False, False),
    "delta": (False, False, False),
    "irate": (True, True, True),
    "idelta": (False, False, True),
}

_OTHER_RANGE_FUNCS = ("quantile_over_time", "absent_over_time")

_SIMPLE: dict[str, Callable[[float], float]] = {
    "abs": math.fabs,
    "ceil": _ceil,
    "floor": _floor,
    "exp": _safe(math.exp),
    "sqrt": _safe(math.sqrt),
    "ln": _go_log,
    "log2": _go_log2,
    "log10": _go_log10,
}


def _agg_sum(vals: list[float]) -> float:
    total = vals[0]
    for v in vals[1:]:
        total += v
    return total


def _agg_avg(vals: list[float]) -> float:
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


def _agg_max(vals: list[float]) -> float:
    m = vals[0]
    for v in vals[1:]:
        if m < v or m != m:
            m = v
    return m


def _agg_min(vals: list[float]) -> float:
    m = vals[0]
    for v in vals[1:]:
        if m > v or m != m:
            m = v
    return m


def _agg_stdvar(vals: list[float]) -> float:
    mean = vals[0]
    value = 0.0
    count = 1.0
    for v in vals[1:]:
        count += 1
        delta = v - mean
        mean += delta / count
        value += delta * (v - mean)
    return value / count


_AGGREGATORS: dict[str, Callable[[list[float]], float]] = {
    "sum": _agg_sum,
    "avg": _agg_avg,
    "max": _agg_max,
    "min": _agg_min,
    "count": lambda vals: float(len(vals)),
    "group": lambda vals: 1.0,
    "stdvar": _agg_stdvar,
    "stddev": lambda vals: math.sqrt(_agg_stdvar(vals)),
}


def _desc_nan_last(kv: tuple[Key, float]) -> tuple[bool, float]:
    v = kv[1]
    return (True, 0.0) if v != v else (False, -v)


def _asc_nan_last(kv: tuple[Key, float]) -> tuple[bool, float]:
    v = kv[1]
    return (True, 0.0) if v != v else (False, v)


def _fmt_labels(key: Key) -> str:
    return "{" + ", ".join(f'{n}="{v}"' for n, v in key) + "}"
