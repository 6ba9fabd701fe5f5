"""Console receiver: each notification as a log record (for `make run`, debugging).

With `--log-format text` the record prints as one readable block per notification (status,
alert name, labels, summary, value, since); with `--log-format json` it stays one JSON
line carrying Alertmanager's webhook body, for machines.
"""

from __future__ import annotations

import datetime
import logging
import time

from agent.notify.console.config import ConsoleConfig
from agent.notify.integration import Result
from agent.notify.notification import Notification, NotifiedAlert
from agent.support.duration import format_duration

log = logging.getLogger("chatwatch.notify.console")


class Console:
    kind = "console"

    def __init__(self, receiver: str, index: int, cfg: ConsoleConfig) -> None:
        self.name = f"{receiver}/console[{index}]"
        self.receiver = receiver
        self.send_resolved = cfg.send_resolved
        self.min_interval = 0.0

    async def notify(self, notification: Notification) -> Result:
        data = notification.template_data()
        # `_human` is what text logs print instead of the fields (agent.support.logs)
        extra = {"notification": data, "_human": readable(notification, time.time())}
        log.info(notification.title(), extra=extra)
        return False, None

    async def close(self) -> None:
        return None


def readable(notification: Notification, now: float) -> str:
    """The notification for people: a line per alert, its summary, value and age below.

        FIRING    ChatbotHighErrorRate  severity=critical
                  summary  Chatbot error rate is 12.3%
                  since    14:39:03 UTC (2m ago)
                  graph    http://host:9317/graph?g0.expr=...

    The value is shown when the rule gives it as an annotation named `value`, since a
    notification carries labels and annotations only (as Alertmanager's do)."""
    lines = []
    for a in notification.alerts:
        lines.append(_alert_lines(a, now))
    return "\n".join(lines)


def _alert_lines(a: NotifiedAlert, now: float) -> str:
    labels = "  ".join(f"{k}={v}" for k, v in sorted(a.labels.items()) if k != "alertname")
    head = f"  {a.status.upper():<9} {a.name}" + (f"  {labels}" if labels else "")
    rows: list[tuple[str, str]] = []
    summary = a.annotations.get("summary") or a.annotations.get("description")
    if summary:
        rows.append(("summary", summary))
    if "value" in a.annotations:
        rows.append(("value", a.annotations["value"]))
    if a.ends_at is None:
        rows.append(("since", f"{_clock(a.starts_at)} ({_ago(now - a.starts_at)})"))
    else:
        lasted = format_duration(round(max(0.0, a.ends_at - a.starts_at)))
        rows.append(("resolved", f"{_clock(a.ends_at)}, after {lasted}"))
    if a.generator_url:
        rows.append(("graph", a.generator_url))
    return "\n".join([head, *(f"            {k:<9}{v}" for k, v in rows)])


def _clock(ts: float) -> str:
    t = datetime.datetime.fromtimestamp(ts, datetime.UTC)
    return t.strftime("%Y-%m-%d %H:%M:%S UTC")


def _ago(seconds: float) -> str:
    return "just now" if seconds < 1 else f"{format_duration(round(seconds))} ago"
