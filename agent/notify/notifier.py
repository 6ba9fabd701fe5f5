"""The Notifier: the rule engine's alerts in, notifications out, state kept across restarts.

`send()` is called by the rule engine on every evaluation with every active and recently
resolved alert (as Prometheus sends to Alertmanager). It only updates the dispatcher and
the Alertmanager forwarder (both pure, in memory) and returns. `run()` wakes when a group
is due, hands the notifications to per-integration queues (queue.py), and saves the state
at most once a second while something changed (in the agent: asks for a checkpoint, whose
`notifications` section it is; alone: its own file). `stop()` saves it a last time, with
every undelivered notification.

Silences (silences.py) live here too, in their own file, written at once on every change
made through the API. The dispatcher asks the mute stage (mute.py) on every flush; when a
silence ends, by its `endsAt` (the run loop wakes for it) or expired through the API (which
wakes the loop), `release_unmuted` flushes the groups whose muted alerts still fire, so
they are notified at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from agent.alerting.alert import Alert
from agent.notify.alertmanager.alertmanager import Alertmanager
from agent.notify.alertmanager.forward import Forwarder
from agent.notify.config import AlertingConfig
from agent.notify.console.console import Console
from agent.notify.discord.discord import Discord
from agent.notify.dispatcher import Dispatcher, IntegrationSpec
from agent.notify.email.email import Email
from agent.notify.inhibit import Inhibitor, InhibitRule
from agent.notify.integration import Integration
from agent.notify.metrics import NotifyMetrics
from agent.notify.msteams.msteams import MSTeams
from agent.notify.msteamsv2.msteamsv2 import MSTeamsV2
from agent.notify.mute import MuteStage
from agent.notify.notification import (
    Notification,
    NotifiedAlert,
    fingerprint,
    label_set_string,
)
from agent.notify.pagerduty.pagerduty import Pagerduty
from agent.notify.persistence import FILENAME, StateFile
from agent.notify.queue import DeliveryQueue
from agent.notify.route import build_route
from agent.notify.silences import FILENAME as SILENCES_FILENAME
from agent.notify.silences import Silence, SilenceFile, Silences
from agent.notify.slack.slack import Slack
from agent.notify.telegram.telegram import Telegram
from agent.notify.timeinterval import NamedIntervals
from agent.notify.webhook.webhook import Webhook
from agent.support.atomicfile import write_failures
from agent.support.selfmetrics import SelfMetrics
from agent.support.tasks import cancel_and_wait

log = logging.getLogger("chatwatch.notify")
T = TypeVar("T")

SAVE_INTERVAL = 1.0
"""Seconds between state writes while something changes (an alert, a queue)."""
FORWARD_BATCH = 64
"""Alerts per request to Alertmanager (Prometheus' maxBatchSize)."""
REFRESH_SAVE_INTERVAL = 30.0
"""Seconds between state writes when only firing alerts were re-reported."""
STOP_TIMEOUT = 0.5
"""Seconds `stop()` waits for deliveries in flight to be cancelled before saving state."""
SILENCE_GC_INTERVAL = 900.0
"""Seconds between drops of long-expired silences (Alertmanager's maintenance interval)."""


def build_integrations(cfg: AlertingConfig) -> list[Integration]:
    out: list[Integration] = []
    for r in cfg.receivers:
        out += [Slack(r.name, i, c, cfg.template_set) for i, c in enumerate(r.slack_configs)]
        out += [Webhook(r.name, i, c) for i, c in enumerate(r.webhook_configs)]
        out += [Email(r.name, i, c, cfg.template_set) for i, c in enumerate(r.email_configs)]
        out += [Console(r.name, i, c) for i, c in enumerate(r.console_configs)]
        templates = cfg.template_set
        out += [Pagerduty(r.name, i, c, templates) for i, c in enumerate(r.pagerduty_configs)]
        out += [MSTeams(r.name, i, c, templates) for i, c in enumerate(r.msteams_configs)]
        out += [MSTeamsV2(r.name, i, c, templates) for i, c in enumerate(r.msteamsv2_configs)]
        out += [Discord(r.name, i, c, templates) for i, c in enumerate(r.discord_configs)]
        out += [Telegram(r.name, i, c, templates) for i, c in enumerate(r.telegram_configs)]
    out += [Alertmanager(i, c) for i, c in enumerate(cfg.alertmanagers)]
    return out


class Notifier:
    def __init__(
        self,
        cfg: AlertingConfig,
        state_dir: Path,
        stats: SelfMetrics,
        external_url: str,
        checkpoint: Callable[[], None] | None = None,
    ) -> None:
        self.cfg = cfg
        self.external_url = external_url
        self.metrics = NotifyMetrics(stats)
        self.state = StateFile(Path(state_dir) / FILENAME)
        self._checkpoint = checkpoint
        """In the agent, the notification state is a section of its checkpoint (the same
        instant as the alerts and counts it follows from): `save()` asks for one, and the
        agent calls `restore()`. Without it (tests, tools) it has a file of its own."""
        self.queues: dict[str, DeliveryQueue] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._cleanup: set[asyncio.Task[Any]] = set()
        self._dirty = False
        self._refreshed = False
        self._save_error: str | None = None
        self._state_failures = write_failures(stats)
        self._last_save = 0.0
        self._wake = asyncio.Event()
        self._running = False
        self._stopped = False
        self.silences = Silences()
        self.silence_file = SilenceFile(Path(state_dir) / SILENCES_FILENAME)
        self.silences.restore(self.silence_file.load(), time.time())
        self._next_silence_gc = 0.0
        self.mute = MuteStage(self.silences)
        self.dispatcher = self._dispatcher(cfg)
        cfg.template_set.on_error = self._template_error
        self.forwarder = Forwarder(cfg.resend_delay)
        self._set_integrations(build_integrations(cfg))
        if checkpoint is None:
            self.restore(self.state.load(), time.time())

    # -- the rule engine's side ----------------------------------------------------------

    def send(self, alerts: list[Alert], now: float) -> None:
        """Take the current alerts; never blocks (delivery happens in `run`)."""
        try:
            changed = self.dispatcher.ingest(alerts, now)
            if self.cfg.alertmanagers:
                batch = self.forwarder.select(alerts, now)
                for start in range(0, len(batch), FORWARD_BATCH):
                    chunk = batch[start : start + FORWARD_BATCH]
                    for name, queue in self.queues.items():
                        if isinstance(queue.integration, Alertmanager):
                            queue.put(self._forward_batch(name, chunk, now))
        except Exception:  # a bug here must not stop rule evaluation
            log.exception("notification dispatch failed; alerts of this evaluation skipped")
            return
        if changed:
            self._changed()
        else:
            self._refreshed = True  # saved within REFRESH_SAVE_INTERVAL; no need to wake

    def send_missed(self, alerts: list[Alert], now: float) -> int:
        """Alerts that fired and resolved while the agent was down (found by catch-up):
        one resolved notification per alert group to each integration of its routes with
        `send_resolved`, at once; muted alerts are left out. Nobody was told they fired, so
        the dispatcher (which sends a resolve only to whoever was) never sees them.
        Returns the number of notifications queued."""
        route = self.dispatcher.route
        if route is None or not alerts:
            return 0
        groups: dict[tuple[str, str], list[NotifiedAlert]] = {}
        keys: dict[tuple[str, str], tuple[str, dict[str, str]]] = {}
        for alert in alerts:
            if self.mute.reason(alert.labels, now) is not None:
                continue
            notified = NotifiedAlert(
                labels=dict(alert.labels),
                annotations=dict(alert.annotations),
                starts_at=alert.starts_at,
                ends_at=alert.ends_at,
                generator_url=alert.generator_url,
                fingerprint=fingerprint(alert.labels),
            )
            for r in route.match(alert.labels):
                if r.time_muted(now):
                    continue  # muted by a time interval, as the dispatcher would hold it
                labels = r.group_labels(alert.labels)
                for spec in self.dispatcher.integrations.get(r.receiver, []):
                    if spec.send_resolved:
                        key = (spec.name, f"{r.key}:{label_set_string(labels)}")
                        groups.setdefault(key, []).append(notified)
                        keys[key] = (r.receiver, labels)
        for (integration, group_key), notified_alerts in groups.items():
            queue = self.queues.get(integration)
            if queue is None:
                continue
            receiver, labels = keys[(integration, group_key)]
            queue.put(
                Notification(
                    receiver=receiver,
                    integration=integration,
                    group_key=group_key,
                    group_labels=labels,
                    alerts=notified_alerts,
                    external_url=self.external_url,
                    created_at=now,
                )
            )
        if groups:
            self._changed()
        return len(groups)

    def _forward_batch(self, name: str, alerts: list[Alert], now: float) -> Notification:
        return Notification(
            receiver="alertmanager",
            integration=name,
            group_key="",
            group_labels={},
            alerts=[],
            external_url=self.external_url,
            created_at=now,
            extra={
                "alerts": [self.forwarder.postable(a, now) for a in alerts],
                "firing": [i for i, a in enumerate(alerts) if a.ends_at is None],
                "valid_for": 4 * self.forwarder.resend_delay,
            },
        )

    # -- lifecycle -----------------------------------------------------------------------

    async def run(self) -> None:
        self._running = True
        for name, queue in self.queues.items():
            self._start(name, queue)
        try:
            while not self._stopped:
                try:
                    self._tick(time.time())
                except Exception:  # keep delivering what is queued even if a flush fails
                    log.exception("notification flush failed")
                timeout = SAVE_INTERVAL if self._dirty else REFRESH_SAVE_INTERVAL
                now = time.time()
                for deadline in (self.dispatcher.next_deadline(), self.mute.next_end(now)):
                    if deadline is not None:
                        timeout = min(timeout, max(0.0, deadline - now))
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=timeout)
        finally:
            await self._cancel_tasks()

    def _tick(self, now: float) -> None:
        self.dispatcher.release_unmuted(now)
        notifications = self.dispatcher.flush_due(now)
        self._count_suppressed()
        self._maintain_silences(now)
        for n in notifications:
            target = self.queues.get(n.integration)
            if target is not None:
                target.put(n)
        if notifications:
            self._dirty = True
        self._update_queue_gauge()
        since = time.monotonic() - self._last_save
        if (self._dirty and since >= SAVE_INTERVAL) or (
            self._refreshed and since >= REFRESH_SAVE_INTERVAL
        ):
            self.save()

    async def stop(self) -> None:
        """Stop delivering (an attempt in flight stays queued) and persist everything."""
        self._stopped = True
        self._wake.set()
        await self._cancel_tasks()
        self.save()
        for q in self.queues.values():
            with contextlib.suppress(Exception):
                await q.integration.close()

    def reload(self, cfg: AlertingConfig) -> None:
        """New routes and receivers; alerts, the notification log, queues and silences
        carry over."""
        now = time.time()
        self._count_suppressed()
        state = self.dispatcher.to_json()
        self.cfg = cfg
        self.dispatcher = self._dispatcher(cfg)
        self.dispatcher.restore(state, now)
        cfg.template_set.on_error = self._template_error
        if cfg.resend_delay != self.forwarder.resend_delay:
            self.forwarder.resend_delay = cfg.resend_delay
        self._set_integrations(build_integrations(cfg))
        self._changed()

    # -- internals -----------------------------------------------------------------------

    def _dispatcher(self, cfg: AlertingConfig) -> Dispatcher:
        return build_dispatcher(cfg, self.external_url, self.mute)

    # -- silences (the API's side) -------------------------------------------------------

    def set_silence(self, silence: Silence, now: float) -> str:
        """Create or update a silence and save it before answering; returns its id.

        Raises SilenceError (the user's mistake) or OSError (not saved: nothing changed)."""
        return self._change_silences(lambda: self.silences.set(silence, now))

    def expire_silence(self, silence_id: str, now: float) -> None:
        """Expire a silence and save it; its alerts that still fire are notified at once."""
        self._change_silences(lambda: self.silences.expire(silence_id, now))

    def _change_silences(self, change: Callable[[], T]) -> T:
        before = self.silences.to_json()
        result = change()
        try:
            self.silence_file.save(self.silences)
        except OSError as exc:
            self._state_failures.inc(("silences",))
            log.error(
                "cannot write silences; the change is undone",
                extra={"path": str(self.silence_file.path), "error": exc.strerror},
            )
            self.silences.by_id.clear()
            self.silences.restore(before, time.time())
            raise
        self._update_silence_gauge(time.time())
        self._changed()  # the run loop looks again: an ended silence releases its alerts
        return result

    def _maintain_silences(self, now: float) -> None:
        if now >= self._next_silence_gc:
            self._next_silence_gc = now + SILENCE_GC_INTERVAL
            if self.silences.gc(now):
                try:
                    self.silence_file.save(self.silences)
                except OSError as exc:  # kept in memory; the next change or GC writes it
                    self._state_failures.inc(("silences",))
                    log.error(
                        "cannot write silences",
                        extra={"path": str(self.silence_file.path), "error": exc.strerror},
                    )
        self._update_silence_gauge(now)

    def _update_silence_gauge(self, now: float) -> None:
        counts = {"active": 0, "pending": 0, "expired": 0}
        for silence in self.silences.all():
            counts[silence.state(now)] += 1
        for state, n in counts.items():
            self.metrics.silences.set((state,), float(n))

    def _count_suppressed(self) -> None:
        for reason, n in self.dispatcher.take_suppressed().items():
            self.metrics.suppressed.inc((reason,), float(n))

    def _set_integrations(self, integrations: list[Integration]) -> None:
        wanted = {i.name: i for i in integrations}
        for name in list(self.queues):
            if name not in wanted:
                old = self.queues.pop(name)
                task = self._tasks.pop(name, None)
                if task is not None:
                    self._background(cancel_and_wait([task], timeout=STOP_TIMEOUT))
                if old.items:
                    log.warning(
                        "receiver removed by reload; its undelivered notifications are dropped",
                        extra={"integration": name, "dropped": len(old.items)},
                    )
                self._close_later(old.integration)
        for name, integration in wanted.items():
            queue = self.queues.get(name)
            if queue is None:
                queue = DeliveryQueue(
                    integration, self.cfg.delivery, self.metrics, self._changed, self._delivered
                )
                self.queues[name] = queue
                if self._running:
                    self._start(name, queue)
            else:
                self._close_later(queue.integration)
                queue.integration = integration
                queue.policy = self.cfg.delivery

    def _close_later(self, integration: Integration) -> None:
        self._background(integration.close())

    def _background(self, coro: Coroutine[Any, Any, Any]) -> None:
        try:
            task = asyncio.get_running_loop().create_task(coro)
        except RuntimeError:  # no loop (reload outside the agent, as in tests)
            coro.close()
            return
        self._cleanup.add(task)  # a strong reference until it is done
        task.add_done_callback(self._cleanup.discard)

    def _start(self, name: str, queue: DeliveryQueue) -> None:
        self._tasks[name] = asyncio.get_running_loop().create_task(
            queue.run(), name=f"notify:{name}"
        )

    async def _cancel_tasks(self) -> None:
        tasks = list(self._tasks.values())
        self._tasks.clear()
        await cancel_and_wait(tasks, timeout=STOP_TIMEOUT)

    def _changed(self) -> None:
        self._dirty = True
        self._wake.set()

    def _delivered(self, notification: Notification, at: float) -> None:
        self.dispatcher.delivered(notification, at)

    def _template_error(self, integration: str, field: str, error: str) -> None:
        """A notification template failed at send time: the message goes out with an error
        line (the integration adds it); this logs it and counts it."""
        queue = self.queues.get(integration)
        if queue is not None:  # receiver names may hold "/": ask the integration
            receiver, kind = queue.integration.receiver, queue.integration.kind
        else:
            receiver, _, rest = integration.rpartition("/")
            kind = rest.split("[", 1)[0]
        self.metrics.template_errors.inc((receiver, kind))
        log.warning(
            "notification template failed; the message carries an error line instead",
            extra={"integration": integration, "field": field, "error": error},
        )

    def _update_queue_gauge(self) -> None:
        lengths: dict[str, int] = {}
        for q in self.queues.values():
            lengths[q.integration.receiver] = lengths.get(q.integration.receiver, 0) + len(q.items)
        for receiver, n in lengths.items():
            self.metrics.queue_length.set((receiver,), float(n))

    # -- persistence ---------------------------------------------------------------------

    @property
    def state_ok(self) -> bool:
        """False while the notification state cannot be written."""
        return self._save_error is None

    def to_state(self) -> dict[str, Any]:
        """What must survive a restart, as JSON: groups, the notification log, cooldowns
        and every undelivered notification."""
        return {
            "dispatcher": self.dispatcher.to_json(),
            "queues": {
                name: [n.to_json() for n in q.items] for name, q in self.queues.items() if q.items
            },
        }

    def save(self) -> None:
        if self._checkpoint is not None:
            self._checkpoint()  # the agent writes it, with everything else, soon
            self._dirty = False
            self._refreshed = False
            self._last_save = time.monotonic()
            return
        try:
            self.state.save(self.to_state())
        except OSError as exc:
            self._state_failures.inc(("notifications",))
            if exc.strerror != self._save_error:  # once per kind of failure, not every second
                log.error(
                    "cannot write notification state",
                    extra={"path": str(self.state.path), "error": exc.strerror},
                )
            self._save_error = exc.strerror
            self._last_save = time.monotonic()
            return
        if self._save_error is not None:
            log.info("notification state written again", extra={"path": str(self.state.path)})
            self._save_error = None
        self._dirty = False
        self._refreshed = False
        self._last_save = time.monotonic()

    def restore(self, data: dict[str, Any] | None, now: float) -> None:
        """Take over what `to_state` captured before a restart (None: nothing)."""
        if data is None:
            return
        self.dispatcher.restore(data.get("dispatcher", {}), now)
        for name, items in data.get("queues", {}).items():
            known = self.queues.get(name)
            notifications = [Notification.from_json(n) for n in items]
            if known is None:
                log.warning(
                    "undelivered notifications for an integration no longer configured are dropped",
                    extra={"integration": name, "dropped": len(notifications)},
                )
                continue
            if isinstance(known.integration, Alertmanager):
                # Batches from before the restart keep the endsAt they were given: this run
                # re-sends whatever still fires with a fresh one, right behind them.
                for n in notifications:
                    n.extra["firing"] = []
            known.restore(notifications)
        pending = sum(len(q.items) for q in self.queues.values())
        log.info(
            "notification state restored",
            extra={"groups": len(self.dispatcher.groups), "undelivered": pending},
        )
        self._update_queue_gauge()


def build_dispatcher(
    cfg: AlertingConfig, external_url: str, mute: MuteStage | None = None
) -> Dispatcher:
    """The dispatcher of an `alerting:` section: route tree, receivers, resolve_timeout.

    The live Notifier and `chatwatch replay --notifications` both build it here, so a
    replay decides what to send exactly as the agent would (without silences: they are
    the live agent's state, but with inhibition). No route: nothing is sent."""
    intervals = NamedIntervals(cfg.all_time_intervals())
    route = build_route(cfg.route, intervals=intervals) if cfg.route is not None else None
    specs = {r.name: build_integrations_for(r.name, cfg) for r in cfg.receivers}
    mute = mute if mute is not None else MuteStage()
    dispatcher = Dispatcher(route, specs, external_url, cfg.resolve_timeout, mute)
    # Inhibition reads this dispatcher's alerts; the mute stage (shared with the API) is
    # pointed at the new ones on every (re)build.
    rules = [InhibitRule.build(r) for r in cfg.inhibit_rules]
    mute.inhibitor = Inhibitor(rules, dispatcher.stored_alerts) if rules else None
    return dispatcher


def build_integrations_for(receiver: str, cfg: AlertingConfig) -> list[IntegrationSpec]:
    """Names and send_resolved of a receiver's integrations, without building clients."""
    r = cfg.receiver(receiver)
    out: list[IntegrationSpec] = []
    for kind, configs in (
        ("slack", r.slack_configs),
        ("webhook", r.webhook_configs),
        ("email", r.email_configs),
        ("console", r.console_configs),
        ("pagerduty", r.pagerduty_configs),
        ("msteams", r.msteams_configs),
        ("msteamsv2", r.msteamsv2_configs),
        ("discord", r.discord_configs),
        ("telegram", r.telegram_configs),
    ):
        out += [
            IntegrationSpec(f"{receiver}/{kind}[{i}]", c.send_resolved)
            for i, c in enumerate(configs)
        ]
    return out
