"""examples/grafana/chatwatch-dashboard.json: every query parses as PromQL and names only
metrics chatwatch exports (its own `chatwatch_*` metrics, the metrics of the example
config, ALERTS) or that Prometheus adds (`up`)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import promql_parser
import pytest
import yaml

from tests.deploy_support import K8S, REPO, defined_names, metric_names, self_metrics

DASHBOARD = REPO / "examples" / "grafana" / "chatwatch-dashboard.json"
FROM_PROMETHEUS = {"up", "ALERTS", "ALERTS_FOR_STATE"}


def _dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def _panels() -> Iterator[dict[str, Any]]:
    for panel in _dashboard()["panels"]:
        yield panel
        yield from panel.get("panels", [])


def _queries() -> list[tuple[str, str]]:
    """(panel title, expression) for every target, plus the template variables' queries."""
    out = [(p["title"], t["expr"]) for p in _panels() for t in p.get("targets", [])]
    for var in _dashboard()["templating"]["list"]:
        if var["type"] == "query":
            m = re.fullmatch(r"label_values\((.+),\s*\w+\)", var["definition"])
            assert m, var["definition"]
            out.append((f"variable {var['name']}", m.group(1)))
    return out


def grafana_to_promql(expr: str) -> str:
    """Substitute Grafana's variables as Grafana would before sending the query."""
    expr = re.sub(r"\$\{?__(rate_interval|interval|range)\}?", "5m", expr)
    return re.sub(r"\$\{?(\w+)(:\w+)?\}?", ".*", expr)


def _config_metrics(text: str) -> list[dict[str, Any]]:
    metrics: list[dict[str, Any]] = yaml.safe_load(text)["metrics"]
    return metrics


def exported() -> set[str]:
    example = _config_metrics((REPO / "examples" / "chatwatch.yaml").read_text())
    (cm,) = [d for d in yaml.safe_load_all((K8S / "configmap.yaml").read_text()) if d]
    kubernetes = _config_metrics(cm["data"]["chatwatch.yaml"])
    # The dashboard shows the example config in a cluster: both must define what it uses.
    return (defined_names(example) & defined_names(kubernetes)) | self_metrics() | FROM_PROMETHEUS


def test_dashboard_is_a_grafana_dashboard_with_a_datasource_variable() -> None:
    dash = _dashboard()
    assert 36 <= dash["schemaVersion"] <= 41
    assert dash["uid"] and dash["title"]
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ids = [p["id"] for p in _panels()]
    assert len(ids) == len(set(ids))
    for p in _panels():
        assert p["gridPos"]["x"] >= 0 and p["gridPos"]["x"] + p["gridPos"]["w"] <= 24
        if p["type"] != "row":
            assert p["datasource"]["uid"] == "${datasource}", p["title"]
            assert p["targets"], p["title"]


def test_self_metric_scan_finds_the_agents_metrics() -> None:
    found = self_metrics()
    assert {"chatwatch_lines_read_total", "chatwatch_series_dropped_total"} <= found
    assert "chatwatch_rule_evaluation_duration_seconds_bucket" in found


@pytest.mark.parametrize(("title", "expr"), _queries(), ids=lambda v: str(v)[:60])
def test_query_parses_and_names_exported_metrics(title: str, expr: str) -> None:
    promql = grafana_to_promql(expr)
    assert "$" not in promql
    promql_parser.parse(promql)  # raises on a syntax error
    names = metric_names(promql)
    assert names, f"{title}: no metric"
    unknown = names - exported()
    assert not unknown, f"{title}: {sorted(unknown)} are not exported by chatwatch"


def test_every_query_is_scoped_to_the_selected_pods() -> None:
    for title, expr in _queries():
        if title.startswith("variable "):
            continue
        for sel in re.findall(r"\b[a-zA-Z_:][\w:]*\{[^}]*\}", expr):
            assert 'job=~"$job"' in sel and 'pod=~"$pod"' in sel, f"{title}: {sel}"


def test_dashboard_covers_what_the_issue_asks_for() -> None:
    used = {name for _, expr in _queries() for name in metric_names(grafana_to_promql(expr))}
    assert {
        "chatbot_http_requests_total",  # request rate, error ratio
        "chatbot_http_request_duration_seconds_bucket",  # latency
        "chatbot_llm_cost_usd_total",  # token cost
        "ALERTS",
        "chatwatch_file_lag_bytes",
        "chatwatch_series_dropped_total",
        "chatwatch_decode_errors_total",
        "chatwatch_lines_read_total",
    } <= used
    quantiles = set()
    for _, expr in _queries():
        if "chatbot_http_request_duration_seconds_bucket" in expr:
            quantiles.update(re.findall(r"histogram_quantile\(([\d.]+)", expr))
    assert quantiles >= {"0.5", "0.95", "0.99"}
