"""Events in, the counts a scrape of /metrics shows out: each metric type and option."""

from __future__ import annotations

import pytest

from agent.config import Config
from tests.metrics_support import Pipeline


def http(route: str = "/api/chat", status: object = 200, **extra: object) -> dict[str, object]:
    return {"event": "http_request", "route": route, "status_code": status, **extra}


def test_counter_counts_matching_events_by_labels() -> None:
    p = Pipeline(
        {
            "name": "chatbot_http_requests_total",
            "type": "counter",
            "help": "HTTP requests.",
            "match": {"event": "http_request"},
            "labels": {"route": "route", "status_code": "status_code"},
        }
    )
    p.feed(http(), http(), http(status=503), http("/health"), {"event": "llm_call"})
    assert p.lines("chatbot_http_requests_total{") == [
        'chatbot_http_requests_total{route="/api/chat",status_code="200"} 2.0',
        'chatbot_http_requests_total{route="/api/chat",status_code="503"} 1.0',
        'chatbot_http_requests_total{route="/health",status_code="200"} 1.0',
    ]
    assert "# HELP chatbot_http_requests_total HTTP requests." in p.text()
    assert "# TYPE chatbot_http_requests_total counter" in p.text()


def test_counter_adds_a_value_field_and_numbers_in_strings() -> None:
    p = Pipeline(
        {
            "name": "llm_cost_usd_total",
            "type": "counter",
            "match": {"event": "llm_call"},
            "value": "cost_usd",
            "labels": {"model": "model"},
        }
    )
    p.feed(
        {"event": "llm_call", "model": "m1", "cost_usd": 0.25},
        {"event": "llm_call", "model": "m1", "cost_usd": "0.5"},
        {"event": "llm_call", "model": "m1", "cost_usd": 1},
    )
    assert p.value("llm_cost_usd_total", model="m1") == 1.75


def test_gauge_inc_dec_tracks_active_sessions() -> None:
    p = Pipeline(
        {
            "name": "chatbot_active_sessions",
            "type": "gauge",
            "match": {"event": {"in": ["session_started", "session_ended"]}},
            "action": {"session_started": "inc", "session_ended": "dec"},
        }
    )
    for _ in range(5):
        p.feed({"event": "session_started"})
    p.feed({"event": "session_ended"}, {"event": "session_ended"}, {"event": "other"})
    assert p.lines("chatbot_active_sessions ") == ["chatbot_active_sessions 3.0"]
    p.feed(*[{"event": "session_ended"}] * 3)
    assert p.lines("chatbot_active_sessions ") == ["chatbot_active_sessions 0.0"]


def test_gauge_action_field_chooses_among_several_match_fields() -> None:
    p = Pipeline(
        {
            "name": "queue_depth",
            "type": "gauge",
            "match": {"component": "queue", "kind": {"in": ["push", "pop", "reset"]}},
            "action_field": "kind",
            "action": {"push": "inc", "pop": "dec", "reset": "set"},
            "value": "n",
        }
    )
    p.feed(
        {"component": "queue", "kind": "push", "n": 4},
        {"component": "queue", "kind": "pop", "n": 1},
        {"component": "other", "kind": "push", "n": 100},
    )
    assert p.value("queue_depth") == 3.0
    p.feed({"component": "queue", "kind": "reset", "n": "10"})
    assert p.value("queue_depth") == 10.0


def test_gauge_set_from_value_per_label() -> None:
    p = Pipeline(
        {
            "name": "chatbot_queue_length",
            "type": "gauge",
            "match": {"event": "queue_stats"},
            "value": "stats.length",
            "labels": {"queue": "queue"},
        }
    )
    p.feed(
        {"event": "queue_stats", "queue": "a", "stats": {"length": 7}},
        {"event": "queue_stats", "queue": "a", "stats": {"length": 2}},
        {"event": "queue_stats", "queue": "b", "stats": {"length": 9}},
    )
    assert p.value("chatbot_queue_length", queue="a") == 2.0
    assert p.value("chatbot_queue_length", queue="b") == 9.0


def test_set_to_event_time_uses_the_timestamp_field_or_the_clock() -> None:
    p = Pipeline(
        {
            "name": "chatbot_last_error_timestamp_seconds",
            "type": "gauge",
            "match": {"level": "error"},
            "action": "set_to_event_time",
            "timestamp_field": "ts",
        },
        {
            "name": "chatbot_last_event_seen_seconds",
            "type": "gauge",
            "action": "set_to_event_time",
        },
        now=1234.5,
    )
    p.feed({"level": "error", "ts": "2024-05-01T12:00:00Z"})
    assert p.value("chatbot_last_error_timestamp_seconds") == 1714564800.0
    p.feed({"level": "error", "ts": 1714564900123})  # epoch milliseconds
    assert p.value("chatbot_last_error_timestamp_seconds") == pytest.approx(1714564900.123)
    p.feed({"level": "error", "ts": 1714564950_000_000})  # microseconds
    assert p.value("chatbot_last_error_timestamp_seconds") == 1714564950.0
    p.feed({"level": "error", "ts": "2024-05-01 12:01:00,250"})  # no zone: UTC, as replay
    assert p.value("chatbot_last_error_timestamp_seconds") == 1714564860.25
    p.feed({"level": "error", "ts": "1714564900.123"})
    assert p.value("chatbot_last_error_timestamp_seconds") == pytest.approx(1714564900.123)
    p.feed({"level": "error", "ts": "yesterday"}, {"level": "error"})
    assert p.value("chatbot_last_error_timestamp_seconds") == pytest.approx(1714564900.123)
    errors = "chatwatch_extract_errors_total"
    assert (
        p.value(errors, metric="chatbot_last_error_timestamp_seconds", reason="bad_timestamp") == 1
    )
    assert (
        p.value(errors, metric="chatbot_last_error_timestamp_seconds", reason="missing_timestamp")
        == 1
    )
    assert p.value("chatbot_last_event_seen_seconds") == 1234.5


def test_histogram_buckets_are_cumulative_with_exact_sum_and_count() -> None:
    p = Pipeline(
        {
            "name": "chatbot_http_request_duration_seconds",
            "type": "histogram",
            "match": {"event": "http_request"},
            "value": "duration_ms",
            "scale": 0.001,
            "buckets": [0.1, 0.5, 1, 2.5],
            "labels": {"route": "route"},
        }
    )
    # 100 ms sits exactly on a bound: `le` is inclusive, as in Prometheus.
    for ms in (50, 100, 100.5, 499, 500, 900, 2500, 2500.001, 9000):
        p.feed(http(duration_ms=ms))
    p.feed(http(route="/other", duration_ms="250"))
    name = "chatbot_http_request_duration_seconds"
    assert p.lines(name + "_bucket{") == [
        f'{name}_bucket{{le="0.1",route="/api/chat"}} 2.0',
        f'{name}_bucket{{le="0.5",route="/api/chat"}} 5.0',
        f'{name}_bucket{{le="1.0",route="/api/chat"}} 6.0',
        f'{name}_bucket{{le="2.5",route="/api/chat"}} 7.0',
        f'{name}_bucket{{le="+Inf",route="/api/chat"}} 9.0',
        f'{name}_bucket{{le="0.1",route="/other"}} 0.0',
        f'{name}_bucket{{le="0.5",route="/other"}} 1.0',
        f'{name}_bucket{{le="1.0",route="/other"}} 1.0',
        f'{name}_bucket{{le="2.5",route="/other"}} 1.0',
        f'{name}_bucket{{le="+Inf",route="/other"}} 1.0',
    ]
    assert p.value(name + "_count", route="/api/chat") == 9.0
    total_ms = 50 + 100 + 100.5 + 499 + 500 + 900 + 2500 + 2500.001 + 9000
    assert p.value(name + "_sum", route="/api/chat") == pytest.approx(total_ms / 1000)


def test_histogram_default_buckets_are_prometheus_defaults() -> None:
    p = Pipeline({"name": "latency_seconds", "type": "histogram", "value": "s"})
    p.feed({"s": 0.3})
    les = [line.split('le="')[1].split('"')[0] for line in p.lines("latency_seconds_bucket")]
    assert les == [
        "0.005", "0.01", "0.025", "0.05", "0.075", "0.1", "0.25", "0.5", "0.75",
        "1.0", "2.5", "5.0", "7.5", "10.0", "+Inf",
    ]  # fmt: skip


def test_relabelling_turns_status_codes_into_classes() -> None:
    p = Pipeline(
        {
            "name": "chatbot_responses_total",
            "type": "counter",
            "match": {"event": "http_request"},
            "labels": {
                "status_class": {
                    "field": "status_code",
                    "regex": "([1-5])\\d\\d",
                    "replacement": "${1}xx",
                    "default": "unknown",
                },
                "route_group": {
                    "field": "route",
                    "regex": "/api/(?P<group>[a-z]+)(/.*)?",
                    "replacement": "$group",
                },
            },
        }
    )
    p.feed(
        http(status=503),
        http(status="502"),
        http("/api/sessions/42", status=200),
        http(status="teapot"),
        http(route="/metrics", status=None),
    )
    assert p.lines("chatbot_responses_total{") == [
        'chatbot_responses_total{route_group="chat",status_class="5xx"} 2.0',
        'chatbot_responses_total{route_group="sessions",status_class="2xx"} 1.0',
        'chatbot_responses_total{route_group="chat",status_class="unknown"} 1.0',
        'chatbot_responses_total{route_group="",status_class="unknown"} 1.0',
    ]


def test_static_and_origin_labels() -> None:
    from agent.decode.events import Origin

    p = Pipeline(
        {
            "name": "lines_total",
            "type": "counter",
            "static_labels": {"app": "support-bot"},
            "origin_labels": ["source", "path"],
        }
    )
    p.feed({"a": 1}, {"a": 2})
    p.feed({"a": 3}, origin=Origin("worker", "/var/log/worker.log"))
    assert (
        p.value("lines_total", app="support-bot", source="chatbot", path="/var/log/chatbot/app.log")
        == 2.0
    )
    assert (
        p.value("lines_total", app="support-bot", source="worker", path="/var/log/worker.log") == 1
    )


@pytest.mark.parametrize(
    ("condition", "matching"),
    [
        ({"status": 503}, ["503", "503s"]),
        ({"status": {"in": [500, 503]}}, ["500", "503", "503s"]),
        ({"status": {"not": 200}}, ["500", "503", "503s", "none", "missing", "text"]),
        ({"status": {"not": [200, 503]}}, ["500", "none", "missing", "text"]),
        ({"status": {"regex": "5.."}}, ["500", "503", "503s"]),
        ({"status": {"regex": "5"}}, []),  # full match, as Prometheus
        ({"status": {"exists": True}}, ["200", "500", "503", "503s", "text"]),
        ({"status": {"exists": False}}, ["none", "missing"]),
        ({"status": {"gte": 500}}, ["500", "503", "503s"]),
        ({"status": {"gt": 200, "lt": 503}}, ["500"]),
        ({"status": {"lte": 200}}, ["200"]),
        ({"status": None}, ["none", "missing"]),
    ],
)
def test_match_operators(condition: dict[str, object], matching: list[str]) -> None:
    p = Pipeline(
        {"name": "hits_total", "type": "counter", "match": condition, "labels": {"id": "id"}}
    )
    p.feed(
        {"id": "200", "status": 200},
        {"id": "500", "status": 500},
        {"id": "503", "status": 503},
        {"id": "503s", "status": "503"},
        {"id": "none", "status": None},
        {"id": "missing"},
        {"id": "text", "status": "teapot"},
    )
    got = sorted(line.split('"')[1] for line in p.lines("hits_total{"))
    assert got == sorted(matching)


def test_all_match_conditions_must_hold_and_booleans_compare_as_text() -> None:
    p = Pipeline(
        {
            "name": "cache_hits_total",
            "type": "counter",
            "match": {"event": "cache", "hit": True, "tier": {"not": "cold"}},
        }
    )
    p.feed(
        {"event": "cache", "hit": True},
        {"event": "cache", "hit": "true", "tier": "warm"},
        {"event": "cache", "hit": True, "tier": "cold"},
        {"event": "cache", "hit": False},
        {"event": "cache", "hit": 1},
        {"event": "other", "hit": True},
    )
    assert p.value("cache_hits_total") == 2.0


def test_nested_and_dotted_field_paths() -> None:
    p = Pipeline(
        {
            "name": "llm_prompt_tokens_total",
            "type": "counter",
            "match": {"event": "llm_call", "usage.prompt_tokens": {"gt": 0}},
            "value": "usage.prompt_tokens",
            "labels": {"model": "request.params.model"},
        }
    )
    p.feed(
        {
            "event": "llm_call",
            "usage": {"prompt_tokens": 100},
            "request": {"params": {"model": "a"}},
        },
        {"event": "llm_call", "usage.prompt_tokens": 20, "request": {"params": {"model": "a"}}},
        {"event": "llm_call", "usage": {"prompt_tokens": 0}, "request": {"params": {"model": "a"}}},
        {"event": "llm_call", "usage": "n/a", "request": {"params": {"model": "a"}}},
        {"event": "llm_call", "usage": {"prompt_tokens": 5}, "request": "broken"},
    )
    assert p.value("llm_prompt_tokens_total", model="a") == 120.0
    assert p.value("llm_prompt_tokens_total", model="") == 5.0


def test_unusable_values_skip_the_event_and_are_counted_by_reason() -> None:
    p = Pipeline(
        {
            "name": "llm_tokens_total",
            "type": "counter",
            "match": {"event": "llm_call"},
            "value": "tokens",
        },
        {
            "name": "llm_latency_seconds",
            "type": "histogram",
            "match": {"event": "llm_call"},
            "value": "latency",
        },
    )
    p.feed(
        {"event": "llm_call", "tokens": 10, "latency": 0.2},
        {"event": "llm_call", "tokens": "12.5", "latency": "0.3"},
        {"event": "llm_call", "tokens": "lots", "latency": True},
        {"event": "llm_call", "tokens": [1], "latency": "NaN"},
        {"event": "llm_call", "latency": {"ms": 3}},
        {"event": "llm_call", "tokens": -3},
        {"event": "llm_call", "tokens": None},
    )
    assert p.value("llm_tokens_total") == 22.5
    assert p.value("llm_latency_seconds_count") == 2.0
    errors = "chatwatch_extract_errors_total"
    assert p.value(errors, metric="llm_tokens_total", reason="not_a_number") == 2
    assert p.value(errors, metric="llm_tokens_total", reason="missing_value") == 2
    assert p.value(errors, metric="llm_tokens_total", reason="negative_value") == 1
    assert p.value(errors, metric="llm_latency_seconds", reason="not_a_number") == 3
    assert p.value(errors, metric="llm_latency_seconds", reason="missing_value") == 2


def test_label_values_from_numbers_booleans_and_objects() -> None:
    p = Pipeline({"name": "seen_total", "type": "counter", "labels": {"v": "v"}})
    p.feed(
        {"v": 200}, {"v": 200.0}, {"v": 2.5}, {"v": False}, {"v": {"b": 1, "a": [2]}}, {"v": None}
    )
    assert sorted(p.lines("seen_total{")) == sorted(
        [
            'seen_total{v="200"} 2.0',
            'seen_total{v="2.5"} 1.0',
            'seen_total{v="false"} 1.0',
            'seen_total{v="{\\"a\\":[2],\\"b\\":1}"} 1.0',
            'seen_total{v=""} 1.0',
        ]
    )


def test_definitions_indexed_on_different_fields_all_see_their_events() -> None:
    p = Pipeline(
        {"name": "a_total", "type": "counter", "match": {"event": "x"}},
        {"name": "b_total", "type": "counter", "match": {"event": {"in": ["x", "y"]}}},
        {"name": "c_total", "type": "counter", "match": {"kind": "k", "event": {"regex": "x|z"}}},
        {"name": "d_total", "type": "counter", "match": {"level": {"not": "debug"}}},
        {"name": "e_total", "type": "counter"},
    )
    p.feed(
        {"event": "x", "kind": "k", "level": "info"},
        {"event": "y", "kind": "k", "level": "debug"},
        {"event": "z", "kind": "k"},
        {"event": "z", "kind": "j"},
        {"kind": "k"},
    )
    assert [p.value(f"{n}_total") for n in "abcde"] == [1.0, 2.0, 2.0, 4.0, 5.0]


def test_a_second_batch_continues_the_same_series() -> None:
    p = Pipeline({"name": "n_total", "type": "counter", "match": {"event": "x"}})
    for _ in range(3):
        p.feed(*[{"event": "x"}] * 1000)
    assert p.value("n_total") == 3000.0


def test_many_indexed_values_dispatch_through_a_table() -> None:
    kinds = [f"kind{i}" for i in range(20)]
    p = Pipeline(
        {"name": "some_total", "type": "counter", "match": {"event": {"in": kinds[:12]}}},
        {"name": "each_total", "type": "counter", "match": {"event": "kind15"}},
        *(
            {"name": f"k{i}_total", "type": "counter", "match": {"event": f"kind{i}"}}
            for i in range(5)
        ),
    )
    p.feed(*({"event": k} for k in kinds * 3), {"event": 15}, {"event": ["kind1"]})
    assert p.value("some_total") == 36.0
    assert p.value("each_total") == 3.0
    assert [p.value(f"k{i}_total") for i in range(5)] == [3.0] * 5


def test_a_required_label_skips_events_without_it_and_counts_them() -> None:
    p = Pipeline(
        {
            "name": "chatbot_messages_total",
            "type": "counter",
            "labels": {
                "session": {"field": "session_id", "required": True},
                "channel": {"field": "channel", "default": "web"},
            },
        }
    )
    p.feed({"session_id": "s1"}, {"session_id": "s1", "channel": "sms"}, {"channel": "sms"}, {})
    assert p.lines("chatbot_messages_total{") == [
        'chatbot_messages_total{channel="web",session="s1"} 1.0',
        'chatbot_messages_total{channel="sms",session="s1"} 1.0',
    ]
    reason = {"metric": "chatbot_messages_total", "reason": "missing_label"}
    assert p.value("chatwatch_extract_errors_total", **reason) == 2.0


def test_long_label_values_are_cut_on_a_character_boundary_and_counted() -> None:
    p = Pipeline(
        {
            "name": "chat_messages_total",
            "type": "counter",
            "labels": {
                "user": "user_id",
                "kind": {"field": "kind", "regex": "(.*)", "replacement": "k-$1"},
                "tier": {"field": "tier", "map": {"gold": "gold"}, "default": "other"},
            },
            "max_label_value_bytes": 16,
        }
    )
    long_kind = "y" * 100
    p.feed(
        {"user_id": "é" * 9, "kind": long_kind, "tier": "z" * 100},  # 18 bytes, 9 chars
        {"user_id": "é" * 9, "kind": long_kind, "tier": "gold"},
        {"user_id": "exactly-16-bytes", "kind": "a", "tier": "gold"},
        {"user_id": 12345678901234567890, "kind": "a", "tier": "gold"},  # a number's text
    )
    # 13 bytes of `é`s is 6 characters and half of one: cut back to 6, then the marker.
    cut = "é" * 6 + "…"
    assert len(cut.encode()) == 15
    assert p.value("chat_messages_total", user=cut, kind="k-" + "y" * 11 + "…", tier="other")
    assert p.value("chat_messages_total", user=cut, kind="k-" + "y" * 11 + "…", tier="gold")
    assert p.value("chat_messages_total", user="exactly-16-bytes", kind="k-a", tier="gold") == 1
    assert p.value("chat_messages_total", user="1234567890123…", kind="k-a", tier="gold") == 1
    assert (
        p.value(
            "chatwatch_label_values_truncated_total", metric="chat_messages_total", label="user"
        )
        == 3
    )
    assert (
        p.value(
            "chatwatch_label_values_truncated_total", metric="chat_messages_total", label="kind"
        )
        == 2
    )
    # A mapped label is bounded by its map and default: never cut, never counted.
    assert (
        p.value(
            "chatwatch_label_values_truncated_total", metric="chat_messages_total", label="tier"
        )
        is None
    )


def test_label_value_cap_defaults_to_the_root_setting() -> None:
    def cap(root: dict[str, object], metric: dict[str, object]) -> int | None:
        cfg = Config.model_validate(
            {
                "sources": [{"name": "a", "paths": ["/x.log"]}],
                **root,
                "metrics": [{"name": "m_total", "type": "counter", **metric}],
            }
        )
        return cfg.metrics[0].max_label_value_bytes

    assert cap({}, {}) == 1024
    assert cap({"max_label_value_bytes": 200}, {}) == 200
    assert cap({"max_label_value_bytes": 200}, {"max_label_value_bytes": 5000}) == 5000
    with pytest.raises(ValueError, match="greater than or equal to 16"):
        cap({}, {"max_label_value_bytes": 3})
