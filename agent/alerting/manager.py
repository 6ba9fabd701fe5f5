"""RuleManager: evaluates the rule groups on time and hands their alerts on.

The app calls `evaluate(now)` every evaluation_interval, right after appending the
store's snapshot to the history. Each group that is due is evaluated at `now` (in file
order, rules in order); then

- recording-rule results and `ALERTS` / `ALERTS_FOR_STATE` are set as families in the
  store, so `/metrics` shows them (they are already in the history at `now`);
- the alerts of the evaluated groups (firing, and resolved within 15 minutes) go to the
  notifier, as Prometheus sends them to Alertmanager after each group evaluation;
- self-metrics count evaluations, failures, durations and last evaluation times.

`evaluate_early(now)` runs between two regular evaluations, soon after new samples (the
agent's schedule: agent/early.py): the groups with rules without `for` start the alerts
that fire at once, and only those are handed on; nothing else changes state.

`reload(groups)` swaps the groups in one assignment and keeps the alerts of every rule
whose identity (group, name, expression, labels) did not change, so a reload does not
re-send or forget anything. Saving alerts across restarts is persistence.py; the
Prometheus API views of rules and alerts are api.py.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from agent.alerting.alert import Alert
from agent.alerting.alerting_rule import AlertingRule, Change
from agent.alerting.api import alerts_api, rfc3339, rules_api
from agent.alerting.group import RuleGroup
from agent.alerting.history import BYTES_PER_SAMPLE, Interest
from agent.alerting.persistence import restore_alerts, save_alerts
from agent.alerting.promql.engine import lookback
from agent.alerting.recording_rule import RecordingRule
from agent.support.selfmetrics import SelfMetrics

log = logging.getLogger("chatwatch.rules")

Notify = Callable[[list[Alert], float], None]
"""Takes the alerts of one evaluation cycle and `now` (Notifier.send has this shape)."""

_ALERTS_HELP = "Alerts of chatwatch's alerting rules: 1 per pending or firing alert."
_FOR_STATE_HELP = "When each pending or firing alert became active (Unix seconds)."


class _FamilyStore(Protocol):
    def set_family(
        self, name: str, kind: str, help: str, samples: list[tuple[dict[str, str], float]]
    ) -> None: ...


class LogNotifier:
    """The default notifier: one JSON log line per alert that starts firing or resolves."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.log = logger or logging.getLogger("chatwatch.alerts")
        self._firing: dict[tuple[tuple[str, str], ...], float] = {}

    def __call__(self, alerts: list[Alert], now: float) -> None:
        for alert in alerts:
            key = tuple(sorted(alert.labels.items()))
            if alert.ends_at is None:
                if self._firing.get(key) != alert.starts_at:
                    self._firing[key] = alert.starts_at
                    self._emit("alert firing", "firing", alert)
            elif key in self._firing:
                del self._firing[key]
                self._emit("alert resolved", "resolved", alert)

    def _emit(self, msg: str, status: str, alert: Alert) -> None:
        self.log.warning(
            msg,
            extra={
                "status": status,
                "alertname": alert.name,
                "labels": alert.labels,
                "annotations": alert.annotations,
                "starts_at": rfc3339(alert.starts_at),
                "ends_at": rfc3339(alert.ends_at) if alert.ends_at is not None else None,
            },
        )


class RuleManager:
    """Holds the rule groups, evaluates them when due, and reports on them."""

    def __init__(
        self,
        groups: Sequence[RuleGroup],
        history: Any,
        *,
        store: _FamilyStore | None = None,
        stats: SelfMetrics | None = None,
        notify: Notify | None = None,
        evaluation_interval: float = 1.0,
    ) -> None:
        self.history = history
        self.store = store
        self.notify: Notify = notify if notify is not None else LogNotifier()
        self.evaluation_interval = evaluation_interval
        self._groups: list[RuleGroup] = list(groups)
        self._next_due: dict[tuple[str, str], float] = {}
        self._recorded_names: set[str] = set()
        self.last_changes: list[Change] = []
        stats = stats if stats is not None else SelfMetrics()
        self._duration = stats.histogram(
            "chatwatch_rule_evaluation_duration_seconds",
            "Time to evaluate one rule group.",
            ("rule_group",),
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
        )
        self._failures = stats.counter(
            "chatwatch_rule_evaluation_failures_total",
            "Rule evaluations that failed (the rule keeps its alerts).",
            ("rule_group",),
        )
        self._evaluations = stats.counter(
            "chatwatch_rule_evaluations_total", "Rule evaluations.", ("rule_group",)
        )
        self._last_eval = stats.gauge(
            "chatwatch_rule_group_last_evaluation_timestamp_seconds",
            "When each rule group was last evaluated (Unix seconds).",
            ("rule_group",),
        )
        self._early = stats.counter(
            "chatwatch_rule_early_evaluations_total",
            "Evaluations between two regular ones, after new samples, for the alerts of "
            "rules without `for`.",
        )
        self._rules_gauge = stats.gauge(
            "chatwatch_rule_group_rules", "Rules in each rule group.", ("rule_group",)
        )
        self._set_rule_gauges()

    @property
    def groups(self) -> list[RuleGroup]:
        return self._groups

    def save_state(self, path: Path, now: float) -> None:
        """Pending, firing and recently resolved alerts to `path` (persistence.py)."""
        save_alerts(self._groups, path, now)

    def restore_state(self, path: Path, now: float) -> int:
        """The alerts `save_state` wrote, for rules whose identity is unchanged."""
        return restore_alerts(self._groups, path, now)

    def alerts_api(self) -> dict[str, Any]:
        """`data` of Prometheus' GET /api/v1/alerts."""
        return alerts_api(self._groups)

    def rules_api(self) -> dict[str, Any]:
        """`data` of Prometheus' GET /api/v1/rules."""
        return rules_api(self._groups, self.interval_of)

    def interval_of(self, group: RuleGroup) -> float:
        return group.interval if group.interval is not None else self.evaluation_interval

    # -- evaluation ---------------------------------------------------------------------

    def evaluate(self, now: float) -> list[Alert]:
        """Evaluate the groups due at `now`; returns (and notifies) their alerts."""
        groups = self._groups
        alerts: list[Alert] = []
        self.last_changes = []
        evaluated = 0
        for group in groups:
            if not self._due(group, now):
                continue
            evaluated += 1
            alerts.extend(self._eval_group(group, now))
            self.last_changes.extend(group.last_changes)
        if evaluated:
            self._publish(groups)
            for change in self.last_changes:
                _log_change(change)
            self.notify(alerts, now)
        return alerts

    @property
    def evaluates_early(self) -> bool:
        """Whether any group can start an alert in an early evaluation."""
        return bool(self._early_groups())

    def _early_groups(self) -> list[RuleGroup]:
        """Groups with a rule without `for`, on the global interval (a group given a
        longer one was asked to be evaluated less often)."""
        interval = self.evaluation_interval
        return [g for g in self._groups if g.evaluates_early and self.interval_of(g) <= interval]

    def evaluate_early(self, now: float) -> list[Alert]:
        """An early evaluation at `now`, between two regular ones, after new samples: the
        groups with rules without `for` start the alerts that fire at once (group.py).
        Their alerts are handed on only when one started; the regular schedule of every
        group stays as it was. Returns the alerts handed on."""
        groups = self._early_groups()
        changes: list[Change] = []
        alerts: list[Alert] = []
        for group in groups:
            group_alerts = group.eval(now, self.history, early=True)
            if group.last_changes:
                changes.extend(group.last_changes)
                alerts.extend(group_alerts)
        self._early.inc((), 1)
        if changes:
            self.last_changes = changes
            self._publish(self._groups)
            for change in changes:
                _log_change(change)
            self.notify(alerts, now)
        return alerts

    def _due(self, group: RuleGroup, now: float) -> bool:
        interval = self.interval_of(group)
        due = self._next_due.get(group.key)
        # ticks jitter a little; a group is due within 10% of its interval (max 0.5 s)
        slack = min(0.1 * interval, 0.5)
        if due is not None and now < due - interval - slack:
            due = None  # the clock went back: start the schedule again from now
        if due is not None and now < due - slack:
            return False
        nxt = due if due is not None else now
        if nxt < now - interval:  # missed cycles (a stall) are skipped, not caught up
            nxt = now
        while nxt <= now + slack:
            nxt += interval
        self._next_due[group.key] = nxt
        return True

    def _eval_group(self, group: RuleGroup, now: float) -> list[Alert]:
        label = (group_label(group),)
        alerts = group.eval(now, self.history)
        self._duration.observe(label, group.evaluation_time)
        self._evaluations.inc(label, len(group.rules))
        failed = sum(1 for r in group.rules if r.health == "err")
        if failed:
            self._failures.inc(label, failed)
            for r in group.rules:
                if r.health == "err":
                    log.warning(
                        "rule evaluation failed",
                        extra={"rule_group": label[0], "rule": r.name, "error": r.last_error},
                    )
        self._last_eval.set(label, now)
        return alerts

    def _publish(self, groups: Sequence[RuleGroup]) -> None:
        """Set recording-rule results and ALERTS as families in the store (/metrics)."""
        if self.store is None:
            return
        recorded: dict[str, list[tuple[dict[str, str], float]]] = {}
        alerts: list[tuple[dict[str, str], float]] = []
        for_state: list[tuple[dict[str, str], float]] = []
        for group in groups:
            for rule in group.rules:
                if isinstance(rule, RecordingRule):
                    recorded.setdefault(rule.name, []).extend(
                        (labels, value) for labels, value in rule.last_result
                    )
                elif isinstance(rule, AlertingRule):
                    alerts.extend(rule.alerts_series())
                    for_state.extend(rule.for_state_series())
        for name in self._recorded_names - recorded.keys():
            self._set_family(name, "gauge", "", [])
        for name, samples in recorded.items():
            self._set_family(name, "gauge", f"Recording rule {name}.", samples)
        self._recorded_names = set(recorded)
        self._set_family("ALERTS", "gauge", _ALERTS_HELP, alerts)
        self._set_family("ALERTS_FOR_STATE", "gauge", _FOR_STATE_HELP, for_state)

    def _set_family(
        self, name: str, kind: str, help: str, samples: list[tuple[dict[str, str], float]]
    ) -> None:
        assert self.store is not None
        try:
            self.store.set_family(name, kind, help, samples)
        except ValueError as exc:  # a recording rule named like a configured metric
            log.warning("cannot publish rule results", extra={"family": name, "error": str(exc)})

    # -- reload -------------------------------------------------------------------------

    def reload(
        self, new_groups: Sequence[RuleGroup], evaluation_interval: float | None = None
    ) -> None:
        """Replace the groups; rules with an unchanged identity keep their alerts."""
        if evaluation_interval is not None:
            self.evaluation_interval = evaluation_interval
        old = {g.key: g for g in self._groups}
        fresh = list(new_groups)
        for group in fresh:
            prev = old.get(group.key)
            if prev is not None:
                group.take_state_from(prev)
        self._next_due = {k: v for k, v in self._next_due.items() if k in {g.key for g in fresh}}
        self._groups = fresh
        self._set_rule_gauges(old.values())
        log.info(
            "rules reloaded",
            extra={"groups": len(fresh), "rules": sum(len(g.rules) for g in fresh)},
        )

    def _set_rule_gauges(self, old: Any = ()) -> None:
        for g in old:
            self._rules_gauge.remove((group_label(g),))
        for g in self._groups:
            self._rules_gauge.set((group_label(g),), len(g.rules))


def group_label(group: RuleGroup) -> str:
    """The `rule_group` label value, as Prometheus spells it: `file;name`."""
    return f"{group.file};{group.name}"


def _log_change(change: Change) -> None:
    log.debug(
        "alert state changed",
        extra={
            "alertname": change.alert.labels.get("alertname", ""),
            "labels": change.alert.labels,
            "from": change.old,
            "to": change.new,
            "value": change.alert.value,
        },
    )


def required_retention(groups: Sequence[RuleGroup], evaluation_interval: float = 1.0) -> float:
    """History retention the rules need: their longest lookback plus a margin. The lookback
    includes subqueries (their ranges and offsets around what they read) and `@ start()` /
    `@ end()`, not `@ <timestamp>` (docs/promql.md: History and memory)."""
    longest = 300.0
    for g in groups:
        for r in g.rules:
            longest = max(longest, lookback(r.expr))
        if g.interval:
            longest = max(longest, 2 * g.interval)
    return longest + 2 * evaluation_interval


def required_interest(groups: Sequence[RuleGroup]) -> Interest:
    """The series the rules can read: every selector of every rule (subqueries included).
    With no rules, none: the history then holds nothing and nothing is copied into it."""
    return Interest(sel for g in groups for r in g.rules for sel in r.expr.selectors)


@dataclass(frozen=True, slots=True)
class MemoryEstimate:
    """What the history of a rule set costs at a given number of series (docs/promql.md)."""

    retention: float
    series: int
    samples_per_series: int
    history_bytes: int
    subquery_bytes: int
    """At most: every subquery holding a result for every series at each of its steps."""


def estimate_memory(
    groups: Sequence[RuleGroup], evaluation_interval: float, series: int
) -> MemoryEstimate:
    """series * (retention / evaluation_interval + 1) samples * BYTES_PER_SAMPLE, plus the
    results subqueries keep: steps (range / step + 1) * series * BYTES_PER_SAMPLE each."""
    retention = required_retention(groups, evaluation_interval)
    per_series = math.floor(retention / evaluation_interval) + 1
    steps = {key: n for g in groups for r in g.rules for key, n in r.expr.subqueries}
    return MemoryEstimate(
        retention,
        series,
        per_series,
        series * per_series * BYTES_PER_SAMPLE,
        sum(steps.values()) * series * BYTES_PER_SAMPLE,
    )
