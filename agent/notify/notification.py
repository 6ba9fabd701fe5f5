"""What a receiver is handed: one notification for one alert group, and its vocabulary.

`fingerprint` and `label_set_string` are byte-for-byte Alertmanager's (prometheus/common
model.LabelSet.Fingerprint and String), so group keys and fingerprints in our webhook
payloads match what an Alertmanager would have sent for the same alerts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from agent.support.goformat import go_quote, rfc3339

_FNV_OFFSET = 14695981039346656037
_FNV_PRIME = 1099511628211
_MASK = (1 << 64) - 1
_SEP = 0xFF
ZERO_TIME = "0001-01-01T00:00:00Z"
"""Go's zero time.Time, which Alertmanager shows as endsAt of a firing alert."""


def _fnv_add(h: int, data: bytes) -> int:
    for b in data:
        h = ((h ^ b) * _FNV_PRIME) & _MASK
    return h


def fingerprint_int(labels: dict[str, str]) -> int:
    """FNV-1a 64 over `name 0xff value 0xff` for labels sorted by name."""
    h = _FNV_OFFSET
    for name in sorted(labels):
        h = _fnv_add(h, name.encode())
        h = ((h ^ _SEP) * _FNV_PRIME) & _MASK
        h = _fnv_add(h, labels[name].encode())
        h = ((h ^ _SEP) * _FNV_PRIME) & _MASK
    return h


_FP_CACHE: dict[frozenset[tuple[str, str]], str] = {}
_FP_CACHE_MAX = 50_000


def fingerprint(labels: dict[str, str]) -> str:
    """Alertmanager's fingerprint string: 16 lowercase hex digits.

    Cached: the rule engine re-sends the same alerts every second, and hashing byte by
    byte in Python costs ~9 µs per alert.
    """
    key = frozenset(labels.items())
    fp = _FP_CACHE.get(key)
    if fp is None:
        if len(_FP_CACHE) >= _FP_CACHE_MAX:
            _FP_CACHE.clear()
        fp = _FP_CACHE[key] = f"{fingerprint_int(labels):016x}"
    return fp


def label_set_string(labels: dict[str, str]) -> str:
    """`{alertname="X", severity="page"}`: model.LabelSet.String() (sorted, Go-quoted)."""
    return "{" + ", ".join(f"{k}={go_quote(labels[k])}" for k in sorted(labels)) + "}"


@dataclass(slots=True)
class NotifiedAlert:
    """One alert as it appears in a notification (webhook `alerts[]`)."""

    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: float
    ends_at: float | None
    """None while firing."""
    generator_url: str
    fingerprint: str

    @property
    def status(self) -> str:
        return "firing" if self.ends_at is None else "resolved"

    @property
    def name(self) -> str:
        return self.labels.get("alertname", "")


@dataclass(slots=True)
class Notification:
    """One message for one alert group and one integration of a receiver."""

    receiver: str
    integration: str
    """`<receiver>/<kind>[<index>]`, e.g. `team-slack/slack[0]`; names its queue."""
    group_key: str
    group_labels: dict[str, str]
    alerts: list[NotifiedAlert]
    external_url: str
    created_at: float
    """When the dispatcher decided to send it; latency is measured from here."""
    group_id: str = ""
    """The dispatcher's aggregation group (`Group.id`): where its delivery is logged."""
    seq: int = 0
    attempts: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def firing(self) -> list[NotifiedAlert]:
        return [a for a in self.alerts if a.ends_at is None]

    @property
    def resolved(self) -> list[NotifiedAlert]:
        return [a for a in self.alerts if a.ends_at is not None]

    @property
    def status(self) -> str:
        return "firing" if any(a.ends_at is None for a in self.alerts) else "resolved"

    @property
    def common_labels(self) -> dict[str, str]:
        return _common([a.labels for a in self.alerts])

    @property
    def common_annotations(self) -> dict[str, str]:
        return _common([a.annotations for a in self.alerts])

    def title(self) -> str:
        """Alertmanager's default title, `[FIRING:2] HighErrorRate (critical api)`.

        The group label values, then the other common label values in brackets. Without
        group labels (`group_by: []`) the common alertname leads instead of a blank.
        """
        status = f"FIRING:{len(self.firing)}" if self.status == "firing" else "RESOLVED"
        common = self.common_labels
        head_labels = dict(self.group_labels)
        if not head_labels and "alertname" in common:
            head_labels = {"alertname": common["alertname"]}
        head = " ".join(head_labels[k] for k in sorted(head_labels))
        extra = {k: v for k, v in common.items() if k not in head_labels}
        rest = f"({' '.join(extra[k] for k in sorted(extra))})" if extra else ""
        return " ".join(p for p in (f"[{status}]", head, rest) if p)

    def template_data(self, max_alerts: int = 0) -> dict[str, Any]:
        """Alertmanager's webhook v4 body (also the data every integration builds from)."""
        alerts = self.alerts
        truncated = 0
        if max_alerts and len(alerts) > max_alerts:
            truncated = len(alerts) - max_alerts
            alerts = alerts[:max_alerts]
        return {
            "receiver": self.receiver,
            "status": self.status,
            "alerts": [
                {
                    "status": a.status,
                    "labels": a.labels,
                    "annotations": a.annotations,
                    "startsAt": rfc3339(a.starts_at),
                    "endsAt": rfc3339(a.ends_at),
                    "generatorURL": a.generator_url,
                    "fingerprint": a.fingerprint,
                }
                for a in alerts
            ],
            "groupLabels": self.group_labels,
            "commonLabels": self.common_labels,
            "commonAnnotations": self.common_annotations,
            "externalURL": self.external_url,
            "version": "4",
            "groupKey": self.group_key,
            "truncatedAlerts": truncated,
        }

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Notification:
        data = dict(data)
        data["alerts"] = [NotifiedAlert(**a) for a in data["alerts"]]
        return cls(**data)


def _common(maps: list[dict[str, str]]) -> dict[str, str]:
    if not maps:
        return {}
    common = dict(maps[0])
    for m in maps[1:]:
        for k in list(common):
            if m.get(k) != common[k]:
                del common[k]
    return common
