"""Torture: 200k lines, rotated every 2k lines by a random mix of the four styles.

rename+create, copytruncate, plain truncation and delete+recreate, chosen at random by a
real writer process (see `tests/writer.py`, `torture`). The glob `app.log*` also matches
the rotated and copied files, so the agent must recognise each of them as a stream it
already read. The agent must hand on exactly 200k distinct events.

Copytruncate loses lines in real life when the writer writes between logrotate's copy
and its truncate; truncation loses what no one read before it; a file deleted before any
tailer opened it is gone. Those losses belong to the rotation, not to the agent, so the
writer cooperates where needed (no writes between copy and truncate; a `sync` before a
truncation or a delete, answered once the agent has handed on the lines that rotation
would destroy). Everything else - following renames, draining deleted and renamed files
through their descriptors, detecting truncation even when the file has grown back past
the old offset, finding unread lines in the copy - is the agent's job and is measured.
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.tailkit import Collected, running_source, source_config, wait_until
from tests.writer import Writer

TOTAL = 200_000
EVERY = 2_000
SEED = int(os.environ.get("CHATWATCH_TORTURE_SEED", "20261123"))


class Progress:
    """Which line numbers were handed on, and the length of the complete prefix."""

    def __init__(self, sink: Collected) -> None:
        self.sink = sink
        self.seen: set[int] = set()
        self.read = 0
        self.low = 0

    def below(self, n: int) -> bool:
        events = self.sink.events
        for event in events[self.read :]:
            self.seen.add(event["n"])
        self.read = len(events)
        while self.low in self.seen:
            self.low += 1
        return self.low >= n


@pytest.mark.slow
@pytest.mark.timeout(180)
async def test_torture_200k_lines_random_rotations(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="chatwatch.tail")
    log = tmp_path / "app.log"
    cfg = source_config(f"{log}*", rotate_wait=1.0)
    styles: Counter[str] = Counter()
    writer = await Writer.start()
    started = time.monotonic()
    try:
        async with running_source(cfg, tmp_path / "cp.json") as src:
            progress = Progress(src.sink)
            await writer.send(f"torture {log} {TOTAL} {EVERY} {SEED}")
            while (msg := await writer.reply(timeout=120)) != "ok":
                kind, arg = msg.split(maxsplit=1)
                if kind == "sync":
                    n = int(arg)
                    await wait_until(lambda n=n: progress.below(n), 30, src.sink.summary)
                    await writer.send("go")
                elif kind == "rotated":
                    styles[arg.split()[0]] += 1
                else:
                    raise AssertionError(f"writer: {msg}")
            await src.sink.wait_for(TOTAL, timeout=60)
            # Late duplicates would come from copies judged after rotate_wait: wait until
            # every file, copies included, was judged and handed on to its end.
            await src.caught_up(timeout=30)
            rotations = src.samples("chatwatch_rotations_total")
        numbers = src.sink.numbers()
        assert len(numbers) == TOTAL and set(numbers) == set(range(TOTAL)), (
            f"seed {SEED}: {src.sink.summary(TOTAL)}"
        )
    finally:
        await writer.close()
    assert set(styles) == {"rename", "copytruncate", "truncate", "delete"}, styles
    assert sum(styles.values()) == TOTAL // EVERY - 1
    # Every plain truncation was seen as one; a copytruncate is seen as a truncation only
    # when the agent read the file before it (else the copy is simply a new file to it).
    truncations = rotations[("app", "truncate")]
    assert styles["truncate"] <= truncations <= styles["truncate"] + styles["copytruncate"]
    messages = Counter(r.getMessage() for r in caplog.records if r.name == "chatwatch.tail")
    print(f"torture: {dict(styles)} in {time.monotonic() - started:.1f}s; {rotations}")
    print("\n".join(f"  {n:4d} {m}" for m, n in messages.most_common()))
