"""Subqueries over the live history: results kept between evaluation cycles, the history's
retention and the memory `chatwatch check` reports.

A subquery's results at its past steps are kept in the history and only new steps are
computed each cycle; these tests check that this never changes an answer (against the same
evaluation with nothing kept), including when a recording rule writes at the evaluation
time after a rule read it, and that the retention covers everything a subquery reads.
What the answers themselves are is checked against promtool in tests/rules/subquery*.yml,
tests/rules/at_modifier.test.yml and tests/test_promql_vs_promtool_random.py.
"""

from __future__ import annotations

import random
import textwrap
from pathlib import Path

import pytest

from agent.alerting.history import BYTES_PER_SAMPLE, History, SeriesKey
from agent.alerting.manager import estimate_memory, required_retention
from agent.alerting.promql.engine import Sample, compile_expr, evaluate
from agent.alerting.rule_file import parse_rule_file
from agent.commands.check import configured_series, history_memory
from agent.config import load

T0 = 1_700_000_000.0

SUBQUERIES = [
    "max_over_time(rate(req_total[1m])[5m:30s])",
    "min_over_time(sum by (route) (rate(req_total[1m]))[4m:])",
    "rate(sum(req_total)[5m:20s])",
    "count_over_time((gauge > 5)[3m:10s])",
    "max_over_time(max_over_time(gauge[1m:10s])[3m:30s] offset 20s)",
    "avg_over_time(recorded[2m:10s])",
    "absent_over_time(gauge[30s:10s])",
    "max_over_time((gauge @ end())[2m:30s])",
    "last_over_time((gauge offset -10s)[1m:10s])",
]


def key(name: str, **labels: str) -> SeriesKey:
    return tuple(sorted({"__name__": name, **labels}.items()))


def snapshot(rnd: random.Random, t: int, counts: dict[str, float]) -> list[tuple[SeriesKey, float]]:
    out = []
    for route in ("/a", "/b", "/c"):
        if rnd.random() < 0.1:
            continue  # missing from this snapshot: a staleness marker
        if rnd.random() < 0.05:
            counts[route] = 0.0  # a counter reset
        counts[route] += rnd.randint(0, 5)
        out.append((key("req_total", route=route), counts[route]))
        out.append((key("gauge", route=route), float(rnd.randint(0, 10))))
    return out


def as_set(result: list[Sample] | float) -> object:
    if isinstance(result, float):
        return result
    return sorted((tuple(sorted(s.labels.items())), repr(s.value)) for s in result)


@pytest.mark.parametrize("expr_text", SUBQUERIES)
def test_kept_subquery_results_change_no_answer(expr_text: str) -> None:
    """Every 5 s for 12 minutes: a snapshot, a recording rule's sample written after the
    rules read it (as a group does), one evaluation with the kept results, one without."""
    rnd = random.Random(7)
    expr = compile_expr(expr_text, subquery_step=5)
    kept = History(retention=3600)
    counts = {"/a": 0.0, "/b": 0.0, "/c": 0.0}
    for i in range(144):
        t = T0 + 5 * i
        kept.append(t, snapshot(rnd, i, counts))
        with_kept = evaluate(expr, kept, t)
        kept.subqueries.clear()
        kept.forget_memo()
        fresh = evaluate(expr, kept, t)
        assert as_set(with_kept) == as_set(fresh), f"at {i * 5} s"
        # the recording rule of a later group writes at `t`, after the rule above read it
        kept.add(key("recorded"), t, float(i % 7))


def test_evaluations_that_jump_ahead_or_back_get_the_same_answers() -> None:
    """A stall (a cycle skipped, the clock far ahead) or a rule test asking earlier times."""
    rnd = random.Random(3)
    h = History(retention=7200)
    counts = {"/a": 0.0, "/b": 0.0, "/c": 0.0}
    for i in range(400):
        h.append(T0 + 5 * i, snapshot(rnd, i, counts))
    exprs = [compile_expr(text, subquery_step=5) for text in SUBQUERIES]
    for offset in (600, 605, 1500, 1495, 300, 1990, 1200, 1205, 1210):
        for expr in exprs:
            with_kept = evaluate(expr, h, T0 + offset)
            h.forget_memo()
            saved, h.subqueries = h.subqueries, {}
            fresh = evaluate(expr, h, T0 + offset)
            h.forget_memo()
            h.subqueries = saved
            assert as_set(with_kept) == as_set(fresh), (expr.text, offset)


def test_a_write_at_an_evaluated_step_is_seen_next_time() -> None:
    h = History(retention=3600)
    expr = compile_expr("sum_over_time(recorded[1m:10s])")
    h.add(key("recorded"), T0, 1.0)
    first = evaluate(expr, h, T0 + 60)
    assert isinstance(first, list)
    h.add(key("recorded"), T0 + 60, 5.0)  # a later group records at the same instant
    (after,) = evaluate(expr, h, T0 + 60)  # type: ignore[misc]
    h.subqueries.clear()
    h.forget_memo()
    (fresh,) = evaluate(expr, h, T0 + 60)  # type: ignore[misc]
    assert after.value == fresh.value == 6 * 1.0 + 5.0


def test_identical_subqueries_of_different_rules_share_their_results() -> None:
    h = History(retention=3600)
    for i in range(60):
        h.append(T0 + 10 * i, [(key("gauge"), float(i))])
    one = compile_expr("max_over_time(gauge[5m:30s]) > 1")
    two = compile_expr("min_over_time(gauge[5m:30s])")
    evaluate(one, h, T0 + 590)
    evaluate(two, h, T0 + 590)
    assert len(h.subqueries) == 1


def test_subqueries_no_rule_reads_any_more_are_swept() -> None:
    h = History(retention=120)
    expr = compile_expr("max_over_time(gauge[1m:10s])")
    for i in range(10):
        h.append(T0 + 10 * i, [(key("gauge"), 1.0)])
        evaluate(expr, h, T0 + 10 * i)
    assert len(h.subqueries) == 1
    for i in range(10, 40):  # the rule is gone (a reload): nothing evaluates it
        h.append(T0 + 10 * i, [(key("gauge"), 1.0)])
    assert h.subqueries == {}


def test_changes_since_reports_the_earliest_write_since_the_last_call() -> None:
    h = History(retention=3600)
    h.append(T0, [(key("x"), 1.0)])
    earliest, token = h.changes_since(None)
    assert earliest < 0  # never asked: everything may have changed
    h.append(T0 + 10, [(key("x"), 2.0)])
    h.add(key("y"), T0 + 5, 1.0)
    earliest, token = h.changes_since(token)
    assert earliest == round((T0 + 5) * 1000)
    earliest, token = h.changes_since(token)
    assert earliest > round((T0 + 10) * 1000)  # nothing written since


# -- retention and memory ---------------------------------------------------------------------


def groups_of(*exprs: str) -> list:  # type: ignore[type-arg]
    rules = "\n".join(f"      - alert: A{i}\n        expr: {e!r}" for i, e in enumerate(exprs))
    groups, problems = parse_rule_file(f"groups:\n  - name: g\n    rules:\n{rules}\n", "r.yml")
    assert problems == []
    return groups


def test_retention_covers_what_subqueries_read() -> None:
    # 30m of steps, each reading rate over 5m, all an hour ago; plus two intervals
    groups = groups_of("max_over_time(rate(x[5m])[30m:1m] offset 1h) > 1", "y > 0")
    assert required_retention(groups, 1.0) == 3600 + 1800 + 300 + 2


def test_retention_counts_at_start_and_end_but_not_a_fixed_time() -> None:
    assert required_retention(groups_of("rate(x[20m] @ end())"), 1.0) == 1200 + 2
    # `@ <timestamp>` is not relative to now: it needs no more than the 5 minute default
    assert required_retention(groups_of("rate(x[20m] @ 1700000000)"), 1.0) == 300 + 2


def test_memory_is_series_times_samples_per_series_times_16_bytes() -> None:
    groups = groups_of("max_over_time(rate(x[5m])[30m:1m]) > 1", "max_over_time(x[10m:])")
    est = estimate_memory(groups, 2.0, 1000)
    # retention: 30m + 5m + 2 intervals; a sample every 2 s over it, and the one at its start
    assert est.retention == 2100 + 4
    assert est.samples_per_series == 2104 // 2 + 1
    assert est.history_bytes == 1000 * 1053 * BYTES_PER_SAMPLE
    # kept subquery results, for every series: 31 steps of [30m:1m], and 11 of [10m:] at
    # the default step (1m: parse_rule_file was given no evaluation_interval)
    assert est.subquery_bytes == (31 + 11) * 1000 * BYTES_PER_SAMPLE


def test_chatwatch_check_reports_the_memory_at_the_configured_series(tmp_path: Path) -> None:
    (tmp_path / "rules.yml").write_text(
        textwrap.dedent(
            """
            groups:
              - name: g
                rules:
                  - alert: Slow
                    expr: max_over_time(rate(req_total[1m])[10m:]) > 5
            """
        )
    )
    (tmp_path / "chatwatch.yaml").write_text(
        textwrap.dedent(
            """
            sources: [{name: in, stdin: true, format: json}]
            metrics:
              - {name: req_total, type: counter, max_series: 500}
              - name: latency_seconds
                type: histogram
                value: ms
                buckets: [0.1, 1]
                max_series: 100
            rule_files: [rules.yml]
            evaluation_interval: 10s
            """
        )
    )
    cfg = load(str(tmp_path / "chatwatch.yaml"))
    assert configured_series(cfg.metrics) == 500 + 100 * (2 + 1 + 2)
    # the rule reads req_total only: the history holds nothing of latency_seconds
    # 10m of steps every 10 s (the default step) reading 1m, plus two intervals: 680 s
    samples = 680 // 10 + 1
    history_mib = 500 * samples * 16 / 2**20
    subquery_mib = 61 * 500 * 16 / 2**20
    assert history_memory(cfg) == [
        f"rules: 11m20s of history every 10s: 500 series (max_series) x {samples} samples "
        f"x 16 bytes = {history_mib:.1f} MiB",
        f"rules: subquery results kept: at most {subquery_mib:.1f} MiB more",
    ]
