"""`chatwatch run -c CONFIG`: the live agent."""

from __future__ import annotations

import argparse
import asyncio
import logging

from agent.alerting.rule_file import RuleError
from agent.app import Agent
from agent.config import ConfigError, load
from agent.server.config import ServerError

log = logging.getLogger("chatwatch")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("run", help="run the agent")
    p.add_argument("-c", "--config", required=True, help="config file (YAML)")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    return run_from_file(args.config)


def run_from_file(path: str) -> int:
    try:
        cfg = load(path)
        agent = Agent(path, cfg)
    except (ConfigError, RuleError) as exc:
        for p in exc.problems:
            log.error(p)
        return 1
    code = 1
    try:
        code = asyncio.run(agent.run())
    except* ServerError as group:  # the port is taken, the TLS files do not load
        for problem in group.exceptions:
            log.error(str(problem))
    return code
