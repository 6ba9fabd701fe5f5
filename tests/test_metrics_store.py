"""Series caps, expiry, snapshots for the rules, families set by the rules, reloads."""

from __future__ import annotations

import logging
import math
import tracemalloc

import orjson
import pytest

from agent.metrics.config import MetricConfig
from agent.metrics.extract import Extractor
from tests.metrics_support import Pipeline


def test_cardinality_cap_drops_new_label_sets_counts_them_and_bounds_memory(
    caplog: pytest.LogCaptureFixture,
) -> None:
    p = Pipeline(
        {
            "name": "chatbot_requests_by_user_total",
            "type": "counter",
            "labels": {"user": "user_id"},
            "max_series": 500,
        },
        {"name": "chatbot_requests_total", "type": "counter"},
        {
            "name": "chatbot_requests_by_tenant_total",
            "type": "counter",
            "labels": {"tenant": {"field": "user_id", "regex": "(.*)-(.*)", "replacement": "$2"}},
            "max_series": 200,
        },
    )
    # Warm up, then measure what a flood of 100k distinct values costs.
    p.feed(*({"user_id": f"warm-{i}"} for i in range(500)))
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    with caplog.at_level(logging.WARNING, logger="chatwatch.store"):
        for start in range(0, 100_000, 1000):
            p.feed(*({"user_id": f"flood-{i}"} for i in range(start, start + 1000)))
            p.now += 0.3  # the flood lasts 30 s: one warning
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(s.size_diff for s in after.compare_to(before, "filename"))
    assert grown < 1_000_000, f"memory grew by {grown} bytes during the flood"

    series = p.lines("chatbot_requests_by_user_total{")
    assert len(series) == 500
    assert all("warm-" in line for line in series)  # old series keep counting, none replaced
    assert (
        p.value("chatwatch_series_dropped_total", metric="chatbot_requests_by_user_total")
        == 100_000
    )
    assert p.value("chatwatch_series", metric="chatbot_requests_by_user_total") == 500
    # Tenants "0".."199" got in during warm-up; flood-0..flood-199 count on those series.
    tenant_drops = p.value(
        "chatwatch_series_dropped_total", metric="chatbot_requests_by_tenant_total"
    )
    assert tenant_drops == 100_500 - 200 - 200
    assert p.value("chatbot_requests_total") == 100_500  # other metrics unaffected
    warnings = [
        r for r in caplog.records if "chatbot_requests_by_user_total reached" in r.getMessage()
    ]
    assert len(warnings) == 1
    # A known label set still counts after the cap is reached.
    p.feed({"user_id": "warm-7"})
    assert p.value("chatbot_requests_by_user_total", user="warm-7") == 2.0
    # A minute later, the next drop warns again.
    p.now += 61
    with caplog.at_level(logging.WARNING, logger="chatwatch.store"):
        p.feed({"user_id": "late"})
    assert (
        len(
            [
                r
                for r in caplog.records
                if "chatbot_requests_by_user_total reached" in r.getMessage()
            ]
        )
        == 2
    )


def test_default_cap_is_1000_series() -> None:
    p = Pipeline({"name": "x_total", "type": "counter", "labels": {"v": "v"}})
    p.feed(*({"v": i} for i in range(1500)))
    assert len(p.lines("x_total{")) == 1000
    assert p.value("chatwatch_series_dropped_total", metric="x_total") == 500


def test_expire_after_removes_idle_series_from_metrics() -> None:
    p = Pipeline(
        {
            "name": "chatbot_session_messages",
            "type": "gauge",
            "value": "n",
            "labels": {"session": "session"},
            "expire_after": "15m",
        },
        {
            "name": "chatbot_sessions_seen_total",
            "type": "counter",
            "labels": {"session": "session"},
        },
    )
    p.feed({"session": "a", "n": 1}, {"session": "b", "n": 2})
    p.now += 600
    p.feed({"session": "b", "n": 3})
    p.now += 301  # a idle 901 s, b idle 301 s
    p.store.expire(p.now)
    assert p.lines("chatbot_session_messages{") == ['chatbot_session_messages{session="b"} 3.0']
    assert p.value("chatwatch_series", metric="chatbot_session_messages") == 1
    # Counters without expire_after never expire.
    assert len(p.lines("chatbot_sessions_seen_total{")) == 2
    p.now += 10_000
    p.store.expire(p.now)
    assert p.lines("chatbot_session_messages{") == []
    assert len(p.lines("chatbot_sessions_seen_total{")) == 2
    # An expired series comes back, from zero, when it is seen again.
    p.feed({"session": "a", "n": 9})
    assert p.value("chatbot_session_messages", session="a") == 9.0


def test_expired_series_free_room_under_the_cap() -> None:
    p = Pipeline(
        {
            "name": "recent_users_total",
            "type": "counter",
            "labels": {"u": "u"},
            "max_series": 2,
            "expire_after": "1m",
        }
    )
    p.feed({"u": "a"}, {"u": "b"}, {"u": "c"})
    assert len(p.lines("recent_users_total{")) == 2
    p.now += 61
    p.store.expire(p.now)
    p.feed({"u": "c"})
    assert p.lines("recent_users_total{") == ['recent_users_total{u="c"} 1.0']


def test_snapshot_gives_sorted_label_pairs_and_expanded_histograms() -> None:
    p = Pipeline(
        {
            "name": "req_total",
            "type": "counter",
            "labels": {"route": "route", "Zone": "zone"},
            "static_labels": {"app": "bot"},
        },
        {
            "name": "lat_seconds",
            "type": "histogram",
            "value": "s",
            "buckets": [0.5, 1],
            "labels": {"route": "route"},
        },
    )
    p.feed({"route": "/a", "zone": "z1", "s": 0.7}, {"route": "/a", "zone": "z1", "s": 3})
    snap = dict(p.store.snapshot())
    assert snap == {
        (("Zone", "z1"), ("__name__", "req_total"), ("app", "bot"), ("route", "/a")): 2.0,
        (("__name__", "lat_seconds_bucket"), ("le", "0.5"), ("route", "/a")): 0.0,
        (("__name__", "lat_seconds_bucket"), ("le", "1.0"), ("route", "/a")): 1.0,
        (("__name__", "lat_seconds_bucket"), ("le", "+Inf"), ("route", "/a")): 2.0,
        (("__name__", "lat_seconds_sum"), ("route", "/a")): 3.7,
        (("__name__", "lat_seconds_count"), ("route", "/a")): 2.0,
    }
    for key in snap:
        assert list(key) == sorted(key)


def test_snapshot_drops_labels_whose_value_is_empty_as_prometheus_does() -> None:
    # An event without the field gives the label an empty value; in Prometheus a label with
    # an empty value is no label, so rules (and the alert labels they make) must not see it.
    p = Pipeline(
        {"name": "req_total", "type": "counter", "labels": {"route": "route", "err": "err"}},
        {
            "name": "lat_seconds",
            "type": "histogram",
            "value": "s",
            "buckets": [1],
            "labels": {"err": "err"},
        },
    )
    p.feed({"route": "/a", "s": 0.5}, {"route": "/a", "err": "timeout", "s": 2})
    snap = dict(p.store.snapshot())
    assert snap == {
        (("__name__", "req_total"), ("route", "/a")): 1.0,
        (("__name__", "req_total"), ("err", "timeout"), ("route", "/a")): 1.0,
        (("__name__", "lat_seconds_bucket"), ("le", "1.0")): 1.0,
        (("__name__", "lat_seconds_bucket"), ("le", "+Inf")): 1.0,
        (("__name__", "lat_seconds_sum"),): 0.5,
        (("__name__", "lat_seconds_count"),): 1.0,
        (("__name__", "lat_seconds_bucket"), ("err", "timeout"), ("le", "1.0")): 0.0,
        (("__name__", "lat_seconds_bucket"), ("err", "timeout"), ("le", "+Inf")): 1.0,
        (("__name__", "lat_seconds_sum"), ("err", "timeout")): 2.0,
        (("__name__", "lat_seconds_count"), ("err", "timeout")): 1.0,
    }


def test_set_family_shows_recording_rules_and_alerts_on_metrics_and_in_snapshots() -> None:
    p = Pipeline({"name": "req_total", "type": "counter"})
    p.store.set_family(
        "job:chatbot_errors:ratio5m",
        "gauge",
        "Error ratio over 5m.",
        [({"route": "/a"}, 0.25), ({"route": "/b"}, math.nan)],
    )
    p.store.set_family(
        "ALERTS",
        "gauge",
        "Active alerts.",
        [({"__name__": "ALERTS", "alertname": "HighErrors", "alertstate": "firing"}, 1.0)],
    )
    text = p.text()
    assert 'job:chatbot_errors:ratio5m{route="/a"} 0.25' in text
    assert 'ALERTS{alertname="HighErrors",alertstate="firing"} 1.0' in text
    snap = dict(p.store.snapshot())
    assert snap[(("__name__", "job:chatbot_errors:ratio5m"), ("route", "/a"))] == 0.25
    assert (
        snap[(("__name__", "ALERTS"), ("alertname", "HighErrors"), ("alertstate", "firing"))] == 1
    )
    # Replaced as a whole; an empty list removes the family.
    p.store.set_family("ALERTS", "gauge", "Active alerts.", [])
    assert "ALERTS" not in p.text()
    with pytest.raises(ValueError, match="configured metric"):
        p.store.set_family("req_total", "gauge", "", [({}, 1.0)])


def test_reload_keeps_series_of_unchanged_definitions_only() -> None:
    keep = {"name": "kept_total", "type": "counter", "labels": {"r": "r"}}
    change = {"name": "changed_total", "type": "counter", "labels": {"r": "r"}}
    gone = {"name": "gone_total", "type": "counter"}
    p = Pipeline(keep, change, gone)
    p.feed({"r": "x"}, {"r": "x"})
    new = [
        MetricConfig.model_validate({**keep, "help": "New help."}),
        MetricConfig.model_validate({**change, "labels": {"r": "r", "s": "s"}}),
    ]
    p.extractor = Extractor(new, p.store, p.stats, clock=lambda: p.now)
    p.feed({"r": "x", "s": "y"})
    assert p.value("kept_total", r="x") == 3.0
    assert "# HELP kept_total New help." in p.text()
    assert p.lines("changed_total{") == ['changed_total{r="x",s="y"} 1.0']
    assert "gone_total" not in p.text()
    assert p.value("chatwatch_series", metric="gone_total") is None


# -- across restarts (the checkpoint's `metrics` section) ---------------------------------

RESTART_METRICS: list[dict[str, object]] = [
    {"name": "chatbot_replies_total", "type": "counter", "labels": {"model": "model"}},
    {"name": "chatbot_events_total", "type": "counter"},
    {
        "name": "chatbot_reply_seconds",
        "type": "histogram",
        "value": "seconds",
        "buckets": [0.5, 1, 5],
        "labels": {"model": "model"},
    },
    {
        "name": "chatbot_active_sessions",
        "type": "gauge",
        "match": {"event": {"in": ["start", "end"]}},
        "action": {"start": "inc", "end": "dec"},
    },
    {"name": "chatbot_queue_limit", "type": "gauge", "value": "limit"},
    {
        "name": "chatbot_user_replies_total",
        "type": "counter",
        "labels": {"user": "user"},
        "expire_after": "10m",
    },
]


def _restarted(saved: Pipeline, *metrics: dict[str, object]) -> tuple[Pipeline, list[str]]:
    """A new pipeline (same clock) given what `saved` would write into a checkpoint."""
    from agent.metrics.store import values_json

    section = orjson.loads(orjson.dumps(values_json(saved.store.capture(), saved.now)))
    again = Pipeline(*metrics, now=saved.now + 5)
    return again, again.store.restore(section, again.now)


def test_values_come_back_after_a_restart_and_counting_goes_on() -> None:
    p = Pipeline(*RESTART_METRICS)
    p.feed(
        *({"model": "gpt", "seconds": 0.7, "user": "u1"} for _ in range(3)),
        {"model": "claude", "seconds": 7, "user": "u2"},
        {"event": "start"},
        {"event": "start"},
        {"event": "end"},
        {"event": "start"},
        {"limit": math.inf},  # a gauge may hold what JSON cannot
    )
    p.store.take_created()
    before = p.lines("chatbot_")

    again, fresh = _restarted(p, *RESTART_METRICS)
    assert fresh == []
    assert again.lines("chatbot_") == before  # counters, histograms, gauges, label for label
    assert again.value("chatbot_active_sessions") == 2  # not back to 0
    assert again.value("chatbot_queue_limit") == math.inf
    # Restored series are not new: no created-zero, so no fake increase for the rules.
    assert again.store.take_created() == []
    again.feed({"model": "gpt", "seconds": 0.2, "event": "end"})
    assert again.value("chatbot_replies_total", model="gpt") == 4
    assert again.value("chatbot_events_total") == 10
    assert again.value("chatbot_reply_seconds_bucket", model="gpt", le="0.5") == 1
    assert again.value("chatbot_reply_seconds_count", model="gpt") == 4
    assert again.value("chatbot_active_sessions") == 1
    # Series with expire_after keep their idle time across the restart.
    again.now = p.now + 601
    again.store.expire(again.now)
    assert again.value("chatbot_user_replies_total", user="u1") is None


def test_changed_buckets_start_that_metric_fresh_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    p = Pipeline(*RESTART_METRICS)
    p.feed(*({"model": "gpt", "seconds": 0.7} for _ in range(3)))
    changed = [dict(m) for m in RESTART_METRICS]
    changed[2]["buckets"] = [0.5, 1, 2, 5]
    with caplog.at_level(logging.WARNING, logger="chatwatch.store"):
        again, fresh = _restarted(p, *changed)
    assert fresh == ["chatbot_reply_seconds"]
    warnings = [r.getMessage() for r in caplog.records if "chatbot_reply_seconds" in r.getMessage()]
    assert len(warnings) == 1
    assert "buckets [0.5, 1.0, 5.0] -> [0.5, 1.0, 2.0, 5.0]" in warnings[0]
    assert again.value("chatbot_reply_seconds_count", model="gpt") is None
    assert again.value("chatbot_replies_total", model="gpt") == 3  # the others go on


def test_changed_labels_or_type_start_fresh_too() -> None:
    p = Pipeline(*RESTART_METRICS)
    p.feed({"model": "gpt", "event": "start"})
    changed = [dict(m) for m in RESTART_METRICS]
    changed[0]["labels"] = {"model": "model", "route": "route"}
    changed[4] = {
        "name": "chatbot_queue_limit",
        "type": "gauge",
        "value": "limit",
        "labels": {"q": "q"},
    }
    _, fresh = _restarted(p, *changed)
    assert sorted(fresh) == ["chatbot_queue_limit", "chatbot_replies_total"]


def test_restore_keeps_to_max_series() -> None:
    p = Pipeline({"name": "by_user_total", "type": "counter", "labels": {"user": "u"}})
    p.feed(*({"u": str(i)} for i in range(50)))
    again, _ = _restarted(
        p, {"name": "by_user_total", "type": "counter", "labels": {"user": "u"}, "max_series": 20}
    )
    assert len(again.lines("by_user_total{")) == 20
    assert again.value("chatwatch_series", metric="by_user_total") == 20
