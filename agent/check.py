"""`chatwatch check`: validate a config and everything it references, report every problem."""

from __future__ import annotations

from collections.abc import Callable

from agent.config import Config, ConfigError, load

# Further checks over a loaded config (rule files, templates, receivers), each returning
# problems as `file: key: expectation` sentences. Components append to this list.
CHECKS: list[Callable[[Config], list[str]]] = []


def check_all(path: str) -> list[str]:
    try:
        cfg = load(path)
    except ConfigError as exc:
        return exc.problems
    problems: list[str] = []
    for check in CHECKS:
        problems.extend(check(cfg))
    return problems


def _register_component_checks() -> None:
    from agent.notify.check import check_alerting
    from agent.server import check_server

    CHECKS.append(check_alerting)
    CHECKS.append(check_server)


_register_component_checks()
