"""Annotations rendered by chatwatch are character-for-character what Prometheus renders.

The real `promtool test rules` renders the same annotation templates for the same series:
the test expects no alerts, so promtool fails and prints the alerts it got, with their
annotations, which are then compared with chatwatch's rendering of each one.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from agent.alerting.template.exec import Template

PROMTOOL = shutil.which("promtool")
pytestmark = pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed")

ANNOTATIONS = {
    "value": "{{ $value }}",
    "dot_value": "{{ .Value }}",
    "humanize": "{{ $value | humanize }}",
    "humanize1024": "{{ humanize1024 $value }}",
    "percentage": "{{ humanizePercentage $value }}",
    "duration": "{{ $value | humanizeDuration }}",
    "timestamp": "{{ humanizeTimestamp $value }}",
    "printf_f": '{{ printf "%.2f" $value }}',
    "printf_mix": '{{ printf "%d|%s|%v|%5.1f|%e|%g|%x|%+d|%-6s|%08.3f" 42 $labels.k $value'
    ' $value $value $value 255 7 "ab" $value }}',
    "printf_q": '{{ printf "%q" $labels.k }}',
    "printf_bad": '{{ printf "%d %s" $value }}',
    "cond": "{{ if gt $value 100.0 }}big{{ else if gt $value 1.0 }}mid{{ else }}small{{ end }}",
    "logic": '{{ if and (ge $value 0.0) (not (eq $labels.k "zero")) }}pos{{ else }}other{{ end }}',
    "or": '{{ or $labels.nope "fallback" }}',
    "range": "{{ range $k, $v := $labels }}{{ $k }}={{ $v }};{{ end }}",
    "missing": "[{{ $labels.nope }}]",
    "with": "{{ with $labels.k }}k={{ . }}{{ else }}none{{ end }}",
    "strings": '{{ .Labels.k | toUpper }} {{ title "hello wide-world" }} {{ toLower "ABC" }}',
    "regex": '{{ reReplaceAll "(\\\\w+) (\\\\w+)" "$2-$1" $labels.k }} {{ match "^a" $labels.k }}',
    "regex_groups": '{{ reReplaceAll "(\\\\w)(?P<rest>\\\\w*)" "<$9|${rest}|$$|${}>" $labels.k }}',
    "index_len": '{{ index $labels "k" }} {{ len $labels }}',
    "quote": 'a "quoted" \\ text',
    "trim": "x  {{- $labels.k -}}  y",
    "ports": '{{ "example.com:9090" | stripPort }} {{ "db.example.com:5432" | stripDomain }}',
    "print": '{{ print 1 2 "a" 3.5 }}',
    "urlquery": "{{ urlquery $labels.k }}",
    "external": "[{{ $externalLabels.cluster }}]",
}

SERIES = {
    "a b": "1234567.891",
    "zero": "0",
    "neg": "-42.5",
    "small": "0.000123",
    "dur": "3725.5",
    "pct": "0.0512",
    "huge": "1e21",
    "int": "100",
    "nan": "NaN",
    "inf": "+Inf",
    "ts": "1435065584.128",
}

_PAIR = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def _unquote(s: str) -> str:
    return str(json.loads('"' + re.sub(r"\\x([0-9a-f]{2})", r"\\u00\1", s) + '"'))


def promtool_rendering(tmp_path: Path) -> dict[str, dict[str, str]]:
    rules = {
        "groups": [
            {"name": "g", "rules": [{"alert": "T", "expr": "v", "annotations": ANNOTATIONS}]}
        ]
    }
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rules))
    test = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {"series": f'v{{k="{k}"}}', "values": v} for k, v in SERIES.items()
                ],
                "alert_rule_test": [{"eval_time": "0m", "alertname": "T", "exp_alerts": []}],
            }
        ],
    }
    (tmp_path / "test.yml").write_text(yaml.safe_dump(test))
    assert PROMTOOL is not None
    out = subprocess.run(
        [PROMTOOL, "test", "rules", "test.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    text = out.stdout + out.stderr
    assert out.returncode == 1, text
    rendered: dict[str, dict[str, str]] = {}
    lines = text.splitlines()
    for i, line in enumerate(lines):
        line = line.strip()
        if line.startswith("Labels:{"):
            labels = {k: _unquote(v) for k, v in _PAIR.findall(line)}
            ann_line = lines[i + 1].strip()
            assert ann_line.startswith("Annotations:{"), ann_line
            rendered[labels["k"]] = {k: _unquote(v) for k, v in _PAIR.findall(ann_line)}
    assert set(rendered) == set(SERIES), text
    return rendered


def test_annotations_match_promtool(tmp_path: Path) -> None:
    expected = promtool_rendering(tmp_path)
    templates = {name: Template(text) for name, text in ANNOTATIONS.items()}
    mismatches = []
    for k, raw in SERIES.items():
        value = float(raw)
        labels = {"__name__": "v", "k": k}
        for name, tmpl in templates.items():
            got = tmpl.expand(labels, value)
            want = expected[k][name]
            if got.startswith("<error expanding template: ") and want.startswith(got[:27]):
                # Prometheus prefixes the reason with the template's name and position
                got, want = got.rsplit(": ", 1)[1], want.rsplit(": ", 1)[1]
            if got != want:
                mismatches.append(f"k={k} {name}: chatwatch {got!r} != prometheus {want!r}")
    assert mismatches == []
