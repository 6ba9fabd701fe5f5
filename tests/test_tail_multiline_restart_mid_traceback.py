"""Scenario: the agent stops while a traceback is half written (and half read).

A Python app's `logger.exception()` output is in the file up to the middle of its
traceback when the agent stops. The event is not complete, so it is not handed on, and
the checkpoint stays at its first line: the next run reads it again, whole, and counts
every record exactly once. The same through CRI and docker wrappers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.multiline_support import PY_REGEX, python_app, wrap
from tests.tailkit import running_source, source_config, wait_until


def _settings(fmt: str) -> dict[str, Any]:
    if fmt == "plain":
        return {"format": "regex", "regex": PY_REGEX}
    return {"format": fmt, "inner_format": "regex", "regex": PY_REGEX}


@pytest.mark.parametrize("fmt", ["plain", "cri", "docker"])
async def test_a_half_read_traceback_is_read_again_whole(tmp_path: Path, fmt: str) -> None:
    (tmp_path / "app").mkdir()
    app_log, expected = python_app(tmp_path / "app", rounds=1)
    plain = app_log.read_bytes().splitlines()
    lines = wrap(fmt, plain)
    data = b"".join(line + b"\n" for line in lines)
    # Cut inside the first traceback, after its first frame: record 0 is whole, record 1
    # (`llm_call failed`, a chained traceback) is not.
    first_tb = plain.index(b"Traceback (most recent call last):")
    cut = sum(len(line) + 1 for line in lines[: first_tb + 2])
    event_start = sum(len(line) + 1 for line in lines[: first_tb - 1])

    log = tmp_path / "app.log"
    checkpoint = tmp_path / "cp.json"
    settings = _settings(fmt)
    log.write_bytes(data[:cut])
    held = source_config(log, multiline={"preset": "python", "timeout": "1h"}, **settings)
    async with running_source(held, checkpoint) as first:
        await wait_until(lambda: first.metric("chatwatch_bytes_read_total", "app") == cut)
        await wait_until(lambda: len(first.sink.events) == 1)
        assert first.sink.events[0]["message"] == expected[0].message
        assert first.handed_on(log) == event_start  # the held event's first line
    saved = orjson.loads(checkpoint.read_bytes())
    [entry] = saved["sources"]["app"].values()
    assert entry["offset"] == event_start and not entry["mid_line"]

    with log.open("ab") as f:
        f.write(data[cut:])
    quiet = source_config(log, multiline={"preset": "python", "timeout": "0.2s"}, **settings)
    async with running_source(quiet, checkpoint) as second:
        await wait_until(lambda: len(second.sink.events) == len(expected) - 1)
        await second.caught_up()  # the last record went on after the file was quiet
    events = first.sink.events + second.sink.events
    assert [e["message"] for e in events] == [x.message for x in expected]
    assert [e.get("exception", {}).get("type") for e in events] == [
        x.exception_type for x in expected
    ]
    whole = second.sink.events[0]["exception"]["stacktrace"]
    assert whole.count("Traceback (most recent call last):") == 2  # both parts of the chain
    assert second.samples("chatwatch_decode_errors_total") == {}
