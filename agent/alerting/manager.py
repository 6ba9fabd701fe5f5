"""RuleManager: evaluates the rule groups on time and hands their alerts on.

The app calls `evaluate(now)` every evaluation_interval, right after appending the
store's snapshot to the history. Each group that is due is evaluated at `now` (in file
order, rules in order); then

- recording-rule results and `ALERTS` / `ALERTS_FOR_STATE` are set as families in the
  store, so `/metrics` shows them (they are already in the history at `now`);
- the alerts of the evaluated groups (firing, and resolved within 15 minutes) go to the
  notifier, as Prometheus sends them to Alertmanager after each group evaluation;
- self-metrics count evaluations, failures, durations and last evaluation times.

`reload(groups)` swaps the groups in one assignment and keeps the alerts of every rule
whose identity (group, name, expression, labels) did not change, so a reload does not
re-send or forget anything. `alerts_api()` and `rules_api()` return the `data` of
Prometheus' /api/v1/alerts and /api/v1/rules.
"""

from __future__ import annotations

import datetime
import json
import logging
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from agent.alerting.alert import Alert
from agent.alerting.alerting_rule import ActiveAlert, Change, format_value
from agent.alerting.rule_file import AlertingRule, RecordingRule, RuleGroup
from agent.support.selfmetrics import SelfMetrics

log = logging.getLogger("chatwatch.rules")

Notify = Callable[[list[Alert], float], None]
"""Takes the alerts of one evaluation cycle and `now` (Notifier.send has this shape)."""

RESTORE_GRACE = 600.0
"""Longest time after a restart during which restored alerts are not resolved."""

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
        self._rules_gauge = stats.gauge(
            "chatwatch_rule_group_rules", "Rules in each rule group.", ("rule_group",)
        )
        self._set_rule_gauges()

    @property
    def groups(self) -> list[RuleGroup]:
        return self._groups

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

    # -- alert state across restarts ---------------------------------------------------

    def save_state(self, path: Path, now: float) -> None:
        """Write every rule's alerts (pending, firing, recently resolved) to `path`,
        atomically, so a restart neither forgets a `for` in progress nor fires anew."""
        rules = []
        for g in self._groups:
            for r in g.alerting_rules():
                if r.active:
                    rules.append(
                        {
                            "file": g.file,
                            "group": g.name,
                            "identity": list(_jsonable(r.identity)),
                            "alerts": [_alert_state(a) for a in r.active.values()],
                        }
                    )
        data = {"version": 1, "saved_at": now, "rules": rules}
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("w", encoding="utf-8") as f:
            json.dump(data, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def restore_state(self, path: Path, now: float) -> int:
        """Give rules whose identity is unchanged the alerts saved by `save_state`.

        As in Prometheus, the time the agent was down does not count toward `for`: a
        pending alert's start moves forward by the downtime. Firing alerts keep their
        start time, so notification sees the same alert, not a new one. The history
        starts empty, so a restored alert missing from the result is kept rather than
        resolved until the history has refilled: every range window the expression reads
        (directly or through recording rules) is covered and every instant selector has
        a sample again, or at the latest after its lookback (at most RESTORE_GRACE). Returns the
        number of alerts restored; a missing or unreadable file restores nothing."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            saved_at = float(data["saved_at"])
            saved = {
                (e["file"], e["group"], json.dumps(e["identity"])): e["alerts"]
                for e in data["rules"]
            }
        except FileNotFoundError:
            return 0
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("alert state not restored", extra={"path": str(path), "error": str(exc)})
            return 0
        from agent.alerting.promql.engine import lookback

        downtime = max(0.0, now - saved_at)
        # a recorded series is only as complete as the windows its rule reads
        recorded_range = max(
            (r.expr.range_s for g in self._groups for r in g.rules if isinstance(r, RecordingRule)),
            default=0.0,
        )
        restored = 0
        for g in self._groups:
            for r in g.alerting_rules():
                entries = saved.get((g.file, g.name, json.dumps(list(_jsonable(r.identity)))))
                if not entries:
                    continue
                # the history starts empty: until the expression's window has refilled,
                # a restored alert missing from the result is kept, not resolved
                r.restored_until = now + min(lookback(r.expr), RESTORE_GRACE)
                r.windows_full_at = now + max(r.expr.range_s, recorded_range)
                for e in entries:
                    try:
                        alert = _alert_from_state(e)
                    except (KeyError, TypeError, ValueError):
                        continue
                    if alert.state == "pending":
                        alert.active_at += downtime
                    r.active[tuple(sorted(alert.labels.items()))] = alert
                    restored += 1
        if restored:
            log.info("alert state restored", extra={"alerts": restored, "downtime_s": downtime})
        return restored

    # -- API views ----------------------------------------------------------------------

    def alerts_api(self) -> dict[str, Any]:
        """`data` of Prometheus' GET /api/v1/alerts."""
        return {
            "alerts": [
                _alert_json(a, r)
                for g in self._groups
                for r in g.alerting_rules()
                for a in r.active_alerts()
            ]
        }

    def rules_api(self) -> dict[str, Any]:
        """`data` of Prometheus' GET /api/v1/rules."""
        out = []
        for g in self._groups:
            rules: list[dict[str, Any]] = []
            for r in g.rules:
                common = {
                    "name": r.name,
                    "query": r.expr_text,
                    "health": r.health,
                    "evaluationTime": r.evaluation_time,
                    "lastEvaluation": rfc3339(r.last_evaluation),
                }
                if r.last_error:
                    common["lastError"] = r.last_error
                if isinstance(r, AlertingRule):
                    rules.append(
                        {
                            "state": r.state(),
                            **common,
                            "duration": r.hold,
                            "keepFiringFor": r.keep_firing_for,
                            "labels": {k: t.text for k, t in r.labels.items()},
                            "annotations": {k: t.text for k, t in r.annotations.items()},
                            "alerts": [_alert_json(a, r) for a in r.active_alerts()],
                            "type": "alerting",
                        }
                    )
                else:
                    recording = {**common, "type": "recording"}
                    if r.labels:  # `labels,omitempty` in Prometheus' recording rules
                        recording["labels"] = dict(r.labels)
                    rules.append(recording)
            out.append(
                {
                    "name": g.name,
                    "file": g.file,
                    "rules": rules,
                    "interval": self.interval_of(g),
                    "limit": g.limit,
                    "evaluationTime": g.evaluation_time,
                    "lastEvaluation": rfc3339(g.last_evaluation),
                }
            )
        return {"groups": out}


def _alert_json(a: Any, rule: AlertingRule) -> dict[str, Any]:
    out: dict[str, Any] = {
        "labels": dict(a.labels),
        "annotations": dict(a.annotations),
        "state": a.state,
        "activeAt": rfc3339(a.active_at),
        "value": format_value(a.value),
    }
    if a.keep_firing_since is not None:
        out["keepFiringSince"] = rfc3339(a.keep_firing_since)
    return out


def _jsonable(identity: tuple[Any, ...]) -> Any:
    return json.loads(json.dumps(identity))


def _alert_state(a: ActiveAlert) -> dict[str, Any]:
    return {
        "labels": a.labels,
        "annotations": a.annotations,
        "state": a.state,
        "value": a.value if math.isfinite(a.value) else str(a.value),
        "active_at": a.active_at,
        "fired_at": a.fired_at,
        "resolved_at": a.resolved_at,
        "keep_firing_since": a.keep_firing_since,
    }


def _alert_from_state(e: dict[str, Any]) -> ActiveAlert:
    state = e["state"]
    if state not in ("pending", "firing", "inactive"):
        raise ValueError(state)
    return ActiveAlert(
        labels={str(k): str(v) for k, v in e["labels"].items()},
        annotations={str(k): str(v) for k, v in e["annotations"].items()},
        state=state,
        value=float(e["value"]),
        active_at=float(e["active_at"]),
        fired_at=None if e["fired_at"] is None else float(e["fired_at"]),
        resolved_at=None if e["resolved_at"] is None else float(e["resolved_at"]),
        keep_firing_since=None if e["keep_firing_since"] is None else float(e["keep_firing_since"]),
    )


def group_label(group: RuleGroup) -> str:
    """The `rule_group` label value, as Prometheus spells it: `file;name`."""
    return f"{group.file};{group.name}"


def rfc3339(ts: float | None) -> str:
    """Unix seconds as Go's JSON time (RFC 3339 with trimmed nanoseconds); None is Go's zero."""
    if ts is None or not math.isfinite(ts):
        return "0001-01-01T00:00:00Z"
    ns = round(ts * 1e9)
    sec, frac = divmod(ns, 1_000_000_000)
    base = datetime.datetime.fromtimestamp(sec, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if frac:
        base += "." + f"{frac:09d}".rstrip("0")
    return base + "Z"


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
    """History retention the rules need: their longest lookback plus a margin."""
    from agent.alerting.promql.engine import lookback

    longest = 300.0
    for g in groups:
        for r in g.rules:
            longest = max(longest, lookback(r.expr))
        if g.interval:
            longest = max(longest, 2 * g.interval)
    return longest + 2 * evaluation_interval
