"""The alert state machine of one alerting rule, after Prometheus' rules/alerting.go.

Each evaluation hands the rule the vector its expression returned at `now`. Every sample
is one alert, identified by its labels (the series' labels without `__name__`, plus the
rule's labels, plus `alertname`):

    inactive ──sample appears──▶ pending ──present for `for`──▶ firing
        ▲                          │                              │
        └──────sample gone─────────┘          sample gone for `keep_firing_for`
                                                                  ▼
                                                   resolved (kept 15 min, then forgotten)

- With `for: 0` an alert fires on the evaluation that first sees it.
- A pending alert whose sample disappears is forgotten at once (it never notified).
- A firing alert whose sample disappears keeps firing until it has been gone for
  `keep_firing_for`; if the sample comes back meanwhile, nothing happened.
- A resolved alert is kept for 15 minutes so the resolve is sent again on every
  evaluation (a lost notification is repaired); if its labels come back it starts over
  as pending.
- An early evaluation between two regular ones (`fire_new`, rules without `for` only)
  starts the alerts that are new, firing; everything else waits for the regular one.

Nothing here reads the clock or does I/O: the caller passes `now`, the vector, and gets
the alerts to send. Labels and annotations are rendered from templates parsed at load.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from agent.alerting.alert import Alert
from agent.alerting.promql.values import EvalError
from agent.alerting.template.exec import Template

RESOLVED_RETENTION = 15 * 60.0
"""Seconds a resolved alert is still sent, so a lost resolve notification is repaired."""

State = Literal["inactive", "pending", "firing"]
LabelSet = tuple[tuple[str, str], ...]


class Sample(Protocol):
    """One element of an instant vector (what promql.evaluate returns)."""

    @property
    def labels(self) -> Mapping[str, str]: ...

    @property
    def value(self) -> float: ...


@dataclass(slots=True)
class ActiveAlert:
    """One alert of a rule: pending, firing, or resolved (state "inactive")."""

    labels: dict[str, str]
    annotations: dict[str, str]
    state: State
    value: float
    active_at: float
    """When the alert's sample first appeared (start of pending)."""
    fired_at: float | None = None
    resolved_at: float | None = None
    keep_firing_since: float | None = None
    """First evaluation whose vector lacked this alert while it kept firing."""

    def to_alert(self, generator_url: str = "", cooldown: float = 0.0) -> Alert:
        """The notification boundary's view (as Prometheus sends it to Alertmanager)."""
        return Alert(
            labels=dict(self.labels),
            annotations=dict(self.annotations),
            starts_at=self.fired_at if self.fired_at is not None else self.active_at,
            ends_at=self.resolved_at if self.state == "inactive" else None,
            generator_url=generator_url,
            cooldown=cooldown,
        )


@dataclass(frozen=True, slots=True)
class Change:
    """A state change seen during one evaluation (for logs and replay timelines)."""

    alert: ActiveAlert
    old: State
    new: State | Literal["resolved"]
    rule: AlertingRule | None = field(default=None, compare=False, repr=False)
    """The rule that holds the alert (several rules may share an alert name)."""


@dataclass(eq=False)
class AlertingRule:
    """An alerting rule and the alerts it currently holds."""

    name: str
    expr_text: str
    expr: Any
    """The compiled expression (agent.alerting.promql.engine.compile_expr)."""
    hold: float = 0.0
    """`for`: seconds an alert stays pending before it fires."""
    keep_firing_for: float = 0.0
    labels: dict[str, Template] = field(default_factory=dict)
    annotations: dict[str, Template] = field(default_factory=dict)
    cooldown: float = 0.0
    external_labels: dict[str, str] = field(default_factory=dict)
    external_url: str = ""
    generator_url: str = ""

    active: dict[LabelSet, ActiveAlert] = field(default_factory=dict, repr=False)
    health: Literal["unknown", "ok", "err"] = "unknown"
    last_error: str = ""
    last_evaluation: float | None = None
    evaluation_time: float = 0.0
    restored_until: float = 0.0
    """After a restart, alerts restored from disk are not resolved before this time."""
    windows_full_at: float = 0.0
    """After a restart, when the range windows the expression reads (directly or through
    recording rules) span history again."""

    def end_restore_when_refilled(self, history: Any, now: float) -> None:
        """End the post-restart grace as soon as the history answers the expression as it
        would have without the restart: every range window is covered and every instant
        selector has a sample again (so a gauge that reads 0 now resolves at once)."""
        if now < self.windows_full_at:
            return
        if all(history.series(ms) for ms in getattr(self.expr, "instant_selectors", ())):
            self.restored_until = 0.0

    @property
    def identity(self) -> tuple[str, str, tuple[tuple[str, str], ...]]:
        """Rules with the same identity keep their alerts across a reload."""
        return (
            self.name,
            self.expr_text,
            tuple(sorted((k, t.text) for k, t in self.labels.items())),
        )

    # -- the state machine --------------------------------------------------------------

    def apply(self, vector: Iterable[Sample], now: float) -> list[Change]:
        """Advance every alert to `now` given the rule's result; returns the changes."""
        seen: dict[LabelSet, ActiveAlert] = {}
        for sample in vector:
            series = dict(sample.labels)  # templates see __name__ too, as in Prometheus
            value = float(sample.value)
            labels = self._labels_for(series, value)
            key = tuple(sorted(labels.items()))
            if key in seen:
                raise EvalError(
                    "vector contains metrics with the same labelset after applying alert labels"
                )
            current = self.active.get(key)
            if current is not None and current.state != "inactive":
                # the same alert: new value, annotations rendered again (unless unchanged)
                if not _same(current.value, value):
                    current.value = value
                    current.annotations = self._annotations_for(series, value)
                seen[key] = current
                continue
            # a new alert, or one that resolved and came back
            seen[key] = self.active[key] = ActiveAlert(
                labels=labels,
                annotations=self._annotations_for(series, value),
                state="pending",
                value=value,
                active_at=now,
            )

        changes: list[Change] = []
        for key, alert in list(self.active.items()):
            if key not in seen:
                if now < self.restored_until and alert.state != "inactive":
                    continue  # just restarted, the history is refilling: absence proves nothing
                keep_firing = False
                if alert.state == "firing" and self.keep_firing_for > 0:
                    if alert.keep_firing_since is None:
                        alert.keep_firing_since = now
                    keep_firing = now - alert.keep_firing_since < self.keep_firing_for
                if alert.state == "pending" or (
                    alert.resolved_at is not None and now - alert.resolved_at > RESOLVED_RETENTION
                ):
                    del self.active[key]
                if alert.state != "inactive" and not keep_firing:
                    changes.append(
                        Change(
                            alert,
                            alert.state,
                            "resolved" if alert.state == "firing" else "inactive",
                            self,
                        )
                    )
                    alert.state = "inactive"
                    alert.resolved_at = now
                if not keep_firing:
                    continue
            else:
                alert.keep_firing_since = None
                if alert.state == "pending" and alert.active_at == now:
                    changes.append(Change(alert, "inactive", "pending", self))

            if alert.state == "pending" and now - alert.active_at >= self.hold:
                changes.append(Change(alert, "pending", "firing", self))
                alert.state = "firing"
                alert.fired_at = now
        return changes

    def fire_new(self, vector: Iterable[Sample], now: float) -> list[Change]:
        """An early evaluation (between two regular ones) of a rule without `for`: only
        alerts that are not active yet start, firing at once, as `apply` would start them.

        Nothing else moves: alerts already pending or firing keep their state and value,
        and none resolves, so `for` and `keep_firing_for` stay measured on the regular
        evaluations and a sample that is gone for a moment flaps nothing."""
        assert self.hold == 0, "early evaluations are for rules without `for`"
        seen: set[LabelSet] = set()
        started: list[tuple[LabelSet, dict[str, str], dict[str, str], float]] = []
        for sample in vector:
            series = dict(sample.labels)
            value = float(sample.value)
            labels = self._labels_for(series, value)
            key = tuple(sorted(labels.items()))
            if key in seen:
                raise EvalError(
                    "vector contains metrics with the same labelset after applying alert labels"
                )
            seen.add(key)
            current = self.active.get(key)
            if current is None or current.state == "inactive":
                started.append((key, labels, series, value))
        changes: list[Change] = []
        for key, labels, series, value in started:
            alert = self.active[key] = ActiveAlert(
                labels=labels,
                annotations=self._annotations_for(series, value),
                state="firing",
                value=value,
                active_at=now,
                fired_at=now,
            )
            changes.append(Change(alert, "inactive", "pending", self))
            changes.append(Change(alert, "pending", "firing", self))
        return changes

    def _labels_for(self, series: dict[str, str], value: float) -> dict[str, str]:
        labels = {k: v for k, v in series.items() if k != "__name__"}
        for name, tmpl in self.labels.items():
            labels[name] = tmpl.expand(series, value, self.external_labels, self.external_url)
        labels = {k: v for k, v in labels.items() if v != ""}
        labels["alertname"] = self.name
        return labels

    def _annotations_for(self, series: dict[str, str], value: float) -> dict[str, str]:
        return {
            name: tmpl.expand(series, value, self.external_labels, self.external_url)
            for name, tmpl in self.annotations.items()
        }

    # -- views ----------------------------------------------------------------------------

    def active_alerts(self) -> list[ActiveAlert]:
        """Pending and firing alerts (not the resolved ones kept for re-sending)."""
        return sorted((a for a in self.active.values() if a.state != "inactive"), key=_sort_key)

    def alerts_to_send(self) -> list[Alert]:
        """What Prometheus would send to Alertmanager: firing alerts and recent resolves."""
        return [
            a.to_alert(self.generator_url, self.cooldown)
            for a in sorted(self.active.values(), key=_sort_key)
            if a.state != "pending"
        ]

    def state(self) -> State:
        """The rule's state: the most severe of its alerts."""
        states = {a.state for a in self.active.values()}
        if "firing" in states:
            return "firing"
        if "pending" in states:
            return "pending"
        return "inactive"

    def alerts_series(self) -> list[tuple[dict[str, str], float]]:
        """`ALERTS{alertname, alertstate, ...}` samples, 1 for every pending/firing alert."""
        return [({**a.labels, "alertstate": a.state}, 1.0) for a in self.active_alerts()]

    def for_state_series(self) -> list[tuple[dict[str, str], float]]:
        """`ALERTS_FOR_STATE{...}`: when each pending/firing alert became active, in whole
        Unix seconds as Prometheus writes it."""
        return [(dict(a.labels), float(math.floor(a.active_at))) for a in self.active_alerts()]

    def take_state_from(self, old: AlertingRule) -> None:
        """Keep the alerts of the rule this one replaces at reload (same identity)."""
        self.active = old.active
        self.health = old.health
        self.last_error = old.last_error
        self.last_evaluation = old.last_evaluation
        self.evaluation_time = old.evaluation_time
        self.restored_until = old.restored_until
        self.windows_full_at = old.windows_full_at


def _same(a: float, b: float) -> bool:
    return a == b or (a != a and b != b)


def _sort_key(a: ActiveAlert) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(a.labels.items()))
