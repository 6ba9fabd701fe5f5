"""The dashboard's queries against a real Prometheus scraping a real chatwatch.

Parsing (tests/test_dashboard.py) cannot tell whether a query finds data or trips on
vector matching; this runs every panel's query as Grafana would send it, while the demo
chatbot writes logs (with a bad spell) and chatwatch runs the example config and rules."""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest
import yaml

from tests.deploy_support import K8S, REPO, yaml_docs
from tests.realservers import Prometheus, free_port, require, running_chatwatch, wait_until

pytestmark = pytest.mark.slow

DASHBOARD = REPO / "examples" / "grafana" / "chatwatch-dashboard.json"
# Panels that must show data within a minute of a busy log; the others (drops, decode
# errors, failed notifications, alerts) are rightly empty while nothing goes wrong.
MUST_SHOW = {
    "Request rate by route",
    "Error ratio (5xx)",
    "Request latency p50 / p95 / p99",
    "LLM cost per hour by model",
    "LLM cost over the dashboard range",
    "LLM tokens per second",
    "LLM latency p95 by model",
    "Active sessions",
    "Seconds since the last log line",
    "Lines read per second",
    "File lag (bytes written, not yet read)",
    "Series held per metric",
    "Rule evaluation p99",
    "Agents up",
}


def _targets() -> list[tuple[str, str]]:
    dash = json.loads(DASHBOARD.read_text())
    out = []
    for panel in dash["panels"]:
        for target in panel.get("targets", []):
            out.append((panel["title"], target["expr"]))
    return out


def as_grafana_sends(expr: str) -> str:
    expr = re.sub(r"\$\{?__rate_interval\}?", "30s", expr)
    expr = re.sub(r"\$\{?__(interval|range)\}?", "1m", expr)
    return re.sub(r"\$\{?(job|pod)\}?", ".*", expr)


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    require("prometheus")
    tmp = tmp_path_factory.mktemp("dashboard")
    log = tmp / "logs" / "chatbot.log"
    log.parent.mkdir()
    writer = subprocess.Popen(
        [
            sys.executable,
            str(REPO / "examples" / "demo_writer.py"),
            "--out",
            str(log),
            "--rate",
            "50",
            "--first-burst",
            "2",
            "--burst-every",
            "100000",
            "--burst-length",
            "60",
        ],
        stdout=subprocess.DEVNULL,
    )
    (cm,) = [d for d in yaml_docs(K8S / "configmap.yaml") if d["kind"] == "ConfigMap"]
    port = free_port()
    config = yaml.safe_load(cm["data"]["chatwatch.yaml"])
    config["sources"][0]["paths"] = [str(log.parent / "*.log")]
    config["state_dir"] = str(tmp / "state")
    config["server"]["listen"] = f"127.0.0.1:{port}"
    config["rule_files"] = [str(REPO / "rules" / "*.yml")]
    config["alerting"] = {
        "route": {"receiver": "log"},
        "receivers": [{"name": "log", "console_configs": [{}]}],
    }
    path = tmp / "chatwatch.yaml"
    path.write_text(yaml.safe_dump(config))
    try:
        with running_chatwatch(path, port, tmp):
            prom = Prometheus(tmp, [f"127.0.0.1:{port}"]).start()
            try:
                wait_until(
                    lambda: prom.query("count(rate(chatbot_http_requests_total[30s]) > 0) > 3"),
                    timeout=60,
                    interval=1,
                    what="request rates in Prometheus",
                )
                # Rare events (a 429 is 0.4-1.2% of requests) can take a few more scrapes
                # before a 30 s rate has two samples. Give every panel up to a minute more;
                # the tests below then say which ones still show nothing.
                must_show = [as_grafana_sends(e) for t, e in _targets() if t in MUST_SHOW]
                with contextlib.suppress(AssertionError):
                    wait_until(
                        lambda: all(prom.query(e) for e in must_show),
                        timeout=60,
                        interval=1,
                        what="data for every panel that must show some",
                    )
                yield prom
            finally:
                prom.stop()
    finally:
        writer.terminate()
        writer.wait(10)


@pytest.mark.parametrize(("title", "expr"), _targets(), ids=lambda v: str(v)[:50])
def test_panel_query_runs_in_prometheus(prometheus: Prometheus, title: str, expr: str) -> None:
    r = httpx.get(
        f"{prometheus.url}/api/v1/query", params={"query": as_grafana_sends(expr)}, timeout=10
    )
    assert r.status_code == 200, f"{title}: {r.text}"
    body = r.json()
    assert body["status"] == "success", body
    if title in MUST_SHOW:
        result = body["data"]["result"]
        assert result, f"{title}: no data for {as_grafana_sends(expr)}"


def test_panels_that_must_show_data_exist() -> None:
    assert {title for title, _ in _targets()} >= MUST_SHOW
