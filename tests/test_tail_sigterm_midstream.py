"""Scenario: the agent gets SIGTERM while a writer is in full flow, and starts again.

The agent here is a real process (`tests/tail_runner.py`: a FileSource, its checkpoints,
and the SIGTERM handling `chatwatch run` has); the SIGTERM of `chatwatch run` itself, with
the metrics and rules stages, is tested with the app. The writer splits lines across its
writes, so SIGTERM usually lands while half a line is on disk: that line must come out
whole, once, from the next run.
"""

from __future__ import annotations

import time
from pathlib import Path

from tests.tailkit import RunnerProcess, source_config, wait_until
from tests.writer import Writer


async def test_sigterm_midstream_then_restart_hands_on_every_line_once(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    checkpoint = tmp_path / "state" / "cp.json"
    cfg = source_config(tmp_path / "*.log")
    writer = await Writer.start()
    first = second = None
    try:
        await writer.do(f"open w {log}")
        first = await RunnerProcess.start(cfg, checkpoint)
        # 3000 lines in 777-byte writes (lines split across writes), about 3 s in all.
        await writer.send("pace w 0 3000 777 0.01")
        await wait_until(lambda: first is not None and len(first.events) >= 800, 20)
        t0 = time.monotonic()
        assert await first.terminate(within=5.0) == 0
        stopped_in = time.monotonic() - t0
        assert first.stats is not None
        assert first.stats["chatwatch_checkpoint_writes_total"][""] >= 1
        handed_on_first = first.numbers()
        assert 800 <= len(handed_on_first) < 3000, "SIGTERM should land mid-stream"

        second = await RunnerProcess.start(cfg, checkpoint)
        assert await writer.reply(timeout=30) == "ok"  # the writer finished
        # The file is read in order: once its last line is handed on, every byte before
        # it was read too, and a duplicate, if one were coming, has come.
        await wait_until(lambda: second is not None and 2999 in second.numbers(), 20)
        assert await second.terminate() == 0
        both = handed_on_first + second.numbers()
        assert sorted(both) == list(range(3000)), (
            f"first run {len(handed_on_first)}, second {len(second.events)}"
        )
        assert stopped_in < 5.0
    finally:
        for runner in (first, second):
            if runner is not None:
                await runner.kill()
        await writer.close()
