"""Routing, aggregation groups, timers, dedup and cooldown: which notifications go out when.

Alertmanager's dispatch/dispatch.go and notify's DedupStage in one pure object. It takes
alerts and an explicit `now`, and returns `Notification`s; it never reads the clock,
sleeps or does I/O, so every timing rule is tested with plain numbers.

- Each alert is routed (route.py); per matching route it joins the aggregation group of
  its `group_by` labels. A new group flushes after `group_wait`, then every
  `group_interval`; an alert that started more than `group_wait` ago flushes a group that
  has not flushed yet at once (aggrGroup.insert).
- On a flush, each integration of the receiver gets a notification when something changed
  since the last one it got (a new firing alert, or a resolve when `send_resolved`), or
  when more than `repeat_interval` has passed since that one was delivered (Alertmanager's
  needsUpdate, from the notification log entry written after delivery; `delivered`). What
  was decided is recorded at once, so a receiver that is down is not re-sent the same
  change on every tick: its queue owns delivery from then on. Firing and resolved alerts
  are both recorded, with or without `send_resolved`, which only decides what is sent.
- `cooldown` (chatwatch): after a firing notification for an alert, the same alert (same
  labels) that resolves and fires again is held back (neither firing nor resolved is sent)
  until the cooldown has passed; it then goes out on the next group flush if still firing.
- A firing alert the rule engine stops reporting resolves after `resolve_timeout`, as
  Alertmanager resolves alerts whose endsAt passed. Resolved alerts leave the group after
  the flush that saw them; a group with no alerts left is removed. A resolved alert the
  rule engine reports again (it does for 15 min, as Prometheus re-sends them) goes back
  into its group and is in the group's next notification, as in Alertmanager.
- Time intervals (timeinterval.py): a group whose route is muted by time (in one of its
  `mute_time_intervals`, or outside all its `active_time_intervals`) is not flushed at
  all; its next flush moves to the next moment that may end the interval (at most an hour
  ahead), so what it holds goes out as soon as the interval ends, not up to a
  group_interval later as in Alertmanager. Unlike Alertmanager, resolved alerts stay in a
  held group, so a resolve inside the interval is sent after it to whoever was told.
- Muting (mute.py: inhibition, then silences) runs on each flush before dedup, as
  Alertmanager's MuteStage does: a muted alert is sent neither firing nor resolved. It is
  also taken out of what each integration was told, so that when it stops being muted and
  still fires it counts as new and is sent on that group's next flush, which
  `release_unmuted` brings forward to "now" (Alertmanager instead keeps it in its log
  and waits for repeat_interval when the receiver had been told before the silence).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agent.alerting.alert import Alert
from agent.notify.mute import MuteStage
from agent.notify.notification import (
    Notification,
    NotifiedAlert,
    fingerprint,
    label_set_string,
)
from agent.notify.route import Route


@dataclass(frozen=True, slots=True)
class IntegrationSpec:
    """What the dispatcher needs to know of an integration of a receiver."""

    name: str
    send_resolved: bool


@dataclass(slots=True)
class StoredAlert:
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: float
    ends_at: float
    """Resolved once `ends_at <= now`; firing alerts carry last report + resolve_timeout."""
    resolved_explicitly: bool
    generator_url: str
    cooldown: float
    fingerprint: str
    updated_at: float = 0.0
    """When the rule engine last reported it (Alertmanager's updatedAt)."""

    def resolved(self, now: float) -> bool:
        return self.ends_at <= now

    def notified(self, now: float) -> NotifiedAlert:
        return NotifiedAlert(
            labels=self.labels,
            annotations=self.annotations,
            starts_at=self.starts_at,
            ends_at=self.ends_at if self.resolved(now) else None,
            generator_url=self.generator_url,
            fingerprint=self.fingerprint,
        )


@dataclass(slots=True)
class Group:
    id: str
    """Route id + group labels: unique per aggregation group."""
    key: str
    """Alertmanager's groupKey (`{}/{severity="page"}:{alertname="X"}`), shown to receivers."""
    route_id: str
    receiver: str
    labels: dict[str, str]
    next_flush: float
    alerts: dict[str, StoredAlert] = field(default_factory=dict)
    muted: set[str] = field(default_factory=set)
    """Fingerprints the mute stage left out of the last flush."""
    held: bool = False
    """Its route was muted by time at the last flush: `next_flush` is where that may end."""
    flushed: bool = False
    """Its timer went off at least once (Alertmanager's hasFlushed): from then on new
    alerts wait for the next group_interval tick, however old they are."""


@dataclass(slots=True)
class LogEntry:
    """What an integration was last told about a group (Alertmanager's nflog entry)."""

    firing: set[str]
    resolved: set[str]
    ts: float
    """When it was logged, which repeat_interval counts from. Alertmanager logs after
    the receiver accepted the notification, so `delivered` moves this to the delivery;
    until then (and for an integration that had nothing to send) it is the flush."""
    decided_at: float = 0.0
    """The flush that wrote it: `created_at` of the notification whose delivery counts."""


def needs_update(
    entry: LogEntry | None,
    firing: set[str],
    resolved: set[str],
    send_resolved: bool,
    repeat: float,
    now: float,
) -> bool:
    """Alertmanager's DedupStage.needsUpdate."""
    if entry is None:
        return bool(firing)
    if not firing <= entry.firing:
        return True
    if not firing:
        # Everything resolved: tell whoever was told it fires (also clears the log).
        return bool(entry.firing)
    if send_resolved and not resolved <= entry.resolved:
        return True
    # Strictly before, from the logged (delivered) notification: with repeat_interval
    # equal to group_interval, a reminder goes out every second tick (alertmanager#676).
    return entry.ts < now - repeat


class Dispatcher:
    def __init__(
        self,
        route: Route | None,
        integrations: dict[str, list[IntegrationSpec]],
        external_url: str,
        resolve_timeout: float,
        mute: MuteStage | None = None,
    ) -> None:
        self.route = route
        self.routes = {r.id: r for r in route.walk()} if route else {}
        self.integrations = integrations
        self.external_url = external_url
        self.resolve_timeout = resolve_timeout
        self.groups: dict[str, Group] = {}
        self.log: dict[tuple[str, str], LogEntry] = {}
        self.cooldown_until: dict[tuple[str, str], float] = {}
        self.mute = mute
        self.suppressed: dict[str, int] = {}
        """Alerts muted per flush, by reason, since `take_suppressed` last ran."""

    # -- input ---------------------------------------------------------------------------

    def ingest(self, alerts: list[Alert], now: float) -> bool:
        """Take the rule engine's alerts. True when something beyond a refresh changed
        (a new alert or a resolve): worth saving the state file soon."""
        if self.route is None:
            return False
        changed = False
        for alert in alerts:
            fp = fingerprint(alert.labels)
            for route in self.route.match(alert.labels):
                changed |= self._insert(route, alert, fp, now)
        return changed

    def _insert(self, route: Route, alert: Alert, fp: str, now: float) -> bool:
        labels = route.group_labels(alert.labels)
        gid = f"{route.id}:{label_set_string(labels)}"
        group = self.groups.get(gid)
        # Alertmanager's aggrGroup.insert: an alert that started more than group_wait ago
        # flushes a group that has not flushed yet at once.
        overdue = alert.starts_at + route.group_wait < now
        created = group is None
        if group is None:
            # A resolved alert with no group to go back to (the rule engine re-reports
            # resolved alerts for 15 min) would make a group whose flush sends nothing
            # (needsUpdate: nothing fires) unless an integration was told it fires.
            if alert.ends_at is not None and not self._told_firing(gid, route.receiver):
                return False
            group = Group(
                gid,
                f"{route.key}:{label_set_string(labels)}",
                route.id,
                route.receiver,
                labels,
                next_flush=now if overdue else now + route.group_wait,
            )
            self.groups[gid] = group
        elif overdue and not group.flushed:
            group.next_flush = min(group.next_flush, now)
        old = group.alerts.get(fp)
        starts_at = alert.starts_at
        if old is not None and not old.resolved(now) and alert.ends_at is None:
            starts_at = min(old.starts_at, starts_at)
        new = StoredAlert(
            labels=dict(alert.labels),
            annotations=dict(alert.annotations),
            starts_at=starts_at,
            ends_at=alert.ends_at if alert.ends_at is not None else now + self.resolve_timeout,
            resolved_explicitly=alert.ends_at is not None,
            generator_url=alert.generator_url,
            cooldown=alert.cooldown,
            fingerprint=fp,
            updated_at=now,
        )
        # A resolved alert goes (back) into its group, as each re-send does in
        # Alertmanager: the next notification of the group shows it as resolved.
        group.alerts[fp] = new
        # Annotations (often `{{ $value }}`) and end times change on every evaluation
        # and are re-reported anyway, and so are resolved alerts for 15 min: only a new
        # group, a new firing alert or a resolve is worth a save.
        if old is None:
            return created or not new.resolved(now)
        return old.resolved(now) != new.resolved(now)

    def _told_firing(self, gid: str, receiver: str) -> bool:
        """Some integration of `receiver` was last told of firing alerts in group `gid`."""
        return any(
            (entry := self.log.get((gid, spec.name))) is not None and entry.firing
            for spec in self.integrations.get(receiver, [])
        )

    # -- timers --------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        return min((g.next_flush for g in self.groups.values()), default=None)

    def flush_due(self, now: float) -> list[Notification]:
        out: list[Notification] = []
        for group in [g for g in self.groups.values() if g.next_flush <= now]:
            route = self.routes.get(group.route_id)
            if route is None:
                del self.groups[group.id]
                continue
            group.flushed = True
            group.held = route.time_muted(now)
            if group.held:
                # Held, alerts and resolves alike, without touching the notification
                # log; flushed again the moment the route's time intervals may allow it.
                group.next_flush = route.time_boundary(now)
                continue
            out.extend(self._flush(group, route, now))
            group.next_flush = now + route.group_interval
            if not group.alerts:
                del self.groups[group.id]
                for spec in self.integrations.get(group.receiver, []):
                    entry = self.log.get((group.id, spec.name))
                    if entry is not None and not entry.firing:
                        del self.log[(group.id, spec.name)]
        self._expire_cooldowns(now)
        return out

    def release_unmuted(self, now: float) -> None:
        """Flush now every group with a firing alert that was muted at its last flush and
        is no longer (its silence ended or was expired): "at once", not a group_interval
        later. Cheap: only groups that hold muted alerts are looked at."""
        if self.mute is None:
            return
        for group in self.groups.values():
            if group.next_flush <= now or not group.muted:
                continue
            for fp in group.muted:
                alert = group.alerts.get(fp)
                if (
                    alert is not None
                    and not alert.resolved(now)
                    and self.mute.reason(alert.labels, now) is None
                ):
                    group.next_flush = now
                    break

    def take_suppressed(self) -> dict[str, int]:
        """Muted alerts counted since the last call, by reason; resets the count."""
        out, self.suppressed = self.suppressed, {}
        return out

    def _muted(self, group: Group, specs: list[IntegrationSpec], now: float) -> set[str]:
        """The alerts the mute stage leaves out of this flush. They are also forgotten
        from what each integration was told, so they are new once unmuted."""
        muted: set[str] = set()
        if self.mute is not None:
            for fp, alert in group.alerts.items():
                reason = self.mute.reason(alert.labels, now)
                if reason is not None:
                    muted.add(fp)
                    self.suppressed[reason] = self.suppressed.get(reason, 0) + 1
        if muted:
            for spec in specs:
                entry = self.log.get((group.id, spec.name))
                if entry is not None:
                    entry.firing -= muted
                    entry.resolved -= muted
        group.muted = muted
        return muted

    def _flush(self, group: Group, route: Route, now: float) -> list[Notification]:
        specs = self.integrations.get(group.receiver, [])
        muted = self._muted(group, specs, now)
        told: set[str] = set()
        for spec in specs:
            entry = self.log.get((group.id, spec.name))
            if entry is not None:
                told |= entry.firing
        held = muted | {
            fp
            for fp in group.alerts
            if fp not in told and self.cooldown_until.get((group.id, fp), 0.0) > now
        }
        firing = {fp for fp, a in group.alerts.items() if fp not in held and not a.resolved(now)}
        resolved = {fp for fp, a in group.alerts.items() if fp not in held and a.resolved(now)}
        ordered = sorted(group.alerts.values(), key=_sort_key)
        out: list[Notification] = []
        for spec in specs:
            key = (group.id, spec.name)
            if not needs_update(
                self.log.get(key), firing, resolved, spec.send_resolved, route.repeat_interval, now
            ):
                continue
            self.log[key] = LogEntry(set(firing), set(resolved), now, decided_at=now)
            wanted = firing | resolved if spec.send_resolved else firing
            alerts = [a.notified(now) for a in ordered if a.fingerprint in wanted]
            if not alerts:
                continue
            out.append(
                Notification(
                    receiver=group.receiver,
                    integration=spec.name,
                    group_key=group.key,
                    group_labels=dict(group.labels),
                    alerts=alerts,
                    external_url=self.external_url,
                    created_at=now,
                    group_id=group.id,
                )
            )
        if any(n.firing for n in out):
            for fp in firing:
                cooldown = group.alerts[fp].cooldown
                if cooldown > 0:
                    self.cooldown_until[(group.id, fp)] = now + cooldown
        # Resolved alerts leave the group (aggrGroup.flush deletes those resolved and not
        # updated since the flush; a flush here is one step, so that is all of them). A
        # re-report after this puts one back in, as a re-send does in Alertmanager.
        for fp in [fp for fp, a in group.alerts.items() if a.resolved(now)]:
            del group.alerts[fp]
        return out

    def delivered(self, notification: Notification, at: float) -> None:
        """The receiver accepted `notification` at `at`: log it then, as Alertmanager's
        SetNotifiesStage does after a successful send, so that repeat_interval counts
        from the delivery. A notification a later flush has superseded changes nothing."""
        entry = self.log.get((notification.group_id, notification.integration))
        if entry is not None and entry.decided_at == notification.created_at:
            entry.ts = max(entry.ts, at)

    def _expire_cooldowns(self, now: float) -> None:
        for key in [k for k, until in self.cooldown_until.items() if until <= now]:
            del self.cooldown_until[key]

    # -- persistence ---------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "groups": [
                {
                    "id": g.id,
                    "key": g.key,
                    "route_id": g.route_id,
                    "receiver": g.receiver,
                    "labels": g.labels,
                    "next_flush": g.next_flush,
                    "alerts": [_alert_json(a) for a in g.alerts.values()],
                    "muted": sorted(g.muted),
                    "held": g.held,
                    "flushed": g.flushed,
                }
                for g in self.groups.values()
            ],
            "log": [
                {
                    "group": gid,
                    "integration": name,
                    "firing": sorted(e.firing),
                    "resolved": sorted(e.resolved),
                    "ts": e.ts,
                    "decided_at": e.decided_at,
                }
                for (gid, name), e in self.log.items()
            ],
            "cooldown": [
                {"group": gid, "fingerprint": fp, "until": until}
                for (gid, fp), until in self.cooldown_until.items()
            ],
        }

    def restore(self, data: dict[str, Any], now: float) -> None:
        """Take over persisted state, routing the stored alerts through the current tree.

        Groups that still exist keep their timers; alerts that now route elsewhere (the
        config changed) join their new groups, keeping their start and end times.
        """
        for e in data.get("log", []):
            ts = float(e["ts"])  # state written before delivery was logged: decided then
            self.log[(e["group"], e["integration"])] = LogEntry(
                set(e["firing"]), set(e["resolved"]), ts, float(e.get("decided_at", ts))
            )
        for c in data.get("cooldown", []):
            self.cooldown_until[(c["group"], c["fingerprint"])] = float(c["until"])
        alerts: list[StoredAlert] = []
        for g in data.get("groups", []):
            for a in g["alerts"]:
                stored = StoredAlert(**a)
                if not stored.resolved_explicitly:
                    # Downtime does not count against resolve_timeout: the restarted rule
                    # engine gets that long to report the alert again (or its resolve).
                    stored.ends_at = max(stored.ends_at, now + self.resolve_timeout)
                alerts.append(stored)
            route = self.routes.get(g["route_id"])
            if route is None or g["id"] in self.groups:
                continue
            self.groups[g["id"]] = Group(
                id=g["id"],
                key=g["key"],
                route_id=g["route_id"],
                receiver=route.receiver,
                labels=g["labels"],
                next_flush=float(g["next_flush"]),
                muted=set(g.get("muted", [])),
                flushed=bool(g.get("flushed", True)),
            )
            if g.get("held") and not route.time_muted(now):
                # Held by time intervals the new config no longer has (or not now).
                self.groups[g["id"]].next_flush = now
        self.adopt(alerts, now)
        for gid in [gid for gid, g in self.groups.items() if not g.alerts]:
            del self.groups[gid]

    def adopt(self, alerts: list[StoredAlert], now: float) -> None:
        """Route stored alerts (again), keeping their start and end times."""
        if self.route is None:
            return
        for a in alerts:
            for route in self.route.match(a.labels):
                gid = f"{route.id}:{label_set_string(route.group_labels(a.labels))}"
                group = self.groups.get(gid)
                if group is not None:
                    group.alerts[a.fingerprint] = a
                    continue
                alert = Alert(
                    labels=a.labels,
                    annotations=a.annotations,
                    starts_at=a.starts_at,
                    ends_at=a.ends_at if a.resolved_explicitly or a.resolved(now) else None,
                    generator_url=a.generator_url,
                    cooldown=a.cooldown,
                )
                self._insert(route, alert, a.fingerprint, now)
                group = self.groups.get(gid)
                if group is not None and a.fingerprint in group.alerts:
                    group.alerts[a.fingerprint].ends_at = a.ends_at

    def stored_alerts(self) -> list[StoredAlert]:
        return [a for g in self.groups.values() for a in g.alerts.values()]


def _alert_json(a: StoredAlert) -> dict[str, Any]:
    return {
        "labels": a.labels,
        "annotations": a.annotations,
        "starts_at": a.starts_at,
        "ends_at": a.ends_at,
        "resolved_explicitly": a.resolved_explicitly,
        "generator_url": a.generator_url,
        "cooldown": a.cooldown,
        "fingerprint": a.fingerprint,
        "updated_at": a.updated_at,
    }


def _sort_key(a: StoredAlert) -> tuple[str, str, list[tuple[str, str]]]:
    """Alertmanager's AlertSlice order: job, then instance, then the whole label set."""
    return (a.labels.get("job", ""), a.labels.get("instance", ""), sorted(a.labels.items()))
