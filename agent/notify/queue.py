"""One delivery queue per integration: in order, one request at a time, retried until done.

A receiver that is down delays its notifications, never drops them: the head is retried
with exponential backoff and jitter (capped at `max_backoff`), or after `Retry-After` when
the receiver sends one, and the rest wait behind it so every group's changes arrive in
order. Only a receiver that rejects a notification as malformed (4xx other than 429)
loses it, with the reason logged and counted, since sending it again cannot help. An
integration that raises (a bug of ours, such as a payload it cannot build) gets
`CRASH_LIMIT` attempts at a notification, which is then dropped as `integration_error`
and logged with its group key: one poison notification must not hold every later one
back for ever. A full queue drops its oldest waiting notification, counted as
`queue_full`. Nothing here ever
blocks the caller: `put` appends and returns.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from collections.abc import Callable

from agent.notify.config import DeliveryConfig
from agent.notify.integration import DeliveryError, Integration
from agent.notify.metrics import NotifyMetrics
from agent.notify.notification import Notification

log = logging.getLogger("chatwatch.notify")

CRASH_LIMIT = 3
"""Attempts at one notification whose integration raised each time before it is dropped."""

MAX_RETRY_AFTER = 900.0
"""A receiver's Retry-After is honoured up to 15 minutes (a bogus `86400` must not mute us)."""


def backoff(
    failures: int, policy: DeliveryConfig, rng: Callable[[], float] = random.random
) -> float:
    """Exponential backoff with jitter: base * 2^(n-1), capped, then scaled into [50%, 100%]."""
    base = min(policy.max_backoff, policy.initial_backoff * 2 ** max(0, failures - 1))
    return base * (0.5 + 0.5 * rng())


class DeliveryQueue:
    def __init__(
        self,
        integration: Integration,
        policy: DeliveryConfig,
        metrics: NotifyMetrics,
        on_change: Callable[[], None],
        on_delivered: Callable[[Notification, float], None] | None = None,
    ) -> None:
        self.integration = integration
        self.policy = policy
        self.metrics = metrics
        self.on_change = on_change
        self.on_delivered = on_delivered
        """Told of each notification the receiver accepted, and when (the notification
        log's timestamp, which repeat_interval counts from)."""
        self.items: deque[Notification] = deque()
        self._ready = asyncio.Event()
        self._not_before = 0.0
        self._failures = 0
        self._crashes = 0
        self.seq = 0

    def put(self, notification: Notification) -> None:
        self.seq += 1
        notification.seq = self.seq
        if len(self.items) >= self.policy.queue_capacity:
            # Drop the oldest that is not being sent right now.
            dropped = self.items[1] if len(self.items) > 1 else self.items[0]
            self.items.remove(dropped)
            self._count_failure("queue_full")
            log.error(
                "notification queue full; dropped the oldest waiting notification",
                extra={"integration": self.integration.name, "group_key": dropped.group_key},
            )
        self.items.append(notification)
        self._ready.set()
        self.on_change()

    def restore(self, items: list[Notification]) -> None:
        for n in items:
            self.seq = max(self.seq, n.seq)
            self.items.append(n)
        if self.items:
            self._ready.set()

    async def run(self) -> None:
        while True:
            if not self.items:
                self._ready.clear()
                await self._ready.wait()
                continue
            delay = self._not_before - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await self._attempt(self.items[0])

    async def _attempt(self, n: Notification) -> None:
        integration = self.integration
        try:
            retry, err = await integration.notify(n)
        except Exception as exc:  # a bug in an integration must not stop the queue
            self._crashes += 1
            log.exception(
                "notification integration crashed",
                extra={"integration": integration.name, "group_key": n.group_key},
            )
            if self._crashes >= CRASH_LIMIT:
                retry, err = (
                    False,
                    DeliveryError(f"{type(exc).__name__}: {exc}", "integration_error"),
                )
            else:
                retry, err = True, DeliveryError(f"internal error: {type(exc).__name__}", "other")
        n.attempts += 1
        self._not_before = time.monotonic() + integration.min_interval
        self.metrics.attempts.inc((integration.receiver, integration.kind))
        if err is None:
            self._failures = 0
            if self.on_delivered is not None:
                self.on_delivered(n, time.time())
            self._pop(n)
            self.metrics.latency.observe(
                (integration.receiver, integration.kind), max(0.0, time.time() - n.created_at)
            )
            log.info(
                "notification delivered",
                extra={
                    "integration": integration.name,
                    "group_key": n.group_key,
                    "status": n.status,
                    "alerts": len(n.alerts),
                    "attempts": n.attempts,
                },
            )
            return
        self._count_failure(err.reason)
        if not retry:
            self._pop(n)
            log.error(
                "notification rejected; not retrying",
                extra={
                    "integration": integration.name,
                    "group_key": n.group_key,
                    "error": str(err),
                },
            )
            return
        self._failures += 1
        if err.retry_after is not None:
            wait = min(err.retry_after, MAX_RETRY_AFTER)
        else:
            wait = backoff(self._failures, self.policy)
        self._not_before = max(self._not_before, time.monotonic() + wait)
        log.warning(
            "notification failed; will retry",
            extra={
                "integration": integration.name,
                "group_key": n.group_key,
                "error": str(err),
                "reason": err.reason,
                "retry_in_seconds": round(wait, 3),
                "attempts": n.attempts,
            },
        )

    def _pop(self, n: Notification) -> None:
        self._crashes = 0
        if self.items and self.items[0] is n:
            self.items.popleft()
        self.on_change()

    def _count_failure(self, reason: str) -> None:
        self.metrics.failed.inc((self.integration.receiver, self.integration.kind, reason))
