"""The alert state machine agrees with Prometheus' own: the same promtool-format tests
(`for`, `keep_firing_for`, flapping, re-firing) pass with `chatwatch test rules` and with
the real `promtool test rules`, and a wrong expectation fails with both."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.alerting.ruletest import run_file

PROMTOOL = shutil.which("promtool")

RULES = {
    "groups": [
        {
            "name": "flap",
            "rules": [
                {
                    "alert": "Sticky",
                    "expr": "x > 0",
                    "for": "2m",
                    "keep_firing_for": "3m",
                    "labels": {"severity": "page"},
                    "annotations": {"summary": "{{ $labels.job }} v={{ $value }}"},
                },
                {"alert": "Plain", "expr": "x > 0", "for": "2m"},
                {"alert": "Instant", "expr": "x > 0"},
            ],
        }
    ]
}

# x at minutes 0..13; flapping: up 1-3, down 4-5, up 6, down from 7
SERIES = "0 1 1 1 0 0 1 0 0 0 0 0 0 0"
STICKY_FIRING = {3, 4, 5, 6, 7, 8, 9}  # fires after for (2m), holds 3m after the last 1
PLAIN_FIRING = {3}
INSTANT_FIRING = {1, 2, 3, 6}


def expected(alertname: str, minute: int, firing: set[int]) -> dict[str, Any]:
    alerts: list[dict[str, Any]] = []
    if minute in firing:
        labels = {"job": "bot"}
        alert: dict[str, Any] = {"exp_labels": labels}
        if alertname == "Sticky":
            labels["severity"] = "page"
            alert["exp_annotations"] = {"summary": "bot v=1"}
        alerts.append(alert)
    return {"eval_time": f"{minute}m", "alertname": alertname, "exp_alerts": alerts}


def write_test(tmp_path: Path, tweak: bool = False) -> Path:
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(RULES))
    cases = []
    for minute in range(14):
        cases.append(expected("Sticky", minute, STICKY_FIRING))
        cases.append(expected("Plain", minute, PLAIN_FIRING))
        cases.append(expected("Instant", minute, INSTANT_FIRING))
    if tweak:  # claim Sticky resolved one minute early
        cases.append(expected("Sticky", 9, set()))
    test = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [{"series": 'x{job="bot"}', "values": SERIES}],
                "alert_rule_test": cases,
            }
        ],
    }
    path = tmp_path / "flap.test.yml"
    path.write_text(yaml.safe_dump(test, sort_keys=False))
    return path


@pytest.mark.parametrize("tweak", [False, True], ids=["right", "wrong-expectation"])
def test_flapping_with_for_and_keep_firing_for_agrees_with_promtool(
    tmp_path: Path, tweak: bool
) -> None:
    path = write_test(tmp_path, tweak)
    errors = run_file(str(path))
    if tweak:
        assert len(errors) == 1 and "alertname: Sticky, time: 9m" in errors[0]
    else:
        assert errors == []
    if PROMTOOL is None:
        pytest.skip("promtool is not installed")
    result = subprocess.run(
        [PROMTOOL, "test", "rules", path.name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == (1 if tweak else 0), result.stdout + result.stderr
