"""`chatwatch test rules FILE...`: rule unit tests in promtool's format, with its verdicts.

A test file names `rule_files` (relative to itself), an `evaluation_interval` and `tests`,
each with `input_series` in the expanding notation (`0+10x5`, `1-2x3`, `3x2`, `_`, `_x3`,
`stale`), `alert_rule_test` (which alerts are *firing* at `eval_time`) and
`promql_expr_test` (the instant-query result at `eval_time`). As in promtool 2.42, rules
are evaluated from time 0 every `evaluation_interval` up to the latest `eval_time`; an
alert test at time T looks at the evaluation at or just before T; expressions are compared
exactly (labels and float64 values; NaN never equals NaN). The report format and exit
status are promtool's, so CI scripts can switch between the two.
"""

from __future__ import annotations

import glob
import math
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import promql_parser as pp
import yaml

from agent.alerting.history import STALE_NAN, History, SeriesKey
from agent.alerting.promql.engine import compile_expr, evaluate
from agent.alerting.rule_file import RuleError, load_rule_files
from agent.support.duration import format_prometheus_ms, parse_prometheus_ms
from agent.support.goformat import format_float, go_quote


class TestFileError(ValueError):
    """The test file itself is wrong (not a failing test)."""


def parse_duration_ms(text: Any) -> int:
    """Prometheus' model.ParseDuration (`1h30m`, `90s`, `0`), in milliseconds."""
    try:
        return parse_prometheus_ms(str(text).strip())
    except ValueError as exc:
        raise TestFileError(str(exc)) from None


def format_labels(labels: dict[str, str] | SeriesKey) -> str:
    items = sorted(labels.items()) if isinstance(labels, dict) else list(labels)
    return "{" + ", ".join(f"{n}={go_quote(v)}" for n, v in items) + "}"


# -- input series ------------------------------------------------------------------------------

# No hexadecimal: Prometheus' lexer disallows it in series descriptions ("0x10" is 0 and 10
# more zeros).
_UNSIGNED = r"(?:(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|Inf|inf|NaN)"
_ITEM = re.compile(rf"^(?P<a>[+-]?{_UNSIGNED})(?:(?P<b>[+-]{_UNSIGNED})?x(?P<n>\d+))?$")
_BLANKS = re.compile(r"^_(?:x(?P<n>\d+))?$")
_OCTAL = re.compile(r"^-?0[0-7]+$")


def _number(text: str) -> float:
    t = text.lstrip("+")
    if t.lower() in ("inf", "-inf"):
        return -math.inf if t.startswith("-") else math.inf
    if _OCTAL.match(t):  # Prometheus tries strconv.ParseInt(text, 0, 64) first: 010 is 8
        return float(int(t.replace("0", "0o", 1), 8))
    return float(t)


def expand_values(text: str) -> list[float | None]:
    """The expanding notation: one entry per interval, None for a missing sample."""
    out: list[float | None] = []
    for item in str(text).split():
        if item == "stale":
            out.append(STALE_NAN)
            continue
        blanks = _BLANKS.match(item)
        if blanks:
            out.extend([None] * (int(blanks["n"]) if blanks["n"] else 1))
            continue
        m = _ITEM.match(item)
        if m is None:
            raise TestFileError(f"invalid value {item!r} in input series values {text!r}")
        value = _number(m["a"])
        out.append(value)
        if m["n"] is not None:
            step = _number(m["b"]) if m["b"] else 0.0
            for _ in range(int(m["n"])):
                value += step  # repeated addition, as promtool does (float error included)
                out.append(value)
    return out


def parse_series(text: str) -> SeriesKey:
    """`name{label="value"}` or `{label="value"}` into a sorted key."""
    s = str(text).strip()
    if s in ("", "{}"):
        return ()
    try:
        node = pp.parse(s)
    except Exception as e:
        raise TestFileError(f"invalid series {s!r}: {e}") from None
    if not isinstance(node, pp.VectorSelector):
        raise TestFileError(f"invalid series {s!r}")
    labels: dict[str, str] = {}
    if node.name:
        labels["__name__"] = node.name
    for m in node.matchers.matchers:
        if m.op != pp.MatchOp.Equal:
            raise TestFileError(f"invalid series {s!r}: only = is allowed")
        if m.value:
            labels[m.name] = m.value
    return tuple(sorted(labels.items()))


# -- one test file -----------------------------------------------------------------------------


@dataclass
class _Alert:
    labels: SeriesKey
    annotations: SeriesKey

    def __str__(self) -> str:
        return f"Labels:{format_labels(self.labels)}\nAnnotations:{format_labels(self.annotations)}"


def _alerts_str(alerts: list[_Alert]) -> str:
    if not alerts:
        return "[]"
    s = "[\n0:" + ("\n" + str(alerts[0])).replace("\n", "\n  ")
    for i, a in enumerate(alerts[1:], start=1):
        s += f",\n{i}:" + ("\n" + str(a)).replace("\n", "\n  ")
    return s + "\n]"


def _samples_str(samples: list[tuple[SeriesKey, float]]) -> str:
    if not samples:
        return "nil"
    return ", ".join(f"{format_labels(k)} {format_float(v, 'E')}" for k, v in samples)


def _values_equal(a: list[tuple[SeriesKey, float]], b: list[tuple[SeriesKey, float]]) -> bool:
    return len(a) == len(b) and all(
        ka == kb and va == vb for (ka, va), (kb, vb) in zip(a, b, strict=True)
    )


def _as_dict(x: Any, what: str) -> dict[str, Any]:
    if x is None:
        return {}
    if not isinstance(x, dict):
        raise TestFileError(f"{what} must be a mapping")
    return x


def _load_groups(path: str, patterns: list[str], warnings: list[str], eval_ms: int) -> list[Any]:
    paths: list[str] = []
    for p in patterns:
        # Go's filepath.Join(filepath.Dir(file), p): relative to the test file, cleaned.
        full = p if os.path.isabs(p) else os.path.normpath(os.path.join(os.path.dirname(path), p))
        matches = sorted(glob.glob(full))
        if not matches:
            warnings.append(f"  WARNING: no file match pattern {full}")
        paths.extend(matches)
    if not paths:
        return []
    try:
        return list(load_rule_files(paths, subquery_step=eval_ms / 1000))
    except RuleError as e:
        raise TestFileError("\n".join(e.problems)) from None


def _order_groups(groups: list[Any], order: list[str]) -> list[Any]:
    if not order:
        return groups
    rank = {name: i for i, name in enumerate(order)}
    missing = [g.name for g in groups if g.name not in rank]
    if missing:
        raise TestFileError(
            "group_eval_order: some groups in rule_files are missing: " + ", ".join(missing)
        )
    return sorted(groups, key=lambda g: rank[g.name])


def _firing(group_rules: list[Any], alertname: str) -> list[_Alert]:
    out: list[_Alert] = []
    for rule in group_rules:
        if getattr(rule, "name", None) != alertname or not hasattr(rule, "active_alerts"):
            continue
        for a in rule.active_alerts():
            if getattr(a, "state", "") != "firing":
                continue
            labels = dict(a.labels)
            labels.setdefault("alertname", alertname)
            out.append(
                _Alert(tuple(sorted(labels.items())), tuple(sorted(dict(a.annotations).items())))
            )
    return out


def _run_group(tg: dict[str, Any], groups: list[Any], eval_ms: int) -> list[str]:
    errs: list[str] = []
    # promtool 2.42 takes a missing `interval` as 0: every value lands on time 0 and only
    # the first one is stored (the others are duplicate samples).
    interval_ms = parse_duration_ms(tg["interval"]) if tg.get("interval") else 0
    history = History(retention=10 * 365 * 86400)
    samples: list[tuple[int, SeriesKey, float]] = []
    for item in tg.get("input_series") or []:
        item = _as_dict(item, "input_series entry")
        key = parse_series(item.get("series", ""))
        stored: set[int] = set()
        for i, v in enumerate(expand_values(item.get("values", ""))):
            if v is not None and i * interval_ms not in stored:
                stored.add(i * interval_ms)
                samples.append((i * interval_ms, key, v))
    samples.sort(key=lambda s: s[0])
    loaded = 0

    def load_till(ts: int) -> None:
        """As promtool's lazy loader: before the rules are evaluated at `ts`, the input
        samples up to `ts`; the expression tests see what the last evaluation loaded, so a
        negative offset or `@` cannot read input after it."""
        nonlocal loaded
        while loaded < len(samples) and samples[loaded][0] <= ts:
            t, key, v = samples[loaded]
            history.add(key, t / 1000, v)
            loaded += 1

    alert_tests = [_as_dict(a, "alert_rule_test entry") for a in tg.get("alert_rule_test") or []]
    expr_tests = [_as_dict(e, "promql_expr_test entry") for e in tg.get("promql_expr_test") or []]
    for a in alert_tests:
        a["_t"] = parse_duration_ms(a.get("eval_time", 0))
    for e in expr_tests:
        e["_t"] = parse_duration_ms(e.get("eval_time", 0))
    max_t = max([a["_t"] for a in alert_tests] + [e["_t"] for e in expr_tests] + [0])
    # Keep all of the test's data, however long it spans (promtool's storage does): time 0
    # up to the last sample or evaluation, whichever is later.
    history.retention = max([max_t] + [t for t, _, _ in samples[-1:]]) / 1000 + 1
    name_prefix = f"    name: {tg['name']},\n" if tg.get("name") else ""

    pending = sorted(alert_tests, key=lambda a: a["_t"])
    all_rules = [r for g in groups for r in g.rules]
    ts = 0
    while ts <= max_t:
        load_till(ts)
        eval_errs: list[str] = []
        for g in groups:
            try:
                g.eval(ts / 1000, history)
            except Exception as e:
                eval_errs.append(f"    group: {g.name}, time: {format_prometheus_ms(ts)}, err: {e}")
            for r in g.rules:
                err = getattr(r, "last_error", None)
                if err:
                    eval_errs.append(
                        f"    rule: {r.name}, time: {format_prometheus_ms(ts)}, err: {err}"
                    )
        if eval_errs:
            errs.extend(eval_errs)
            break
        while pending and ts <= pending[0]["_t"] < ts + eval_ms:
            test = pending.pop(0)
            alertname = str(test.get("alertname", ""))
            got = sorted(_firing(all_rules, alertname), key=lambda a: (a.labels, a.annotations))
            exp: list[_Alert] = []
            for ea in test.get("exp_alerts") or []:
                ea = _as_dict(ea, "exp_alerts entry")
                labels = {str(k): str(v) for k, v in _as_dict(ea.get("exp_labels"), "").items()}
                labels["alertname"] = alertname
                annotations = {
                    str(k): str(v) for k, v in _as_dict(ea.get("exp_annotations"), "").items()
                }
                exp.append(
                    _Alert(tuple(sorted(labels.items())), tuple(sorted(annotations.items())))
                )
            exp.sort(key=lambda a: (a.labels, a.annotations))
            if exp != got:
                ind = "\n            "
                errs.append(
                    f"{name_prefix}    alertname: {alertname}, "
                    f"time: {format_prometheus_ms(test['_t'])}, \n"
                    f"        exp:{_alerts_str(exp).replace(chr(10), ind)}, \n"
                    f"        got:{_alerts_str(got).replace(chr(10), ind)}"
                )
        ts += eval_ms

    for test in expr_tests:
        expr_text = str(test.get("expr", ""))
        when = format_prometheus_ms(test["_t"])
        head = f"    expr: {go_quote(expr_text)}, time: {when}"
        try:
            expr = compile_expr(expr_text, subquery_step=eval_ms / 1000)
            result = evaluate(expr, history, test["_t"] / 1000)
        except ValueError as e:
            errs.append(f"{head}, err: {e}")
            continue
        if isinstance(result, float):
            got_samples: list[tuple[SeriesKey, float]] = [((), result)]
        else:
            got_samples = [(tuple(sorted(s.labels.items())), s.value) for s in result]
        try:
            exp_samples = [
                (
                    parse_series(_as_dict(s, "exp_samples entry").get("labels", "")),
                    float(s.get("value", 0)),
                )
                for s in test.get("exp_samples") or []
            ]
        except (TestFileError, ValueError, TypeError) as e:
            errs.append(f"{head}, err: {e}")
            continue
        got_samples.sort(key=lambda kv: kv[0])
        exp_samples.sort(key=lambda kv: kv[0])
        if not _values_equal(exp_samples, got_samples):
            errs.append(
                f"{head},\n        exp: {_samples_str(exp_samples)}\n"
                f"        got: {_samples_str(got_samples)}"
            )
    return errs


# The fields promtool 2.42 knows, by Go type; any other key fails the file, as promtool's
# strict YAML decoding does (a typo such as `exp_sample` must not make a test pass).
_FIELDS: dict[str, tuple[set[str], dict[str, str]]] = {
    "unitTestFile": (
        {"rule_files", "evaluation_interval", "group_eval_order", "tests"},
        {"tests": "testGroup"},
    ),
    "testGroup": (
        {
            "interval",
            "input_series",
            "alert_rule_test",
            "promql_expr_test",
            "external_labels",
            "external_url",
            "name",
        },
        {
            "input_series": "series",
            "alert_rule_test": "alertTestCase",
            "promql_expr_test": "promqlTestCase",
        },
    ),
    "series": ({"series", "values"}, {}),
    "alertTestCase": ({"eval_time", "alertname", "exp_alerts"}, {"exp_alerts": "alert"}),
    "alert": ({"exp_labels", "exp_annotations"}, {}),
    "promqlTestCase": ({"expr", "eval_time", "exp_samples"}, {"exp_samples": "sample"}),
    "sample": ({"labels", "value"}, {}),
}


def _unknown_fields(node: yaml.Node, type_name: str, out: list[str]) -> None:
    if not isinstance(node, yaml.MappingNode):
        return
    known, children = _FIELDS[type_name]
    for k, v in node.value:
        name = str(k.value)
        if name not in known:
            out.append(
                f"  line {k.start_mark.line + 1}: field {name} not found in type main.{type_name}"
            )
        elif name in children and isinstance(v, yaml.SequenceNode):
            for item in v.value:
                _unknown_fields(item, children[name], out)


def _values_as_written(root: yaml.Node, doc: Any) -> None:
    """Series `values` as the text written, as promtool reads them (into a Go string):
    PyYAML would read an unquoted `0x10` as 16 and `010` as 8, promtool as the notation
    `0x10` (0, then ten more zeros) and 10."""
    tests = _child(root, "tests")
    if not isinstance(tests, yaml.SequenceNode) or not isinstance(doc, dict):
        return
    for group_node, group in zip(tests.value, doc.get("tests") or [], strict=False):
        series = _child(group_node, "input_series")
        if not isinstance(series, yaml.SequenceNode) or not isinstance(group, dict):
            continue
        for item_node, item in zip(series.value, group.get("input_series") or [], strict=False):
            values = _child(item_node, "values")
            if isinstance(values, yaml.ScalarNode) and isinstance(item, dict):
                item["values"] = values.value


def _child(node: yaml.Node, key: str) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if k.value == key:
                return v
    return None


def run_file(path: str, warnings: list[str] | None = None) -> list[str]:
    """Run every test group of one file; the promtool-style error messages (empty: passed).
    Warnings (rule file patterns that match nothing) are appended to `warnings`."""
    warnings = warnings if warnings is not None else []
    try:
        text = Path(path).read_text()
        doc = yaml.safe_load(text)
        unknown: list[str] = []
        if doc is not None:
            root = yaml.compose(text, Loader=yaml.SafeLoader)
            if root is not None:
                _unknown_fields(root, "unitTestFile", unknown)
                _values_as_written(root, doc)
    except (OSError, yaml.YAMLError) as e:
        return [f"  {e}"]
    if unknown:
        return ["yaml: unmarshal errors:\n" + "\n".join(unknown)]
    try:
        doc = _as_dict(doc, "the test file")
        eval_ms = parse_duration_ms(doc.get("evaluation_interval") or "1m")
        groups = _order_groups(
            _load_groups(path, [str(p) for p in doc.get("rule_files") or []], warnings, eval_ms),
            [str(n) for n in doc.get("group_eval_order") or []],
        )
        errs: list[str] = []
        for tg in doc.get("tests") or []:
            errs.extend(_run_group(_as_dict(tg, "tests entry"), groups, eval_ms))
        return errs
    except TestFileError as e:
        return [f"  {e}"]


def run_tests(files: list[str], out: TextIO = sys.stdout, err: TextIO | None = None) -> int:
    """Run the test files as `promtool test rules` does; returns the exit status (0 or 1)."""
    err = err if err is not None else (sys.stderr if out is sys.stdout else out)
    failed = False
    for f in files:
        print("Unit Testing: ", f, file=out)
        warnings: list[str] = []
        errors = run_file(f, warnings)
        for w in warnings:
            print(w, file=err)
        if errors:
            print("  FAILED:", file=err)
            for e in errors:
                print(e, file=err)
                print(file=out)
            failed = True
        else:
            print("  SUCCESS", file=out)
        print(file=out)
    return 1 if failed else 0
