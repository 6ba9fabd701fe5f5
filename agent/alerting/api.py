"""Rules and alerts as Prometheus' HTTP API shows them (`data` of /api/v1/rules, /alerts)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from agent.alerting.alerting_rule import AlertingRule
from agent.alerting.group import RuleGroup
from agent.support.goformat import format_float, rfc3339


def alerts_api(groups: Sequence[RuleGroup]) -> dict[str, Any]:
    """`data` of Prometheus' GET /api/v1/alerts."""
    return {
        "alerts": [
            _alert_json(a, r) for g in groups for r in g.alerting_rules() for a in r.active_alerts()
        ]
    }


def rules_api(
    groups: Sequence[RuleGroup], interval_of: Callable[[RuleGroup], float]
) -> dict[str, Any]:
    """`data` of Prometheus' GET /api/v1/rules."""
    out = []
    for g in groups:
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
                "interval": interval_of(g),
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
        "value": format_float(a.value),
    }
    if a.keep_firing_since is not None:
        out["keepFiringSince"] = rfc3339(a.keep_firing_since)
    return out
