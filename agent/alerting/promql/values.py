"""The evaluator's inner value shapes and errors, shared by the engine and the functions.

Inside the evaluator an instant vector is a list of `(key, value)` with `key` the sorted
tuple of label pairs (so grouping and matching hash tuples, not dicts); a compiled
expression is a closure `(history, t_ms) -> value`. The public `Sample` and `Vector` that
`evaluate` returns live in the engine, at the edge.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import promql_parser as pp

from agent.alerting.history import History, Matcher, Series, SeriesKey

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
    """A compiled range selector: the function that finds windows, plus its shape."""

    __slots__ = ("fn", "matchers", "offset_ms", "range_ms", "selector")

    def __init__(
        self,
        fn: Callable[[History, int], list[Window]],
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


def drop_name(key: Key) -> Key:
    return tuple(p for p in key if p[0] != "__name__")


def check_unique(vec: IVec) -> IVec:
    if len({k for k, _ in vec}) != len(vec):
        raise EvalError("vector cannot contain metrics with the same labelset")
    return vec


_NOT_RE2 = re.compile(r"\(\?<?[=!]|\\[1-9]|\(\?P=")


def check_re2(pattern: str) -> None:
    """Prometheus uses Go's RE2: no lookaround, no backreferences. Python's re has them, so
    refuse them rather than accept a rule Prometheus would reject."""
    if _NOT_RE2.search(pattern):
        raise UnsupportedExpr(
            f"regular expression {pattern!r}: lookarounds and backreferences are not "
            "supported (Prometheus uses RE2)"
        )
