"""The evaluator's inner value shapes and errors, shared by the engine and the functions.

Inside the evaluator an instant vector is a list of `(key, value)` with `key` the sorted
tuple of label pairs (so grouping and matching hash tuples, not dicts); a compiled
expression is a closure `(history, t_ms) -> value`. The public `Sample` and `Vector` that
`evaluate` returns live in the engine, at the edge.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import promql_parser as pp

from agent.alerting.history import History, Matcher, Series, SeriesKey
from agent.support.goregexp import RegexpUnsupported, compile_anchored

Key = SeriesKey
IVec = list[tuple[Key, float]]
Window = tuple[Series, int, int]  # series and the [lo, hi) index range inside the window
Fn = Callable[[History, int], Any]

# What an expression (or a function argument) is.
SCALAR, VECTOR, MATRIX, STRING = "scalar", "vector", "range vector", "string"
RANGE_SELECTOR = "range selector"
"""A function argument that must be a plain `x[5m]` (no subquery, no parentheses)."""


class UnsupportedExpr(ValueError):
    """The expression is valid PromQL but uses something chatwatch does not evaluate."""


class EvalError(ValueError):
    """Evaluation failed the way Prometheus fails (duplicate label sets, many-to-many...)."""


class Matrix:
    """A compiled range selector or subquery: the function that finds windows, plus its
    shape. A window evaluated at `t` ends at `end(t)`: `t - offset`, or with `@` the
    modifier's time minus the offset."""

    __slots__ = ("at", "fn", "matchers", "offset_ms", "range_ms", "selector")

    def __init__(
        self,
        fn: Callable[[History, int], list[Window]],
        range_ms: int,
        offset_ms: int,
        selector: pp.VectorSelector | None,
        matchers: tuple[Matcher, ...],
        at: Callable[[int], int] | None = None,
    ):
        self.fn = fn
        self.range_ms = range_ms
        self.offset_ms = offset_ms
        self.selector = selector
        """The range selector's instant part; None for a subquery (whose windows hold the
        results of its inner expression at its steps, not stored samples)."""
        self.matchers = matchers
        self.at = at
        """The `@` modifier: evaluation time -> the time it stands for (None: no `@`)."""

    def end(self, t: int) -> int:
        """Where the window evaluated at `t` ends (ms)."""
        return (t if self.at is None else self.at(t)) - self.offset_ms


def drop_name(key: Key) -> Key:
    return tuple(p for p in key if p[0] != "__name__")


def check_unique(vec: IVec) -> IVec:
    if len({k for k, _ in vec}) != len(vec):
        raise EvalError("vector cannot contain metrics with the same labelset")
    return vec


def check_re2(pattern: str) -> None:
    """Prometheus compiles regexes with Go's regexp (RE2 syntax); chatwatch translates them
    to Python's re (agent/support/goregexp.py). Reject what Go rejects, with Go's message,
    and the little that cannot be translated (Unicode scripts) as unsupported."""
    try:
        compile_anchored(pattern)
    except RegexpUnsupported as e:
        raise UnsupportedExpr(f"regular expression {pattern!r}: {e}") from None
