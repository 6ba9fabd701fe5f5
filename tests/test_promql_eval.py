"""PromQL evaluation over a History, with values worked out by hand from Prometheus 2.42's
rules (functions.go extrapolatedRate, engine.go lookback and matching). The same semantics
are checked against the real promtool in test_ruletest_vs_promtool.py."""

from __future__ import annotations

import math

import pytest

from agent.alerting.history import STALE_NAN, History, SeriesKey
from agent.alerting.promql.engine import Sample, compile_expr, evaluate
from agent.alerting.promql.values import EvalError


def key(name: str, **labels: str) -> SeriesKey:
    return tuple(sorted({"__name__": name, **labels}.items()))


def load(series: dict[SeriesKey, list[float | None]], step: float = 60) -> History:
    h = History(retention=86400)
    for k, values in series.items():
        for i, v in enumerate(values):
            if v is not None:
                h.add(k, i * step, v)
    return h


def run(h: History, expr: str, at: float) -> dict[tuple[tuple[str, str], ...], float] | float:
    result = evaluate(compile_expr(expr), h, at)
    if isinstance(result, float):
        return result
    assert all(isinstance(s, Sample) for s in result)
    return {tuple(sorted(s.labels.items())): s.value for s in result}


A = key("req_total", route="/a")
B = key("req_total", route="/b")


def test_rate_adds_back_the_value_before_a_counter_reset() -> None:
    # 0 10 20 5 15 25 at one-minute steps: increase = 25 - 0 + 20 (the reset) = 45
    h = load({A: [0, 10, 20, 5, 15, 25]})
    # Window [0, 300]: the samples touch both edges, no extrapolation.
    assert run(h, "increase(req_total[5m])", 300) == {(("route", "/a"),): 45.0}
    # (Bit-exact like Prometheus: 45 * (1/300), checked against promtool elsewhere.)
    assert run(h, "rate(req_total[5m])", 300) == {(("route", "/a"),): pytest.approx(45 / 300)}


def test_increase_extrapolates_to_the_window_edges() -> None:
    # Samples 60..240 (10 per minute) in the window [30, 270]: 30 s to each edge is within
    # 1.1 x the 60 s spacing, so the 30 s of sampled increase extends by 30 s at both ends.
    h = load({A: [0, 10, 20, 30, 40, 50]})
    assert run(h, "increase(req_total[4m])", 270) == {(("route", "/a"),): 30 * 240 / 180}


def test_increase_extrapolation_stops_at_the_counter_zero_point() -> None:
    # Counter 5 -> 15 over 60 s in the window [0, 120]: extrapolating 60 s back would go
    # below zero, so it stops where the counter would have been 0 (30 s before).
    h = load({A: [None, 5, 15]})
    assert run(h, "increase(req_total[2m])", 120) == {(("route", "/a"),): 10 * 90 / 60}


def test_irate_uses_the_last_two_samples_and_handles_resets() -> None:
    h = load({A: [0, 10, 40, 5]})
    assert run(h, "irate(req_total[5m])", 120) == {(("route", "/a"),): 30 / 60}
    assert run(h, "irate(req_total[5m])", 180) == {(("route", "/a"),): 5 / 60}


def test_instant_selector_looks_back_five_minutes_inclusive() -> None:
    h = load({A: [7]})
    assert run(h, "req_total", 300) == {(("__name__", "req_total"), ("route", "/a")): 7.0}
    assert run(h, "req_total", 300.001) == {}


def test_staleness_marker_ends_a_series_at_once() -> None:
    h = load({A: [1, 2, STALE_NAN], B: [1, 2, 3]})
    assert set(run(h, "req_total", 150)) == {  # type: ignore[arg-type]
        (("__name__", "req_total"), ("route", "/b"))
    }
    # Range functions skip the marker: two real samples remain in [0, 150].
    assert run(h, "count_over_time(req_total{route='/a'}[150s])", 150) == {(("route", "/a"),): 2.0}


def test_offset_reads_the_past() -> None:
    h = load({A: [1, 2, 3, 4]})
    assert run(h, "req_total offset 2m", 180) == {(("__name__", "req_total"), ("route", "/a")): 2.0}


def test_aggregations_by_and_without() -> None:
    h = load(
        {
            key("m", a="1", b="x"): [1],
            key("m", a="1", b="y"): [2],
            key("m", a="2", b="x"): [4],
        }
    )
    assert run(h, "sum by (a) (m)", 0) == {(("a", "1"),): 3.0, (("a", "2"),): 4.0}
    assert run(h, "max without (a) (m)", 0) == {(("b", "x"),): 4.0, (("b", "y"),): 2.0}
    assert run(h, "count(m)", 0) == {(): 3.0}
    assert run(h, "avg(m)", 0) == {(): pytest.approx(7 / 3)}
    assert run(h, "quantile(0.5, m)", 0) == {(): 2.0}
    top = run(h, "topk(2, m)", 0)
    assert isinstance(top, dict)
    assert sorted(top.values()) == [2.0, 4.0]
    assert all(("__name__", "m") in k for k in top)  # topk keeps the whole series


def test_histogram_quantile_interpolates_within_the_bucket() -> None:
    h = load(
        {
            key("lat_bucket", le="0.1"): [10],
            key("lat_bucket", le="0.5"): [30],
            key("lat_bucket", le="+Inf"): [40],
        }
    )
    # rank 0.5 * 40 = 20 falls in (0.1, 0.5] which holds 20 of them: 0.1 + 0.4 * 10/20
    assert run(h, "histogram_quantile(0.5, lat_bucket)", 0) == {(): 0.1 + 0.4 * 0.5}
    # Beyond the last finite bucket: its upper bound.
    assert run(h, "histogram_quantile(0.99, lat_bucket)", 0) == {(): 0.5}


def test_vector_matching_group_left_takes_labels_from_the_one_side() -> None:
    h = load(
        {
            key("req", route="/a", code="200"): [10],
            key("req", route="/a", code="500"): [2],
            key("owner", route="/a", team="bots"): [1],
        }
    )
    got = run(h, "req * on(route) group_left(team) owner", 0)
    assert got == {
        (("code", "200"), ("route", "/a"), ("team", "bots")): 10.0,
        (("code", "500"), ("route", "/a"), ("team", "bots")): 2.0,
    }
    with pytest.raises(EvalError, match="many-to-one matching must be explicit"):
        run(h, "req * on(route) owner", 0)


def test_set_operators() -> None:
    h = load({A: [1], B: [2], key("up", route="/a"): [1]})
    assert set(run(h, "req_total and on(route) up", 0)) == {  # type: ignore[arg-type]
        (("__name__", "req_total"), ("route", "/a"))
    }
    assert set(run(h, "req_total unless on(route) up", 0)) == {  # type: ignore[arg-type]
        (("__name__", "req_total"), ("route", "/b"))
    }
    assert run(h, "nothing or vector(0)", 0) == {(): 0.0}


def test_comparison_filters_or_returns_bool_and_arithmetic_drops_the_name() -> None:
    h = load({A: [1], B: [5]})
    assert run(h, "req_total > 2", 0) == {(("__name__", "req_total"), ("route", "/b")): 5.0}
    assert run(h, "req_total > bool 2", 0) == {(("route", "/a"),): 0.0, (("route", "/b"),): 1.0}
    assert run(h, "req_total / 0", 0) == {
        (("route", "/a"),): math.inf,
        (("route", "/b"),): math.inf,
    }


def test_scalar_results_and_time() -> None:
    h = load({A: [3]})
    assert run(h, "time()", 42.5) == 42.5
    assert run(h, "scalar(req_total) * 2", 0) == 6.0
    assert run(h, "1 + 2 * 3", 0) == 7.0


def test_absent_takes_labels_from_equality_matchers() -> None:
    h = load({A: [1]})
    assert run(h, 'absent(req_total{route="/a"})', 0) == {}
    assert run(h, 'absent(req_total{route="/zzz", code=~"5.."})', 0) == {(("route", "/zzz"),): 1.0}


def test_functions_that_drop_the_name_can_collide_and_that_is_an_error() -> None:
    h = load({key("a", x="1"): [1], key("b", x="1"): [2]})
    with pytest.raises(EvalError, match="same labelset"):
        run(h, 'abs({__name__=~"a|b"})', 0)


def test_label_replace() -> None:
    h = load({key("req", code="503"): [1]})
    got = run(h, 'label_replace(req, "class", "${1}xx", "code", "(.).*")', 0)
    assert got == {(("__name__", "req"), ("class", "5xx"), ("code", "503")): 1.0}


def test_a_write_between_rules_is_seen_by_later_rules_at_the_same_instant() -> None:
    # Rules share subexpression results within a cycle; a recording rule's output written
    # at `now` must still be visible to the rules after it, and unrelated results reused.
    h = load({A: [1]})
    sum_a = compile_expr("sum(req_total)")
    sum_any = compile_expr('sum({__name__=~"req_total|other"})')
    assert evaluate(sum_a, h, 0) == [Sample({}, 1.0)]
    assert evaluate(sum_any, h, 0) == [Sample({}, 1.0)]
    h.add(B, 0, 5.0)
    assert evaluate(sum_a, h, 0) == [Sample({}, 6.0)]
    h.add(key("other"), 0, 10.0)
    assert evaluate(sum_any, h, 0) == [Sample({}, 16.0)]
    assert evaluate(sum_a, h, 0) == [Sample({}, 6.0)]
