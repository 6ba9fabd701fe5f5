"""Inhibition with an explicit `now`: a firing critical mutes its warning, as in Alertmanager.

Alertmanager 0.25's inhibit/inhibit.go: the target is muted while a firing source with
equal `equal` labels exists; an alert matching both sides does not inhibit itself (nor
another alert matching both sides). The dispatcher drops inhibited alerts at group flush
and sends a still-firing one at once when its inhibitor resolves. End to end with a real
Notifier, a webhook and the API: the second half.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from agent.alerting.alert import Alert
from agent.notify.api import AlertmanagerAPI
from agent.notify.config import AlertingConfig
from agent.notify.dispatcher import Dispatcher
from agent.notify.notification import Notification, fingerprint
from agent.notify.notifier import Notifier, build_dispatcher
from agent.support.selfmetrics import SelfMetrics
from tests.notify_support import HookServer, fire, resolve, running, settled, wait_for
from tests.server_support import Handlers
from tests.server_support import running as serving
from tests.test_notify_amtool import run_amtool

T0 = 1_700_000_000.0

CONFIG = """
route: {receiver: team, group_by: [alertname], group_wait: 0s, group_interval: 1m}
receivers:
  - name: team
    webhook_configs: [{url: "http://hook.test/", send_resolved: true}]
inhibit_rules:
  - source_matchers: ['severity="critical"']
    target_matchers: ['severity="warning"']
    equal: [bot]
"""


def dispatcher(doc: str = CONFIG) -> Dispatcher:
    return build_dispatcher(AlertingConfig.model_validate(yaml.safe_load(doc)), "http://cw:9317")


def run(d: Dispatcher, alerts: list[Alert], now: float) -> list[Notification]:
    """One evaluation's alerts, then what is due: as the Notifier does each tick."""
    d.ingest(alerts, now)
    d.release_unmuted(now)
    return d.flush_due(now)


def sent(notes: list[Notification]) -> list[tuple[str, list[str]]]:
    return [(n.status, [f"{a.labels['alertname']}:{a.status}" for a in n.alerts]) for n in notes]


def inhibited_by(d: Dispatcher, alert: Alert, now: float) -> list[str]:
    assert d.mute is not None
    return d.mute.status(alert.labels, now).inhibited_by


def test_warning_is_held_while_its_critical_fires_and_sent_once_it_resolves() -> None:
    d = dispatcher()
    crit = fire("ChatbotDown", T0, severity="critical", bot="support")
    warn = fire("ChatbotSlow", T0, severity="warning", bot="support")
    assert sent(run(d, [crit, warn], T0)) == [("firing", ["ChatbotDown:firing"])]
    assert d.take_suppressed() == {"inhibition": 1}
    assert inhibited_by(d, warn, T0) == [fingerprint(crit.labels)]
    assert run(d, [crit, warn], T0 + 60) == []  # both groups' next flush: still held
    # The critical resolves: the warning goes out at that tick, not a group_interval
    # later; the critical's resolve at its own group's next flush, as in Alertmanager.
    gone = resolve(crit, T0 + 90)
    assert sent(run(d, [gone, warn], T0 + 90)) == [("firing", ["ChatbotSlow:firing"])]
    assert inhibited_by(d, warn, T0 + 90) == []
    assert sent(run(d, [gone, warn], T0 + 120)) == [("resolved", ["ChatbotDown:resolved"])]


def test_equal_labels_must_match_and_a_missing_label_equals_an_empty_one() -> None:
    d = dispatcher()
    crit = fire("ChatbotDown", T0, severity="critical", bot="support")
    other_bot = fire("ChatbotSlow", T0, severity="warning", bot="sales")
    no_bot = fire("ChatbotSlow", T0, severity="warning")
    notes = run(d, [crit, other_bot, no_bot], T0)
    assert sorted(a.labels.get("bot", "") for n in notes for a in n.alerts) == [
        "",
        "sales",
        "support",
    ]
    # Without a `bot` label on either side, they are equal (both empty): inhibited.
    d = dispatcher()
    unlabeled = fire("ChatbotDown", T0, severity="critical")
    assert sent(run(d, [unlabeled, no_bot], T0)) == [("firing", ["ChatbotDown:firing"])]


def test_an_alert_matching_both_sides_does_not_inhibit_itself() -> None:
    doc = CONFIG.replace(
        """  - source_matchers: ['severity="critical"']
    target_matchers: ['severity="warning"']
    equal: [bot]""",
        """  - source_matchers: ['team="llm"']
    target_matchers: ['team=~"llm|chat"']""",
    )
    d = dispatcher(doc)
    both = fire("LLMDown", T0, team="llm")
    target_only = fire("ChatErrors", T0, team="chat")
    assert sent(run(d, [both, target_only], T0)) == [("firing", ["LLMDown:firing"])]
    assert inhibited_by(d, both, T0) == []
    # A second alert matching both sides does not inhibit the first either.
    both2 = fire("LLMSlow", T0, team="llm")
    assert inhibited_by(d, both, T0) == [] and inhibited_by(d, both2, T0) == []


def test_a_resolved_source_inhibits_nothing() -> None:
    d = dispatcher()
    crit = fire("ChatbotDown", T0, severity="critical")
    run(d, [crit], T0)
    warn = fire("ChatbotSlow", T0 + 10, severity="warning")
    notes = run(d, [resolve(crit, T0 + 5), warn], T0 + 10)
    assert ("firing", ["ChatbotSlow:firing"]) in sent(notes)


def test_deprecated_match_forms_are_read_as_alertmanager_does() -> None:
    doc = CONFIG.replace(
        """  - source_matchers: ['severity="critical"']
    target_matchers: ['severity="warning"']""",
        """  - source_match: {severity: critical}
    target_match_re: {severity: "warn.*"}""",
    )
    d = dispatcher(doc)
    crit = fire("ChatbotDown", T0, severity="critical")
    warn = fire("ChatbotSlow", T0, severity="warning")
    assert sent(run(d, [crit, warn], T0)) == [("firing", ["ChatbotDown:firing"])]


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ("{source_matchers: ['a=~\"(\"'], target_matchers: ['b=c']}", "regular expression"),
        ("{target_matchers: ['b=c'], equal: ['not-a-label']}", "not a valid label name"),
        ("{target_matchers: ['b=c'], sources: []}", "sources"),
    ],
)
def test_mistakes_in_inhibit_rules_are_config_errors(rule: str, expected: str) -> None:
    doc = "route: {receiver: r}\nreceivers: [{name: r}]\ninhibit_rules: [" + rule + "]\n"
    with pytest.raises(ValidationError, match=expected):
        AlertingConfig.model_validate(yaml.safe_load(doc))


# -- end to end: a real Notifier, a webhook, the API -------------------------------------


@pytest.fixture
def hook() -> Iterator[HookServer]:
    server = HookServer().start()
    yield server
    server.stop()


def live_config(hook: HookServer) -> AlertingConfig:
    return AlertingConfig.model_validate(
        yaml.safe_load(
            CONFIG.replace("http://hook.test/", f"{hook.url}/webhook").replace(
                "group_interval: 1m", "group_interval: 1h"
            )
        )
    )


async def test_inhibited_warning_reaches_the_webhook_only_after_the_critical_resolves(
    tmp_path: Path, hook: HookServer
) -> None:
    cfg = live_config(hook)
    now = time.time()
    crit = fire("ChatbotDown", now - 5, severity="critical")
    warn = fire("ChatbotSlow", now - 5, severity="warning")
    async with running(cfg, tmp_path) as n:
        n.send([crit, warn], now)
        await wait_for(lambda: len(hook.requests) == 1, what="the critical on the webhook")
        assert await settled(n) == []  # the warning stays held for the next hour
        assert [a["labels"]["alertname"] for a in hook.bodies()[0]["alerts"]] == ["ChatbotDown"]
        resolved_at = time.monotonic()
        n.send([resolve(crit, time.time()), warn], time.time())
        await wait_for(lambda: len(hook.requests) == 2, what="the warning on the webhook")
        assert hook.requests[1].at - resolved_at < 1.0  # group_interval is 1h
        # The critical's resolve follows at its group's next flush (an hour away).
        # (The warning, no longer re-reported by this test, resolves by resolve_timeout.)
        planned = await settled(n, horizon=2 * 3600)
        assert ("resolved", "ChatbotDown") in {
            (p.status, a.labels["alertname"]) for p in planned for a in p.alerts
        }
    warning = hook.bodies()[1]
    assert (warning["status"], warning["alerts"][0]["labels"]["alertname"]) == (
        "firing",
        "ChatbotSlow",
    )


def test_api_alerts_show_inhibited_by_and_filter_on_it(tmp_path: Path) -> None:
    cfg = AlertingConfig.model_validate(yaml.safe_load(CONFIG))
    notifier = Notifier(cfg, tmp_path, SelfMetrics(), "http://chatwatch.test:9317")
    api = AlertmanagerAPI(notifier, started_at=T0)
    now = time.time()
    crit = fire("ChatbotDown", now, severity="critical")
    warn = fire("ChatbotSlow", now, severity="warning")
    notifier.send([crit, warn], now)
    by_name = {a["labels"]["alertname"]: a["status"] for a in api.get_alerts({}, now)}
    assert by_name["ChatbotSlow"] == {
        "state": "suppressed",
        "silencedBy": [],
        "inhibitedBy": [fingerprint(crit.labels)],
    }
    assert by_name["ChatbotDown"]["inhibitedBy"] == []
    shown = api.get_alerts({"inhibited": ["false"]}, now)
    assert [a["labels"]["alertname"] for a in shown] == ["ChatbotDown"]


async def test_amtool_alert_query_shows_the_inhibited_warning_only_when_asked(
    tmp_path: Path,
) -> None:
    handlers = Handlers(
        state_dir=tmp_path, alerting=AlertingConfig.model_validate(yaml.safe_load(CONFIG))
    )
    now = time.time()
    crit = fire("ChatbotDown", now, severity="critical")
    handlers.notifier.send([crit, fire("ChatbotSlow", now, severity="warning")], now)
    async with serving(handlers) as server:

        async def query(*flags: str) -> list[dict[str, Any]]:
            code, out, err = await run_amtool(
                server.url, "alert", "query", *flags, "-o", "json", home=tmp_path
            )
            assert code == 0, err
            alerts: list[dict[str, Any]] = json.loads(out)
            return alerts

        default = await query()
        inhibited = await query("--inhibited")
    assert [a["labels"]["alertname"] for a in default] == ["ChatbotDown"]
    (slow,) = inhibited
    assert slow["labels"]["alertname"] == "ChatbotSlow"
    assert slow["status"] == {
        "state": "suppressed",
        "silencedBy": [],
        "inhibitedBy": [fingerprint(crit.labels)],
    }
