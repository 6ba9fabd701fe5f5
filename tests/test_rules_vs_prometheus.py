"""The same rules in chatwatch and in a real Prometheus that scrapes it agree.

`chatwatch export-rules` gives the rule file to a real Prometheus scraping the running
agent. Both then fire the same alert, with the same labels and the same rendered
annotations, and both APIs (/api/v1/alerts, /api/v1/rules) have the same shapes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from tests.realservers import Prometheus, free_port, running_chatwatch, wait_until

CONFIG = """
sources:
  - name: bot
    paths: ["{log}"]
    start_at: beginning
state_dir: "{state}"
server: {{listen: "127.0.0.1:{port}"}}
metrics:
  - name: chatbot_errors_total
    type: counter
    match: {{level: error}}
    labels: {{route: route}}
rule_files: ["rules.yml"]
evaluation_interval: 1s
"""

RULES = """
groups:
  - name: bot
    rules:
      - record: route:chatbot_errors:sum
        expr: sum by (route) (chatbot_errors_total)
      - alert: ChatbotErrors
        expr: route:chatbot_errors:sum > 2
        for: 2s
        cooldown: 10m
        labels: {severity: page}
        annotations:
          summary: "{{ $value | humanize }} errors on {{ $labels.route }}"
          detail: '{{ if gt $value 4.0 }}many{{ else }}some{{ end }} ({{ printf "%.1f" $value }})'
"""


def alerts(url: str) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = httpx.get(f"{url}/api/v1/alerts", timeout=3).json()["data"][
        "alerts"
    ]
    return [a for a in data if a["state"] == "firing"]


def rules(url: str) -> dict[str, Any]:
    data: dict[str, Any] = httpx.get(f"{url}/api/v1/rules", timeout=3).json()["data"]
    return data


def test_chatwatch_and_prometheus_fire_the_same_alert(tmp_path: Path) -> None:
    log = tmp_path / "bot.log"
    log.write_text(
        "".join(json.dumps({"level": "error", "route": "/chat"}) + "\n" for _ in range(5))
    )
    (tmp_path / "rules.yml").write_text(RULES)
    port = free_port()
    cfg = tmp_path / "cw.yml"
    cfg.write_text(CONFIG.format(log=log, state=tmp_path / "state", port=port))
    exported = tmp_path / "exported.yml"
    result = subprocess.run(
        [sys.executable, "-m", "agent", "export-rules", "-c", str(cfg), "-o", str(exported)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr

    prom_dir = tmp_path / "prom"
    prom_dir.mkdir()
    prom = Prometheus(prom_dir, [f"127.0.0.1:{port}"])
    # As docs/central-prometheus.md says: Prometheus evaluating the exported rules drops
    # the sidecar's own recorded series and ALERTS at scrape time, else the recorded
    # series exists twice (scraped, with job and instance, and Prometheus' own).
    prom.config.write_text(
        prom.config.read_text()
        + "    metric_relabel_configs:\n"
        + "      - {source_labels: [__name__], regex: '.*:.*|ALERTS|ALERTS_FOR_STATE',"
        + " action: drop}\n"
        + f"rule_files: ['{exported}']\n"
    )
    with running_chatwatch(cfg, port, tmp_path) as cw:
        prom.start()
        try:
            ours = wait_until(lambda: alerts(cw.url), timeout=30, what="chatwatch alert firing")
            theirs = wait_until(
                lambda: alerts(prom.url), timeout=60, what="prometheus alert firing"
            )
            prom_rules = rules(prom.url)
            our_rules = rules(cw.url)
        finally:
            prom.stop()

    def essentials(found: list[dict[str, Any]]) -> list[tuple[Any, Any]]:
        return [(a["labels"], a["annotations"]) for a in found]

    expected = {
        "labels": {"alertname": "ChatbotErrors", "route": "/chat", "severity": "page"},
        "annotations": {"summary": "5 errors on /chat", "detail": "many (5.0)"},
    }
    assert essentials(ours) == essentials(theirs) == [(expected["labels"], expected["annotations"])]
    assert set(ours[0]) == set(theirs[0])  # labels annotations state activeAt value
    assert ours[0]["value"] == theirs[0]["value"] == "5e+00"

    [our_group], [their_group] = our_rules["groups"], prom_rules["groups"]
    assert set(our_group) == set(their_group)
    for ours_rule, theirs_rule in zip(our_group["rules"], their_group["rules"], strict=True):
        assert set(ours_rule) - {"lastError"} == set(theirs_rule) - {"lastError"}
        assert (ours_rule["type"], ours_rule["name"], ours_rule["query"]) == (
            theirs_rule["type"],
            theirs_rule["name"],
            theirs_rule["query"],
        )
