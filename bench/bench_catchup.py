"""Catch-up speed: an hour of backlog at 100 lines/s, read in the log's own time.

    python -m bench catchup            (part of `make bench`)
    python -m bench.bench_catchup [--hours 1] [--rate 100]

What a restart after an hour's downtime does (agent/catchup.py): a real `FileSource`
held at start resumes at its checkpoint and reads the 360k lines written since, each
batch goes to `CatchUp`, which feeds the agent's `Pipeline` (the reference workload's 9
metric definitions, the ready rule pack `rules/chatbot.yml`) in event time and evaluates
the rules every second of log time: 3,600 evaluations. Timed from `read_backlog()` to
the end of `finish()`. Fails when it takes 10 s or more (issue 10).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import random
import sys
import tempfile
import time
from pathlib import Path

import orjson

from agent.alerting.rule_file import load_rule_files
from agent.catchup import CatchUp, LogClock
from agent.decode.config import TimestampConfig
from agent.metrics.config import MetricConfig
from agent.pipeline import Pipeline
from agent.sources.checkpoint import Checkpoints
from agent.sources.config import SourceConfig
from agent.sources.tail import FileSource
from agent.support.selfmetrics import SelfMetrics
from bench.workload import METRICS, make_event

BUDGET = 10.0
"""An hour of backlog at 100 lines/s must be caught up in less (issue 10)."""
RULES = Path(__file__).resolve().parent.parent / "rules" / "chatbot.yml"
START = 1_796_040_000.0  # 2026-11-30T12:00:00Z


def write_backlog(path: Path, lines: int, rate: float) -> int:
    """The reference workload's events, `rate` a second from START, RFC 3339 times."""
    rng = random.Random(42)
    size = 0
    with path.open("ab") as f:
        chunk = []
        for i in range(lines):
            event = make_event(rng, i)
            t = datetime.datetime.fromtimestamp(START + i / rate, datetime.UTC)
            event["ts"] = t.isoformat(timespec="milliseconds").replace("+00:00", "Z")
            chunk.append(orjson.dumps(event))
            if len(chunk) == 4096:
                data = b"\n".join(chunk) + b"\n"
                size += f.write(data)
                chunk.clear()
        if chunk:
            size += f.write(b"\n".join(chunk) + b"\n")
    return size


async def catch_up(folder: Path, lines: int, rate: float) -> tuple[float, CatchUp]:
    log = folder / "bot.log"
    log.touch()
    src = SourceConfig(
        name="bot",
        paths=[str(log)],
        start_at="beginning",
        timestamp=TimestampConfig(field="ts"),
    )
    stats = SelfMetrics()
    checkpoints = Checkpoints(folder / "checkpoints.json", stats)
    # The run before the downtime: the file read (empty) and checkpointed at offset 0.
    before = FileSource(src, lambda origin, events: None, checkpoints, stats)
    task = asyncio.create_task(before.run())
    await before.caught_up.wait()
    await before.stop()
    await task
    size = write_backlog(log, lines, rate)

    clock = LogClock()
    groups = load_rule_files([str(RULES)], base_dir=RULES.parent)
    pipeline = Pipeline(
        [MetricConfig.model_validate(m) for m in METRICS],
        groups,
        stats=stats,
        notify=lambda alerts, now: None,
        evaluation_interval=1.0,
        clock=clock,
    )
    until = START + lines / rate
    catchup = CatchUp(pipeline, clock, stats, evaluation_interval=1.0, since=START, until=until)
    source = FileSource(src, catchup.sink(src, pipeline.feed), checkpoints, stats)
    source.hold_at_start(read_backlog=False)
    catchup.add(source)
    task = asyncio.create_task(source.run())
    await source.opened.wait()
    started = time.perf_counter()
    source.read_backlog()
    await source.backlog_read.wait()
    catchup.finish()
    seconds = time.perf_counter() - started
    await source.stop()
    await task
    print(f"backlog: {lines} lines, {size / 1e6:.1f} MB, {lines / rate / 3600:.2f} h of log time")
    return seconds, catchup


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--rate", type=float, default=100.0, help="lines per second of log time")
    args = parser.parse_args(argv if argv is not None else sys.argv[1:])
    lines = int(args.hours * 3600 * args.rate)
    with tempfile.TemporaryDirectory() as tmp:
        seconds, catchup = asyncio.run(catch_up(Path(tmp), lines, args.rate))
    stats = catchup.stats
    print(f"catch-up: {stats.events / seconds:,.0f} lines/s, {seconds:.2f} s in all")
    print(
        f"  {stats.events} events, {stats.evaluations} evaluations in log time, "
        f"{stats.no_timestamp} without a time, {stats.out_of_order} out of order"
    )
    hours = args.hours
    met = seconds < BUDGET * hours
    verdict = "met" if met else "NOT MET"
    print(
        f"GOAL catch-up of {hours:g} h at {args.rate:g} lines/s under {BUDGET * hours:g} s: "
        f"{verdict} ({seconds:.2f} s, {stats.events / seconds:,.0f} lines/s)"
    )
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
