"""Alerts across restarts: every rule's pending, firing and recently resolved alerts, so a
restart neither forgets a `for` in progress nor fires anew.

`alerts_state` captures them as JSON and `restore_alerts_state` gives them back; the live
agent keeps them as the `alerts` section of its checkpoint (`agent/state.py`), the same
instant as the metric values they were evaluated from. `save_alerts`/`restore_alerts`
write and read them as a file of their own (`alerts.json`, as earlier versions did: the
agent reads that file once, to migrate it)."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from agent.alerting.alerting_rule import ActiveAlert
from agent.alerting.group import RuleGroup
from agent.alerting.promql.engine import lookback
from agent.alerting.recording_rule import RecordingRule
from agent.support.atomicfile import write_atomic

log = logging.getLogger("chatwatch.rules")

RESTORE_GRACE = 600.0
"""Longest time after a restart during which restored alerts are not resolved."""


def alerts_state(groups: Sequence[RuleGroup], now: float) -> dict[str, Any]:
    """Every rule's alerts (pending, firing, recently resolved) as JSON, copied: it is
    serialized off the event loop while the rules evaluate on."""
    rules = []
    for g in groups:
        for r in g.alerting_rules():
            if r.active:
                rules.append(
                    {
                        "file": g.file,
                        "group": g.name,
                        "identity": _jsonable(r.identity),
                        "alerts": [_alert_state(a) for a in r.active.values()],
                    }
                )
    return {"version": 1, "saved_at": now, "rules": rules}


def save_alerts(groups: Sequence[RuleGroup], path: Path, now: float) -> None:
    """Write `alerts_state` to `path`, atomically."""
    write_atomic(path, json.dumps(alerts_state(groups, now)).encode())


def restore_alerts(groups: Sequence[RuleGroup], path: Path, now: float) -> int:
    """`restore_alerts_state` from a file `save_alerts` wrote; a missing or unreadable
    file restores nothing."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return 0
    except (OSError, ValueError) as exc:
        log.warning("alert state not restored", extra={"path": str(path), "error": str(exc)})
        return 0
    return restore_alerts_state(groups, data, now, str(path))


def restore_alerts_state(
    groups: Sequence[RuleGroup], data: Any, now: float, where: str = "checkpoint"
) -> int:
    """Give rules whose identity is unchanged the alerts `alerts_state` captured.

    As in Prometheus, the time the agent was down does not count toward `for`: a
    pending alert's start moves forward by the downtime. Firing alerts keep their
    start time, so notification sees the same alert, not a new one. The history
    starts empty, so a restored alert missing from the result is kept rather than
    resolved until the history has refilled: every range window the expression reads
    (directly or through recording rules) is covered and every instant selector has
    a sample again, or at the latest after its lookback (at most RESTORE_GRACE). Returns the
    number of alerts restored; malformed state restores nothing."""
    try:
        saved_at = float(data["saved_at"])
        saved = {
            (e["file"], e["group"], json.dumps(e["identity"])): e["alerts"] for e in data["rules"]
        }
    except (ValueError, KeyError, TypeError) as exc:
        log.warning("alert state not restored", extra={"path": where, "error": str(exc)})
        return 0
    downtime = max(0.0, now - saved_at)
    # a recorded series is only as complete as the windows its rule reads
    recorded_range = max(
        (r.expr.range_s for g in groups for r in g.rules if isinstance(r, RecordingRule)),
        default=0.0,
    )
    restored = 0
    for g in groups:
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


def _jsonable(identity: tuple[Any, ...]) -> Any:
    return json.loads(json.dumps(identity))


def _alert_state(a: ActiveAlert) -> dict[str, Any]:
    return {
        "labels": dict(a.labels),
        "annotations": dict(a.annotations),
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
