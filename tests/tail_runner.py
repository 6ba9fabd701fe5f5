"""A FileSource in its own process, for scenarios that need a real process boundary.

    python tests/tail_runner.py SOURCE_JSON CHECKPOINT_PATH [UID]

Prints each event handed on as a JSON line `{"event": {...}}` on stdout; on SIGTERM or
SIGINT it stops the source (which hands on what it read), saves the checkpoints, prints
`{"stats": {name: {labels: value}}}` and exits 0. This is what `chatwatch run` does on
SIGTERM, minus the metrics and rules stages.

With UID, the process drops to that user (and its group, no supplementary groups) once
everything is imported, so file permissions apply even when the tests run as root (the
interpreter itself may live where that user cannot read).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

import orjson

from agent.decode.events import Event, Origin
from agent.sources.checkpoint import Checkpoints
from agent.sources.config import SourceConfig
from agent.sources.tail import FileSource
from agent.support.selfmetrics import SelfMetrics


async def main(cfg: SourceConfig, checkpoint_path: Path) -> None:
    out = sys.stdout.buffer

    def sink(origin: Origin, events: list[Event]) -> None:
        out.write(b"".join(orjson.dumps({"event": e}) + b"\n" for e in events))
        out.flush()

    stats = SelfMetrics()
    checkpoints = Checkpoints(checkpoint_path, stats)
    checkpoints.load()
    source = FileSource(cfg, sink, checkpoints, stats)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    task = asyncio.create_task(source.run())
    await source.opened.wait()
    out.write(b'{"opened": true}\n')
    out.flush()
    await stop.wait()
    await source.stop()
    await task
    checkpoints.save()
    report = {
        name: {",".join(labels): value for labels, value in family.values.items()}
        for name in (
            "chatwatch_file_open_errors_total",
            "chatwatch_events_total",
            "chatwatch_checkpoint_writes_total",
        )
        if (family := stats.family(name)) is not None
    }
    out.write(orjson.dumps({"stats": report}) + b"\n")
    out.flush()


if __name__ == "__main__":
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s %(message)s"
    )
    config = SourceConfig.model_validate_json(sys.argv[1])
    if len(sys.argv) > 3:
        uid = int(sys.argv[3])
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    asyncio.run(main(config, Path(sys.argv[2])))
