"""A PromQL subset evaluated over the agent's own `History`, with Prometheus 2.42 semantics.

`compile_expr` parses with `promql_parser`, walks the tree once, rejects every construct
outside the subset (docs/promql.md) with `UnsupportedExpr`, and turns the tree into nested
closures `(history, t_ms) -> value`. `evaluate` runs them for one instant: pure, no clock,
no I/O.

This module owns the compiler: selectors (with `offset` and `@`), subqueries, operators
and the wiring of aggregations and function calls. What each function computes is in
functions.py (the table `FUNCTIONS`), each aggregation's reducer in aggregations.py,
quantiles in quantile.py, Go's float arithmetic in gomath.py and the inner value shapes in
values.py. An instant vector becomes a list of `Sample` only at the edge. Arithmetic
follows Go's float64 semantics (x/0 is ±Inf, never an exception) and sums are done in the
order and with the algorithms Prometheus 2.42 uses, so results agree with `promtool` to the
last bit.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import promql_parser as pp

from agent.alerting.history import (
    History,
    Matcher,
    MatchOp,
    RunSeries,
    bisect_right,
    is_stale,
    window,
)
from agent.alerting.promql.aggregations import (
    AGGREGATORS,
    bottomk_order,
    count_values,
    topk_order,
)
from agent.alerting.promql.functions import FUNCTIONS, parser_spelling
from agent.alerting.promql.gomath import go_div, go_mod, go_pow
from agent.alerting.promql.quantile import quantile
from agent.alerting.promql.subquery import (
    AT_UNSAFE,
    At,
    Fetched,
    Steps,
    Subq,
    step_at_or_after,
    step_invariant,
)
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
    Window,
    check_re2,
    check_unique,
    drop_name,
)

__all__ = [
    "LOOKBACK_MS",
    "Expr",
    "Sample",
    "Vector",
    "compile_expr",
    "evaluate",
    "lookback",
]

LOOKBACK_MS = 5 * 60 * 1000
"""Instant selectors return the newest sample at most 5 minutes old (Prometheus' default)."""


@dataclass(slots=True)
class Sample:
    labels: dict[str, str]
    value: float


Vector = list[Sample]


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
    """The longest range (+ offset) a range selector or subquery reads, through enclosing
    subqueries: history this old must exist before every window is full."""
    subqueries: tuple[tuple[str, int], ...] = ()
    """Each subquery (its text with the step) and how many steps it holds: the results
    kept between evaluations, one sample per step and result series."""
    selectors: tuple[tuple[Matcher, ...], ...] = ()
    """Matchers of every selector, instant or range, inside subqueries too: the series
    the expression can read (the history keeps only those, `history.Interest`)."""


DEFAULT_SUBQUERY_STEP = 60.0
"""Prometheus' default global `evaluation_interval`, the step of `x[5m:]` unless told."""


def compile_expr(text: str, *, subquery_step: float = DEFAULT_SUBQUERY_STEP) -> Expr:
    """Parse `text` and check it against the supported subset; raises ValueError.

    `subquery_step` (seconds) is the step of subqueries that give none (`x[30m:]`): as in
    Prometheus, the global `evaluation_interval` (in rule unit tests, the test file's)."""
    _check_at_timestamps(text)
    try:
        node = pp.parse(parser_spelling(text))  # holt_winters() has its 3.x name there
    except UnsupportedExpr:
        raise
    except Exception as e:  # the parser raises plain exceptions with the reason
        raise ValueError(f"invalid PromQL expression {text!r}: {e}") from None
    c = _Compiler(round(subquery_step * 1000))
    kind, fn = c.compile(node)
    if kind not in (VECTOR, SCALAR):
        raise ValueError(f"expression must return an instant vector or a scalar, not a {kind}")
    if c.uses_query_time:
        fn = c.at_query_time(fn)
    return Expr(
        text,
        kind,
        fn,
        c.lookback_ms / 1000,
        tuple(c.instant_selectors),
        c.range_ms / 1000,
        tuple(c.subqueries),
        tuple(c.selectors),
    )


def evaluate(expr: Expr, history: History, now: float) -> Vector | float:
    """Evaluate `expr` as an instant query at `now` (seconds) over `history`."""
    value = expr.fn(history, round(now * 1000))
    if expr.kind == SCALAR:
        return float(value)
    return [Sample(dict(k), v) for k, v in value]


def lookback(expr: Expr) -> float:
    """How far back from the evaluation time the expression reads (seconds): the longest
    range or 5 minute lookback plus offsets, through enclosing subqueries (their range and
    offset). What `@ <timestamp>` reads is not included: that is fixed in time, not
    relative to now (docs/promql.md)."""
    return expr.lookback_s


# -- the compiler ------------------------------------------------------------------------------

_ARITH: dict[str, Callable[[float, float], float]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": go_div,
    "%": go_mod,
    "^": go_pow,
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


def _ms(d: timedelta | None) -> int:
    if d is None:
        return 0
    return (d.days * 86400 + d.seconds) * 1000 + d.microseconds // 1000


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LITERALS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`|#[^\n]*')
_NEGATIVE_AT = re.compile(r"@\s*-")


def _check_at_timestamps(text: str) -> None:
    """`x @ -5` (before 1970) is valid PromQL, but promql_parser cannot represent it (it
    reads as 0): refuse it rather than evaluate a different time."""
    if _NEGATIVE_AT.search(_LITERALS.sub("", text)):
        raise UnsupportedExpr(f"@ with a time before 1970 in {text!r} is not supported")


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


# What a subexpression depends on besides the history at its evaluation time (_Compiler.marks)
_AT = "at"  # an `@ <timestamp>`
_QUERY_TIME = "query time"  # `@ start()` / `@ end()`: the instant the whole query is for
_FUTURE = "future"  # a negative offset: samples after the evaluation time
_SUBQUERY = "subquery"


class _Compiler:
    def __init__(self, default_step_ms: int = round(DEFAULT_SUBQUERY_STEP * 1000)) -> None:
        self.default_step_ms = default_step_ms
        self.lookback_ms = 0
        self.range_ms = 0
        self.instant_selectors: list[tuple[Matcher, ...]] = []
        self.selectors: list[tuple[Matcher, ...]] = []  # see Expr.selectors
        self.reads: list[str | None] = []  # per selector: its metric name, or None
        self.marks: list[str] = []  # _AT, _QUERY_TIME, _FUTURE, _SUBQUERY, as met
        self.shift_ms: int | None = 0
        """How far before the evaluation time the enclosing subqueries evaluate their inner
        expression (their ranges and offsets); None inside a subquery pinned by `@ <time>`."""
        self.query_ms = [0]
        """The instant the whole expression is evaluated for: what `@ start()` and
        `@ end()` stand for (a rule's evaluation time), also inside subqueries."""
        self.uses_query_time = False
        self.chain: list[Subq] = []  # the subqueries around what is being compiled
        self.subqueries: list[tuple[str, int]] = []  # see Expr.subqueries

    def names_read(self, start: int) -> frozenset[str] | None:
        reads = self.reads[start:]
        if None in reads:
            return None
        return frozenset(n for n in reads if n is not None)

    def at_query_time(self, fn: Fn) -> Fn:
        cell = self.query_ms

        def run(h: History, t: int) -> Any:
            cell[0] = t
            return fn(h, t)

        return run

    def memo_key(self, node: Any, mark: int) -> str | None:
        """The text that names a subexpression's result in the history's memo; None if the
        result depends on more than the instant (`@ start()`/`@ end()` inside)."""
        marks = self.marks[mark:]
        if _QUERY_TIME in marks:
            return None
        if _SUBQUERY in marks:
            # str() drops the colon of `x[5m:]` (a range selector then); the default step
            # is part of what a stepless subquery computes.
            return f"{node.prettify()} step={self.default_step_ms}"
        return str(node)

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
            start, mark = len(self.reads), len(self.marks)
            kind, fn = self.aggregate(node)
            key = self.memo_key(node, mark)
            if key is None:
                return kind, fn
            return kind, _memoized(key, self.names_read(start), fn)
        if isinstance(node, pp.Call):
            start, mark = len(self.reads), len(self.marks)
            kind, fn = self.call(node)
            key = self.memo_key(node, mark)
            if kind != VECTOR or key is None:
                return kind, fn
            return kind, _memoized(key, self.names_read(start), fn)
        if isinstance(node, pp.SubqueryExpr):
            return MATRIX, self.subquery(node)
        raise UnsupportedExpr(f"{type(node).__name__} is not supported")

    # selectors

    def at(self, node: Any, offset_ms: int) -> At | None:
        """The `@` modifier of a selector or subquery, compiled."""
        at = node.at
        if at is None:
            return None
        chain = tuple(self.chain)
        if chain:  # where Prometheus reads depends on the query's time too (At)
            self.marks.append(_QUERY_TIME)
            self.uses_query_time = True
        if at.type in (pp.AtModifierType.Start, pp.AtModifierType.End):
            # A rule evaluation is an instant query: start() and end() are its time.
            self.marks.append(_QUERY_TIME)
            self.uses_query_time = True
            return At(None, self.query_ms, offset_ms, chain)
        try:
            delta = at.at - _EPOCH
        except (OverflowError, ValueError):
            raise UnsupportedExpr(
                f"@ with a time after the year 9999 in {node} is not supported"
            ) from None
        self.marks.append(_AT)
        ms = (delta.days * 86400 + delta.seconds) * 1000 + (delta.microseconds + 500) // 1000
        return At(ms, self.query_ms, offset_ms, chain)

    def fetched(self, at: At | None, span_ms: int, offset_ms: int) -> Fetched | None:
        """For a selector inside subqueries involving `@`: the samples Prometheus fetches."""
        if not self.chain or (at is None and all(q.at is None for q in self.chain)):
            return None
        return Fetched(tuple(self.chain), at, span_ms, offset_ms, self.query_ms)

    def reaches(self, span_ms: int, offset_ms: int, at: At | None, *, kind: str) -> None:
        """Account for a selector (or a subquery: `kind`) reading `span_ms` before its
        offset: how far back the history must reach, and how long windows take to fill."""
        if offset_ms < 0:
            self.marks.append(_FUTURE)
        if at is not None and at.fixed_ms is not None:
            return  # a fixed time: not relative to the evaluation time (see lookback())
        shift = 0 if at is not None else self.shift_ms
        if shift is None:
            return  # inside a subquery pinned to a fixed time
        reach = span_ms + max(shift + offset_ms, 0)
        if kind != _SUBQUERY:  # a subquery's inner selectors read the history, not it
            self.lookback_ms = max(self.lookback_ms, reach)
        if kind != VECTOR:
            self.range_ms = max(self.range_ms, reach)

    def matchers(self, vs: pp.VectorSelector) -> tuple[Matcher, ...]:
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
                check_re2(m.value)
                try:
                    matcher.compile()
                except re.error as e:
                    raise ValueError(f"invalid regular expression in {vs}: {e}") from None
            out.append(matcher)
        self.selectors.append(tuple(out))
        return tuple(out)

    def vector_selector(self, vs: pp.VectorSelector, with_ts: bool = False) -> Fn:
        ms = self.matchers(vs)
        off = _ms(vs.offset)
        at = self.at(vs, off)
        self.reaches(LOOKBACK_MS, off, at, kind=VECTOR)
        self.instant_selectors.append(ms)
        fetched = self.fetched(at, LOOKBACK_MS, off)

        def select(h: History, t: int) -> IVec:
            ref = (t if at is None else at(t)) - off
            oldest = ref - LOOKBACK_MS
            if fetched is not None:
                lo, hi = fetched()
                ref, oldest = min(ref, hi), max(oldest, lo)
            out: IVec = []
            for s in h.series(ms):
                if isinstance(s, RunSeries):  # read from the runs, no arrays built
                    value = s.latest(ref, oldest)
                    if value is not None:
                        out.append((s.key, value))
                    continue
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
            if at is None:
                ref = t - off
                oldest = ref - LOOKBACK_MS
                if fetched is not None:
                    lo, hi = fetched()
                    ref, oldest = min(ref, hi), max(oldest, lo)
            else:
                # Prometheus 2.42 reads `timestamp(x @ T offset o)` at T itself, among the
                # samples the selector fetched for T - o (its 5 minutes up to T - o).
                when = at.time()
                ref = min(when, when - off)
                oldest = max(when, when - off) - LOOKBACK_MS
            out: IVec = []
            for s in h.series(ms):
                ts = s.ts
                if not ts or ts[0] > ref:
                    continue
                i = len(ts) - 1 if ts[-1] <= ref else bisect_right(ts, ref) - 1
                if ts[i] < oldest or is_stale(s.vals[i]):
                    continue
                out.append((s.key_noname, ts[i] / 1000))
            return check_unique(out)

        return select_ts if with_ts else select

    def matrix_selector(self, node: pp.MatrixSelector) -> Matrix:
        vs = node.vector_selector
        ms = self.matchers(vs)
        off = _ms(vs.offset)
        rng = _ms(node.range)
        at = self.at(vs, off)
        self.reaches(rng, off, at, kind=MATRIX)
        fetched = self.fetched(at, rng, off)

        def windows(h: History, t: int) -> list[Window]:
            ref = (t if at is None else at(t)) - off
            start = ref - rng
            if fetched is not None:
                lo, hi = fetched()
                start, ref = max(start, lo), min(ref, hi)
            out: list[Window] = []
            for s in h.series(ms):
                ts = s.ts
                if not ts or ts[-1] < start or ts[0] > ref:
                    continue
                lo, hi = window(ts, start, ref)
                if lo < hi:
                    out.append((s, lo, hi))
            return out

        # Where Prometheus cuts reads, rate() must take the general path through `windows`.
        return Matrix(windows, rng, off, vs if fetched is None else None, ms, at)

    def subquery(self, node: pp.SubqueryExpr) -> Matrix:
        """`expr[range:step]`: the inner expression evaluated at every multiple of the step
        in the window, as Prometheus aligns them (promql/engine.go: the first step is the
        first multiple of the step at or after `t - offset - range`, the last at or before
        `t - offset`; `@` moves `t`). Functions then read those results as they read
        samples.

        The results at each step are kept in the history between evaluations
        (`Steps`): each cycle computes only the steps that are new, or whose inputs were
        written since. Inner expressions that read at fixed times or ahead of their step
        (`@`, negative offsets) are computed in full every time. `@` inside is where
        Prometheus' arithmetic (subquery.At) says."""
        rng = _ms(node.range)
        off = _ms(node.offset)
        step = _ms(node.step) if node.step is not None else self.default_step_ms
        at = self.at(node, off)
        self.reaches(rng, off, at, kind=_SUBQUERY)
        outer = self.shift_ms
        if at is not None and at.fixed_ms is not None:
            self.shift_ms = None
        elif at is not None:
            self.shift_ms = rng + off
        elif outer is not None:
            self.shift_ms = outer + rng + off
        mark = len(self.marks)
        self.chain.append(Subq(rng, step, off, at))
        try:
            kind, inner = self.compile(node.expr)
        finally:
            self.shift_ms = outer
            self.chain.pop()
        _ensure(kind, VECTOR, "a subquery")
        cached = not {_AT, _QUERY_TIME, _FUTURE} & set(self.marks[mark:])
        self.marks.append(_SUBQUERY)
        key = f"{node.prettify()} step={step}"
        self.subqueries.append((key, rng // step + 1))
        invariant = step_invariant(node.expr)

        def windows(h: History, t: int) -> list[Window]:
            ref = (t if at is None else at(t)) - off
            first = step_at_or_after(ref - rng, step)
            steps_of: Fn = inner
            if invariant:
                # Prometheus evaluates an inner expression that cannot change from step to
                # step once, at the first step, even when there is no step in the range
                # (an error it raises still counts).
                steps_of = _constant(inner(h, first))
            if cached:
                steps = h.subqueries.get(key)
                if steps is None:
                    steps = h.subqueries[key] = Steps()
                steps.last_used_ms = t
                steps.update(h, steps_of, first, ref, step)
            else:
                steps = Steps()
                steps.fill(h, steps_of, first, ref, step)
            return steps.windows(ref - rng, ref)

        return Matrix(windows, rng, off, None, (), at)

    # operators

    def unary(self, node: pp.UnaryExpr) -> tuple[str, Fn]:
        kind, fn = self.compile(node.expr)
        if kind == SCALAR:
            return SCALAR, lambda h, t: -fn(h, t)
        _ensure(kind, VECTOR, "unary minus")

        def neg(h: History, t: int) -> IVec:
            return check_unique([(drop_name(k), -v) for k, v in fn(h, t)])

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
            if swap:  # the left-hand side first: whose error wins
                sv = sfn(h, t)
                vec = vfn(h, t)
            else:
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
                        key = drop_name(key)
                        dropped = True
                    out.append((key, value))
            return check_unique(out) if dropped else out

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
            if not lhs or not rhs:
                return []  # as 2.42: nothing can match, so nothing is checked either
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
            return check_unique(out)

        return run

    # aggregations

    def aggregate(self, node: pp.AggregateExpr) -> tuple[str, Fn]:
        op = str(node.op)
        kind, fn = self.compile(node.expr)
        _ensure(kind, VECTOR, f"aggregation {op}")
        if op == "count_values":
            return VECTOR, count_values(node, fn)
        if op not in AGGREGATORS and op not in ("topk", "bottomk", "quantile"):
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
            order = topk_order if op == "topk" else bottomk_order

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
                    members.sort(key=order)
                    out.extend(members[:k])
                return out

            return VECTOR, select_k

        reduce = AGGREGATORS.get(op)

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
                return [(g, quantile(q, [v for _, v in m])) for g, m in groups.items()]
            assert reduce is not None
            return [(g, reduce([v for _, v in m])) for g, m in groups.items()]

        return VECTOR, run

    # functions

    def call(self, node: pp.Call) -> tuple[str, Fn]:
        name = node.func.name
        nodes = list(node.args)
        if name == "timestamp":
            # Of a selector, each sample's own timestamp: as in Prometheus' engine, the
            # selector is read specially rather than evaluated as a vector first.
            arg = nodes[0]
            while isinstance(arg, pp.ParenExpr):
                arg = arg.expr
            if isinstance(arg, pp.VectorSelector):
                return VECTOR, self.vector_selector(arg, with_ts=True)
        function = FUNCTIONS.get(name)
        if function is None:
            raise UnsupportedExpr(f"function {name}() is not supported")
        args = [
            self.argument(name, arg, want)
            for arg, want in zip(nodes, function.arg_kinds(len(nodes)), strict=False)
        ]
        if name in AT_UNSAFE:  # evaluated at every step: a window with @ moves with it
            for a in args:
                if isinstance(a, Matrix) and isinstance(a.at, At):
                    a.at.drift = True
        return function.returns, function.build(args, nodes)

    def argument(self, name: str, node: Any, want: str) -> Any:
        """One argument of `name()` compiled to what the function takes: a closure, a
        `Matrix` for a range selector, the text of a string literal."""
        if want == RANGE_SELECTOR:
            while isinstance(node, pp.ParenExpr):
                node = node.expr
            if isinstance(node, pp.SubqueryExpr):
                return self.subquery(node)
            if not isinstance(node, pp.MatrixSelector):
                raise ValueError(f"{name}() expects a range vector")
            return self.matrix_selector(node)
        if want == STRING:
            while isinstance(node, pp.ParenExpr):
                node = node.expr
            if not isinstance(node, pp.StringLiteral):
                raise UnsupportedExpr(
                    f"{name}() with non-literal string arguments is not supported"
                )
            return str(node.val)
        kind, fn = self.compile(node)
        _ensure(kind, want, f"{name}()")
        return fn


def _constant(value: Any) -> Fn:
    return lambda h, t: value


def _fmt_labels(key: Key) -> str:
    return "{" + ", ".join(f'{n}="{v}"' for n, v in key) + "}"
