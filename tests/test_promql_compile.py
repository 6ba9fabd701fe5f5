"""What `compile_expr` accepts, what it rejects (at load time, naming the construct), and
how far back an expression reads (`lookback`, which sizes the history's retention)."""

from __future__ import annotations

import pytest

from agent.alerting.promql.engine import compile_expr, lookback
from agent.alerting.promql.values import UnsupportedExpr

SUPPORTED = [
    'sum by (route) (rate(http_requests_total{code=~"5..", route!="/health"}[5m]))',
    "histogram_quantile(0.95, sum by (le) (rate(lat_bucket[5m])))",
    "increase(x[1h] offset 1d)",
    "irate(x[1m]) > bool 3",
    "delta(g[10m]) + idelta(g[10m])",
    "avg_over_time(g[5m]) - min_over_time(g[5m]) * max_over_time(g[5m])",
    "sum_over_time(g[5m]) / count_over_time(g[5m]) + last_over_time(g[5m])",
    "quantile_over_time(0.9, g[5m])",
    'absent(x{job="a"}) or absent_over_time(x[5m])',
    "time() - timestamp(x)",
    "clamp_min(x, 0) + clamp_max(x, 1) + abs(x) + round(x, 0.1) + round(x)",
    "vector(1) * scalar(x)",
    'label_replace(x, "a", "$1", "b", "(.*)")',
    "topk(3, x) or bottomk(2, x)",
    "quantile by (a) (0.5, x) unless count without (b) (x)",
    "x * on(a) group_left(b) y",
    "x / ignoring(c) group_right y",
    "x and on() y",
    "-x % 2 ^ 3",
    "ceil(x) + floor(x) + sort(x) + sort_desc(x)",
    "changes(x[5m]) + resets(x[5m]) + stddev_over_time(x[5m]) + present_over_time(x[5m])",
    # subqueries and @
    "max_over_time(rate(x[1m])[30m:1m])",
    "max_over_time(rate(x[5m])[30m:]) > 0",
    "max_over_time(max_over_time(rate(x[1m])[10m:1m])[1h:5m] offset 1h)",
    "absent_over_time(x[5m:]) + present_over_time((x > 1)[5m:30s])",
    "quantile_over_time(0.9, sum by (a) (rate(x[1m]))[1h:1m] @ end())",
    "x @ 1609746000 + rate(x[5m] @ start() offset 1m) - x @ 1609746000.123",
    "timestamp(x @ end())",
    "max_over_time((rate(x[1m]))[5m:])",
]


@pytest.mark.parametrize("text", SUPPORTED)
def test_supported_subset_compiles(text: str) -> None:
    expr = compile_expr(text)
    assert expr.kind in ("vector", "scalar")


@pytest.mark.parametrize(
    ("text", "construct"),
    [
        ("x @ -5", "@ with a time before 1970"),
        ('x @ -1 and y{a="@ -1"}', "@ with a time before 1970"),
        ("x @ 1e12", "@ with a time after the year 9999"),
        ('x{a="1" or b="2"}', "'or' inside label matchers"),
        ("double_exponential_smoothing(x[5m], 0.5, 0.5)", "double_exponential_smoothing()"),
        ('sort_by_label(x, "a")', "function sort_by_label()"),
        ('x{a=~"\\\\p{Greek}+"}', "Unicode script classes"),
    ],
)
def test_unsupported_constructs_are_rejected_by_name(text: str, construct: str) -> None:
    with pytest.raises(UnsupportedExpr) as err:
        compile_expr(text)
    assert construct in str(err.value)
    assert "not supported" in str(err.value)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("rate(x)", "invalid PromQL"),
        ("sum(", "invalid PromQL"),
        ("x[5m]", "instant vector or a scalar"),
        ('"text"', "instant vector or a scalar"),
        ('x{a=~"("}', "invalid"),
        ('x{a=~"foo(?=bar)"}', "illegal regex"),  # RE2 has no lookarounds (nor the parser)
        ('x{a=~"(?<n>x)"}', "invalid or unsupported Perl syntax: `(?<`"),  # Go 1.19's RE2
        ('label_replace(x, "a", "$1", "b", "(.)\\\\1")', "invalid regular expression"),
        ('label_replace(x, "1bad", "", "a", "")', "invalid destination label name"),
    ],
)
def test_invalid_expressions_raise_value_error_with_the_reason(text: str, reason: str) -> None:
    with pytest.raises(ValueError) as err:
        compile_expr(text)
    assert reason in str(err.value)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("x", 300),  # the 5-minute lookback of an instant selector
        ("rate(x[1m])", 60),
        ("increase(x[1h] offset 1d)", 3600 + 86400),
        ("x offset 10m", 600 + 300),
        ("rate(x[2m]) / y", 300),
        ("max_over_time(x[30m]) > rate(y[1m])", 1800),
        ("vector(1)", 0),
        # a subquery reads its range (and offset) before its inner expression's span
        ("max_over_time(rate(x[1m])[30m:1m])", 1800 + 60),
        ("max_over_time(x[30m:1m] offset 1h)", 1800 + 3600 + 300),
        ("max_over_time(max_over_time(rate(x[1m])[10m:])[1h:] offset 1h)", 3600 * 2 + 600 + 60),
        ("max_over_time(x[10m:] offset -5m)", 600 - 300 + 300),
        # @ start()/end() is the evaluation time; @ <timestamp> is not relative to it
        ("rate(x[5m] @ end() offset 1m)", 360),
        ("max_over_time((x @ end())[1h:])", 300),
        ("x @ 1609746000 offset 1d", 0),
        ("max_over_time(rate(x[1m])[1h:] @ 1609746000)", 0),
    ],
)
def test_lookback_is_the_longest_span_read(text: str, seconds: float) -> None:
    assert lookback(compile_expr(text)) == seconds
