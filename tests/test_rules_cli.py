"""`chatwatch test rules` is wired to the promtool-format runner: same verdict and exit
status as the real `promtool test rules` on the same files."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PROMTOOL = shutil.which("promtool")

RULES = """
groups:
  - name: g
    rules:
      - record: route:errors:rate1m
        expr: sum by (route) (rate(errors_total[1m]))
      - alert: HighErrors
        expr: route:errors:rate1m > 1
        for: 1m
        cooldown: 10m
        labels: {severity: page}
        annotations: {summary: "{{ $labels.route }} at {{ $value | humanize }}/s"}
"""

TEST = """
rule_files: [rules.yml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'errors_total{route="/chat"}'
        values: '0+120x10'
    alert_rule_test:
      - eval_time: 1m
        alertname: HighErrors
        exp_alerts: []
      - eval_time: 3m
        alertname: HighErrors
        exp_alerts:
          - exp_labels: {severity: page, route: /chat}
            exp_annotations: {summary: "/chat at SUMMARY/s"}
    promql_expr_test:
      - expr: route:errors:rate1m
        eval_time: 5m
        exp_samples:
          - labels: 'route:errors:rate1m{route="/chat"}'
            value: 2
"""


def run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(("summary", "status"), [("2", 0), ("3", 1)])
def test_verdict_and_exit_status(tmp_path: Path, summary: str, status: int) -> None:
    (tmp_path / "rules.yml").write_text(RULES)
    (tmp_path / "t.yml").write_text(TEST.replace("SUMMARY", summary))
    ours = run([sys.executable, "-m", "agent", "test", "rules", "t.yml"], tmp_path)
    assert ours.returncode == status, ours.stdout + ours.stderr
    assert ours.stdout.startswith("Unit Testing:  t.yml")
    if status:
        assert "FAILED" in ours.stdout + ours.stderr
        assert 'summary="/chat at 2/s"' in ours.stdout + ours.stderr  # what it got
    else:
        assert "SUCCESS" in ours.stdout
    if PROMTOOL is not None:
        # promtool does not know chatwatch's `cooldown`; give it the exported rules
        (tmp_path / "rules.yml").write_text(RULES.replace("        cooldown: 10m\n", ""))
        theirs = run([PROMTOOL, "test", "rules", "t.yml"], tmp_path)
        assert theirs.returncode == status, theirs.stdout + theirs.stderr


def test_test_needs_a_subcommand(tmp_path: Path) -> None:
    result = run([sys.executable, "-m", "agent", "test"], tmp_path)
    assert result.returncode == 2
    assert "rules" in result.stderr
