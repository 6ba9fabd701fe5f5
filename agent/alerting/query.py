"""Range queries over the in-memory history: an expression evaluated at every step.

What Prometheus' `/api/v1/query_range` does, for the `/graph` page: the instant query at
`start`, `start + step`, ... up to `end`, each answered exactly as a rule evaluated at
that time would be. Pure: the history and the times come in, nothing reads the clock.
"""

from __future__ import annotations

from typing import Literal

from agent.alerting.history import History
from agent.alerting.promql.engine import compile_expr, evaluate

MAX_STEPS = 11_000
"""Prometheus refuses more than 11,000 points per series; so do we."""

Series = tuple[dict[str, str], list[float], list[float]]
"""Labels, the times (Unix seconds) and the values at them."""


def query_range(
    text: str, history: History, start: float, end: float, step: float
) -> tuple[Literal["vector", "scalar"], float, list[Series]]:
    """Evaluate `text` at every `step` back from `end` to no earlier than `start`.

    Returns the result's type, the first step's time and the series. Raises ValueError
    for an expression that does not parse, is not supported, or fails to evaluate."""
    if step <= 0:
        raise ValueError("the step must be more than 0")
    if end < start:
        raise ValueError("the end of the range is before its start")
    steps = int((end - start) / step + 1e-9) + 1
    if steps > MAX_STEPS:
        raise ValueError(
            f"{steps} steps is too many (at most {MAX_STEPS}): use a larger step or a shorter range"
        )
    expr = compile_expr(text)
    by_key: dict[tuple[tuple[str, str], ...], Series] = {}
    kind: Literal["vector", "scalar"] = "scalar" if expr.kind == "scalar" else "vector"
    for i in range(steps):
        t = end - (steps - 1 - i) * step  # the last step is exactly `end`
        result = evaluate(expr, history, t)
        samples: list[tuple[dict[str, str], float]]
        if isinstance(result, float):
            samples = [({}, result)]
        else:
            samples = [(s.labels, s.value) for s in result]
        for labels, value in samples:
            key = tuple(sorted(labels.items()))
            series = by_key.get(key)
            if series is None:
                series = by_key[key] = (labels, [], [])
            series[1].append(t)
            series[2].append(value)
    return kind, end - (steps - 1) * step, [by_key[k] for k in sorted(by_key)]
