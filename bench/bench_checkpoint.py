"""Checkpoint write time at 10k series: how long the event loop is held, and in all.

    python -m bench checkpoint         (part of `make bench`)
    python -m bench.bench_checkpoint [--writes 20]

The real `AgentState` (agent/state.py) writes the checkpoint of a store holding 10k
series: offsets, metric values, alerts, notifications of one instant. The capture (a
copy) runs on the event loop; serializing and writing (temporary file, fsync, rename,
fsync of the folder) run in a thread. Measured per write:

* capture      time of the synchronous capture on the loop.
* loop held    the longest the event loop did not run while a write was in flight (a
               1 ms ticker measures its lateness): the capture, plus the moments the
               writing thread holds the GIL (orjson holds it while it serializes).
* total        capture to file on disk (what `chatwatch_checkpoint_write_duration_seconds`
               reports as event_loop and total).

Two stores: 10k counter series with three labels, and 10k label sets half of which are
14-bucket histograms (the heavier case). Fails when the loop is held 50 ms or more.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

LOOP_BUDGET = 0.050
"""The event loop may be held at most this long by one checkpoint write (issue 10)."""


def _metrics(histograms: bool) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [
        {
            "name": "chatbot_requests_total",
            "type": "counter",
            "labels": {"user": "user", "route": "route", "status": "status"},
            "max_series": 10_000,
        }
    ]
    if histograms:
        out.append(
            {
                "name": "chatbot_latency_seconds",
                "type": "histogram",
                "value": "ms",
                "scale": 0.001,
                "labels": {"user": "user"},
                "max_series": 10_000,
            }
        )
    return out


def _events(histograms: bool) -> list[dict[str, Any]]:
    users = 5_000 if histograms else 10_000
    return [
        {"user": f"user-{u:05d}", "route": "/api/chat", "status": "200", "ms": u % 3000}
        for u in range(users)
    ]


async def _measure(histograms: bool, writes: int, folder: Path) -> dict[str, Any]:
    from agent.decode.events import Origin
    from agent.metrics.config import MetricConfig
    from agent.notify.config import AlertingConfig
    from agent.notify.notifier import Notifier
    from agent.pipeline import Pipeline
    from agent.sources.checkpoint import Checkpoint, Checkpoints
    from agent.state import AgentState, CheckpointFile
    from agent.support.selfmetrics import SelfMetrics

    stats = SelfMetrics()
    notifier = Notifier(
        AlertingConfig(), folder, stats, "http://bench:9317", checkpoint=lambda: None
    )
    pipeline = Pipeline(
        [MetricConfig.model_validate(m) for m in _metrics(histograms)],
        [],
        stats=stats,
        notify=notifier.send,
        evaluation_interval=1.0,
    )
    events = _events(histograms)
    for _ in range(3):
        pipeline.feed(Origin("bench", "/var/log/bench.log"), events)
    checkpoints = Checkpoints(folder / "unused.json", stats)
    for i in range(20):  # a few files being tailed
        checkpoints.put(
            Checkpoint("bench", f"/var/log/bench-{i}.log", 1, i, 1024, "h" * 24, 10**6, "t" * 24)
        )
    state = AgentState(
        CheckpointFile(folder / "checkpoints.json", folder),
        stats,
        checkpoints,
        pipeline.store,
        pipeline.rules,
        notifier,
    )
    label_sets = sum(len(f.series) for f in pipeline.store.families.values())

    held: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        """Records how late each 1 ms sleep wakes: the loop was held that long."""
        while not stop.is_set():
            t = time.perf_counter()
            await asyncio.sleep(0.001)
            held.append(time.perf_counter() - t - 0.001)

    captures, holds, totals = [], [], []
    for _ in range(writes):
        started = time.perf_counter()
        capture = state.capture(time.time())
        captures.append(time.perf_counter() - started)
        del capture
        held.clear()
        stop.clear()
        tick = asyncio.create_task(ticker())
        await asyncio.sleep(0.005)
        started = time.perf_counter()
        assert await state.save()
        totals.append(time.perf_counter() - started)
        await asyncio.sleep(0.005)
        stop.set()
        await tick
        holds.append(max(held))
    size = (folder / "checkpoints.json").stat().st_size
    return {
        "label_sets": label_sets,
        "size": size,
        "capture": captures,
        "held": holds,
        "total": totals,
    }


def _ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:6.1f} ms median, {max(values) * 1000:6.1f} ms max"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--writes", type=int, default=20)
    args = parser.parse_args()
    failed = False
    for histograms, what in (
        (False, "10k counter series (3 labels)"),
        (True, "10k label sets, half 14-bucket histograms"),
    ):
        with tempfile.TemporaryDirectory(prefix="chatwatch-bench-checkpoint-") as tmp:
            r = asyncio.run(_measure(histograms, args.writes, Path(tmp)))
        print(
            f"checkpoint write time at {what} [{r['label_sets']} label sets, "
            f"{r['size'] / 1024:.0f} KiB, {args.writes} writes]:"
        )
        print(f"  capture on the event loop   {_ms(r['capture'])}")
        budget = f"(budget {LOOP_BUDGET * 1000:.0f} ms)"
        print(f"  event loop held (longest)   {_ms(r['held'])}  {budget}")
        print(f"  total, capture to fsync     {_ms(r['total'])}")
        if max(r["held"]) >= LOOP_BUDGET:
            print(f"  FAILED: the event loop was held {max(r['held']) * 1000:.1f} ms")
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
