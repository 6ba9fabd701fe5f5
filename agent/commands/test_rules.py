"""`chatwatch test rules FILE...`: rule unit tests in promtool's format, promtool's verdicts."""

from __future__ import annotations

import argparse

from agent.alerting.ruletest import run_tests


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("test", help="run unit tests")
    test_sub = p.add_subparsers(dest="test_command", required=True)
    t = test_sub.add_parser("rules", help="rule unit tests in promtool's format")
    t.add_argument("files", nargs="+", metavar="FILE", help="test files (promtool format)")
    t.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    return run_tests(list(args.files))
