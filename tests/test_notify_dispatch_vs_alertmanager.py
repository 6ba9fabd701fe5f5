"""Our dispatcher against a real Alertmanager 0.25, notification for notification.

One alert stream goes to both: POSTed to Alertmanager's /api/v2/alerts with explicit
startsAt and endsAt (as Prometheus sends them), and handed to a running Notifier (as the
rule engine hands them). Both have the same routing tree: one group per alertname,
group_wait 1s, group_interval 2s, repeat_interval = group_interval, and one receiver
with two webhooks, `/loud` with send_resolved and `/quiet` without. Each side delivers to
its own local webhook receiver, and what each webhook got, in order, as (status, alerts
with their status), must be the same.

Every change is made just after both sides delivered the notification before it, so it
lands between the same two group ticks on both sides (their timers start within
milliseconds of each other and tick 2 s apart). The receivers take 200 ms to answer:
both sides count repeat_interval from the delivery, so a reminder is due on the second
tick after a notification, never the first, whatever the scheduling jitter of this
machine.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.alerting.alert import Alert
from agent.notify.notifier import Notifier
from agent.support.goformat import rfc3339
from tests.notify_support import HookServer, Reply, alerting, fire, resolve, running, wait_for
from tests.realservers import running_alertmanager

pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]

GROUP_INTERVAL = 2.0
DELIVERY = 0.2
"""How long each webhook receiver takes to answer."""
CONFIG = """
route:
  receiver: team
  group_by: [alertname]
  group_wait: 1s
  group_interval: 2s
  repeat_interval: 2s
receivers:
  - name: team
    webhook_configs:
      - {{url: "{hook}/loud", send_resolved: true}}
      - {{url: "{hook}/quiet", send_resolved: false}}
"""

Seen = tuple[str, str, str, list[tuple[str, str]]]


def seen(hook: HookServer, path: str) -> list[Seen]:
    """What the webhook at `path` got, in order: (receiver, groupKey, status, alerts)."""
    return [
        (
            body["receiver"],
            body["groupKey"],
            body["status"],
            [(a["labels"]["instance"], a["status"]) for a in body["alerts"]],
        )
        for r in list(hook.requests)
        if r.path == path
        for body in [r.json()]
    ]


@pytest.fixture
def hooks() -> Iterator[tuple[HookServer, HookServer]]:
    """Alertmanager's webhook receiver, and ours."""
    servers = (HookServer().start(), HookServer().start())
    for server in servers:
        server.default = Reply(delay=DELIVERY)
    yield servers
    for server in servers:
        server.stop()


class Stream:
    """The same alerts to both sides, at the same moment."""

    def __init__(self, am: httpx.AsyncClient, notifier: Notifier) -> None:
        self.am = am
        self.notifier = notifier

    async def send(self, *alerts: Alert) -> None:
        now = time.time()
        posted: list[dict[str, Any]] = [
            {
                "labels": a.labels,
                "annotations": a.annotations,
                "startsAt": rfc3339(a.starts_at),
                # Firing: an end well past this test, as Prometheus sends one.
                "endsAt": rfc3339(a.ends_at if a.ends_at is not None else now + 3600),
                "generatorURL": a.generator_url,
            }
            for a in alerts
        ]
        r = await self.am.post("/api/v2/alerts", json=posted)
        assert r.status_code == 200, r.text
        self.notifier.send(list(alerts), time.time())


async def test_same_notifications_as_alertmanager(
    tmp_path: Path, hooks: tuple[HookServer, HookServer]
) -> None:
    am_hook, cw_hook = hooks

    def hook_base(hook: HookServer) -> str:
        return f"http://127.0.0.1:{hook.port}"

    async def delivered(loud: int = 0, quiet: int = 0) -> None:
        """Until both sides' webhooks got at least this many notifications."""
        await wait_for(
            lambda: all(
                len(seen(h, "/loud")) >= loud and len(seen(h, "/quiet")) >= quiet for h in hooks
            ),
            timeout=10,
            what=f"{loud} loud and {quiet} quiet notifications on both sides",
        )

    cfg = alerting(CONFIG.format(hook=hook_base(cw_hook)))
    with running_alertmanager(CONFIG.format(hook=hook_base(am_hook)), tmp_path) as am_url:
        async with (
            httpx.AsyncClient(base_url=am_url, timeout=10) as am,
            running(cfg, tmp_path / "cw") as notifier,
        ):
            stream = Stream(am, notifier)
            now = time.time()
            a, b, c = (fire("Api", now, instance=i) for i in "abc")

            # t=0: two alerts within group_wait: one notification with both (t=1).
            await stream.send(a)
            await stream.send(b)
            await delivered(loud=1, quiet=1)
            # A late join: waits for the next group_interval tick (t=3).
            await stream.send(c)
            await delivered(loud=2, quiet=2)
            # A partial resolve: sent to /loud only (t=5).
            a_resolved = resolve(a, time.time())
            await stream.send(a_resolved)
            await delivered(loud=3)
            # Reminders: /quiet was last told at t=3, so at t=7 (not t=5) it is reminded.
            await delivered(quiet=3)
            # The rules re-send the resolved alert: it is back in the group, and /loud's
            # reminder (t=9: told at t=5) shows it as resolved.
            await stream.send(a_resolved)
            await delivered(loud=4)
            await delivered(quiet=4)  # t=11
            # Everything resolves (the resolved alert re-sent once more with it): /loud
            # gets the resolve (t=13); /quiet, without send_resolved, nothing.
            end = time.time()
            await stream.send(a_resolved, resolve(b, end), resolve(c, end))
            await delivered(loud=5)
            # A resolved alert re-sent after its group emptied: nobody hears of it again.
            await stream.send(resolve(b, end))
            # Nothing more may arrive. Both sides' group timers tick every 2 s; whatever
            # they hold goes out at the next tick, so two ticks and a delivery suffice.
            counts = len(am_hook.requests), len(cw_hook.requests)
            await asyncio.sleep(2 * GROUP_INTERVAL + DELIVERY + 0.3)
            assert (len(am_hook.requests), len(cw_hook.requests)) == counts

    key = '{}:{alertname="Api"}'
    assert seen(am_hook, "/loud") == [
        ("team", key, "firing", [("a", "firing"), ("b", "firing")]),
        ("team", key, "firing", [("a", "firing"), ("b", "firing"), ("c", "firing")]),
        ("team", key, "firing", [("a", "resolved"), ("b", "firing"), ("c", "firing")]),
        ("team", key, "firing", [("a", "resolved"), ("b", "firing"), ("c", "firing")]),
        ("team", key, "resolved", [("a", "resolved"), ("b", "resolved"), ("c", "resolved")]),
    ]
    assert seen(am_hook, "/quiet") == [
        ("team", key, "firing", [("a", "firing"), ("b", "firing")]),
        ("team", key, "firing", [("a", "firing"), ("b", "firing"), ("c", "firing")]),
        ("team", key, "firing", [("b", "firing"), ("c", "firing")]),
        ("team", key, "firing", [("b", "firing"), ("c", "firing")]),
    ]
    for path in ("/loud", "/quiet"):
        assert seen(cw_hook, path) == seen(am_hook, path), path
