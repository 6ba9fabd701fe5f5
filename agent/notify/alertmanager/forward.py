"""Which alerts to (re-)send to Alertmanager, as Prometheus' rules/alerting.go decides it.

Pure: takes the rule engine's alerts and `now`. A firing alert is sent when new and then
every `resend_delay`, with `endsAt = now + 4 * resend_delay` so Alertmanager resolves it
by itself if chatwatch goes away. A resolved alert is sent at once and re-sent every
`resend_delay` for 15 minutes (Prometheus' resolvedRetention), so an Alertmanager that
missed the first one still learns of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agent.alerting.alert import Alert
from agent.notify.notification import fingerprint, rfc3339

RESOLVED_RETENTION = 15 * 60.0


@dataclass(slots=True)
class _Tracked:
    alert: Alert
    last_sent: float | None = None


class Forwarder:
    def __init__(self, resend_delay: float) -> None:
        self.resend_delay = resend_delay
        self.tracked: dict[str, _Tracked] = {}

    def select(self, alerts: list[Alert], now: float) -> list[Alert]:
        """The alerts to send now (turn each into the API's shape with `postable`)."""
        seen: set[str] = set()
        for alert in alerts:
            fp = fingerprint(alert.labels)
            seen.add(fp)
            t = self.tracked.get(fp)
            if t is None:
                self.tracked[fp] = _Tracked(alert)
            else:
                t.alert = alert
        for fp in list(self.tracked):
            a = self.tracked[fp].alert
            if fp in seen:
                continue
            # Firing alerts the engine stopped reporting expire in Alertmanager by endsAt.
            if a.ends_at is None or now - a.ends_at > RESOLVED_RETENTION:
                del self.tracked[fp]
        out = []
        for t in self.tracked.values():
            if self._needs_sending(t, now):
                t.last_sent = now
                out.append(t.alert)
        return out

    def _needs_sending(self, t: _Tracked, now: float) -> bool:
        if t.last_sent is None:
            return True
        if t.alert.ends_at is not None and t.alert.ends_at > t.last_sent:
            return True
        return t.last_sent + self.resend_delay <= now

    def postable(self, alert: Alert, now: float) -> dict[str, Any]:
        ends_at = alert.ends_at if alert.ends_at is not None else now + 4 * self.resend_delay
        out: dict[str, Any] = {
            "labels": alert.labels,
            "annotations": alert.annotations,
            "startsAt": rfc3339(alert.starts_at),
            "endsAt": rfc3339(ends_at),
        }
        if alert.generator_url:
            out["generatorURL"] = alert.generator_url
        return out
