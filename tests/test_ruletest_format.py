"""The pieces of `chatwatch test rules` a user sees: the input notation, the report and the
exit status (promtool's, checked against promtool itself in test_ruletest_vs_promtool.py)."""

from __future__ import annotations

import io
import math
import textwrap
from pathlib import Path

import pytest

from agent.alerting.history import is_stale
from agent.alerting.ruletest import (
    expand_values,
    parse_duration_ms,
    parse_series,
    run_tests,
)
from agent.support.duration import format_prometheus_ms
from agent.support.goformat import format_float


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("-2+4x3", [-2.0, 2.0, 6.0, 10.0]),
        ("1-2x4", [1.0, -1.0, -3.0, -5.0, -7.0]),
        ("1x4", [1.0] * 5),
        ("1 _x3 5", [1.0, None, None, None, 5.0]),
        ("_ 2 _", [None, 2.0, None]),
        ("1e3 +Inf -Inf", [1000.0, math.inf, -math.inf]),
    ],
)
def test_expanding_notation(text: str, values: list[float | None]) -> None:
    assert expand_values(text) == values


def test_expanding_notation_adds_repeatedly_like_promtool() -> None:
    # 0.1 added three times is not 0.3 in float64, and promtool keeps that error.
    assert expand_values("0+0.1x3")[-1] == 0.1 + 0.1 + 0.1 != 0.3


def test_stale_and_nan() -> None:
    stale, nan = expand_values("stale NaN")
    assert stale is not None and is_stale(stale)
    assert nan is not None and math.isnan(nan) and not is_stale(nan)


def test_series_and_durations() -> None:
    assert parse_series('up{job="a", pod="b"}') == (("__name__", "up"), ("job", "a"), ("pod", "b"))
    assert parse_series("{}") == ()
    assert parse_duration_ms("1h30m") == 5_400_000
    assert parse_duration_ms("0") == 0
    assert format_prometheus_ms(90_000) == "1m30s"
    assert format_prometheus_ms(0) == "0s"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.1, "1E-01"),
        (40.0, "4E+01"),
        (0.11666666666666667, "1.1666666666666667E-01"),
        (-2.5e-10, "-2.5E-10"),
        (0.0, "0E+00"),
        (math.inf, "+Inf"),
        (math.nan, "NaN"),
    ],
)
def test_values_are_printed_as_go_does(value: float, text: str) -> None:
    assert format_float(value, "E") == text


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


PASSING = """
    tests:
      - interval: 1m
        input_series:
          - series: 'req_total{route="/a"}'
            values: '0+60x10'
        promql_expr_test:
          - expr: rate(req_total[5m])
            eval_time: 10m
            exp_samples:
              - labels: '{route="/a"}'
                value: 1
"""


def test_passing_file_reports_success_and_exit_0(tmp_path: Path) -> None:
    f = write(tmp_path, "ok.yml", PASSING)
    out = io.StringIO()
    assert run_tests([f], out=out) == 0
    assert out.getvalue() == f"Unit Testing:  {f}\n  SUCCESS\n\n"


def test_failing_file_reports_expected_and_got_and_exit_1(tmp_path: Path) -> None:
    ok = write(tmp_path, "ok.yml", PASSING)
    bad = write(tmp_path, "bad.yml", PASSING.replace("value: 1", "value: 2"))
    out, err = io.StringIO(), io.StringIO()
    assert run_tests([ok, bad], out=out, err=err) == 1
    assert out.getvalue() == f"Unit Testing:  {ok}\n  SUCCESS\n\nUnit Testing:  {bad}\n\n\n"
    assert err.getvalue() == (
        "  FAILED:\n"
        '    expr: "rate(req_total[5m])", time: 10m,\n'
        '        exp: {route="/a"} 2E+00\n'
        '        got: {route="/a"} 1E+00\n'
    )


def test_unsupported_expression_fails_the_test_with_the_reason(tmp_path: Path) -> None:
    f = write(
        tmp_path,
        "sub.yml",
        PASSING.replace("rate(req_total[5m])", 'req_total{route="/a" or route="/b"}'),
    )
    out = io.StringIO()
    assert run_tests([f], out=out) == 1
    assert "'or' inside label matchers" in out.getvalue() and "not supported" in out.getvalue()


def test_missing_or_broken_file_fails(tmp_path: Path) -> None:
    broken = write(tmp_path, "broken.yml", "tests: [\n")
    out = io.StringIO()
    assert run_tests([str(tmp_path / "missing.yml"), broken], out=out) == 1
    assert out.getvalue().count("FAILED") == 2
