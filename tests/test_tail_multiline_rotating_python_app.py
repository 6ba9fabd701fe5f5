"""Scenario: a real Python app logs tracebacks through a RotatingFileHandler while the
agent tails it.

tests/multiline/pyapp.py logs records with `logger.exception()` (chained exceptions,
exception groups, `stack_info`) into a file that rotates every few KiB (app.log ->
app.log.1 -> app.log.2 ...) while the agent reads `app.log*`. Every
record is one event, with the exception the app caught, counted exactly once.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections import Counter
from pathlib import Path

from tests.multiline_support import HERE, PY_REGEX, Expected
from tests.tailkit import running_source, source_config, wait_until


async def test_tracebacks_of_a_rotating_python_app(tmp_path: Path) -> None:
    log, expected_file = tmp_path / "app.log", tmp_path / "expected.jsonl"
    cfg = source_config(f"{log}*", format="regex", regex=PY_REGEX, multiline={"preset": "python"})
    async with running_source(cfg, tmp_path / "cp.json") as src:
        app = await asyncio.create_subprocess_exec(
            sys.executable,
            str(HERE / "pyapp.py"),
            str(log),
            str(expected_file),
            "--rounds",
            "40",
            "--rotate-bytes",
            "4000",
            "--pause",
            "0.02",
        )
        assert await asyncio.wait_for(app.wait(), 60) == 0
        expected = [
            Expected(r["exception_type"], r["exception_message"], r["message"], r["level"])
            for r in map(json.loads, expected_file.read_text().splitlines())
        ]
        await wait_until(lambda: len(src.sink.events) >= len(expected), timeout=60)
        await src.caught_up()
        assert len(list(tmp_path.glob("app.log*"))) > 10  # rotated while being read
        assert src.metric("chatwatch_rotations_total", "app", "rename") > 0

    got = Counter(
        (e["message"], e["level"], *(e.get("exception", {}).get(k) for k in ("type", "message")))
        for e in src.sink.events
    )
    want = Counter((x.message, x.level, x.exception_type, x.exception_message) for x in expected)
    assert got == want
    assert len(src.sink.events) == len(expected) == 40 * 8
    assert src.samples("chatwatch_decode_errors_total") == {}
