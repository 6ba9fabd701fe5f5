"""`chatwatch check -c CONFIG`: validate a config and everything it references.

Every problem is reported (file, key path, what was expected), not just the first: the
config models, then the rule files, then what each section needs from the filesystem
(CA bundles, TLS keys). Exit 1 if there is any.
"""

from __future__ import annotations

import argparse
import sys

from agent.alerting.rule_file import RuleError, load_rule_files
from agent.config import Config, ConfigError, load
from agent.notify.config import check_alerting
from agent.server.tls import check as check_server


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("check", help="validate a config and everything it references")
    p.add_argument("-c", "--config", required=True)
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    problems = check_all(args.config)
    if problems:
        for p in problems:
            print(p, file=sys.stderr)
        print(f"{args.config}: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"{args.config}: ok")
    return 0


def check_all(path: str) -> list[str]:
    """Every problem in the config at `path` and in what it references."""
    try:
        cfg = load(path)
    except ConfigError as exc:
        return exc.problems
    return [
        *check_rule_files(cfg),
        *check_alerting(cfg.alerting),
        *check_server(cfg.server, cfg.base_dir),
    ]


def check_rule_files(cfg: Config) -> list[str]:
    """Every problem in the config's rule files, and recording rules that would write over
    a metric the config defines."""
    try:
        groups = load_rule_files(cfg.rule_files, base_dir=cfg.base_dir)
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
