"""Rule files: Prometheus' rule-file format, loaded and checked completely before use.

    groups:
      - name: chatbot
        interval: 1s            # optional; defaults to evaluation_interval
        limit: 0                # optional; as in Prometheus
        rules:
          - record: job:chatbot_errors:rate1m
            expr: sum(rate(chatbot_errors_total[1m]))
          - alert: ChatbotErrors
            expr: job:chatbot_errors:rate1m > 1
            for: 30s
            keep_firing_for: 2m
            cooldown: 15m       # chatwatch extension: min time between firing notifications
            labels: {severity: page}
            annotations: {summary: "{{ $value | humanize }} errors/s"}

Everything a user can get wrong is found at load time and reported as one sentence per
problem naming the file, the group, the rule and the reason: unknown keys, missing `expr`,
`for` on a recording rule, bad durations, label names, template errors, and PromQL that
chatwatch cannot evaluate (the message names the construct).

The rules themselves live in alerting_rule.py and recording_rule.py, their group in
group.py.
"""

from __future__ import annotations

import glob
import os
import re
import urllib.parse
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from agent.alerting.alerting_rule import AlertingRule
from agent.alerting.group import Rule, RuleGroup
from agent.alerting.promql.engine import DEFAULT_SUBQUERY_STEP, compile_expr
from agent.alerting.recording_rule import RecordingRule
from agent.alerting.template.exec import Template, TemplateError
from agent.support.duration import parse_prometheus_ms
from agent.support.yamlfile import YAMLProblem, load_yaml

METRIC_NAME_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL_NAME_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_GROUP_KEYS = {"name", "interval", "limit", "rules"}
_ALERT_KEYS = {"alert", "expr", "for", "keep_firing_for", "labels", "annotations", "cooldown"}
_RECORD_KEYS = {"record", "expr", "labels"}
EXTENSION_KEYS = {"cooldown"}
"""Keys chatwatch adds to Prometheus' format; `export-rules` removes them."""


class RuleError(Exception):
    """Rule files a user must fix. `problems` are sentences naming file, group, rule."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def prom_duration(value: Any) -> float:
    """A duration as Prometheus' rule files spell it (`30s`, `1h30m`, `500ms`), in seconds."""
    try:
        if isinstance(value, str):
            return parse_prometheus_ms(value) / 1000
    except ValueError:
        pass
    raise ValueError(f"expected a duration such as 30s, 5m, 1h30m or 500ms, got {value!r}")


# -------------------------------------------------------------------------------------
# Rules


def expand_rule_paths(
    patterns: Sequence[str], base_dir: Path | None = None
) -> tuple[list[str], list[str]]:
    """Rule-file globs to files, sorted and without duplicates; plus problems (a plain
    path that does not exist). A glob that matches nothing is fine, as in Prometheus."""
    files: list[str] = []
    problems: list[str] = []
    for pattern in patterns:
        full = pattern if base_dir is None or os.path.isabs(pattern) else str(base_dir / pattern)
        if glob.has_magic(full):
            files.extend(sorted(glob.glob(full)))
        elif os.path.exists(full):
            files.append(full)
        else:
            problems.append(f"{full}: rule file not found")
    seen: set[str] = set()
    unique = [f for f in files if not (f in seen or seen.add(f))]  # type: ignore[func-returns-value]
    return unique, problems


def load_rule_files(
    paths: Sequence[str],
    *,
    base_dir: Path | None = None,
    external_labels: Mapping[str, str] | None = None,
    external_url: str = "",
    subquery_step: float = DEFAULT_SUBQUERY_STEP,
) -> list[RuleGroup]:
    """Load and check rule files (globs allowed); raises RuleError listing every problem.
    `subquery_step`: the step of subqueries without one (`x[30m:]`), the global
    `evaluation_interval` as in Prometheus."""
    files, problems = expand_rule_paths(paths, base_dir)
    groups: list[RuleGroup] = []
    for file in files:
        try:
            text = Path(file).read_text(encoding="utf-8")
        except OSError as exc:
            problems.append(f"{file}: cannot read: {exc.strerror}")
            continue
        file_groups, file_problems = parse_rule_file(
            text,
            file,
            external_labels=external_labels,
            external_url=external_url,
            subquery_step=subquery_step,
        )
        groups.extend(file_groups)
        problems.extend(file_problems)
    if problems:
        raise RuleError(problems)
    return groups


def parse_rule_file(
    text: str,
    file: str,
    *,
    external_labels: Mapping[str, str] | None = None,
    external_url: str = "",
    subquery_step: float = DEFAULT_SUBQUERY_STEP,
) -> tuple[list[RuleGroup], list[str]]:
    """Parse one rule file's text; returns the groups and every problem found."""
    try:
        raw = load_yaml(text, file)
    except YAMLProblem as exc:
        return [], [str(exc)]
    if raw is None:
        return [], []
    if not isinstance(raw, dict):
        return [], [f"{file}: expected a mapping with a `groups:` list"]
    problems: list[str] = []
    for key in raw:
        if key != "groups":
            problems.append(f"{file}: unknown key {key!r} (a rule file has only `groups:`)")
    raw_groups = raw.get("groups") or []
    if not isinstance(raw_groups, list):
        return [], [*problems, f"{file}: groups: expected a list of groups"]
    groups: list[RuleGroup] = []
    names: set[str] = set()
    for gi, raw_group in enumerate(raw_groups):
        group = _parse_group(
            raw_group,
            gi,
            file,
            names,
            problems,
            dict(external_labels or {}),
            external_url,
            subquery_step,
        )
        if group is not None:
            groups.append(group)
    return groups, problems


def _parse_group(
    raw: Any,
    gi: int,
    file: str,
    names: set[str],
    problems: list[str],
    external_labels: dict[str, str],
    external_url: str,
    subquery_step: float,
) -> RuleGroup | None:
    where = f"{file}: groups[{gi}]"
    if not isinstance(raw, dict):
        problems.append(f"{where}: expected a mapping with name: and rules:")
        return None
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        problems.append(f"{where}: name: every group needs a non-empty name")
        name = f"#{gi}"
    else:
        where = f"{file}: group {name!r}"
        if name in names:
            problems.append(f"{where}: the group name is repeated in the same file")
        names.add(name)
    for key in raw:
        if key not in _GROUP_KEYS:
            problems.append(
                f"{where}: unknown key {key!r} (expected one of {', '.join(sorted(_GROUP_KEYS))})"
            )
    interval: float | None = None
    if raw.get("interval") is not None:
        try:
            interval = prom_duration(raw["interval"])
            if interval <= 0:
                raise ValueError("the interval must be more than 0")
        except ValueError as exc:
            problems.append(f"{where}: interval: {exc}")
    limit = raw.get("limit", 0)
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
        problems.append(f"{where}: limit: expected a whole number >= 0, got {limit!r}")
        limit = 0
    raw_rules = raw.get("rules")
    if raw_rules is None:
        raw_rules = []
    if not isinstance(raw_rules, list):
        problems.append(f"{where}: rules: expected a list of rules")
        raw_rules = []
    rules: list[Rule] = []
    for ri, raw_rule in enumerate(raw_rules):
        rule = _parse_rule(
            raw_rule, ri, where, problems, external_labels, external_url, subquery_step
        )
        if rule is not None:
            rules.append(rule)
    return RuleGroup(name=name, file=file, rules=rules, interval=interval, limit=limit, source=raw)


def _scalar_str(value: Any) -> str | None:
    """YAML scalars as Prometheus reads them into string fields (`expr: 1` is "1")."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return None


def _parse_rule(
    raw: Any,
    ri: int,
    group_where: str,
    problems: list[str],
    external_labels: dict[str, str],
    external_url: str,
    subquery_step: float,
) -> Rule | None:
    if not isinstance(raw, dict):
        problems.append(
            f"{group_where}: rules[{ri}]: expected a mapping with alert: or record:, and expr:"
        )
        return None
    alert, record = raw.get("alert"), raw.get("record")
    if alert is not None and record is not None:
        problems.append(f"{group_where}: rules[{ri}]: only one of `record` and `alert` can be set")
        return None
    if alert is None and record is None:
        problems.append(f"{group_where}: rules[{ri}]: one of `record` or `alert` must be set")
        return None
    kind = "alert" if alert is not None else "record"
    name = _scalar_str(alert if alert is not None else record) or ""
    what = "alerting" if kind == "alert" else "recording"
    where = f"{group_where}: {what} rule {name!r} (rules[{ri}])"
    start = len(problems)
    allowed = _ALERT_KEYS if kind == "alert" else _RECORD_KEYS
    for key in raw:
        if key not in allowed:
            if kind == "record" and key in _ALERT_KEYS:
                problems.append(f"{where}: {key!r} is not allowed in a recording rule")
            else:
                problems.append(
                    f"{where}: unknown key {key!r} (expected one of {', '.join(sorted(allowed))})"
                )
    if not name:
        problems.append(f"{where}: {kind}: the name must not be empty")
    elif kind == "record" and not METRIC_NAME_RE.match(name):
        problems.append(f"{where}: record: {name!r} is not a valid metric name")

    expr_text = _scalar_str(raw.get("expr"))
    expr: Any = None
    if expr_text is None or not expr_text.strip():
        problems.append(f"{where}: expr: every rule needs an expression")
    else:
        try:
            expr = compile_expr(expr_text, subquery_step=subquery_step)
        except ValueError as exc:
            problems.append(f"{where}: expr: {exc}")

    durations: dict[str, float] = {}
    for key in ("for", "keep_firing_for", "cooldown"):
        if kind == "alert" and raw.get(key) is not None:
            try:
                durations[key] = prom_duration(raw[key])
            except ValueError as exc:
                problems.append(f"{where}: {key}: {exc}")

    labels = _string_map(raw.get("labels"), "labels", where, problems)
    for label in labels:
        if not LABEL_NAME_RE.match(label) or label == "__name__":
            problems.append(f"{where}: labels: {label!r} is not a valid label name")
    annotations = (
        _string_map(raw.get("annotations"), "annotations", where, problems)
        if kind == "alert"
        else {}
    )
    for ann in annotations:
        if not LABEL_NAME_RE.match(ann):
            problems.append(f"{where}: annotations: {ann!r} is not a valid annotation name")

    if kind == "record":
        if len(problems) > start:
            return None
        return RecordingRule(name=name, expr_text=expr_text or "", expr=expr, labels=labels)

    label_tmpls = _templates(labels, "label", where, problems)
    ann_tmpls = _templates(annotations, "annotation", where, problems)
    if len(problems) > start:
        return None
    return AlertingRule(
        name=name,
        expr_text=expr_text or "",
        expr=expr,
        hold=durations.get("for", 0.0),
        keep_firing_for=durations.get("keep_firing_for", 0.0),
        labels=label_tmpls,
        annotations=ann_tmpls,
        cooldown=durations.get("cooldown", 0.0),
        external_labels=external_labels,
        external_url=external_url,
        generator_url=_generator_url(external_url, expr_text or ""),
    )


def _string_map(raw: Any, key: str, where: str, problems: list[str]) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        problems.append(f"{where}: {key}: expected a mapping of names to strings")
        return {}
    out: dict[str, str] = {}
    for k, v in raw.items():
        s = _scalar_str(v)
        if not isinstance(k, str) or s is None:
            problems.append(f"{where}: {key}.{k}: expected a string value")
            continue
        out[k] = s
    return out


def _templates(
    texts: dict[str, str], what: str, where: str, problems: list[str]
) -> dict[str, Template]:
    out: dict[str, Template] = {}
    for name, text in texts.items():
        try:
            out[name] = Template(text)
        except TemplateError as exc:
            problems.append(f"{where}: {what} {name!r}: template: {exc}")
    return out


def _generator_url(external_url: str, expr: str) -> str:
    """Prometheus' link to the expression (the `generatorURL` Alertmanager shows)."""
    q = urllib.parse.urlencode({"g0.expr": expr, "g0.tab": "1"}, quote_via=urllib.parse.quote)
    return f"{external_url.rstrip('/')}/graph?{q}"
