"""Early evaluations: the line that crosses a threshold alerts before the next grid tick.

Between two regular evaluations, new samples bring an early one (agent/early.py): it
starts the alerts of rules without `for` and nothing else, so `for`, `keep_firing_for`
and resolving stay on the grid. Driven through the agent's own Pipeline with explicit
times (no clock, no files); the schedule's arithmetic (`early_at`) on its own, and its
loop fed batches; and the live agent once, with an interval so long that only an early
evaluation can fire.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from pathlib import Path

import httpx

from agent.alerting.alert import Alert
from agent.alerting.rule_file import parse_rule_file
from agent.decode.events import Origin
from agent.early import EARLY_GAP, GRID_MARGIN, Evaluations, early_at
from agent.metrics.config import MetricConfig
from agent.pipeline import Pipeline
from agent.support.selfmetrics import SelfMetrics
from tests.realservers import free_port, running_chatwatch, wait_until

T0 = 1_796_083_200.0  # 2026-12-01T00:00:00Z, on the grid
ORIGIN = Origin("bot", "/var/log/bot.log")
RULES = """
groups:
  - name: queue
    rules:
      - alert: QueueLong
        expr: queue_length > 10
      - alert: QueueLongForAWhile
        expr: queue_length > 10
        for: 2s
      - alert: QueueStuck
        expr: queue_length > 10
        keep_firing_for: 5s
"""


class Harness:
    def __init__(self, rules: str = RULES) -> None:
        groups, problems = parse_rule_file(rules, "rules.yml")
        assert problems == []
        self.sent: list[tuple[float, list[Alert]]] = []
        self.pipeline = Pipeline(
            [
                MetricConfig.model_validate(
                    {"name": "queue_length", "type": "gauge", "value": "length"}
                )
            ],
            groups,
            stats=SelfMetrics(),
            notify=lambda alerts, now: self.sent.append((now, alerts)),
            evaluation_interval=1.0,
            clock=lambda: T0,
        )

    def queue(self, length: float) -> None:
        self.pipeline.feed(ORIGIN, [{"length": length}])

    def states(self) -> dict[str, tuple[str, float]]:
        """alertname -> (state, active_at) of each alert not inactive."""
        return {
            a.labels["alertname"]: (a.state, a.active_at)
            for g in self.pipeline.rules.groups
            for r in g.alerting_rules()
            for a in r.active_alerts()
        }

    def notified(self) -> list[tuple[float, list[str]]]:
        """When alerts were handed on, and which (evaluations with none left out)."""
        return [
            (now, [a.labels["alertname"] for a in alerts]) for now, alerts in self.sent if alerts
        ]


def test_an_early_evaluation_fires_a_rule_without_for_before_the_next_tick() -> None:
    h = Harness()
    h.queue(3)
    h.pipeline.tick(T0)
    h.queue(50)
    h.pipeline.tick(T0 + 0.3, early=True)
    assert h.states() == {"QueueLong": ("firing", T0 + 0.3), "QueueStuck": ("firing", T0 + 0.3)}
    assert h.notified() == [(T0 + 0.3, ["QueueLong", "QueueStuck"])]
    # the next regular evaluation finds them firing already: nothing starts again
    h.pipeline.tick(T0 + 1)
    states = h.states()
    assert states["QueueLong"] == ("firing", T0 + 0.3)
    assert states["QueueStuck"] == ("firing", T0 + 0.3)


def test_for_is_still_measured_on_the_grid() -> None:
    h = Harness()
    h.queue(3)
    h.pipeline.tick(T0)
    h.queue(50)
    h.pipeline.tick(T0 + 0.3, early=True)
    assert "QueueLongForAWhile" not in h.states()  # not pending from an off-grid time
    h.pipeline.tick(T0 + 1)
    assert h.states()["QueueLongForAWhile"] == ("pending", T0 + 1)
    h.pipeline.tick(T0 + 1.4, early=True)
    h.pipeline.tick(T0 + 2)
    assert h.states()["QueueLongForAWhile"] == ("pending", T0 + 1)
    h.pipeline.tick(T0 + 3)
    assert h.states()["QueueLongForAWhile"] == ("firing", T0 + 1)


def test_an_early_evaluation_resolves_nothing() -> None:
    h = Harness()
    h.queue(50)
    h.pipeline.tick(T0)
    h.pipeline.tick(T0 + 1)
    assert h.states()["QueueLong"] == ("firing", T0)
    sent = len(h.sent)
    h.queue(0)
    h.pipeline.tick(T0 + 1.3, early=True)
    assert h.states()["QueueLong"] == ("firing", T0)  # resolving waits for the grid
    assert len(h.sent) == sent  # and nothing new was handed on
    h.pipeline.tick(T0 + 2)
    assert "QueueLong" not in h.states()
    assert h.states()["QueueStuck"] == ("firing", T0)  # keep_firing_for from the grid tick


def test_early_evaluations_only_for_groups_with_a_rule_without_for_on_the_interval() -> None:
    only_for = RULES.replace("      - alert: QueueLong\n        expr: queue_length > 10\n", "")
    only_for = only_for.replace("        keep_firing_for: 5s\n", "        for: 1s\n")
    h = Harness(only_for)
    assert not h.pipeline.rules.evaluates_early
    assert Harness().pipeline.rules.evaluates_early
    # a group given a longer interval than the global one was asked for less, not more
    slow = RULES.replace("  - name: queue\n", "  - name: queue\n    interval: 1m\n")
    assert not Harness(slow).pipeline.rules.evaluates_early


def test_early_at_coalesces_and_leaves_room_for_the_grid() -> None:
    # idle: at once
    assert early_at(arrived=10.3, last_end=10.0, last_cost=0.001, next_tick=11.0) == 10.3
    # right after an evaluation: EARLY_GAP after it
    assert early_at(10.05, 10.0, 0.001, 11.0) == 10.0 + EARLY_GAP
    # an expensive last evaluation spaces early ones further
    assert early_at(10.05, 10.0, 0.05, 11.0) == 10.5
    # so expensive that the regular tick comes first: none
    assert early_at(10.05, 10.0, 0.2, 11.0) is None
    # too close to the regular tick: none
    assert early_at(11.0 - GRID_MARGIN / 2, 10.0, 0.001, 11.0) is None


def test_the_live_agent_alerts_between_two_regular_evaluations(tmp_path: Path) -> None:
    """With a 1 h evaluation interval, only an early evaluation can fire in time."""
    log = tmp_path / "bot.log"
    log.touch()
    (tmp_path / "rules.yml").write_text(RULES)
    port = free_port()
    config = tmp_path / "chatwatch.yaml"
    config.write_text(f"""
sources: [{{name: bot, paths: ["{log}"], format: json}}]
state_dir: {tmp_path / "state"}
server: {{listen: "127.0.0.1:{port}"}}
metrics:
  - {{name: queue_length, type: gauge, value: length}}
rule_files: ["rules.yml"]
evaluation_interval: 1h
""")
    with running_chatwatch(config, port, tmp_path):
        with log.open("a") as out:
            out.write(json.dumps({"length": 50}) + "\n")

        def firing() -> list[str]:
            alerts = httpx.get(f"http://127.0.0.1:{port}/api/v1/alerts").json()["data"]["alerts"]
            return sorted(a["labels"]["alertname"] for a in alerts if a["state"] == "firing")

        assert wait_until(firing, what="the alerts of rules without `for` firing") == [
            "QueueLong",
            "QueueStuck",
        ]
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        early = [ln for ln in metrics.splitlines() if ln.startswith("chatwatch_rule_early_")]
        assert early and float(early[0].split()[-1]) >= 1, early


async def test_batches_arriving_all_the_time_bring_an_early_evaluation_per_gap() -> None:
    """The agent's schedule with a grid an hour away: batches every 10 ms for 0.6 s bring
    early evaluations, but no more than one per EARLY_GAP."""
    ticks: list[tuple[float, bool]] = []
    evaluations = Evaluations(lambda now, early: ticks.append((now, early)), 3600.0, lambda: True)
    task = asyncio.create_task(evaluations.run())
    try:
        started = time.monotonic()
        while time.monotonic() - started < 0.6:
            evaluations.samples_arrived()
            await asyncio.sleep(0.01)
        took = time.monotonic() - started
        evaluations.samples_arrived()
        while len(ticks) < 2:  # the last batch is evaluated too, a gap later
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert all(early for _, early in ticks)
    assert len(ticks) <= took / EARLY_GAP + 2, ticks
    gaps = [b - a for (a, _), (b, _) in itertools.pairwise(ticks)]
    assert min(gaps) >= EARLY_GAP * 0.9, gaps  # (the loop's timers may fire a bit early)
