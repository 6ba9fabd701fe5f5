"""Scenario: `node app.js 2>&1 | chatwatch run` - stack traces through a pipe.

Node's `console.error(err)` output arrives on standard input; each error with its
frames is one event. The last one is handed on once the pipe has been quiet for
`multiline.timeout`, while the writer keeps the pipe open, and at end of input.
"""

from __future__ import annotations

import asyncio
import os

from agent.sources.config import SourceConfig
from agent.sources.stdin import StdinSource
from agent.support.selfmetrics import SelfMetrics
from tests.multiline_support import node_errors
from tests.tailkit import Collected, wait_until
from tests.writer import Writer

CFG = SourceConfig.model_validate(
    {
        "name": "piped",
        "stdin": True,
        "format": "regex",
        "regex": r"^(?P<ts>\d{4}-\S+) (?P<level>\w+) (?P<message>.*)$",
        "multiline": {"preset": "node", "timeout": "0.3s"},
    }
)


async def test_node_errors_through_a_pipe() -> None:
    output, expected = node_errors()
    lines = output.splitlines()
    last = max(i for i, line in enumerate(lines) if line.startswith(b"RangeError"))
    read_end, write_end = os.pipe()
    writer = await Writer.start(pass_fds=(write_end,))
    os.close(write_end)
    sink = Collected()
    with os.fdopen(read_end, "rb") as stream:
        source = StdinSource(CFG, sink, SelfMetrics(), stream=stream)
        task = asyncio.create_task(source.run())
        try:
            head = b"".join(line + b"\n" for line in lines[:last])
            await writer.do(f"fd p {write_end}", f"raw p {head!r}")
            # The RangeError's frames have not come yet: the TypeError before it is
            # complete; its info line (the last line so far) waits for the timeout.
            await wait_until(lambda: len(sink.events) == 3)
            tail = b"".join(line + b"\n" for line in lines[last:])
            await writer.do(f"raw p {tail!r}")  # the pipe stays open: the quiet spell
            await wait_until(lambda: len(sink.events) == len(expected))
            await writer.do("close p")
            await asyncio.wait_for(task, 20)
        finally:
            await writer.close()
    assert [e.get("exception", {}).get("type") for e in sink.events] == [
        x.exception_type for x in expected
    ]
