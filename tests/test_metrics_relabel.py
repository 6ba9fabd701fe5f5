"""Label values kept bounded without hand-written regexes (`map`, `path_template`), and
the field expressions a definition can read: alternatives (`a | b`), sums (`a + b`) and
value maps. Counts are what a scrape of /metrics shows."""

from __future__ import annotations

import re
import uuid

import pytest
from pydantic import ValidationError

from agent.metrics.config import MetricConfig
from agent.metrics.extract import template_path
from tests.metrics_support import Pipeline

OUTCOMES = {"Escalated to agent": "escalated", "Resolved by bot": "resolved"}


def test_map_turns_free_text_into_a_few_label_values() -> None:
    p = Pipeline(
        {
            "name": "conversations_total",
            "type": "counter",
            "match": {"event": "conversation_ended"},
            "labels": {"outcome": {"field": "outcome", "map": OUTCOMES, "default": "other"}},
        }
    )
    ended = ["Escalated to agent", "Resolved by bot", "Resolved by bot", "User left", None]
    p.feed(*({"event": "conversation_ended", "outcome": o} for o in ended))
    expected = {"escalated": 1.0, "resolved": 2.0, "other": 2.0}  # unmapped and missing
    assert {o: p.value("conversations_total", outcome=o) for o in expected} == expected
    assert len(p.lines("conversations_total{")) == 3


def test_map_keys_written_as_numbers_or_booleans_match_the_text_of_the_value() -> None:
    p = Pipeline(
        {
            "name": "responses_total",
            "type": "counter",
            "labels": {
                "class": {"field": "status", "map": {200: "ok", 404: "not_found"}},
                "cached": {"field": "cached", "map": {True: "hit", False: "miss"}},
            },
        }
    )
    p.feed({"status": 200, "cached": True}, {"status": "404", "cached": False})
    assert p.value("responses_total", **{"class": "ok", "cached": "hit"}) == 1.0
    assert p.value("responses_total", **{"class": "not_found", "cached": "miss"}) == 1.0


def test_regex_then_map() -> None:
    p = Pipeline(
        {
            "name": "handoffs_total",
            "type": "counter",
            "labels": {
                "reason": {
                    "field": "msg",
                    "regex": "handoff: (.*)",
                    "map": {"angry customer": "sentiment", "asked for human": "request"},
                    "default": "unknown",
                }
            },
        }
    )
    p.feed({"msg": "handoff: asked for human"}, {"msg": "handoff: angry customer"}, {"msg": "x"})
    assert p.value("handoffs_total", reason="request") == 1.0
    assert p.value("handoffs_total", reason="sentiment") == 1.0
    assert p.value("handoffs_total", reason="unknown") == 1.0


ID_PATHS = [
    (f"/sessions/{uuid.UUID(int=7)}/messages", "/sessions/:id/messages"),
    ("/sessions/8F2C4E1A-0B1C-4D2E-9F3A-0123456789AB/messages", "/sessions/:id/messages"),
    ("/users/42/orders/1001", "/users/:id/orders/:id"),
    ("/files/5f1d7a3b9c2e4d6f8a0b1c2d", "/files/:id"),  # a Mongo ObjectId
    ("/commits/9fceb02d0ae598e95dc970b74767f19372d61af8/diff", "/commits/:id/diff"),
    ("/api/v1/chat?session=8f2c&page=2", "/api/v1/chat"),
    ("/api/v2/chat#top", "/api/v2/chat"),
    ("/healthz", "/healthz"),
    ("/feedback/deadbeef", "/feedback/deadbeef"),  # a word, not an id: no digit
    ("/assets/app.3f2c1a9b.js", "/assets/app.3f2c1a9b.js"),  # not a whole segment
    ("/v1/models/gpt-4o", "/v1/models/gpt-4o"),
    ("/", "/"),
]


@pytest.mark.parametrize(("path", "route"), ID_PATHS)
def test_path_template_replaces_id_segments(path: str, route: str) -> None:
    assert template_path(path) == route


def test_path_template_keeps_route_labels_bounded() -> None:
    p = Pipeline(
        {
            "name": "http_requests_total",
            "type": "counter",
            "labels": {"route": {"field": "path", "path_template": True}},
            "max_series": 10,
        }
    )
    paths = [f"/sessions/{uuid.uuid4()}/messages" for _ in range(300)]
    paths += [f"/users/{n}/orders" for n in range(300)]
    p.feed(*({"path": path} for path in paths))
    assert p.value("http_requests_total", route="/sessions/:id/messages") == 300.0
    assert p.value("http_requests_total", route="/users/:id/orders") == 300.0
    assert p.value("chatwatch_series_dropped_total", metric="http_requests_total") in (None, 0.0)


def test_alternatives_read_the_first_field_present() -> None:
    p = Pipeline(
        {
            "name": "llm_calls_total",
            "type": "counter",
            "match": {"gen_ai.request.model | model": {"exists": True}},
            "labels": {"model": "gen_ai.request.model | model"},
        }
    )
    p.feed(
        {"gen_ai.request.model": "a", "model": "ignored"},
        {"gen_ai": {"request": {"model": "a"}}},
        {"model": "b"},
        {"event": "other"},
    )
    assert p.value("llm_calls_total", model="a") == 2.0
    assert p.value("llm_calls_total", model="b") == 1.0
    assert len(p.lines("llm_calls_total{")) == 2


def test_a_sum_adds_the_fields_present_and_needs_its_first() -> None:
    p = Pipeline(
        {
            "name": "input_tokens_total",
            "type": "counter",
            "value": "usage.input_tokens + usage.cache_read_input_tokens "
            "+ usage.cache_creation_input_tokens",
        }
    )
    lines = [
        {"usage": {"input_tokens": 10, "cache_read_input_tokens": 100}},
        {"usage": {"input_tokens": 1, "cache_creation_input_tokens": "1000"}},
        {"usage": {"input_tokens": 5}},
        {"usage": {"cache_read_input_tokens": 7}},  # no first field: missing
        {"usage": {"input_tokens": 3, "cache_read_input_tokens": "many"}},  # not a number
    ]
    p.feed(*lines)
    assert p.value("input_tokens_total") == 10 + 100 + 1 + 1000 + 5
    errors = "chatwatch_extract_errors_total"
    assert p.value(errors, metric="input_tokens_total", reason="missing_value") == 1.0
    assert p.value(errors, metric="input_tokens_total", reason="not_a_number") == 1.0


def test_a_value_map_counts_each_field_under_its_label() -> None:
    p = Pipeline(
        {
            "name": "llm_tokens_total",
            "type": "counter",
            "value": {"input": "usage.prompt_tokens", "output": "usage.completion_tokens"},
            "value_label": "token_type",
            "labels": {"model": "model"},
        }
    )
    p.feed(
        {"model": "m", "usage": {"prompt_tokens": 100, "completion_tokens": 7}},
        {"model": "m", "usage": {"prompt_tokens": 50}},  # no completion: only input
        {"model": "m", "usage": {"prompt_tokens": "x", "completion_tokens": 3}},
    )
    assert p.value("llm_tokens_total", model="m", token_type="input") == 150.0
    assert p.value("llm_tokens_total", model="m", token_type="output") == 10.0
    errors = "chatwatch_extract_errors_total"
    assert p.value(errors, metric="llm_tokens_total", reason="not_a_number") == 1.0


@pytest.mark.parametrize(
    ("definition", "message"),
    [
        (
            {"labels": {"model": "a + b"}},
            "`+` adds numbers",
        ),
        (
            {"value": {"input": "a"}},
            "a value map needs `value_label`",
        ),
        (
            {"value": "a", "value_label": "kind"},
            "`value_label` goes with a value map",
        ),
        (
            {"value": {"input": "a"}, "value_label": "model", "labels": {"model": "m"}},
            "label 'model' is also set in labels",
        ),
        (
            {"value": "a", "cost": {"model": "m", "input": "i"}},
            "give `value` or `cost`, not both",
        ),
        (
            {"cost": {"model": "m"}},
            "give the token fields",
        ),
        (
            {"labels": {"route": {"field": "path", "map": {"a": ["b"]}}}},
            "map",
        ),
    ],
)
def test_mistakes_are_reported_at_load(definition: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError) as err:
        MetricConfig.model_validate({"name": "x_total", "type": "counter", **definition})
    assert re.search(re.escape(message), str(err.value)), str(err.value)
