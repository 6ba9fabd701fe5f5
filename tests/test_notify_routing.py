"""Routing, grouping, dedup and cooldown with explicit `now`: no clock, no I/O."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from agent.alerting.alert import Alert
from agent.config import ConfigError, loads
from agent.notify.alertmanager.forward import RESOLVED_RETENTION, Forwarder
from agent.notify.config import AlertingConfig
from agent.notify.dispatcher import Dispatcher
from agent.notify.matchers import parse_matchers
from agent.notify.notification import Notification, fingerprint, fingerprint_int, rfc3339
from agent.notify.notifier import build_integrations_for
from agent.notify.route import build_route

T0 = 1_700_000_000.0


def alerting(doc: str) -> AlertingConfig:
    return AlertingConfig.model_validate(yaml.safe_load(doc))


def dispatcher(doc: str, resolve_timeout: float = 300.0) -> Dispatcher:
    cfg = alerting(doc)
    assert cfg.route is not None
    specs = {r.name: build_integrations_for(r.name, cfg) for r in cfg.receivers}
    return Dispatcher(build_route(cfg.route), specs, "http://chatwatch:9317", resolve_timeout)


def firing(name: str, starts: float = T0, cooldown: float = 0.0, **labels: str) -> Alert:
    return Alert(
        labels={"alertname": name, **labels},
        annotations={"summary": f"{name} is firing"},
        starts_at=starts,
        cooldown=cooldown,
    )


def resolved(alert: Alert, at: float) -> Alert:
    return Alert(
        alert.labels, alert.annotations, alert.starts_at, at, alert.generator_url, alert.cooldown
    )


def summary(notes: list[Notification]) -> list[tuple[str, str, list[tuple[str, str]]]]:
    """(integration, status, [(alertname-ish, status)]) for compact assertions."""
    return [
        (
            n.integration,
            n.status,
            [(",".join(f"{v}" for _, v in sorted(a.labels.items())), a.status) for a in n.alerts],
        )
        for n in notes
    ]


# -- matchers and fingerprints ---------------------------------------------------------------


def test_matchers_parse_alertmanager_syntax() -> None:
    ms = parse_matchers('{severity=~"crit|page", team!=db, env="prod,eu"}')
    assert [str(m) for m in ms] == ['severity=~"crit|page"', 'team!="db"', 'env="prod,eu"']
    assert ms[0].matches({"severity": "page"})
    assert not ms[0].matches({"severity": "pager"})  # anchored like Alertmanager
    assert ms[1].matches({}) and not ms[1].matches({"team": "db"})
    assert parse_matchers('a!~"x.*"')[0].matches({"a": "yx"})
    assert parse_matchers('msg="say \\"hi\\""')[0].value == 'say "hi"'
    for bad in ["severity", 'a=~"("', "=x", '{a="b"']:
        with pytest.raises(ValueError):
            parse_matchers(bad)


def test_fingerprint_is_prometheus_common_labelset_fingerprint() -> None:
    # Values from prometheus/common model/signature_test.go.
    assert fingerprint_int({}) == 14695981039346656037
    assert fingerprint_int({"name": "garland, briggs", "fear": "love is not enough"}) == (
        5799056148416392346
    )
    assert fingerprint({"first-label": "first-label-value"}) == f"{5146282821936882169:016x}"


def test_rfc3339_matches_go() -> None:
    assert rfc3339(None) == "0001-01-01T00:00:00Z"
    assert rfc3339(1_700_000_000.0) == "2023-11-14T22:13:20Z"
    assert rfc3339(1_700_000_000.25) == "2023-11-14T22:13:20.25Z"


# -- config --------------------------------------------------------------------------------------

BASE = "sources: [{name: a, stdin: true}]\n"


def test_config_rejects_route_to_undefined_receiver_naming_the_key() -> None:
    doc = (
        BASE
        + """
alerting:
  route:
    receiver: slack
    routes: [{matchers: ['severity="page"'], receiver: pagerduty}]
  receivers: [{name: slack, console_configs: [{}]}]
"""
    )
    with pytest.raises(ConfigError) as exc:
        loads(doc, "chatwatch.yaml")
    (problem,) = exc.value.problems
    assert "chatwatch.yaml: alerting" in problem
    assert "route.routes[0].receiver: receiver 'pagerduty' is not defined" in problem


def test_config_secrets_from_files_and_never_printed(tmp_path: Any) -> None:
    url_file = tmp_path / "slack-url"
    url_file.write_text("https://hooks.slack.example/T000/SECRET\n")
    cfg = loads(
        BASE
        + f"""
alerting:
  route: {{receiver: slack}}
  receivers:
    - name: slack
      slack_configs: [{{api_url_file: {url_file}}}]
      email_configs: [{{to: a@x, from: b@x, smarthost: "smtp:587", auth_password: hunter2}}]
"""
    )
    slack = cfg.alerting.receivers[0].slack_configs[0]
    assert slack.api_url.get_secret_value() == "https://hooks.slack.example/T000/SECRET"
    assert "SECRET" not in repr(cfg) and "hunter2" not in repr(cfg)
    assert "SECRET" not in cfg.model_dump_json() and "hunter2" not in cfg.model_dump_json()


def test_config_rejects_bad_group_by() -> None:
    with pytest.raises(ConfigError) as exc:
        loads(
            BASE
            + """
alerting:
  route: {receiver: r, routes: [{group_by: ['...', alertname]}]}
  receivers: [{name: r}]
"""
        )
    (problem,) = exc.value.problems
    assert "alerting.route.routes[0].group_by" in problem and "'...'" in problem


def test_config_rejects_matchers_on_root_route() -> None:
    with pytest.raises(ConfigError) as exc:
        loads(
            BASE + "alerting: {route: {receiver: r, matchers: ['a=\"b\"']}, receivers: [{name: r}]}"
        )
    (problem,) = exc.value.problems
    assert "the root route must not have matchers" in problem


def test_chatwatch_check_reports_unreadable_ca_file(tmp_path: Any) -> None:
    from agent.commands.check import check_all

    config = tmp_path / "cw.yaml"
    config.write_text(
        BASE
        + f"""
alerting:
  route: {{receiver: mail}}
  receivers:
    - name: mail
      email_configs:
        - to: a@x
          from: b@x
          smarthost: "smtp:587"
          tls_config: {{ca_file: {tmp_path}/nope.pem}}
"""
    )
    problems = check_all(str(config))
    assert len(problems) == 1
    assert "alerting.receivers[0].email_configs[0].tls_config.ca_file" in problems[0]
    assert "nope.pem" in problems[0]


def test_chatwatch_check_reports_unreadable_tls_files_of_http_receivers(tmp_path: Any) -> None:
    """Every HTTP receiver's `http_config.tls_config`, including one taken from
    `global.http_config`: a missing CA bundle or client key is found by `check`."""
    from agent.commands.check import check_all

    config = tmp_path / "cw.yaml"
    config.write_text(
        BASE
        + f"""
alerting:
  global:
    http_config: {{tls_config: {{ca_file: {tmp_path}/global-ca.pem}}}}
  route: {{receiver: hooks}}
  receivers:
    - name: hooks
      webhook_configs:
        - url: https://hooks.example/a
          http_config:
            tls_config: {{cert_file: {tmp_path}/c.pem, key_file: {tmp_path}/k.pem}}
      discord_configs:
        - webhook_url: https://discord.example/api/webhooks/1/x
"""
    )
    problems = check_all(str(config))
    where = "alerting.receivers[0]"
    assert sorted(p.split(":")[0] for p in problems) == [
        f"{where}.discord_configs[0].http_config.tls_config.ca_file",
        f"{where}.webhook_configs[0].http_config.tls_config.cert_file",
        f"{where}.webhook_configs[0].http_config.tls_config.key_file",
    ], problems


# -- route tree ------------------------------------------------------------------------------

TREE = """
route:
  receiver: default
  group_by: [alertname]
  group_wait: 10s
  group_interval: 1m
  repeat_interval: 1h
  routes:
    - matchers: ['severity=~"critical|page"']
      receiver: pager
      group_wait: 0s
      continue: true
      routes:
        - match: {team: db}
          receiver: dba
          group_by: ['...']
    - match_re: {team: "db|storage"}
      receiver: storage
      repeat_interval: 4h
receivers:
  - {name: default, webhook_configs: [{url: "http://d"}]}
  - {name: pager, webhook_configs: [{url: "http://p"}]}
  - {name: dba, webhook_configs: [{url: "http://b"}]}
  - {name: storage, webhook_configs: [{url: "http://s"}, {url: "http://s2", send_resolved: false}]}
"""


def test_route_tree_first_match_continue_and_inheritance() -> None:
    cfg = alerting(TREE)
    assert cfg.route is not None
    root = build_route(cfg.route)

    def receivers(**labels: str) -> list[str]:
        return [r.receiver for r in root.match(labels)]

    assert receivers(alertname="X") == ["default"]
    assert receivers(alertname="X", severity="page") == ["pager"]
    # continue: true on the pager route lets the storage sibling match too.
    assert receivers(alertname="X", severity="critical", team="storage") == ["pager", "storage"]
    # The deepest matching node wins: dba under pager.
    assert receivers(alertname="X", severity="page", team="db") == ["dba", "storage"]
    assert receivers(alertname="X", severity="warning", team="db") == ["storage"]

    pager, storage = root.routes
    dba = pager.routes[0]
    assert (pager.group_wait, pager.group_interval, pager.repeat_interval) == (0.0, 60.0, 3600.0)
    assert pager.group_by == frozenset({"alertname"})
    assert dba.group_by is None  # '...'
    assert dba.group_wait == 0.0  # inherited from pager, not the root
    assert (storage.group_wait, storage.repeat_interval) == (10.0, 4 * 3600.0)
    assert dba.key == '{}/{severity=~"critical|page"}/{team="db"}'
    assert storage.id == '{}/{team=~"db|storage"}/1'


def test_defaults_are_documented_values() -> None:
    cfg = alerting("route: {receiver: r}\nreceivers: [{name: r}]")
    assert cfg.route is not None
    root = build_route(cfg.route)
    assert (root.group_wait, root.group_interval, root.repeat_interval) == (0.0, 300.0, 14400.0)
    assert root.group_by == frozenset()


# -- grouping and timers ---------------------------------------------------------------------

SIMPLE = """
route:
  {receiver: team, group_by: [alertname], group_wait: 30s, group_interval: 5m, repeat_interval: 4h}
receivers: [{name: team, webhook_configs: [{url: "http://x"}]}]
"""


def test_group_wait_batches_alerts_then_group_interval_paces_changes() -> None:
    d = dispatcher(SIMPLE)
    a = firing("HighErrorRate", route="/chat")
    b = firing("HighErrorRate", route="/login")
    d.ingest([a], T0)
    assert d.next_deadline() == T0 + 30
    assert d.flush_due(T0 + 29) == []
    d.ingest([a, b], T0 + 10)
    (n,) = d.flush_due(T0 + 30)
    assert n.group_key == '{}:{alertname="HighErrorRate"}'
    assert n.group_labels == {"alertname": "HighErrorRate"}
    assert n.title() == "[FIRING:2] HighErrorRate"
    assert [a.labels["route"] for a in n.alerts] == ["/chat", "/login"]
    # Nothing changed: no message on the next tick; a new alert waits for group_interval.
    c = firing("HighErrorRate", starts=T0 + 40, route="/search")
    d.ingest([a, b, c], T0 + 40)
    assert d.flush_due(T0 + 40) == []
    (n2,) = d.flush_due(T0 + 330)
    assert len(n2.firing) == 3


def test_alert_older_than_group_wait_flushes_at_once() -> None:
    d = dispatcher(SIMPLE)
    d.ingest([firing("Old", starts=T0 - 3600)], T0)
    assert d.next_deadline() == T0
    assert len(d.flush_due(T0)) == 1


def test_repeat_interval_resends_unchanged_group() -> None:
    d = dispatcher(SIMPLE)
    a = firing("X", starts=T0 - 60)
    d.ingest([a], T0)
    assert len(d.flush_due(T0)) == 1
    t = T0
    sent = []
    while t < T0 + 4 * 3600 + 600:
        t += 300
        d.ingest([a], t)
        sent += [t for _ in d.flush_due(t)]
    # Alertmanager's needsUpdate: the logged notification must be *more* than 4h old, so
    # the tick exactly 4h after it is not yet a reminder; the next one is.
    assert sent == [T0 + 4 * 3600 + 300]


REMIND = """
route:
  {receiver: team, group_by: [alertname], group_wait: 0s, group_interval: 10s, repeat_interval: 10s}
receivers: [{name: team, webhook_configs: [{url: "http://x"}]}]
"""


def test_repeat_interval_equal_to_group_interval_reminds_every_second_tick() -> None:
    """alertmanager#676: the reminder clock starts when the notification is logged, after
    delivery, so the tick one repeat_interval after a flush finds it not quite old enough."""
    d = dispatcher(REMIND)
    a = firing("X")
    sent = []
    for t in range(0, 61, 10):
        d.ingest([a], T0 + t)
        for n in d.flush_due(T0 + t):
            sent.append(t)
            d.delivered(n, T0 + t + 0.05)  # the receiver took 50 ms
    assert sent == [0, 20, 40, 60]


def test_delivery_of_a_superseded_notification_does_not_restart_the_reminder_clock() -> None:
    d = dispatcher(REMIND)
    a, b = firing("X", instance="a"), firing("X", instance="b")
    d.ingest([a], T0)
    (first,) = d.flush_due(T0)
    d.ingest([a, b], T0 + 5)
    (second,) = d.flush_due(T0 + 10)  # b is new; the receiver has not taken `first` yet
    d.delivered(first, T0 + 19)  # a slow receiver
    d.delivered(second, T0 + 10.5)
    d.ingest([a, b], T0 + 20)
    (reminder,) = d.flush_due(T0 + 21)  # counted from `second`'s delivery, not 19
    assert reminder.alerts == second.alerts


def test_resolved_sent_when_send_resolved_and_group_removed() -> None:
    d = dispatcher(TREE)
    a = firing("Disk", team="storage")
    d.ingest([a], T0)
    assert summary(d.flush_due(T0 + 10)) == [
        ("storage/webhook[0]", "firing", [("Disk,storage", "firing")]),
        ("storage/webhook[1]", "firing", [("Disk,storage", "firing")]),
    ]
    d.ingest([resolved(a, T0 + 20)], T0 + 20)
    # Only the integration with send_resolved gets the resolve.
    assert summary(d.flush_due(T0 + 70)) == [
        ("storage/webhook[0]", "resolved", [("Disk,storage", "resolved")]),
    ]
    assert d.groups == {}
    # The rule engine keeps re-sending the resolved alert for 15 min: nothing more goes out.
    for t in range(80, 400, 10):
        d.ingest([resolved(a, T0 + 20)], T0 + t)
        assert d.flush_due(T0 + t) == []


RESEND = """
route:
  {receiver: team, group_by: [alertname], group_wait: 0s, group_interval: 10s, repeat_interval: 20s}
receivers:
  - name: team
    webhook_configs: [{url: "http://loud"}, {url: "http://quiet", send_resolved: false}]
"""


def test_resolved_alert_reported_again_goes_back_into_its_group_as_in_alertmanager() -> None:
    d = dispatcher(RESEND)
    a, b = firing("X", instance="a"), firing("X", instance="b")
    d.ingest([a, b], T0)
    assert len(d.flush_due(T0)) == 2
    d.ingest([resolved(a, T0 + 5)], T0 + 5)
    # The partial resolve goes to the integration with send_resolved only.
    assert summary(d.flush_due(T0 + 10)) == [
        ("team/webhook[0]", "firing", [("X,a", "resolved"), ("X,b", "firing")]),
    ]
    assert d.flush_due(T0 + 20) == []
    assert summary(d.flush_due(T0 + 30)) == [("team/webhook[1]", "firing", [("X,b", "firing")])]
    # The rule engine re-reports the resolve (as Prometheus re-sends it for 15 min): it
    # is back in the group, and the next reminder shows it as resolved.
    d.ingest([resolved(a, T0 + 5)], T0 + 35)
    assert summary(d.flush_due(T0 + 40)) == [
        ("team/webhook[0]", "firing", [("X,a", "resolved"), ("X,b", "firing")]),
    ]
    # That flush took it out again: the next reminders hold b alone.
    assert d.flush_due(T0 + 50) == []
    assert summary(d.flush_due(T0 + 60)) == [("team/webhook[1]", "firing", [("X,b", "firing")])]
    assert summary(d.flush_due(T0 + 70)) == [("team/webhook[0]", "firing", [("X,b", "firing")])]
    # Reported again now, it is a resolve the last notification did not hold: Alertmanager's
    # DedupStage sends it at once to whoever has send_resolved (and to nobody else).
    d.ingest([resolved(a, T0 + 5)], T0 + 75)
    assert summary(d.flush_due(T0 + 80)) == [
        ("team/webhook[0]", "firing", [("X,a", "resolved"), ("X,b", "firing")]),
    ]


def test_alert_older_than_group_wait_flushes_a_waiting_group_at_once() -> None:
    d = dispatcher(SIMPLE)
    d.ingest([firing("X", instance="a")], T0)
    assert d.next_deadline() == T0 + 30
    d.ingest([firing("X", instance="a"), firing("X", starts=T0 - 3600, instance="b")], T0 + 5)
    assert d.next_deadline() == T0 + 5
    (n,) = d.flush_due(T0 + 5)
    assert len(n.alerts) == 2
    # Once the group has flushed, an old alert joining waits for group_interval.
    d.ingest([firing("X", starts=T0 - 3600, instance="c")], T0 + 6)
    assert d.next_deadline() == T0 + 5 + 300


def test_resolve_between_flushes_of_unnotified_alert_sends_nothing() -> None:
    d = dispatcher(SIMPLE)
    a = firing("Blip")
    d.ingest([a], T0)
    d.ingest([resolved(a, T0 + 5)], T0 + 5)
    assert d.flush_due(T0 + 30) == []
    assert d.groups == {}


def test_resolve_timeout_sends_resolve() -> None:
    d = dispatcher(SIMPLE.replace("group_wait: 30s", "group_wait: 0s"), resolve_timeout=120)
    d.ingest([firing("Gone")], T0)
    d.flush_due(T0)
    d.ingest([firing("Gone")], T0 + 100)  # last report
    assert d.flush_due(T0 + 200) == []  # endsAt T0 + 220 not reached
    (n,) = d.flush_due(T0 + 500)
    assert n.status == "resolved"
    assert n.alerts[0].ends_at == T0 + 220


# -- cooldown --------------------------------------------------------------------------------

FAST = """
route:
  {receiver: team, group_by: [alertname], group_wait: 0s, group_interval: 10s, repeat_interval: 1h}
receivers: [{name: team, webhook_configs: [{url: "http://x"}]}]
"""


def test_cooldown_damps_flapping_alert_then_notifies_when_it_passes() -> None:
    d = dispatcher(FAST)
    a = firing("Flappy", cooldown=300)
    log: list[tuple[float, str]] = []

    def step(t: float, alerts: list[Alert]) -> None:
        d.ingest(alerts, T0 + t)
        log.extend((t, n.status) for n in d.flush_due(T0 + t))

    step(0, [a])  # fires: notified
    step(20, [resolved(a, T0 + 20)])  # resolves: notified
    for t in range(30, 200, 10):  # flaps every 10 s for a while: held back
        alert = firing("Flappy", starts=T0 + t, cooldown=300) if t % 20 else resolved(a, T0 + t)
        step(t, [alert])
    step(200, [firing("Flappy", starts=T0 + 200, cooldown=300)])
    for t in range(210, 320, 10):
        step(t, [firing("Flappy", starts=T0 + 200, cooldown=300)])
    # Cooldown ends at 300 (300 s after the firing notification at 0): notified at the next tick.
    assert log == [(0, "firing"), (20, "resolved"), (300, "firing")]


def test_cooldown_does_not_delay_reminders_of_alert_that_stays_firing() -> None:
    d = dispatcher(FAST)
    a = firing("Steady", cooldown=7200)
    sent = []
    for t in range(0, 3 * 3600 + 1, 10):
        d.ingest([a], T0 + t)
        sent += [t for _ in d.flush_due(T0 + t)]
    # repeat_interval governs: a reminder at the first tick *more* than 1h after the last
    assert sent == [0, 3610, 7220]


def test_cooldown_is_per_alert_labels() -> None:
    d = dispatcher(FAST)
    a = firing("E", cooldown=600, route="/a")
    b = firing("E", cooldown=600, route="/b")
    d.ingest([a], T0)
    d.flush_due(T0)
    d.ingest([resolved(a, T0 + 5)], T0 + 5)
    d.flush_due(T0 + 10)
    d.ingest([firing("E", starts=T0 + 20, cooldown=600, route="/a"), b], T0 + 20)
    (n,) = d.flush_due(T0 + 20)
    assert [al.labels["route"] for al in n.alerts] == ["/b"]  # /a is cooling down


# -- persistence ------------------------------------------------------------------------------


def test_restored_state_sends_no_duplicate_and_keeps_pending_resolve() -> None:
    d = dispatcher(FAST)
    a = firing("X")
    d.ingest([a], T0)
    assert len(d.flush_due(T0)) == 1
    saved = d.to_json()

    d2 = dispatcher(FAST)
    d2.restore(saved, T0 + 30)
    d2.ingest([firing("X", starts=T0 + 25)], T0 + 30)
    assert d2.flush_due(T0 + 30) == []
    d2.ingest([resolved(a, T0 + 40)], T0 + 40)
    (n,) = d2.flush_due(T0 + 40)
    assert n.status == "resolved"


def test_restore_keeps_the_delivery_time_and_reads_state_saved_without_it() -> None:
    d = dispatcher(REMIND)
    d.ingest([firing("X")], T0)
    (n,) = d.flush_due(T0)
    d.delivered(n, T0 + 4)
    restored = dispatcher(REMIND)
    restored.restore(d.to_json(), T0 + 5)
    assert restored.flush_due(T0 + 13) == []  # logged at 4: not more than 10 s ago
    assert len(restored.flush_due(T0 + 23)) == 1

    # State saved before deliveries were logged has neither `decided_at` nor `flushed`:
    # its entries count from the flush, and a notification still queued then is matched.
    d = dispatcher(REMIND)
    d.ingest([firing("X")], T0)
    (n,) = d.flush_due(T0)
    old = d.to_json()
    for e in old["log"]:
        del e["decided_at"]
    for g in old["groups"]:
        del g["flushed"]
    restored = dispatcher(REMIND)
    restored.restore(old, T0 + 5)
    restored.delivered(Notification.from_json(n.to_json()), T0 + 4)
    assert restored.flush_due(T0 + 13) == []
    assert len(restored.flush_due(T0 + 23)) == 1


def test_restore_after_route_change_reroutes_alerts() -> None:
    d = dispatcher(FAST)
    d.ingest([firing("X", team="db")], T0)
    d.flush_due(T0)
    d2 = dispatcher(
        FAST.replace(
            "repeat_interval: 1h}",
            "repeat_interval: 1h, routes: [{match: {team: db}, receiver: db}]}",
        ).replace("receivers: [", "receivers: [{name: db, console_configs: [{}]}, ")
    )
    d2.restore(d.to_json(), T0 + 5)
    (n,) = d2.flush_due(T0 + 5)
    assert n.receiver == "db" and n.status == "firing"


# -- Alertmanager forwarding -----------------------------------------------------------------


def test_forwarder_resends_firing_and_resolved_as_prometheus() -> None:
    f = Forwarder(resend_delay=60)
    a = firing("X")
    assert f.select([a], T0) == [a]
    assert f.postable(a, T0)["endsAt"] == rfc3339(T0 + 240)
    assert f.select([a], T0 + 30) == []
    assert f.select([a], T0 + 60) == [a]
    r = resolved(a, T0 + 70)
    assert f.select([r], T0 + 70) == [r]  # resolve goes out at once
    assert f.postable(r, T0 + 70)["endsAt"] == rfc3339(T0 + 70)
    sent = [t for t in range(80, 1200, 10) if f.select([], T0 + t)]
    # Re-sent every resend_delay until 15 min after the resolve, then forgotten.
    assert sent == [130, 190, 250, 310, 370, 430, 490, 550, 610, 670, 730, 790, 850, 910, 970]
    assert RESOLVED_RETENTION >= 970 - 70 and f.tracked == {}
