"""`chatwatch check -c CONFIG`: validate a config and everything it references.

Every problem is reported (file, key path, what was expected), not just the first: the
config models, then the rule files, then what each section needs from the filesystem
(CA bundles, TLS keys). Exit 1 if there is any. A config without problems also gets the
memory its rules' history will need at the metrics' series caps (docs/promql.md).
"""

from __future__ import annotations

import argparse
import glob
import os
import sys

from agent.alerting.history import BYTES_PER_SAMPLE, EVERYTHING, Interest
from agent.alerting.manager import estimate_memory, required_interest
from agent.alerting.rule_file import RuleError, load_rule_files
from agent.config import Config, ConfigError, load
from agent.metrics.config import MetricConfig
from agent.notify.config import alerting_warnings, check_alerting
from agent.server.tls import check as check_server
from agent.support.duration import format_duration


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("check", help="validate a config and everything it references")
    p.add_argument("-c", "--config", required=True)
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    problems, warnings = check_config(args.config)
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    if problems:
        for p in problems:
            print(p, file=sys.stderr)
        print(f"{args.config}: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    for line in history_memory(load(args.config)):
        print(line)
    print(f"{args.config}: ok")
    return 0


def check_all(path: str) -> list[str]:
    """Every problem in the config at `path` and in what it references."""
    return check_config(path)[0]


def check_config(path: str) -> tuple[list[str], list[str]]:
    """(problems, warnings): a problem stops the agent from working as configured; a
    warning is worth a look but may be fine (a log file that does not exist yet)."""
    try:
        cfg = load(path)
    except ConfigError as exc:
        return exc.problems, []
    problems = [
        *check_rule_files(cfg),
        *check_alerting(cfg.alerting),
        *check_server(cfg.server, cfg.base_dir),
        *check_state_dir(path, cfg),
    ]
    warnings = [f"{path}: {w}" for w in alerting_warnings(cfg.alerting)]
    return problems, [*unmatched_globs(path, cfg), *warnings]


def check_state_dir(file: str, cfg: Config) -> list[str]:
    """The state folder (checkpoints, alerts, notifications) must be writable, or be
    creatable in a writable folder. Nothing is created: `check` has no side effects."""
    wanted = cfg.resolve(cfg.state_dir)
    existing = wanted
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        reason = f"{existing} is not a folder"
    elif not os.access(existing, os.W_OK | os.X_OK):
        reason = f"{existing} is not writable"
    else:
        return []
    return [
        f"{file}: state_dir: cannot write checkpoints and alert state to {wanted}: {reason} "
        "(mount a writable volume there, or set state_dir)"
    ]


def unmatched_globs(file: str, cfg: Config) -> list[str]:
    """Sources whose globs match no file yet: fine when the chatbot has not logged yet,
    a typo otherwise."""
    warnings = []
    for i, src in enumerate(cfg.sources):
        if src.stdin or any(glob.glob(str(cfg.resolve(p))) for p in src.paths):
            continue
        patterns = ", ".join(str(cfg.resolve(p)) for p in src.paths)
        warnings.append(
            f"{file}: sources[{i}].paths: no file matches {patterns} yet; it is read once it "
            "appears"
        )
    return warnings


def configured_series(metrics: list[MetricConfig], read: Interest = EVERYTHING) -> int:
    """The most series the metrics can have: `max_series` label sets each, and per label
    set of a histogram its buckets, `+Inf`, `_sum` and `_count`; with `read`, only those
    of the sample names it wants (what the rules can read)."""
    total = 0
    for m in metrics:
        if m.type != "histogram":
            total += m.max_series if read.wants_name(m.name) else 0
            continue
        per_set = len(m.bucket_bounds) + 1 if read.wants_name(m.name + "_bucket") else 0
        per_set += read.wants_name(m.name + "_sum") + read.wants_name(m.name + "_count")
        total += m.max_series * per_set
    return total


def history_memory(cfg: Config) -> list[str]:
    """What the rules' history needs at the configured series count (empty: no rules)."""
    groups = load_rule_files(
        cfg.rule_files, base_dir=cfg.base_dir, subquery_step=cfg.evaluation_interval
    )
    if not groups:
        return []
    series = configured_series(cfg.metrics, required_interest(groups))
    est = estimate_memory(groups, cfg.evaluation_interval, series)
    lines = [
        f"rules: {format_duration(est.retention)} of history every "
        f"{format_duration(cfg.evaluation_interval)}: {est.series} series (max_series) x "
        f"{est.samples_per_series} samples x {BYTES_PER_SAMPLE} bytes = "
        f"{_mib(est.history_bytes)}"
    ]
    if est.subquery_bytes:
        lines.append(f"rules: subquery results kept: at most {_mib(est.subquery_bytes)} more")
    return lines


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f} MiB"


def check_rule_files(cfg: Config) -> list[str]:
    """Every problem in the config's rule files, and recording rules that would write over
    a metric the config defines."""
    try:
        groups = load_rule_files(
            cfg.rule_files, base_dir=cfg.base_dir, subquery_step=cfg.evaluation_interval
        )
    except RuleError as exc:
        return exc.problems
    configured = {m.name for m in cfg.metrics}
    return [
        f"{g.file}: group {g.name!r}: recording rule {r.name!r}: the name is a metric "
        "defined in metrics:; choose another name"
        for g in groups
        for r in g.recording_rules()
        if r.name in configured
    ]
