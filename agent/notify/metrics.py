"""chatwatch's own notification metrics (Alertmanager's alertmanager_notifications_*)."""

from __future__ import annotations

from agent.support.selfmetrics import SelfMetrics

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600)


class NotifyMetrics:
    def __init__(self, stats: SelfMetrics) -> None:
        self.attempts = stats.counter(
            "chatwatch_notifications_total",
            "Notification attempts (each try, retries included) by receiver and integration.",
            ("receiver", "integration"),
        )
        self.failed = stats.counter(
            "chatwatch_notifications_failed_total",
            "Failed notification attempts by receiver, integration and reason.",
            ("receiver", "integration", "reason"),
        )
        self.latency = stats.histogram(
            "chatwatch_notification_latency_seconds",
            "From the decision to notify to the receiver accepting it (retries included).",
            ("receiver", "integration"),
            LATENCY_BUCKETS,
        )
        self.suppressed = stats.counter(
            "chatwatch_notifications_suppressed_total",
            "Alerts left out of a notification because they were muted, by reason "
            "(inhibition, silence), counted at every flush of their group.",
            ("reason",),
        )
        for reason in ("inhibition", "silence"):  # shown from the start, so rate() works
            self.suppressed.inc((reason,), 0.0)
        self.template_errors = stats.counter(
            "chatwatch_notification_template_errors_total",
            "Notification template fields that failed to render at send time (the message "
            "was sent with an error line), by receiver and integration.",
            ("receiver", "integration"),
        )
        self.silences = stats.gauge(
            "chatwatch_silences", "Silences by state: active, pending, expired.", ("state",)
        )
        self.queue_length = stats.gauge(
            "chatwatch_notification_queue_length",
            "Notifications waiting for delivery, by receiver.",
            ("receiver",),
        )
