"""The routing tree (Alertmanager's dispatch/route.go): which receivers an alert goes to.

A child inherits every option it does not set from its parent. An alert descends into
the first matching child; with `continue: true` on that child it also tries the next
siblings. A node none of whose children match is itself the match. Pure: no I/O.

`mute_time_intervals` and `active_time_intervals` are the exception to inheritance: as in
Alertmanager, each route has only its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from agent.notify.config import (
    DEFAULT_GROUP_INTERVAL,
    DEFAULT_GROUP_WAIT,
    DEFAULT_REPEAT_INTERVAL,
    RouteConfig,
)
from agent.notify.matchers import Matcher, format_matchers
from agent.notify.timeinterval import NamedIntervals

GROUP_BY_ALL = "..."


@dataclass(eq=False, slots=True)
class Route:
    receiver: str
    matchers: list[Matcher]
    group_by: frozenset[str] | None
    """None means `...`: every label of the alert."""
    group_wait: float
    group_interval: float
    repeat_interval: float
    continue_: bool = False
    routes: list[Route] = field(default_factory=list)
    key: str = "{}"
    """Alertmanager's Route.Key(): the matcher sets from the root, joined by `/`."""
    id: str = "{}"
    """Key plus the position among siblings, unique in the tree (Route.ID())."""
    mute_time_intervals: list[str] = field(default_factory=list)
    active_time_intervals: list[str] = field(default_factory=list)
    intervals: NamedIntervals | None = None
    """The config's named time intervals (set when the route names any)."""

    def time_muted(self, now: float) -> bool:
        """Alertmanager's TimeMuteStage and TimeActiveStage: in a mute interval, or
        outside every active interval (when the route has any)."""
        if self.intervals is None:
            return False
        if self.intervals.contains(self.mute_time_intervals, now):
            return True
        return bool(self.active_time_intervals) and not self.intervals.contains(
            self.active_time_intervals, now
        )

    def time_boundary(self, now: float) -> float:
        """No later than the next moment `time_muted` may change."""
        assert self.intervals is not None
        return self.intervals.next_boundary(
            self.mute_time_intervals + self.active_time_intervals, now
        )

    def match(self, labels: dict[str, str]) -> list[Route]:
        """Every route (receiver) that should handle an alert with these labels."""
        if not all(m.matches(labels) for m in self.matchers):
            return []
        out: list[Route] = []
        for child in self.routes:
            hits = child.match(labels)
            out.extend(hits)
            if hits and not child.continue_:
                break
        return out or [self]

    def group_labels(self, labels: dict[str, str]) -> dict[str, str]:
        if self.group_by is None:
            return dict(labels)
        return {k: v for k, v in labels.items() if k in self.group_by}

    def walk(self) -> list[Route]:
        out = [self]
        for child in self.routes:
            out.extend(child.walk())
        return out


def build_route(
    cfg: RouteConfig,
    parent: Route | None = None,
    position: int = -1,
    intervals: NamedIntervals | None = None,
) -> Route:
    """Turn config into a tree with inherited options resolved. `intervals` are the
    config's `time_intervals` (AlertingConfig.all_time_intervals), needed when routes
    name any."""
    matchers = cfg.all_matchers()
    if cfg.group_by is not None:
        group_by = None if GROUP_BY_ALL in cfg.group_by else frozenset(cfg.group_by)
    elif parent is not None:
        group_by = parent.group_by
    else:
        group_by = frozenset()
    receiver = cfg.receiver or (parent.receiver if parent else "")
    key = format_matchers(matchers)
    if parent is not None:
        key = f"{parent.key}/{key}"
    route = Route(
        receiver=receiver,
        matchers=matchers,
        group_by=group_by,
        group_wait=_pick(cfg.group_wait, parent.group_wait if parent else None, DEFAULT_GROUP_WAIT),
        group_interval=_pick(
            cfg.group_interval, parent.group_interval if parent else None, DEFAULT_GROUP_INTERVAL
        ),
        repeat_interval=_pick(
            cfg.repeat_interval, parent.repeat_interval if parent else None, DEFAULT_REPEAT_INTERVAL
        ),
        continue_=cfg.continue_,
        key=key,
        id=key if position < 0 else f"{key}/{position}",
        mute_time_intervals=list(cfg.mute_time_intervals),
        active_time_intervals=list(cfg.active_time_intervals),
    )
    if cfg.mute_time_intervals or cfg.active_time_intervals:
        if intervals is None:
            raise ValueError(f"route {key}: names time intervals but none were given")
        route.intervals = intervals
    route.routes = [build_route(child, route, i, intervals) for i, child in enumerate(cfg.routes)]
    return route


def _pick(own: float | None, inherited: float | None, default: float) -> float:
    if own is not None:
        return own
    if inherited is not None:
        return inherited
    return default
