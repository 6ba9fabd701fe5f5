"""Quantiles as promql/quantile.go computes them (v2.42): `bucket_quantile` for
histogram_quantile() over classic buckets, `quantile` for the quantile aggregation and
quantile_over_time()."""

from __future__ import annotations

import math

from agent.alerting.promql.gomath import go_div

NAN = float("nan")
INF = float("inf")


def bucket_quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """promql/quantile.go bucketQuantile: `buckets` are (upper bound, cumulative count)."""
    if q != q:
        return NAN
    if q < 0:
        return -INF
    if q > 1:
        return INF
    buckets.sort(key=lambda b: b[0])
    if buckets[-1][0] != INF:
        return NAN
    bounds: list[float] = []
    counts: list[float] = []
    for ub, count in buckets:
        if bounds and bounds[-1] == ub:
            counts[-1] += count
        else:
            bounds.append(ub)
            counts.append(count)
    top = -INF
    for i, c in enumerate(counts):
        if c > top:
            top = c
        elif c < top:
            counts[i] = top
    if len(bounds) < 2:
        return NAN
    observations = counts[-1]
    if observations == 0:
        return NAN
    rank = q * observations
    b = 0
    last = len(bounds) - 1
    while b < last and not counts[b] >= rank:
        b += 1
    if b == last:
        return bounds[-2]
    if b == 0 and bounds[0] <= 0:
        return bounds[0]
    start = 0.0
    end = bounds[b]
    count = counts[b]
    if b > 0:
        start = bounds[b - 1]
        count -= counts[b - 1]
        rank -= counts[b - 1]
    return start + (end - start) * go_div(rank, count)  # 0/0 (q=0, empty bucket): NaN


def _nan_first(v: float) -> tuple[int, float]:
    return (0, 0.0) if v != v else (1, v)


def quantile(q: float, values: list[float]) -> float:
    """promql/quantile.go quantile (linear interpolation between closest ranks)."""
    if not values or q != q:
        return NAN
    if q < 0:
        return -INF
    if q > 1:
        return INF
    values = sorted(values, key=_nan_first)
    n = float(len(values))
    rank = q * (n - 1)
    lower = max(0.0, math.floor(rank))
    upper = min(n - 1, lower + 1)
    weight = rank - math.floor(rank)
    return values[int(lower)] * (1 - weight) + values[int(upper)] * weight
