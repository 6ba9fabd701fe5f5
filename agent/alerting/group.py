"""A rule group: rules evaluated in order at one interval, as Prometheus' rules/group.go.

`RuleGroup.eval(now, history)` evaluates a group's rules in order: recording-rule results
go into the history at `now`, so later rules see them, and so do `ALERTS` and
`ALERTS_FOR_STATE` right after each alerting rule.

`eval(now, history, early=True)` is an early evaluation between two regular ones, after
new samples arrived (agent/early.py): recording rules as usual, alerting rules without
`for` only start the alerts that fire at once (`AlertingRule.fire_new`), and rules with
`for` are not evaluated, so `for` keeps being measured on the regular evaluations.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from agent.alerting.alert import Alert
from agent.alerting.alerting_rule import AlertingRule, Change
from agent.alerting.history import STALE_NAN, SeriesKey
from agent.alerting.promql.engine import evaluate
from agent.alerting.promql.values import EvalError
from agent.alerting.recording_rule import RecordingRule

Rule = AlertingRule | RecordingRule


@dataclass(frozen=True, slots=True)
class _ScalarSample:
    labels: Mapping[str, str]
    value: float


def _as_vector(result: Any) -> list[Any]:
    """An instant-query result as a vector: a scalar becomes one sample without labels."""
    if isinstance(result, int | float):
        return [_ScalarSample({}, float(result))]
    return list(result)


@dataclass(eq=False)
class RuleGroup:
    """A named list of rules evaluated in order at one interval."""

    name: str
    file: str
    rules: list[Rule]
    interval: float | None = None
    """Seconds between evaluations; None means the config's evaluation_interval."""
    limit: int = 0
    source: dict[str, Any] = field(default_factory=dict, repr=False)
    """The group as written in the file (for export-rules)."""

    last_evaluation: float | None = None
    evaluation_time: float = 0.0
    last_changes: list[Change] = field(default_factory=list, repr=False)
    alerts_written: set[SeriesKey] = field(default_factory=set, repr=False)

    @property
    def key(self) -> tuple[str, str]:
        return (self.file, self.name)

    def alerting_rules(self) -> list[AlertingRule]:
        return [r for r in self.rules if isinstance(r, AlertingRule)]

    def recording_rules(self) -> list[RecordingRule]:
        return [r for r in self.rules if isinstance(r, RecordingRule)]

    @property
    def evaluates_early(self) -> bool:
        """Whether early evaluations can start an alert: an alerting rule without `for`
        (and no `limit`, which counts the alerts of a whole regular evaluation)."""
        return not self.limit and any(
            isinstance(r, AlertingRule) and r.hold == 0 for r in self.rules
        )

    def eval(self, now: float, history: Any, *, early: bool = False) -> list[Alert]:
        """Evaluate every rule at `now`; returns the alerts to send (firing and recently
        resolved). A rule that fails keeps its alerts and is reported in `health`."""
        started = time.perf_counter()
        self.last_changes = []
        alerts: list[Alert] = []
        alert_series: dict[SeriesKey, float] = {}
        for rule in self.rules:
            if early and isinstance(rule, AlertingRule) and rule.hold > 0:
                pass  # not evaluated early: its `for` is measured on the regular evaluations
            else:
                t0 = time.perf_counter()
                try:
                    self.last_changes.extend(self._eval_rule(rule, now, history, early))
                    rule.health, rule.last_error = "ok", ""
                except Exception as exc:
                    rule.health, rule.last_error = "err", str(exc) or type(exc).__name__
                rule.last_evaluation = now
                rule.evaluation_time = time.perf_counter() - t0
            if isinstance(rule, AlertingRule) and rule.active:
                # ALERTS right after each alerting rule, so later rules in the group see them
                alerts.extend(rule.alerts_to_send())
                series = [(_key({**lb, "__name__": "ALERTS"}), v) for lb, v in rule.alerts_series()]
                series += [
                    (_key({**lb, "__name__": "ALERTS_FOR_STATE"}), v)
                    for lb, v in rule.for_state_series()
                ]
                for key, value in series:
                    history.add(key, now, value)
                    alert_series[key] = value
        for key in self.alerts_written - alert_series.keys():
            history.add(key, now, STALE_NAN)
        self.alerts_written = set(alert_series)
        self.last_evaluation = now
        self.evaluation_time = time.perf_counter() - started
        return alerts

    def _eval_rule(self, rule: Rule, now: float, history: Any, early: bool) -> list[Change]:
        """Evaluate one rule at `now`: a recording rule's result goes into the history, an
        alerting rule's alerts advance. Raises what makes the rule's health `err`."""
        vector = _as_vector(evaluate(rule.expr, history, now))
        if isinstance(rule, RecordingRule):
            samples = rule.result(vector)
            if self.limit and len(samples) > self.limit:
                raise EvalError(f"exceeded limit of {self.limit} with {len(samples)} series")
            written: set[SeriesKey] = set()
            for labels, value in samples:
                key = tuple(sorted(labels.items()))
                history.add(key, now, value)
                written.add(key)
            for key in rule.written - written:
                history.add(key, now, STALE_NAN)
            rule.written = written
            rule.last_result = samples
            return []
        if early:
            return rule.fire_new(vector, now)
        if rule.restored_until > now:
            rule.end_restore_when_refilled(history, now)
        changes = rule.apply(vector, now)
        active = len(rule.active_alerts()) if self.limit else 0
        if active > self.limit:
            rule.active.clear()  # as Prometheus: no alerts rather than some
            raise EvalError(f"exceeded limit of {self.limit} with {active} alerts")
        return changes

    def take_state_from(self, old: RuleGroup) -> None:
        """After a reload: keep alert state of rules whose identity did not change."""
        by_identity: dict[tuple[str, tuple[str, str, Any]], Rule] = {}
        for r in old.rules:
            by_identity.setdefault((type(r).__name__, r.identity), r)
        for r in self.rules:
            prev = by_identity.pop((type(r).__name__, r.identity), None)
            if isinstance(r, AlertingRule) and isinstance(prev, AlertingRule):
                r.take_state_from(prev)
            if isinstance(r, RecordingRule) and isinstance(prev, RecordingRule):
                r.take_state_from(prev)
        self.alerts_written = old.alerts_written
        self.last_evaluation = old.last_evaluation
        self.evaluation_time = old.evaluation_time


def _key(labels: Mapping[str, str]) -> SeriesKey:
    return tuple(sorted(labels.items()))
