"""Differential test: random series, ~100 expressions at many instants, our evaluator
against the real promtool 2.42 on the same data.

Every expression is asked for an impossible sample, so promtool prints what it got; the
runner prints the same for ours. Labels and errors must be identical, values identical to
the bit, except for aggregations of non-integers over several series, where promtool's
own summation order is random (see docs/promql.md) and values must agree to 1e-12, and
topk/bottomk, where which of several tied series is kept is up to that order too.
"""

from __future__ import annotations

import math
import random
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from agent.alerting.ruletest import run_file

# Expressions whose values may differ in the last bit (promtool adds series in random order).
APPROX = re.compile(r"\b(avg|stddev|stdvar)\b|\bsum\b.*\b(rate|increase|delta|irate)\b")
TIES = re.compile(r"(topk|bottomk)\b")

EXPRS = [
    "c",
    "g",
    "c offset 90s",
    "rate(c[5m])",
    "rate(c[2m])",
    "rate(c[90s] offset 1m)",
    "increase(c[5m])",
    "increase(c[10m])",
    "increase(c[1m])",
    "irate(c[5m])",
    "delta(g[5m])",
    "delta(g[3m])",
    "idelta(g[5m])",
    "sum_over_time(g[5m])",
    "avg_over_time(g[5m])",
    "min_over_time(g[4m])",
    "max_over_time(g[4m])",
    "count_over_time(g[5m])",
    "last_over_time(g[2m])",
    "quantile_over_time(0.9, g[10m])",
    "quantile_over_time(0.3, c[10m])",
    "stddev_over_time(g[10m])",
    "changes(g[10m])",
    "resets(c[20m])",
    "present_over_time(g[1m])",
    "absent_over_time(g[1m])",
    'absent(g{job="x"})',
    "histogram_quantile(0.5, rate(h_bucket[5m]))",
    "histogram_quantile(0.9, sum by (le) (rate(h_bucket[5m])))",
    "histogram_quantile(0.99, h_bucket)",
    "sum by (job) (g)",
    "sum without (i) (c)",
    "avg by (job) (g)",
    "min(g)",
    "max by (job) (c)",
    "count by (job) (c)",
    "topk(2, g)",
    "bottomk(1, c)",
    "quantile(0.5, g)",
    "stddev by (job) (g)",
    "sum by (job) (rate(c[5m]))",
    "avg(rate(c[5m]))",
    "g * on(job) group_left(team) info",
    "info * on(job) group_right(team) c",
    "c / ignoring(i) group_left sum by (job) (c)",
    "c > 20",
    "g >= bool 3",
    "3 < g",
    "g == 2",
    "c and on(job) g > 4",
    "c or g",
    "c unless on(job) g > 4",
    "g or vector(0)",
    "c - c offset 1m",
    "-g",
    "g % 3",
    "g ^ 2",
    "g / 0",
    "c * 2 + 1",
    'label_replace(c, "x", "$1.$2", "i", "(.)(.*)")',
    'label_replace(g, "job", "", "job", "a")',
    "time() - timestamp(g)",
    "scalar(sum(g)) * vector(2)",
    "clamp_min(g, 2)",
    "clamp_max(g, 2)",
    "abs(g)",
    "round(g / 4)",
    "ceil(g / 3)",
    "floor(g / 3)",
    "sort_desc(c)",
    "rate(c[5m]) > 0.1",
    "count(g > 2) / count(g)",
    "max_over_time(g[10m]) == 0",
]
TIMES = ["0s", "1m", "2m30s", "4m", "5m", "6m15s", "9m", "12m", "15m", "18m45s", "20m", "25m"]


def random_series(rnd: random.Random) -> dict[str, str]:
    def counter() -> str:
        parts, v = [], rnd.randint(0, 20)
        for _ in range(30):
            r = rnd.random()
            if r < 0.08:
                v = rnd.randint(0, 5)  # reset
            elif r < 0.14:
                parts.append("_")
                continue
            else:
                v += rnd.randint(0, 12)
            parts.append(str(v))
        return " ".join(parts)

    def gauge() -> str:
        parts = []
        for _ in range(30):
            r = rnd.random()
            if r < 0.07:
                parts.append("_")
            elif r < 0.10:
                parts.append("stale")
            else:
                parts.append(str(rnd.randint(-8, 16) / 2))
        return " ".join(parts)

    series: dict[str, str] = {}
    for job in ("a", "b"):
        for i in ("1", "2", "3"):
            if rnd.random() < 0.85:
                series[f'c{{job="{job}",i="{i}"}}'] = counter()
            if rnd.random() < 0.85:
                series[f'g{{job="{job}",i="{i}"}}'] = gauge()
    series['info{job="a",team="red"}'] = "1x30"
    series['info{job="b",team="blue"}'] = "1x30"
    total = 0
    for le in ("0.1", "0.5", "1", "+Inf"):
        total += rnd.randint(0, 3)
        series[f'h_bucket{{le="{le}"}}'] = f"0+{total}x30"
    return series


SAMPLE = re.compile(r"(\{[^}]*\}) (\S+?)(?:,|$)")


def parse_report(text: str) -> dict[tuple[str, str], object]:
    """(expr, time) -> error message, or the list of (labels, value) promtool 'got'."""
    out: dict[tuple[str, str], object] = {}
    current: tuple[str, str] | None = None
    for line in text.splitlines():
        head = re.match(r'\s+expr: "(.*)", time: ([^,]+),(?: err: (.*))?$', line)
        if head:
            current = (head.group(1), head.group(2))
            if head.group(3) is not None:
                out[current] = ("error", head.group(3))
            continue
        got = re.match(r"\s+got: (.*)$", line)
        if got and current is not None:
            out[current] = [(m.group(1), m.group(2)) for m in SAMPLE.finditer(got.group(1))]
    return out


def close(a: str, b: str) -> bool:
    if a == b:
        return True
    try:
        x, y = float(a), float(b)
    except ValueError:
        return False
    return math.isclose(x, y, rel_tol=1e-12, abs_tol=1e-300)


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5, 6])
def test_random_series_agree_with_promtool(tmp_path: Path, seed: int) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed")
    rnd = random.Random(seed)
    series = random_series(rnd)
    tests = [
        {"expr": e, "eval_time": t, "exp_samples": [{"labels": '{never="x"}', "value": -1}]}
        for e in EXPRS
        for t in rnd.sample(TIMES, 4)
    ]
    doc = {
        "tests": [
            {
                "interval": "1m",
                "input_series": [{"series": k, "values": v} for k, v in series.items()],
                "promql_expr_test": tests,
            }
        ]
    }
    f = tmp_path / "random.yml"
    f.write_text(yaml.safe_dump(doc, width=1000))
    theirs = parse_report(
        subprocess.run(
            [promtool, "test", "rules", str(f)], capture_output=True, text=True, timeout=120
        ).stderr
    )
    ours = parse_report("\n".join(run_file(str(f))))
    assert len(theirs) == len(tests) == len(ours)
    problems = []
    for k, want in theirs.items():
        got = ours[k]
        if TIES.match(k[0]) and isinstance(got, list) and isinstance(want, list):
            # Which of several equal values topk keeps is up to input order (random in
            # promtool): compare the values kept.
            if sorted(v for _, v in got) != sorted(v for _, v in want):
                problems.append(f"{k}: promtool {want}, chatwatch {got}")
            continue
        if isinstance(want, tuple) or isinstance(got, tuple) or not APPROX.search(k[0]):
            if got != want:
                problems.append(f"{k}: promtool {want}, chatwatch {got}")
            continue
        assert isinstance(want, list) and isinstance(got, list)
        if [lb for lb, _ in got] != [lb for lb, _ in want] or not all(
            close(a, b) for (_, a), (_, b) in zip(got, want, strict=True)
        ):
            problems.append(f"{k}: promtool {want}, chatwatch {got}")
    assert not problems, "\n".join(problems[:20])
