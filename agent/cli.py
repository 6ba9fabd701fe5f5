"""The `chatwatch` command: run | check | test rules | replay | export-rules | demo.

Each command is one module of `agent/commands/` with `add_parser` and `main`, listed here
by name: nothing registers itself on import.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from agent import __version__
from agent.commands import check, demo, export_rules, replay, run, test_rules
from agent.support import logs

COMMANDS = (run, check, test_rules, replay, export_rules, demo)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chatwatch",
        description=(
            "Tail a chatbot's logs, expose Prometheus metrics, evaluate alert rules, notify."
        ),
    )
    parser.add_argument("--version", action="version", version=f"chatwatch {__version__}")
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    parser.add_argument(
        "--log-format", default="json", choices=["json", "text"], help="agent logs on stderr"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logs.setup(args.log_level, args.log_format)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
