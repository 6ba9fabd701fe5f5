"""What the HTTP server asks of the running agent (agent.app.Agent implements it).

Routes and pages take a `ServerHandlers`; they never import the agent itself, so the
server stays below the agent in the layout and tests can hand it a double.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal, Protocol, runtime_checkable

from prometheus_client.registry import Collector

from agent.notify.api import AlertmanagerAPI
from agent.server.pages.views import (
    AgentStatus,
    GroupView,
    HistoryWindow,
    RangeResult,
    RunningConfig,
)

ReloadStatus = Literal["ok", "failed", "needs_restart", "not_ready"]
"""What a reload did: applied; rejected (the running config is kept); applied except for
settings that only a restart can change (the listen address); not tried, the agent being
still busy starting (reading the backlog found at start)."""


class WrittenFamilies(Protocol):
    """Families at one instant that write their own exposition text (in any thread)."""

    names: frozenset[str]
    """Their names as prometheus_client names families (a counter's without `_total`)."""
    samples: int

    def write(self, openmetrics: bool = False, escaping: str = ...) -> Iterator[str]:
        """The text of every family, in chunks, without OpenMetrics' `# EOF`."""
        ...


@runtime_checkable
class WritesItself(Protocol):
    """A collector whose big families are written as text directly (the store's): its
    `snapshot()` is taken on the event loop, and `collect()` yields the rest."""

    def snapshot(self) -> WrittenFamilies: ...

    def collect(self) -> Any: ...


class ServerHandlers(Protocol):
    """What the server asks of the running agent (implemented by agent.app)."""

    @property
    def collectors(self) -> list[Collector]: ...

    def is_ready(self) -> bool: ...

    async def values_current(self, timeout: float) -> bool: ...

    async def reload(self) -> tuple[ReloadStatus, str]: ...

    def alerts_api(self) -> dict[str, Any]: ...

    def rules_api(self) -> dict[str, Any]: ...

    # what the web pages show besides the API's alerts and rules (agent.server.pages)

    def status(self) -> AgentStatus: ...

    def rule_groups(self) -> list[GroupView]: ...

    def history(self) -> HistoryWindow: ...

    def query_range(self, expr: str, start: float, end: float, step: float) -> RangeResult:
        """`expr` at every `step` from `start` to `end`; ValueError for a bad expression."""
        ...

    def running_config(self) -> RunningConfig: ...

    @property
    def alertmanager_api(self) -> AlertmanagerAPI: ...
