"""Time intervals with a driven `now`: what a route muted by time holds, and when it sends.

Alertmanager 0.25's timeinterval/timeinterval.go decides whether a time is in an interval;
a route's `mute_time_intervals` hold its notifications while in one, its
`active_time_intervals` while in none (neither is inherited). chatwatch sends what a
route held the moment the interval ends. Last: a config with routes, inhibit rules and
time intervals passes the real `amtool check-config` and `chatwatch check` alike.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml
from pydantic import ValidationError

from agent.alerting.alert import Alert
from agent.notify.config import AlertingConfig
from agent.notify.dispatcher import Dispatcher
from agent.notify.notification import Notification
from agent.notify.notifier import build_dispatcher
from agent.notify.timeinterval import TimeInterval, TimeIntervalConfig
from tests.notify_support import HookServer, alerting, fire, resolve, running, wait_for
from tests.realservers import require

BERLIN = ZoneInfo("Europe/Berlin")


def at(*parts: int, tz: tzinfo = BERLIN) -> float:
    return datetime(*parts, tzinfo=tz).timestamp()  # type: ignore[misc,arg-type]


def interval(**fields: object) -> TimeInterval:
    return TimeInterval(TimeIntervalConfig.model_validate(fields))


# -- membership --------------------------------------------------------------------------


def test_times_are_start_inclusive_end_exclusive_in_the_location() -> None:
    night = interval(times=[{"start_time": "17:00", "end_time": "24:00"}], location="Europe/Berlin")
    # 2026-11-30 is a Monday; Berlin is UTC+1 in winter.
    assert not night.contains(at(2026, 11, 30, 16, 59, 59))
    assert night.contains(at(2026, 11, 30, 17, 0))
    assert night.contains(at(2026, 11, 30, 23, 59, 59))
    assert not night.contains(at(2026, 12, 1, 0, 0))
    # Without a location the same wall times are read in UTC.
    utc = interval(times=[{"start_time": "17:00", "end_time": "24:00"}])
    assert not utc.contains(at(2026, 11, 30, 17, 30))  # 16:30 UTC
    assert utc.contains(at(2026, 11, 30, 18, 0))


def test_weekdays_months_and_years_are_inclusive_ranges_by_name_or_number() -> None:
    workdays = interval(weekdays=["monday:friday"], location="Europe/Berlin")
    assert workdays.contains(at(2026, 11, 30, 9, 0))  # Monday
    assert workdays.contains(at(2026, 12, 4, 23, 59))  # Friday
    assert not workdays.contains(at(2026, 12, 5, 0, 0))  # Saturday
    assert not workdays.contains(at(2026, 11, 29, 12, 0))  # Sunday
    winter = interval(months=["december", "1:february"], years=["2026:2027"])
    assert winter.contains(at(2026, 12, 1, tz=UTC))
    assert winter.contains(at(2027, 2, 28, 23, 59, tz=UTC))
    assert not winter.contains(at(2027, 3, 1, tz=UTC))
    assert not winter.contains(at(2028, 1, 1, tz=UTC))


def test_negative_days_of_month_count_from_the_end_of_each_month() -> None:
    last_three = interval(days_of_month=["-3:-1"])
    assert last_three.contains(at(2026, 2, 26, tz=UTC))  # 28 days: 26, 27, 28
    assert not last_three.contains(at(2026, 2, 25, tz=UTC))
    assert last_three.contains(at(2026, 1, 29, tz=UTC))  # 31 days: 29, 30, 31
    assert not last_three.contains(at(2026, 1, 28, tz=UTC))
    first_to_last = interval(days_of_month=["1:-1"])
    assert first_to_last.contains(at(2026, 4, 30, tz=UTC))


def test_all_fields_must_match_and_an_empty_interval_is_always() -> None:
    both = interval(
        weekdays=["sunday", "saturday"], times=[{"start_time": "08:00", "end_time": "12:00"}]
    )
    assert both.contains(at(2026, 12, 5, 9, 0, tz=UTC))
    assert not both.contains(at(2026, 12, 5, 13, 0, tz=UTC))
    assert not both.contains(at(2026, 12, 4, 9, 0, tz=UTC))
    assert interval().contains(at(2026, 12, 4, 9, 0, tz=UTC))


def test_the_next_boundary_is_the_end_of_the_interval_even_across_dst() -> None:
    night = interval(times=[{"start_time": "02:30", "end_time": "03:30"}], location="Europe/Berlin")
    t = at(2026, 11, 30, 3, 0)
    assert night.next_boundary(t) == at(2026, 11, 30, 3, 30)
    # 2026-03-29: Berlin skips 02:00-03:00. The interval begins when the clock jumps to
    # 03:00 (01:00 UTC), not an hour later.
    t = datetime(2026, 3, 29, 0, 30, tzinfo=UTC).timestamp()
    boundary = night.next_boundary(t)
    assert boundary <= datetime(2026, 3, 29, 1, 0, tzinfo=UTC).timestamp()
    assert not night.contains(t)
    assert night.contains(datetime(2026, 3, 29, 1, 0, tzinfo=UTC).timestamp())


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"times": [{"start_time": "18:00", "end_time": "09:00"}]}, "start time cannot be"),
        ({"times": [{"start_time": "8:00", "end_time": "09:00"}]}, "invalid format"),
        ({"weekdays": ["friday:monday"]}, "start day cannot be before end day"),
        ({"weekdays": ["funday"]}, "funday is not a valid weekday"),
        ({"days_of_month": ["0"]}, "not a valid day of the month"),
        ({"days_of_month": ["-1:5"]}, "end day must be negative"),
        ({"months": ["march:january"]}, "end month 1 is before start month 3"),
        ({"years": ["2027:2026"]}, "end year 2026 is before start year 2027"),
        ({"location": "Mars/Olympus"}, "unknown time zone"),
    ],
)
def test_mistakes_in_an_interval_are_config_errors(
    fields: dict[str, object], expected: str
) -> None:
    with pytest.raises(ValidationError, match=expected):
        TimeIntervalConfig.model_validate(fields)


@pytest.mark.parametrize(
    ("route", "expected"),
    [
        ("{receiver: r, mute_time_intervals: [night]}", "root route must not have any"),
        ("{receiver: r, active_time_intervals: [night]}", "root route must not have any"),
        ("{receiver: r, routes: [{mute_time_intervals: [nope]}]}", "'nope' is not defined"),
    ],
)
def test_routes_name_defined_intervals_and_not_on_the_root(route: str, expected: str) -> None:
    doc = (
        f"route: {route}\nreceivers: [{{name: r}}]\n"
        "time_intervals: [{name: night, time_intervals: [{times: "
        "[{start_time: '00:00', end_time: '06:00'}]}]}]\n"
    )
    with pytest.raises(ValidationError, match=expected):
        AlertingConfig.model_validate(yaml.safe_load(doc))


# -- the dispatcher: held, then released at the end ---------------------------------------

T0 = at(2026, 11, 30, 16, 0, tz=UTC)  # a Monday
CONFIG = """
route:
  receiver: team
  group_by: [alertname]
  group_wait: 0s
  group_interval: 5m
  routes:
    - matchers: ['severity="warning"']
      mute_time_intervals: [evening]
      routes:
        - matchers: ['team="llm"']
    - matchers: ['severity="info"']
      active_time_intervals: [office]
receivers:
  - name: team
    webhook_configs: [{url: "http://hook.test/", send_resolved: true}]
time_intervals:
  - name: evening
    time_intervals: [{times: [{start_time: "17:00", end_time: "18:00"}]}]
mute_time_intervals:
  - name: office
    time_intervals: [{weekdays: [monday:friday], times: [{start_time: "09:00", end_time: "17:00"}]}]
"""


def dispatcher() -> Dispatcher:
    return build_dispatcher(AlertingConfig.model_validate(yaml.safe_load(CONFIG)), "http://cw")


def run(d: Dispatcher, alerts: list[Alert], now: float) -> list[Notification]:
    d.ingest(alerts, now)
    d.release_unmuted(now)
    return d.flush_due(now)


def sent(notes: list[Notification]) -> list[tuple[str, list[str]]]:
    return [(n.status, [f"{a.labels['alertname']}:{a.status}" for a in n.alerts]) for n in notes]


def drive(d: Dispatcher, alerts: list[Alert], until: float) -> list[tuple[float, Notification]]:
    """Every flush up to `until`, at the times the dispatcher asks for (as run() wakes)."""
    out: list[tuple[float, Notification]] = []
    while (due := d.next_deadline()) is not None and due <= until:
        d.ingest(alerts, due)
        out += [(due, n) for n in d.flush_due(due)]
    return out


def test_a_muted_interval_holds_notifications_and_releases_them_when_it_ends() -> None:
    d = dispatcher()
    early = fire("LLMSlow", T0 + 3000, severity="warning")  # 16:50
    assert sent(run(d, [early], T0 + 3000)) == [("firing", ["LLMSlow:firing"])]
    evening = T0 + 3600  # 17:00
    late = fire("ChatErrors", evening + 60, severity="warning")
    resolved_early = Alert(early.labels, early.annotations, early.starts_at, evening + 120)
    assert run(d, [resolved_early, late], evening + 60) == []  # both groups held
    assert d.next_deadline() == evening + 3600  # 18:00, the end of the interval
    flushes = drive(d, [resolved_early, late], until=evening + 3600)
    # Released at 18:00 sharp, not at a group_interval tick: the late alert fires, and
    # the resolve that happened inside the interval reaches who was told it fired.
    assert sorted((t, n.status, [a.labels["alertname"] for a in n.alerts]) for t, n in flushes) == [
        (evening + 3600, "firing", ["ChatErrors"]),
        (evening + 3600, "resolved", ["LLMSlow"]),
    ]


def test_mute_time_intervals_are_not_inherited_by_child_routes() -> None:
    d = dispatcher()
    evening = T0 + 3600 + 60
    llm = fire("LLMSlow", evening, severity="warning", team="llm")  # the child route
    other = fire("ChatErrors", evening, severity="warning")  # the muted route itself
    assert sent(run(d, [llm, other], evening)) == [("firing", ["LLMSlow:firing"])]


def test_active_time_intervals_send_only_inside_them() -> None:
    d = dispatcher()
    info = fire("Deploy", T0, severity="info")  # Monday 16:00: office hours
    assert sent(run(d, [info], T0)) == [("firing", ["Deploy:firing"])]
    later = fire("Restart", T0 + 3600, severity="info")  # 17:00: outside
    assert run(d, [info, later], T0 + 3600) == []
    # Held until Tuesday 09:00 (woken each hour on the way, at most): the new alert
    # fires, and the old one is reminded of (repeat_interval, 4h, passed meanwhile).
    flushes = drive(d, [info, later], until=T0 + 17 * 3600)
    assert sorted(
        (t - T0, n.status, [a.labels["alertname"] for a in n.alerts]) for t, n in flushes
    ) == [(17 * 3600, "firing", ["Deploy"]), (17 * 3600, "firing", ["Restart"])]


def test_a_reload_that_drops_the_interval_releases_what_it_held() -> None:
    d = dispatcher()
    evening = T0 + 3600 + 60
    warn = fire("ChatErrors", evening, severity="warning")
    assert run(d, [warn], evening) == []
    state = d.to_json()
    plain = CONFIG.replace("      mute_time_intervals: [evening]\n", "")
    cfg = AlertingConfig.model_validate(yaml.safe_load(plain))
    reloaded = build_dispatcher(cfg, "http://cw")
    reloaded.restore(state, evening + 30)
    assert sent(run(reloaded, [warn], evening + 30)) == [("firing", ["ChatErrors:firing"])]
    # The same state restored under the unchanged config stays held until 18:00.
    again = dispatcher()
    again.restore(state, evening + 30)
    assert run(again, [warn], evening + 30) == []
    assert again.next_deadline() == T0 + 2 * 3600


# -- the same config for amtool and chatwatch ---------------------------------------------

ALERTMANAGER_YML = """
route:
  receiver: team
  group_by: [alertname]
  routes:
    - matchers: ['severity="warning"']
      mute_time_intervals: [nights]
      active_time_intervals: [weekdays]
receivers:
  - name: team
    webhook_configs: [{url: "http://hook.test/", send_resolved: true}]
inhibit_rules:
  - source_matchers: ['alertname="LLMProviderErrors"']
    target_matchers: ['alertname="ChatbotErrorsFromLLM"']
    equal: [job]
  - source_match: {severity: critical}
    target_match_re: {severity: "warning|info"}
time_intervals:
  - name: nights
    time_intervals:
      - times: [{start_time: "22:00", end_time: "24:00"}, {start_time: "00:00", end_time: "07:00"}]
        location: Europe/Berlin
  - name: weekdays
    time_intervals:
      - weekdays: ['monday:friday']
        days_of_month: ['1:-1']
        months: ['january:december']
        years: ['2026:2030']
"""


def test_amtool_and_chatwatch_check_accept_the_same_sections(tmp_path: Path) -> None:
    am = tmp_path / "alertmanager.yml"
    am.write_text(ALERTMANAGER_YML)
    result = subprocess.run(
        [require("amtool"), "check-config", str(am)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 inhibit rules" in result.stdout
    cw = tmp_path / "chatwatch.yaml"
    alerting = yaml.safe_load(ALERTMANAGER_YML)
    cw.write_text(
        yaml.safe_dump({"sources": [{"name": "bot", "paths": ["bot.log"]}], "alerting": alerting})
    )
    result = subprocess.run(
        [sys.executable, "-m", "agent", "check", "-c", str(cw)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{cw}: ok"
    # A mistake both refuse: an interval no one defined.
    broken = ALERTMANAGER_YML.replace("[nights]", "[weekends]")
    am.write_text(broken)
    result = subprocess.run(
        [require("amtool"), "check-config", str(am)], capture_output=True, text=True, timeout=30
    )
    assert 'undefined time interval "weekends"' in result.stdout + result.stderr
    alerting = yaml.safe_load(broken)
    cw.write_text(
        yaml.safe_dump({"sources": [{"name": "bot", "paths": ["bot.log"]}], "alerting": alerting})
    )
    result = subprocess.run(
        [sys.executable, "-m", "agent", "check", "-c", str(cw)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "time interval 'weekends' is not defined" in result.stderr


async def test_alerts_that_fired_and_resolved_while_down_respect_muted_routes(
    tmp_path: Path,
) -> None:
    """Catch-up sends an alert that fired and resolved during the downtime once, as
    resolved, to routes with send_resolved; a route muted by a time interval right now
    holds it like any other notification (nothing goes out through it)."""
    hook = HookServer().start()
    try:
        cfg = alerting(
            f"""
time_intervals:
  - name: always
    time_intervals: [{{times: [{{start_time: "00:00", end_time: "24:00"}}]}}]
route:
  receiver: hook
  routes:
    - matchers: ['alertname="Quiet"']
      mute_time_intervals: [always]
receivers:
  - name: hook
    webhook_configs: [{{url: "{hook.url}", send_resolved: true}}]
"""
        )
        now = datetime.now(UTC).timestamp()
        missed = [resolve(fire(name, now - 600), now - 300) for name in ("Quiet", "Loud")]
        async with running(cfg, tmp_path) as notifier:
            assert notifier.send_missed(missed, now) == 1
            await wait_for(lambda: hook.bodies(), what="the resolved notification")
        (body,) = hook.bodies()
        assert body["status"] == "resolved"
        assert [a["labels"]["alertname"] for a in body["alerts"]] == ["Loud"]
    finally:
        hook.stop()
