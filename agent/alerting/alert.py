"""The alert as it leaves the rule engine for notification.

The same boundary Prometheus has with Alertmanager: the rule engine sends every active
alert (and every recently resolved one) on each evaluation, and notification decides what
is new. `ends_at` is None while firing; a resolved alert carries the time it resolved.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class Alert:
    labels: dict[str, str]
    annotations: dict[str, str] = field(default_factory=dict)
    starts_at: float = 0.0
    """Unix seconds when the alert started firing (Prometheus' activeAt + for)."""
    ends_at: float | None = None
    """None while firing; Unix seconds of the resolve otherwise."""
    generator_url: str = ""
    cooldown: float = 0.0
    """chatwatch extension (per rule): min seconds between firing notifications."""

    @property
    def resolved(self) -> bool:
        return self.ends_at is not None

    @property
    def name(self) -> str:
        return self.labels.get("alertname", "")
