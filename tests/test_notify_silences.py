"""Silences and the mute stage with an explicit `now`: what a silenced alert sends, and when.

The store follows Alertmanager 0.25's silence/silence.go (create, update in place or
replace, expire, retention); the dispatcher drops muted alerts before dedup as
Alertmanager's MuteStage does, and sends a still-firing alert at once when its silence
ends. Ends to end with a real Notifier, receivers and the clock: the second half.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import yaml

from agent.alerting.alert import Alert
from agent.notify.config import AlertingConfig
from agent.notify.dispatcher import Dispatcher
from agent.notify.matchers import Matcher, parse_matcher
from agent.notify.mute import MuteStage
from agent.notify.notification import Notification, fingerprint
from agent.notify.notifier import build_dispatcher
from agent.notify.silences import (
    RETENTION,
    Silence,
    SilenceError,
    SilenceFile,
    SilenceNotFound,
    Silences,
)
from agent.support.selfmetrics import SelfMetrics
from tests.notify_support import HookServer, fire, metric, resolve, running, settled, wait_for

T0 = 1_700_000_000.0
HOUR = 3600.0


def silence(*matchers: str, start: float = T0, end: float = T0 + HOUR, sid: str = "") -> Silence:
    return Silence(
        id=sid,
        matchers=[parse_matcher(m) for m in matchers],
        starts_at=start,
        ends_at=end,
        created_by="oncall",
        comment="provider outage",
    )


# -- the store ---------------------------------------------------------------------------


def test_states_follow_start_and_end() -> None:
    s = silence("alertname=X", start=T0 + 10, end=T0 + 20)
    assert [s.state(t) for t in (T0, T0 + 10, T0 + 19.9, T0 + 20)] == [
        "pending",
        "active",
        "active",
        "expired",
    ]


def test_create_gives_a_uuid_and_moves_a_past_start_to_now() -> None:
    store = Silences()
    sid = store.set(silence("alertname=X", start=T0 - 600), now=T0)
    got = store.get(sid)
    assert got is not None and len(sid) == 36 and sid.count("-") == 4
    assert (got.starts_at, got.updated_at) == (T0, T0)
    assert store.mutes({"alertname": "X", "severity": "page"}, T0) == [sid]
    assert store.mutes({"alertname": "Y"}, T0) == []


def test_matchers_are_alertmanagers_all_of_them_must_match() -> None:
    store = Silences()
    sid = store.set(silence('alertname=~"LLM.*"', "provider!=openai", "team=chat"), T0)
    assert store.mutes({"alertname": "LLMErrors", "provider": "anthropic", "team": "chat"}, T0)
    assert not store.mutes({"alertname": "LLMErrors", "provider": "openai", "team": "chat"}, T0)
    assert not store.mutes({"alertname": "xLLMErrors", "team": "chat"}, T0)  # anchored
    assert not store.mutes({"alertname": "LLMErrors"}, T0)
    assert store.mutes({"alertname": "LLMErrors", "team": "chat"}, T0) == [sid]


def test_update_in_place_when_history_is_kept_else_replace_and_expire_the_old() -> None:
    store = Silences()
    sid = store.set(silence("alertname=X"), T0)
    # Same matchers, same start second, later end: updated in place.
    longer = silence("alertname=X", start=T0 + 0.4, end=T0 + 2 * HOUR, sid=sid)
    assert store.set(longer, T0 + 60) == sid
    assert store.get(sid).ends_at == T0 + 2 * HOUR  # type: ignore[union-attr]
    # Other matchers: a new silence; the old one is expired now, kept for history.
    other = silence("alertname=Y", start=T0, end=T0 + HOUR, sid=sid)
    new_id = store.set(other, T0 + 120)
    old = store.get(sid)
    assert new_id != sid and old is not None
    assert (old.state(T0 + 120), old.ends_at) == ("expired", T0 + 120)
    assert store.mutes({"alertname": "Y"}, T0 + 121) == [new_id]
    # An expired silence cannot be updated: posting it again creates a new one.
    again = store.set(silence("alertname=X", start=T0 + 200, end=T0 + HOUR, sid=sid), T0 + 200)
    assert again not in (sid, new_id)


def test_pending_silence_may_move_its_start_but_not_into_the_past() -> None:
    store = Silences()
    sid = store.set(silence("alertname=X", start=T0 + HOUR, end=T0 + 2 * HOUR), T0)
    assert (
        store.set(silence("alertname=X", start=T0 + 2 * HOUR, end=T0 + 3 * HOUR, sid=sid), T0)
        == sid
    )
    replaced = store.set(silence("alertname=X", start=T0 - 10, end=T0 + HOUR, sid=sid), T0)
    assert replaced != sid


def test_unknown_id_and_invalid_silences_are_refused_with_alertmanagers_words() -> None:
    store = Silences()
    with pytest.raises(SilenceNotFound, match=r"^silence not found$"):
        store.set(silence("alertname=X", sid="0b5a6a4f-2c35-4f8f-9a55-8c1a7a0b0c0d"), T0)
    cases = {
        "silence invalid: at least one matcher must not match the empty string": [
            silence("team=~.*"),
            silence('team=""'),
        ],
        "silence invalid: at least one matcher required": [silence()],
        "silence invalid: end time must not be before start time": [
            silence("alertname=X", start=T0 + 10, end=T0)
        ],
    }
    for message, bad in cases.items():
        for s in bad:
            with pytest.raises(SilenceError) as err:
                store.set(s, T0)
            assert str(err.value) == message
    bad_name = Silence("", [Matcher.make("a-b", "=", "x")], T0, T0 + 1, "", "")
    with pytest.raises(SilenceError, match='invalid label matcher 0: invalid label name "a-b"'):
        store.set(bad_name, T0)
    store.set(silence("team!=db"), T0)  # a negative matcher alone is allowed, as upstream
    assert len(store.all()) == 1


def test_expire_active_pending_and_expired() -> None:
    store = Silences()
    active = store.set(silence("alertname=X"), T0)
    pending = store.set(silence("alertname=Y", start=T0 + HOUR, end=T0 + 2 * HOUR), T0)
    store.expire(active, T0 + 5)
    store.expire(pending, T0 + 5)
    a, p = store.get(active), store.get(pending)
    assert a is not None and p is not None
    assert (a.starts_at, a.ends_at, a.state(T0 + 5)) == (T0, T0 + 5, "expired")
    assert (p.starts_at, p.ends_at, p.state(T0 + 5)) == (T0 + 5, T0 + 5, "expired")
    store.expire(active, T0 + 10)  # already expired: nothing changes, no error
    assert store.get(active).ends_at == T0 + 5  # type: ignore[union-attr]
    with pytest.raises(SilenceNotFound):
        store.expire("0b5a6a4f-2c35-4f8f-9a55-8c1a7a0b0c0d", T0)


def test_expired_silences_are_kept_for_the_retention_then_dropped() -> None:
    store = Silences()
    sid = store.set(silence("alertname=X"), T0)
    store.expire(sid, T0 + 1)
    assert store.gc(T0 + 1 + RETENTION - 1) == 0 and store.get(sid) is not None
    assert store.gc(T0 + 1 + RETENTION) == 1 and store.get(sid) is None
    assert RETENTION == 120 * HOUR


def test_file_round_trip_and_an_unreadable_file_is_kept_aside(tmp_path: Path) -> None:
    store = Silences()
    sid = store.set(silence('alertname=~"LLM.*"', "provider!=openai"), T0)
    file = SilenceFile(tmp_path / "silences.json")
    file.save(store)
    again = Silences()
    again.restore(file.load(), T0 + 1)
    assert [s.to_json() for s in again.all()] == [s.to_json() for s in store.all()]
    assert again.mutes({"alertname": "LLMDown", "provider": "x"}, T0 + 1) == [sid]
    (tmp_path / "silences.json").write_bytes(b'{"version": 1, "silences": [{"id": 1}]}')
    assert SilenceFile(tmp_path / "silences.json").load() == []
    assert (tmp_path / "silences.unreadable").exists()


# -- the mute stage in the dispatcher ----------------------------------------------------------

ROUTES = """
route: {receiver: team, group_by: [alertname], group_wait: 0s, group_interval: 1m,
        repeat_interval: 4h}
receivers:
  - name: team
    slack_configs: [{api_url: "http://slack.test/hook", send_resolved: true}]
    webhook_configs: [{url: "http://hook.test/", send_resolved: true}]
"""


@pytest.fixture
def setup() -> Iterator[tuple[Dispatcher, Silences]]:
    store = Silences()
    cfg = AlertingConfig.model_validate(yaml.safe_load(ROUTES))
    yield build_dispatcher(cfg, "http://chatwatch:9317", MuteStage(store)), store


def sent(notes: list[Notification]) -> list[tuple[str, str, list[str]]]:
    return [
        (n.integration, n.status, [f"{a.labels['alertname']}:{a.status}" for a in n.alerts])
        for n in notes
    ]


def run(d: Dispatcher, alerts: list[Alert], now: float) -> list[Notification]:
    """One evaluation's alerts, then what is due: as the Notifier does each tick."""
    d.ingest(alerts, now)
    d.release_unmuted(now)
    return d.flush_due(now)


def test_silenced_before_it_fires_nothing_is_sent_and_its_end_sends_at_once(
    setup: tuple[Dispatcher, Silences],
) -> None:
    d, store = setup
    sid = store.set(silence("alertname=LLMDown", end=T0 + 600), T0)
    alert = fire("LLMDown", T0 + 10, provider="openai")
    assert run(d, [alert], T0 + 10) == []
    assert d.take_suppressed() == {"silence": 1}
    assert run(d, [alert], T0 + 70) == []  # the group's next flush: still silenced
    store.expire(sid, T0 + 95)
    # Not a minute later (group_interval): the next tick after the silence ended.
    assert sent(run(d, [alert], T0 + 95)) == [
        ("team/slack[0]", "firing", ["LLMDown:firing"]),
        ("team/webhook[0]", "firing", ["LLMDown:firing"]),
    ]
    assert run(d, [alert], T0 + 96) == []


def test_silenced_after_it_was_announced_is_sent_again_when_the_silence_ends(
    setup: tuple[Dispatcher, Silences],
) -> None:
    """Alertmanager would wait for repeat_interval here (its notification log still holds
    the alert); chatwatch sends at once, as issue 15 asks, and docs/notify.md says."""
    d, store = setup
    alert = fire("LLMDown", T0)
    assert len(run(d, [alert], T0)) == 2
    store.set(silence("alertname=LLMDown", start=T0 + 30, end=T0 + 300), T0 + 30)
    assert run(d, [alert], T0 + 60) == []
    assert run(d, [alert], T0 + 120) == []
    # The silence ends by itself: released at its end, not at the next group_interval.
    assert sent(run(d, [alert], T0 + 300)) == [
        ("team/slack[0]", "firing", ["LLMDown:firing"]),
        ("team/webhook[0]", "firing", ["LLMDown:firing"]),
    ]


def test_a_silenced_alert_that_resolves_sends_no_resolved(
    setup: tuple[Dispatcher, Silences],
) -> None:
    d, store = setup
    alert = fire("LLMDown", T0)
    run(d, [alert], T0)
    sid = store.set(silence("alertname=LLMDown"), T0 + 10)
    assert run(d, [resolve(alert, T0 + 30)], T0 + 60) == []
    store.expire(sid, T0 + 70)
    assert run(d, [resolve(alert, T0 + 30)], T0 + 120) == []
    assert d.groups == {}


def test_in_a_group_only_the_silenced_alert_is_left_out(
    setup: tuple[Dispatcher, Silences],
) -> None:
    d, store = setup
    store.set(silence("alertname=LLMDown", "provider=openai"), T0)
    openai = fire("LLMDown", T0, provider="openai")
    anthropic = fire("LLMDown", T0, provider="anthropic")
    notes = run(d, [openai, anthropic], T0)
    assert [[a.labels["provider"] for a in n.alerts] for n in notes] == [["anthropic"]] * 2
    assert d.take_suppressed() == {"silence": 1}


def test_pending_silence_mutes_from_its_start(setup: tuple[Dispatcher, Silences]) -> None:
    d, store = setup
    store.set(silence("alertname=Deploy", start=T0 + 100, end=T0 + 400), T0)
    first = fire("Deploy", T0, env="a")
    assert len(run(d, [first], T0)) == 2  # pending: not muted yet
    second = fire("Deploy", T0 + 150, env="b")
    assert run(d, [first, second], T0 + 180) == []  # active: both left out
    assert d.take_suppressed() == {"silence": 2}


# -- end to end: a real Notifier, real receivers, the clock ---------------------------------


@pytest.fixture
def hook() -> Iterator[HookServer]:
    server = HookServer().start()
    yield server
    server.stop()


def live_config(hook: HookServer) -> AlertingConfig:
    return AlertingConfig.model_validate(
        yaml.safe_load(f"""
route: {{receiver: team, group_by: [alertname], group_wait: 0s, group_interval: 1h,
        repeat_interval: 4h}}
receivers:
  - name: team
    slack_configs: [{{api_url: "{hook.url}/slack", send_resolved: true}}]
    webhook_configs: [{{url: "{hook.url}/webhook", send_resolved: true}}]
""")
    )


def suppressed(stats: SelfMetrics) -> float:
    return metric(stats, "chatwatch_notifications_suppressed_total", "silence")


def paths(hook: HookServer) -> list[str]:
    return sorted(r.path for r in hook.requests)


async def test_silence_survives_a_notifier_restart_and_expiring_it_notifies_at_once(
    tmp_path: Path, hook: HookServer
) -> None:
    cfg = live_config(hook)
    stats = SelfMetrics()
    alert = fire("LLMDown", time.time() - 5, provider="openai")
    async with running(cfg, tmp_path, stats) as n:
        sid = n.set_silence(
            silence("alertname=LLMDown", start=time.time(), end=time.time() + HOUR), time.time()
        )
        n.send([alert], time.time())
        await wait_for(lambda: suppressed(stats) >= 1, what="the group flushed, muted")
        assert await settled(n) == []
        assert hook.requests == []

    saved = orjson.loads((tmp_path / "silences.json").read_bytes())
    assert [s["id"] for s in saved["silences"]] == [sid]

    async with running(cfg, tmp_path, SelfMetrics()) as n:
        n.send([alert], time.time())
        (group,) = n.dispatcher.groups.values()
        assert group.muted == {fingerprint(alert.labels)}  # restored with the silence
        assert await settled(n) == []  # still silenced after the restart
        assert hook.requests == []
        expired_at = time.monotonic()
        n.expire_silence(sid, time.time())
        n.send([alert], time.time())
        await wait_for(lambda: len(hook.requests) == 2, what="firing on slack and webhook")
        assert max(r.at for r in hook.requests) - expired_at < 1.0  # group_interval is 1h
        assert await settled(n) == []
    assert paths(hook) == ["/hook/slack", "/hook/webhook"]
    (webhook,) = [r.json() for r in hook.requests if r.path == "/hook/webhook"]
    assert webhook["status"] == "firing"


async def test_a_silence_that_runs_out_releases_its_alert_at_its_end(
    tmp_path: Path, hook: HookServer
) -> None:
    cfg = live_config(hook)
    async with running(cfg, tmp_path) as n:
        now = time.time()
        ends = time.monotonic() + 1.0
        n.set_silence(silence("alertname=LLMDown", start=now, end=now + 1.0), now)
        n.send([fire("LLMDown", now - 5)], now)
        assert await settled(n, horizon=0.5) == []
        await wait_for(lambda: len(hook.requests) == 2, timeout=10, what="sent at the end")
    # Woken by the silence's end: not by a group timer (an hour away) nor a new report.
    first = min(r.at for r in hook.requests)
    assert ends - 0.05 <= first < ends + 1.0


async def test_a_silence_that_cannot_be_saved_is_not_set(tmp_path: Path, hook: HookServer) -> None:
    stats = SelfMetrics()
    (tmp_path / "silences.json").mkdir()  # a write cannot replace it, even as root
    async with running(live_config(hook), tmp_path, stats) as n:
        now = time.time()
        with pytest.raises(OSError):
            n.set_silence(silence("alertname=X", start=now, end=now + 60), now)
        assert n.silences.all() == []
    assert metric(stats, "chatwatch_state_write_failures_total", "silences") == 1
