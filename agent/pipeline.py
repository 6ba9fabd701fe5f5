"""The pipeline after the sources, wired once: events -> series -> rule history -> alerts.

`feed(origin, events)` takes what a source decoded (it is the sink the sources hold);
`tick(now)` is one evaluation: expire idle series, snapshot the store into the rule
history, evaluate every rule group at `now`. The live agent calls `tick` on the wall-clock
grid; `chatwatch replay` calls it on the log's own clock. Both build this one object, so
what replay shows is what the agent would have done.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from agent.alerting.alert import Alert
from agent.alerting.group import RuleGroup
from agent.alerting.history import History
from agent.alerting.manager import RuleManager, required_interest, required_retention
from agent.alerting.rule_file import load_rule_files
from agent.config import Config
from agent.decode.events import Event, Origin
from agent.metrics.config import MetricConfig
from agent.metrics.extract import Extractor
from agent.metrics.store import Store
from agent.support.selfmetrics import SelfMetrics

Notify = Callable[[list[Alert], float], None]


def load_rules(cfg: Config) -> list[RuleGroup]:
    """The config's rule files, with the agent's external URL in templates and links."""
    return load_rule_files(
        cfg.rule_files,
        base_dir=cfg.base_dir,
        external_url=cfg.server.advertised_url,
        subquery_step=cfg.evaluation_interval,
    )


class Pipeline:
    """Extractor + Store + History + RuleManager."""

    def __init__(
        self,
        metrics: list[MetricConfig],
        groups: list[RuleGroup],
        *,
        stats: SelfMetrics,
        notify: Notify,
        evaluation_interval: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.stats = stats
        self._clock = clock
        self.store = Store(stats)
        self.extractor = Extractor(metrics, self.store, stats, clock=clock)
        self.history = History(
            retention=required_retention(groups, evaluation_interval),
            interest=required_interest(groups),
        )
        self.rules = RuleManager(
            groups,
            self.history,
            store=self.store,
            stats=stats,
            notify=notify,
            evaluation_interval=evaluation_interval,
        )

    def feed(self, origin: Origin, events: list[Event]) -> None:
        """Count decoded events into the store (the sink every source hands on to)."""
        self.extractor(origin, events)

    def tick(self, now: float, *, early: bool = False) -> None:
        """One evaluation at `now`: expire, snapshot into the history, evaluate the rules.

        `early`: an evaluation between two regular ones, after new samples, that only
        starts the alerts of rules without `for` (agent/early.py says when)."""
        store = self.store
        store.expire(now)
        history = self.history  # only what rules can read is copied (none: nothing)
        wants = history.interest.wants_name
        history.append(now, store.snapshot(wants), store.take_created(wants))
        if early:
            self.rules.evaluate_early(now)
        else:
            self.rules.evaluate(now)

    def reload(
        self, metrics: list[MetricConfig], groups: list[RuleGroup], evaluation_interval: float
    ) -> None:
        """New metric definitions and rules over the same store and history: counters keep
        their values, alerts keep their state. Raises before changing anything when a
        definition cannot be compiled."""
        extractor = Extractor(metrics, self.store, self.stats, clock=self._clock)
        self.extractor = extractor
        self.rules.reload(groups, evaluation_interval=evaluation_interval)
        self.history.retention = required_retention(groups, evaluation_interval)
        self.history.set_interest(required_interest(groups))
