"""The HTTP endpoints as a scraper, a kubelet and an operator see them, on a real server."""

from __future__ import annotations

import base64
import gzip
import logging

import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families as parse_text

from agent.server.config import ServerConfig
from agent.server.routes import accepts_gzip
from agent.support.selfmetrics import SelfMetrics
from tests.server_support import FailingCollector, Handlers, SeriesCollector, client_of

# What Prometheus 2.42 sends when it scrapes.
PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)


def sample_value(text: str, name: str, labels: dict[str, str], openmetrics: bool = False) -> float:
    families = parse_openmetrics(text) if openmetrics else parse_text(text)
    for family in families:
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return float(s.value)
    raise AssertionError(f"{name}{labels} not in output")


async def test_metrics_default_is_prometheus_text_0_0_4() -> None:
    handlers = Handlers()
    async with client_of(handlers) as client:
        r = await client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert "# TYPE chatwatch_lines_read_total counter" in r.text
    assert sample_value(r.text, "chatwatch_lines_read_total", {"source": "chatbot"}) == 3.0
    assert not r.text.rstrip().endswith("# EOF")


@pytest.mark.parametrize(
    "accept",
    [
        "application/openmetrics-text; version=1.0.0",
        "application/openmetrics-text",
        PROMETHEUS_ACCEPT,
    ],
)
async def test_metrics_openmetrics_when_asked(accept: str) -> None:
    handlers = Handlers()
    async with client_of(handlers) as client:
        r = await client.get("/metrics", headers={"Accept": accept})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/openmetrics-text; version=1.0.0")
    assert r.text.endswith("# EOF\n")
    labels = {"source": "chatbot"}
    assert sample_value(r.text, "chatwatch_lines_read_total", labels, openmetrics=True) == 3.0


async def test_metrics_reflect_the_current_values_on_each_scrape() -> None:
    handlers = Handlers()
    async with client_of(handlers) as client:
        first = await client.get("/metrics")
        handlers.lines.inc(("chatbot",), 4)
        second = await client.get("/metrics")
    assert sample_value(first.text, "chatwatch_lines_read_total", {"source": "chatbot"}) == 3.0
    assert sample_value(second.text, "chatwatch_lines_read_total", {"source": "chatbot"}) == 7.0


async def test_metrics_gzip_when_accepted_decompresses_to_the_plain_body() -> None:
    handlers = Handlers([SeriesCollector("chatbot_things", 500)])
    async with client_of(handlers) as client:
        plain = await client.get("/metrics", headers={"Accept-Encoding": "identity"})
        async with client.stream("GET", "/metrics", headers={"Accept-Encoding": "gzip"}) as r:
            raw = b"".join([chunk async for chunk in r.aiter_raw()])
            encoding = r.headers.get("content-encoding")
    assert "content-encoding" not in plain.headers
    assert encoding == "gzip"
    assert len(raw) < len(plain.content) / 3
    assert gzip.decompress(raw) == plain.content


async def test_metrics_not_gzipped_when_gzip_refused() -> None:
    handlers = Handlers()
    async with client_of(handlers) as client:
        r = await client.get("/metrics", headers={"Accept-Encoding": "gzip;q=0, identity"})
    assert "content-encoding" not in r.headers
    assert "chatwatch_lines_read_total" in r.text


def test_accept_encoding_parsing() -> None:
    assert accepts_gzip("gzip")
    assert accepts_gzip("deflate, gzip;q=0.5")
    assert accepts_gzip("*")
    assert not accepts_gzip("")
    assert not accepts_gzip("identity")
    assert not accepts_gzip("gzip;q=0")
    assert not accepts_gzip("gzip; q=0.0, br")


async def test_large_scrape_has_every_series_in_both_formats() -> None:
    # 20k series: encoded in a worker thread; the output must still be complete and valid.
    handlers = Handlers([SeriesCollector("chatbot_many", 20_000)])
    async with client_of(handlers, timeout=60) as client:
        text = await client.get("/metrics")
        om = await client.get("/metrics", headers={"Accept": "application/openmetrics-text"})
        health = await client.get("/-/healthy")
    assert health.status_code == 200
    (family,) = list(parse_text(text.text))
    assert len(family.samples) == 20_000
    assert sum(s.value for s in family.samples) == sum(range(20_000))
    (om_family,) = list(parse_openmetrics(om.text))
    assert len(om_family.samples) == 20_000


async def test_collector_swap_on_reload_is_seen_by_the_next_scrape() -> None:
    handlers = Handlers()
    async with client_of(handlers) as client:
        before = await client.get("/metrics")
        handlers.collectors = [handlers.stats, SeriesCollector("chatbot_new_metric", 2)]
        after = await client.get("/metrics")
    assert "chatbot_new_metric" not in before.text
    assert sample_value(after.text, "chatbot_new_metric", {"route": "/r1", "i": "1"}) == 1.0


async def test_failing_collector_gives_500_and_the_server_keeps_serving(
    caplog: pytest.LogCaptureFixture,
) -> None:
    handlers = Handlers()
    handlers.collectors = [FailingCollector()]
    async with client_of(handlers) as client:
        broken = await client.get("/metrics")
        handlers.collectors = [handlers.stats]
        fixed = await client.get("/metrics")
    assert broken.status_code == 500
    assert "store is broken" not in broken.text  # details go to the log, not to scrapers
    assert any("store is broken" in (r.exc_text or "") for r in caplog.records)
    assert fixed.status_code == 200


async def test_healthy_always_and_ready_only_once_handlers_say_so() -> None:
    handlers = Handlers()
    async with client_of(handlers) as client:
        healthy = await client.get("/-/healthy")
        not_ready = await client.get("/-/ready")
        handlers.ready = True
        ready = await client.get("/-/ready")
        head = await client.head("/-/ready")
    assert (healthy.status_code, healthy.text) == (200, "Healthy\n")
    assert not_ready.status_code == 503
    assert (ready.status_code, ready.text) == (200, "Ready\n")
    assert head.status_code == 200 and head.content == b""


ADMIN = ServerConfig(listen="127.0.0.1:0", enable_admin_api=True)
"""No auth, writes allowed: POST /-/reload is a write endpoint."""


async def test_reload_success_calls_the_handler_once() -> None:
    handlers = Handlers()
    async with client_of(handlers, ADMIN) as client:
        r = await client.post("/-/reload")
    assert r.status_code == 200
    assert "config reloaded" in r.text
    assert handlers.reloads == 1


async def test_reload_failure_returns_500_with_the_reason() -> None:
    handlers = Handlers()
    handlers.reload_result = ("failed", "cw.yaml: metrics[2].buckets: expected a list of numbers")
    async with client_of(handlers, ADMIN) as client:
        r = await client.post("/-/reload")
    assert r.status_code == 500
    assert "metrics[2].buckets: expected a list of numbers" in r.text


async def test_reload_handler_crash_is_a_500_not_a_dead_server() -> None:
    handlers = Handlers()
    handlers.reload_result = RuntimeError("boom")
    async with client_of(handlers, ADMIN) as client:
        r = await client.post("/-/reload")
        after = await client.get("/-/healthy")
    assert r.status_code == 500 and "boom" in r.text
    assert after.status_code == 200


async def test_reload_by_get_is_405_and_does_not_reload() -> None:
    handlers = Handlers()
    async with client_of(handlers) as client:
        r = await client.get("/-/reload")
        post_to_metrics = await client.post("/metrics")
    assert r.status_code == 405
    assert "POST" in r.headers["allow"]
    assert handlers.reloads == 0
    assert post_to_metrics.status_code == 405


async def test_unknown_path_is_404() -> None:
    handlers = Handlers()
    async with client_of(handlers) as client:
        r = await client.get("/nope")
        r2 = await client.get("/metrics/extra")
    assert (r.status_code, r2.status_code) == (404, 404)


async def test_alerts_and_rules_api_wrap_handler_data_in_prometheus_envelope() -> None:
    handlers = Handlers()
    alert = {
        "labels": {"alertname": "HighErrorRate", "severity": "page"},
        "annotations": {"summary": "5xx above 5%"},
        "state": "firing",
        "activeAt": "2026-01-01T00:00:00Z",
        "value": "7.5e-02",
    }
    handlers.alerts = {"alerts": [alert]}
    handlers.rules = {"groups": [{"name": "chatbot", "file": "rules/chatbot.yml", "rules": []}]}
    async with client_of(handlers) as client:
        alerts = await client.get("/api/v1/alerts")
        rules = await client.get("/api/v1/rules")
    assert alerts.headers["content-type"] == "application/json"
    assert alerts.json() == {"status": "success", "data": {"alerts": [alert]}}
    assert rules.json()["status"] == "success"
    assert rules.json()["data"]["groups"][0]["name"] == "chatbot"


async def test_api_handler_error_is_a_prometheus_error_envelope() -> None:
    handlers = Handlers()

    def broken() -> dict[str, object]:
        raise ValueError("rules not loaded")

    handlers.rules_api = broken  # type: ignore[method-assign]
    async with client_of(handlers) as client:
        r = await client.get("/api/v1/rules")
    assert r.status_code == 500
    assert r.json()["status"] == "error"
    assert "rules not loaded" in r.json()["error"]


# ------------------------------------------------------------------------ basic auth

USER, PASSWORD = "prometheus", "s3cr3t-Pa55word"


def auth_cfg() -> ServerConfig:
    return ServerConfig.model_validate(
        {"listen": "127.0.0.1:0", "basic_auth": {"username": USER, "password": PASSWORD}}
    )


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/metrics"),
        ("GET", "/api/v1/alerts"),
        ("GET", "/api/v1/rules"),
        ("POST", "/-/reload"),
    ],
)
async def test_basic_auth_protects_metrics_api_and_reload(method: str, path: str) -> None:
    handlers = Handlers()
    async with client_of(handlers, auth_cfg()) as client:
        anonymous = await client.request(method, path)
        wrong = await client.request(method, path, auth=(USER, "wrong"))
        wrong_user = await client.request(method, path, auth=("admin", PASSWORD))
        bad_token = {"Authorization": "Basic !!!notbase64"}
        garbage = await client.request(method, path, headers=bad_token)
        ok = await client.request(method, path, auth=(USER, PASSWORD))
    for denied in (anonymous, wrong, wrong_user, garbage):
        assert denied.status_code == 401
        assert denied.headers["www-authenticate"].startswith('Basic realm="chatwatch"')
        assert PASSWORD not in denied.text
    assert ok.status_code == 200
    assert handlers.reloads == (1 if path == "/-/reload" else 0)


async def test_basic_auth_leaves_probes_open() -> None:
    handlers = Handlers()
    handlers.ready = True
    async with client_of(handlers, auth_cfg()) as client:
        healthy = await client.get("/-/healthy")
        ready = await client.get("/-/ready")
    assert (healthy.status_code, ready.status_code) == (200, 200)


async def test_basic_auth_password_never_logged_or_echoed(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    handlers = Handlers()
    token = base64.b64encode(f"{USER}:{PASSWORD}x".encode()).decode()
    async with client_of(handlers, auth_cfg()) as client:
        r = await client.get("/metrics", headers={"Authorization": f"Basic {token}"})
    assert r.status_code == 401
    records = repr([rec.__dict__ for rec in caplog.records])
    everything = r.text + str(r.headers) + caplog.text + records
    assert PASSWORD not in everything
    assert token not in everything


async def test_a_family_exposed_twice_is_merged_so_the_scrape_stays_valid(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Two components registering the same self-metric must not break every scrape.
    handlers = Handlers()
    other = SelfMetrics()
    other.counter("chatwatch_lines_read_total", "Lines read.", ("source",)).inc(("stdin",), 2)
    other.counter("chatwatch_lines_read_total", "Lines read.", ("source",)).inc(("chatbot",), 9)
    handlers.collectors = [handlers.stats, other]
    async with client_of(handlers) as client:
        text = await client.get("/metrics")
        om = await client.get("/metrics", headers={"Accept": "application/openmetrics-text"})
    assert text.text.count("# TYPE chatwatch_lines_read_total counter") == 1
    assert sample_value(text.text, "chatwatch_lines_read_total", {"source": "chatbot"}) == 3.0
    assert sample_value(text.text, "chatwatch_lines_read_total", {"source": "stdin"}) == 2.0
    (family,) = [f for f in parse_openmetrics(om.text) if f.name == "chatwatch_lines_read"]
    assert len(family.samples) == 2
    assert "exposed twice" in caplog.text
