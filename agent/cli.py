"""The `chatwatch` command: run | check | test rules | replay | export-rules | demo."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from agent import __version__, logs

Command = Callable[[argparse.Namespace], int]
_COMMANDS: dict[str, Command] = {}


def _cmd_check(args: argparse.Namespace) -> int:
    from agent.check import check_all

    problems = check_all(args.config)
    if problems:
        for p in problems:
            print(p, file=sys.stderr)
        print(f"{args.config}: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"{args.config}: ok")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from agent.app import run_from_file

    return run_from_file(args.config)


def _cmd_demo(args: argparse.Namespace) -> int:
    from agent.demo import run_demo

    return run_demo(args)


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

    p = sub.add_parser("run", help="run the agent")
    p.add_argument("-c", "--config", required=True, help="config file (YAML)")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("check", help="validate a config and everything it references")
    p.add_argument("-c", "--config", required=True)
    p.set_defaults(func=_cmd_check)

    p = sub.add_parser("demo", help="a demo chatbot writes logs and chatwatch watches them")
    p.add_argument("--dir", default=None, help="working folder (default: a temporary one)")
    p.add_argument("--listen", default="127.0.0.1:9317")
    p.add_argument(
        "--duration", type=float, default=0, help="stop after N seconds (0: run until ^C)"
    )
    p.set_defaults(func=_cmd_demo)

    for register in _EXTENSIONS:
        register(sub)
    return parser


# Subcommands added by other packages (rules: `test rules`, `export-rules`, `replay`).
_EXTENSIONS: list[Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None]] = []


def _load_extensions() -> None:
    import importlib

    for module in ("agent.alerting.commands",):
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            continue
        _EXTENSIONS.append(mod.register)


def main(argv: Sequence[str] | None = None) -> int:
    _load_extensions()
    parser = build_parser()
    args = parser.parse_args(argv)
    logs.setup(args.log_level, args.log_format)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
