"""Scenario: a log file is deleted and created again, and the new one starts with the very
same lines (a chatbot that writes the same banner and warm-up lines on every start).

Every line of the new file is counted: it is a new file, not the deleted one read on.
The deleted file's content is gone, so nothing can be a copy of it; its checkpoint must
not be matched by the new file's first bytes (a new inode whose head merely equals it),
nor by the new file reusing the deleted one's inode. Copies of files that still exist
(copytruncate) are still recognised: see test_tail_rotation_copytruncate.py.
"""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import pytest

from tests.tailkit import running_source, source_config, wait_until

LONG = 200
"""Padding that makes 10 lines longer than the 1 KiB head a file is fingerprinted by."""


def lines(start: int, count: int, pad: int) -> bytes:
    return b"".join(
        orjson.dumps({"n": n, "msg": f"warming up {n}", "pad": "x" * pad}) + b"\n"
        for n in range(start, start + count)
    )


def append(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


@pytest.mark.parametrize("pad", [0, LONG], ids=["head-under-1KiB", "head-over-1KiB"])
async def test_recreated_after_the_deleted_file_was_let_go_is_read_whole(
    tmp_path: Path, pad: int
) -> None:
    """The deleted file is closed first, so the new one may even reuse its inode."""
    log = tmp_path / "a.log"
    append(log, lines(0, 10, pad))
    async with running_source(source_config(log), tmp_path / "cp.json") as src:
        await src.sink.wait_for(10)
        await src.caught_up()
        log.unlink()
        await wait_until(lambda: src.metric("chatwatch_files_watched", "app") == 0)
        append(log, lines(0, 20, pad))  # the same 10 lines, then 10 more
        await src.sink.wait_for(30)
        await src.caught_up()
    assert src.sink.numbers() == [*range(10), *range(20)], src.sink.summary()


async def test_recreated_while_the_deleted_file_is_still_open_is_read_whole(
    tmp_path: Path,
) -> None:
    """The new file appears while the deleted one is still drained through its
    descriptor: it is not a copy of it (a copy is only ever of a file that exists)."""
    log = tmp_path / "a.log"
    append(log, lines(0, 10, LONG))
    async with running_source(source_config(log), tmp_path / "cp.json") as src:
        await src.sink.wait_for(10)
        await src.caught_up()
        writer = os.open(log, os.O_WRONLY | os.O_APPEND)  # keeps the old inode alive
        try:
            log.unlink()
            append(log, lines(0, 20, LONG))
            await src.sink.wait_for(30)
            await src.caught_up()
            # the deleted file let go (rotate_wait) without finding anything more
            await wait_until(lambda: src.metric("chatwatch_files_watched", "app") == 1)
        finally:
            os.close(writer)
    assert src.sink.numbers() == [*range(10), *range(20)], src.sink.summary()
    assert src.metric("chatwatch_rotations_total", "app", "delete") == 1


async def test_recreated_while_the_agent_was_down_is_read_whole(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    checkpoint = tmp_path / "cp.json"
    cfg = source_config(log)
    append(log, lines(0, 10, LONG))
    async with running_source(cfg, checkpoint) as first:
        await first.sink.wait_for(10)
        await first.caught_up()
    writer = os.open(log, os.O_WRONLY | os.O_APPEND)  # a new inode for the new file
    try:
        log.unlink()
        append(log, lines(0, 20, LONG))
        async with running_source(cfg, checkpoint) as second:
            await second.sink.wait_for(20)
            await second.caught_up()
    finally:
        os.close(writer)
    assert first.sink.numbers() == list(range(10))
    assert second.sink.numbers() == list(range(20)), second.sink.summary()
