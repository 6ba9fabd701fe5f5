"""`/graph?g0.expr=...`: an expression over the in-memory history, as a chart and a table.

The URL has Prometheus' shape (`g0.expr`, `g0.tab`, `g0.range_input`), so the
`generatorURL` of every notification, which chatwatch builds as Prometheus does, lands
here. The expression is evaluated at most `MAX_POINTS` times across the range, fewer when
one evaluation is expensive (TIME_BUDGET); the chart
(uPlot, vendored under static/) is drawn by static/graph.js from a JSON block, so the page
runs no inline script.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

from agent.server.pages.render import Page, Query, first, json_script, render
from agent.server.pages.views import RangeResult, RangeSeries
from agent.support.duration import format_duration, parse_duration

if TYPE_CHECKING:
    from agent.server.handlers import ServerHandlers

RANGES = ("5m", "15m", "30m", "1h", "2h", "6h", "12h", "1d", "2d", "1w")
"""The range picker's choices, cut at the first that covers what the history holds."""
DEFAULT_RANGE = 3600.0
MAX_POINTS = 250
"""Evaluations per graph: about one per 4 pixels of a wide chart."""
MIN_POINTS = 12
TIME_BUDGET = 0.12
"""Seconds of evaluation a graph may take before its resolution is lowered (not below
MIN_POINTS): an expression over thousands of series costs milliseconds per step, and the
page must stay fast. `g0.step_input` asks for a step regardless."""
CHART_SERIES = 100
"""Series drawn; the table still lists more."""
TABLE_ROWS = 500
_NICE_STEPS = (1, 2, 5, 10, 15, 20, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 86400)


def page(handlers: ServerHandlers, query: Query) -> Page:
    expr = first(query, "g0.expr").strip()
    tab = first(query, "g0.tab", "0")
    window = handlers.history()
    span = max(window.end - window.start, 0.0)
    ranges = _ranges(span)
    range_input = first(query, "g0.range_input").strip() or _default_range(ranges)
    step_input = first(query, "g0.step_input").strip()
    context: dict[str, Any] = {
        "expr": expr,
        "tab": tab if tab in ("0", "1") else "0",
        "span": span,
        "ranges": ranges,
        "range_input": range_input,
        "step_input": step_input,
        "lowered": False,
        "clipped": False,
        "error": "",
        "result": None,
        "points": 0,
        "took": 0.0,
        "chart_json": "",
        "chart_series": [],
        "chart_limited": False,
        "table": [],
        "table_hidden": 0,
    }
    try:
        range_s = parse_duration(range_input)
        if range_s <= 0:
            raise ValueError("the range must be more than 0")
    except ValueError as exc:
        context["error"] = f"g0.range_input: {exc}"
        return _render(context, 400)
    try:
        forced_step = parse_duration(step_input) if step_input else None
        if forced_step is not None and forced_step <= 0:
            raise ValueError("the step must be more than 0")
    except ValueError as exc:
        context["error"] = f"g0.step_input: {exc}"
        return _render(context, 400)
    if range_input not in ranges:
        ranges.append(range_input)
    if not expr:
        return _render(context)

    end = window.end
    # Before the history's start there is nothing to draw (the agent had not started, or
    # those samples are past retention): the chart begins where the history does.
    start = min(end, max(end - range_s, window.start))
    context["clipped"] = start > end - range_s
    started = time.perf_counter()
    try:
        if forced_step is not None:
            step = forced_step
        else:
            # One evaluation at `end` tells what a step costs (and whether the expression is
            # valid); the range evaluation then finds its subexpressions at `end` memoized.
            handlers.query_range(expr, end, end, 1.0)
            points = _points(time.perf_counter() - started)
            span_s = end - start
            context["lowered"] = points < MAX_POINTS and span_s / MAX_POINTS > window.interval
            step = nice_step(span_s / points, window.interval)
        result = handlers.query_range(expr, start, end, step)
    except ValueError as exc:  # a bad expression, or one that fails to evaluate
        context["error"] = str(exc)
        return _render(context, 400)
    context["took"] = time.perf_counter() - started
    context["result"] = result
    context["points"] = sum(len(s.values) for s in result.series)
    chart = result.series[:CHART_SERIES]
    context["chart_series"] = chart
    context["chart_limited"] = len(result.series) > len(chart)
    if context["points"]:
        context["chart_json"] = json_script(_chart_data(result, chart))
    rows = _table(result)
    context["table"] = rows[:TABLE_ROWS]
    context["table_hidden"] = max(0, len(rows) - TABLE_ROWS)
    return _render(context)


def _render(context: dict[str, Any], status: int = 200) -> Page:
    page = render("graph.html", "/graph", **context)
    page.status = status
    return page


def _points(per_step: float) -> int:
    """How many steps fit TIME_BUDGET when one costs `per_step` seconds."""
    if per_step * MAX_POINTS <= TIME_BUDGET:
        return MAX_POINTS
    return max(MIN_POINTS, int(TIME_BUDGET / max(per_step, 1e-9)))


def nice_step(seconds: float, resolution: float) -> float:
    """A round step of at least `seconds` and at least the history's resolution."""
    floor = max(seconds, resolution, 0.001)
    for step in _NICE_STEPS:
        if step >= floor:
            return float(step)
    return float(math.ceil(floor / 86400) * 86400)


def _ranges(span: float) -> list[str]:
    """The choices up to the first that covers `span` (5m at least)."""
    out = []
    for r in RANGES:
        out.append(r)
        if parse_duration(r) >= span:
            break
    return out


def _default_range(ranges: list[str]) -> str:
    fitting = [r for r in ranges if parse_duration(r) <= DEFAULT_RANGE]
    return fitting[-1] if fitting else ranges[0]


def series_name(labels: dict[str, str]) -> str:
    """`name{a="1", b="2"}` as Prometheus prints a series."""
    name = labels.get("__name__", "")
    rest = ", ".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()) if k != "__name__")
    if not rest:
        return name or "{}"
    return f"{name}{{{rest}}}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _chart_data(result: RangeResult, series: list[RangeSeries]) -> dict[str, Any]:
    """Columns for uPlot: the time grid, then one array per series (null where absent)."""
    n = round((result.end - result.start) / result.step) + 1
    times = [result.start + i * result.step for i in range(n)]
    columns = []
    for s in series:
        column: list[float | None] = [None] * n
        for t, v in zip(s.times, s.values, strict=True):
            i = round((t - result.start) / result.step)
            if 0 <= i < n:
                column[i] = v
        columns.append({"name": series_name(s.labels), "values": column})
    return {"times": times, "series": columns, "step": format_duration(result.step)}


def _table(result: RangeResult) -> list[dict[str, Any]]:
    """The value of each series at the range's end (the instant query at `end`)."""
    rows: list[dict[str, Any]] = []
    for s in result.series:
        if s.times and abs(s.times[-1] - result.end) < 0.0005:
            labels = s.labels
            rows.append(
                {
                    "name": labels.get("__name__", ""),
                    "labels": labels,
                    "value": s.values[-1],
                    "raw": repr(s.values[-1]),
                }
            )
    rows.sort(key=lambda r: sorted(r["labels"].items()))
    return rows
