"""Where subqueries and `@` read, as Prometheus' promql/engine.go computes it: the steps of
a subquery (multiples of its step, from the Unix epoch), the results a subquery keeps in
the history between evaluation cycles (`Steps`), and the arithmetic by which Prometheus
turns `@` into offsets inside subqueries (`At`, `Fetched`). The compiler in engine.py
builds these; they take times and the history, never the clock.
"""

from __future__ import annotations

from typing import Any

import promql_parser as pp

from agent.alerting.history import History, Series, window
from agent.alerting.promql.values import Fn, Key, Window


def step_at_or_after(t: int, step: int) -> int:
    return -((-t) // step) * step


def step_invariant(node: Any) -> bool:
    """Whether Prometheus takes `node` to give the same result at every step (promql/
    engine.go preprocessExprHelper): literals and what reads only at `@` times."""
    if isinstance(node, pp.VectorSelector | pp.SubqueryExpr):
        return node.at is not None
    if isinstance(node, pp.MatrixSelector):
        return node.vector_selector.at is not None
    if isinstance(node, pp.NumberLiteral | pp.StringLiteral):
        return True
    if isinstance(node, pp.ParenExpr | pp.UnaryExpr | pp.AggregateExpr):
        return step_invariant(node.expr)
    if isinstance(node, pp.BinaryExpr):
        return step_invariant(node.lhs) and step_invariant(node.rhs)
    if isinstance(node, pp.Call):
        invariant = [step_invariant(a) for a in node.args]
        return node.func.name not in AT_UNSAFE and all(invariant)
    return False


AT_UNSAFE = {
    *("days_in_month", "day_of_month", "day_of_week", "day_of_year", "hour", "minute"),
    *("month", "year", "predict_linear", "time", "timestamp"),
}
"""Functions whose result depends on the evaluation time even when their arguments do
not (promql AtModifierUnsafeFunctions)."""


class Subq:
    """What a subquery's `@` and its nested `@` modifiers need to know of it."""

    __slots__ = ("at", "offset_ms", "range_ms", "step_ms")

    def __init__(self, range_ms: int, step_ms: int, offset_ms: int, at: At | None) -> None:
        self.range_ms = range_ms
        self.step_ms = step_ms
        self.offset_ms = offset_ms
        self.at = at


class At:
    """An `@` modifier: a fixed time, or (start()/end()) the time the query is for.

    At the top of an expression, `x @ T offset o` reads at T - o. Inside subqueries,
    Prometheus (2.42 and since: promql/engine.go setOffsetForAtModifier) turns `@` into an
    offset from the start of the evaluator, and re-bases it when a subquery starts its own
    evaluator, except when the subquery's first step equals its parent's start: then the
    offsets of the subqueries in between count once more. And predict_linear() over a range
    with `@` inside a subquery moves its window with each step. `__call__` gives those
    answers, so that `at(t) - offset` is where Prometheus reads."""

    __slots__ = ("chain", "drift", "fixed_ms", "offset_ms", "query_ms")

    def __init__(
        self,
        fixed_ms: int | None,
        query_ms: list[int],
        offset_ms: int = 0,
        chain: tuple[Subq, ...] = (),
    ) -> None:
        self.fixed_ms = fixed_ms
        self.query_ms = query_ms
        self.offset_ms = offset_ms
        self.chain = chain
        """The subqueries around the modifier, outermost first."""
        self.drift = False
        """Read by predict_linear(), which Prometheus evaluates at every step."""

    def time(self) -> int:
        """The time the modifier names (ms)."""
        return self.query_ms[0] if self.fixed_ms is None else self.fixed_ms

    def __call__(self, t: int) -> int:
        """The time (ms) the modifier stands for when evaluated at `t`."""
        if not self.chain:
            return self.time()
        read, start = self._prometheus_read_time()
        return read + self.offset_ms + (t - start if self.drift else 0)

    def _prometheus_read_time(self) -> tuple[int, int]:
        """Where Prometheus reads (T - offset when all is well) and the start of the
        evaluator of the innermost subquery around the modifier."""
        chain = self.chain
        k = len(chain)
        query = self.query_ms[0]
        offsets: dict[int, int] = {}  # position in the chain (k: this modifier) -> offset

        def subquery_offsets(first: int, upto: int, eval_time: int) -> int:
            """promql subqueryTimes(): the offsets of the subqueries on the path."""
            total, at_time = 0, None
            for q in chain[first:upto]:
                total += q.offset_ms
                if q.at is not None:
                    total, at_time = q.offset_ms, q.at.time()
            return total + (eval_time - at_time if at_time is not None else 0)

        def set_offsets(first: int, eval_time: int) -> None:
            """promql setOffsetForAtModifier(eval_time, the expression below chain[first-1])."""
            for i in range(first, k + 1):
                if i < k:
                    at = chain[i].at
                    if at is None:
                        continue
                    when, own = at.time(), chain[i].offset_ms
                else:
                    when, own = self.time(), self.offset_ms
                offsets[i] = own + eval_time - when - subquery_offsets(first, i, eval_time)

        set_offsets(0, query)
        start = query
        for i, q in enumerate(chain):
            offset = offsets[i] if q.at is not None else q.offset_ms
            first_step = step_at_or_after(start - offset - q.range_ms, q.step_ms)
            if first_step != start:
                set_offsets(i + 1, first_step)
            start = first_step
        return start - offsets[k], start


class Fetched:
    """The samples Prometheus fetches for a selector inside subqueries that involve `@`
    (promql/engine.go getTimeRangesForSelector): reads that `At` moves outside are cut to
    them. `__call__` gives the window (ms) for the query's time."""

    __slots__ = ("at", "chain", "offset_ms", "query_ms", "span_ms")

    def __init__(
        self,
        chain: tuple[Subq, ...],
        at: At | None,
        span_ms: int,
        offset_ms: int,
        query_ms: list[int],
    ) -> None:
        self.chain = chain
        self.at = at
        self.span_ms = span_ms
        self.offset_ms = offset_ms
        self.query_ms = query_ms

    def __call__(self) -> tuple[int, int]:
        if self.at is not None:
            end = self.at.time()
            start = end
        else:
            end = self.query_ms[0]
            total_offset = total_range = 0
            for q in self.chain:
                total_offset += q.offset_ms
                total_range += q.range_ms
                if q.at is not None:
                    end, total_offset, total_range = q.at.time(), q.offset_ms, q.range_ms
            start = end - total_offset - total_range
            end -= total_offset
        return start - self.span_ms - self.offset_ms, end - self.offset_ms


class Steps:
    """A subquery's results at its steps, as series of their own: what functions over the
    subquery read. Kept in `History.subqueries` between evaluations: the steps run from
    `first` to `last` (ms) with no gap, and a result at a step depends only on samples at
    or before it (the subquery reads no fixed time, nothing ahead), so it stays valid until
    something is written at or before that step (`History.changes_since`)."""

    __slots__ = ("first", "last", "last_used_ms", "series", "sorted", "token")

    def __init__(self) -> None:
        self.series: dict[Key, Series] = {}
        self.sorted: list[Series] | None = []
        self.first: int | None = None
        self.last: int | None = None
        self.token: int | None = None
        self.last_used_ms = 0

    def fill(self, h: History, inner: Fn, start: int, end: int, step: int) -> None:
        """Evaluate the inner expression at every step from `start` to `end`."""
        series = self.series
        t = start
        while t <= end:
            for key, v in inner(h, t):
                s = series.get(key)
                if s is None:
                    s = series[key] = Series(key)
                    self.sorted = None
                s.add(t, v)
            if self.first is None:
                self.first = t
            self.last = t
            t += step

    def update(self, h: History, inner: Fn, first: int, end: int, step: int) -> None:
        """Hold the steps from `first` to `end`: keep those still valid, compute the rest."""
        written, self.token = h.changes_since(self.token)
        if self.first is not None and self.last is not None and self.first < written <= self.last:
            for s in self.series.values():  # recompute the steps at and after the write
                s.truncate(written)
            self.last = self.first + (written - 1 - self.first) // step * step
            self._drop_empty()
        if (
            self.first is None
            or self.last is None
            or written <= self.first
            or not self.first <= first <= self.last + step
        ):
            self.series.clear()
            self.sorted = []
            self.first = self.last = None
            self.fill(h, inner, first, end, step)
            return
        if first > self.first:
            for s in self.series.values():
                s.trim(first)
            self.first = first
            self._drop_empty()
        self.fill(h, inner, self.last + step, end, step)

    def _drop_empty(self) -> None:
        empty = [k for k, s in self.series.items() if not s.ts]
        for k in empty:
            del self.series[k]
        if empty:
            self.sorted = None

    def windows(self, start: int, end: int) -> list[Window]:
        """Each series' results in [start, end], in label order (as a selector's)."""
        ordered = self.sorted
        if ordered is None:
            ordered = self.sorted = sorted(self.series.values(), key=lambda s: s.key)
        if self.first is None or self.last is None:
            return []
        if start <= self.first and self.last <= end:  # the usual case: every step held
            return [(s, 0, len(s.ts)) for s in ordered]
        out: list[Window] = []
        for s in ordered:
            ts = s.ts
            if ts[-1] < start or ts[0] > end:
                continue
            lo, hi = window(ts, start, end)
            if lo < hi:
                out.append((s, lo, hi))
        return out
