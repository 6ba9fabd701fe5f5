"""A recording rule: its expression's result stored under a new metric name."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from agent.alerting.history import SeriesKey
from agent.alerting.promql.values import EvalError


@dataclass(eq=False)
class RecordingRule:
    """A recording rule: its result is stored under a new metric name."""

    name: str
    expr_text: str
    expr: Any
    labels: dict[str, str] = field(default_factory=dict)

    health: Literal["unknown", "ok", "err"] = "unknown"
    last_error: str = ""
    last_evaluation: float | None = None
    evaluation_time: float = 0.0
    written: set[SeriesKey] = field(default_factory=set, repr=False)
    """Series written at the last evaluation; those missing next time get a stale marker."""
    last_result: list[tuple[dict[str, str], float]] = field(default_factory=list, repr=False)

    @property
    def identity(self) -> tuple[str, str, tuple[tuple[str, str], ...]]:
        return (self.name, self.expr_text, tuple(sorted(self.labels.items())))

    def result(self, vector: Iterable[Any]) -> list[tuple[dict[str, str], float]]:
        """The series to record: the result relabelled with `__name__` and the rule's labels."""
        out: list[tuple[dict[str, str], float]] = []
        seen: set[SeriesKey] = set()
        for sample in vector:
            labels = dict(sample.labels)
            labels["__name__"] = self.name
            for k, v in self.labels.items():
                if v == "":
                    labels.pop(k, None)
                else:
                    labels[k] = v
            key = tuple(sorted(labels.items()))
            if key in seen:
                raise EvalError(
                    "vector contains metrics with the same labelset after applying rule labels"
                )
            seen.add(key)
            out.append((labels, float(sample.value)))
        return out

    def take_state_from(self, old: RecordingRule) -> None:
        self.written = old.written
        self.last_result = old.last_result
        self.health, self.last_error = old.health, old.last_error
        self.last_evaluation, self.evaluation_time = old.last_evaluation, old.evaluation_time
