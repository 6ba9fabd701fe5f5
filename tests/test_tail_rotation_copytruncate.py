"""Scenario: copytruncate (logrotate copies the file, then truncates it in place).

When the copy matches the globs, lines the agent had not read before the truncation are
read from the copy, and nothing already read is read again from it. When it does not,
the agent can only restart the truncated file at 0; lines written between its last read
and the truncation are then gone (as they are for every tailer), so that test's writer
waits for the agent to catch up first.

copytruncate itself loses lines written between its copy and its truncate; the writer
here writes nothing in between, so that the tests measure the agent, not logrotate.
"""

from __future__ import annotations

from pathlib import Path

from tests.tailkit import running_source, source_config, wait_until
from tests.writer import Writer


async def test_unread_lines_are_taken_from_the_copy(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    cfg = source_config(f"{log}*")
    writer = await Writer.start()
    try:
        await writer.do(f"open w {log}", "write w 0 1000")
        async with running_source(cfg, tmp_path / "cp.json") as src:
            await src.sink.wait_for(1000)
            # Written, copied and truncated before the agent can look (it waits >= 100 ms
            # for inotify events to settle): lines 1000-1499 survive only in the copy.
            await writer.do(
                "write w 1000 500", f"copy {log} {log}.1", "truncate w", "write w 1500 1000"
            )
            await src.sink.wait_for(2500)
            # Both files handed on to their end: the copy was judged (no late re-read).
            await src.caught_up()
            assert src.metric("chatwatch_rotations_total", "app", "truncate") == 1
        assert sorted(src.sink.numbers()) == list(range(2500)), src.sink.summary(2500)
    finally:
        await writer.close()


async def test_copy_seen_before_the_truncation_waits_for_it(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    cfg = source_config(f"{log}*", rotate_wait=5.0)
    writer = await Writer.start()
    try:
        await writer.do(f"open w {log}", "write w 0 1000")
        async with running_source(cfg, tmp_path / "cp.json") as src:
            await src.sink.wait_for(1000)
            await writer.do(f"copy {log} {log}.1")
            await wait_until(lambda: src.metric("chatwatch_files_watched", "app") == 2)
            assert src.handed_on(f"{log}.1") is None  # held unread while app.log holds it too
            await writer.do("truncate w", "write w 1000 1000")
            await src.sink.wait_for(2000)
            await src.caught_up()
        assert sorted(src.sink.numbers()) == list(range(2000)), src.sink.summary(2000)
    finally:
        await writer.close()


async def test_a_plain_copy_of_a_live_file_is_not_read_twice(tmp_path: Path) -> None:
    """`cp app.log app.log.bak` while app.log goes on: the copy holds nothing new."""
    log = tmp_path / "app.log"
    cfg = source_config(f"{log}*", rotate_wait=0.5)
    writer = await Writer.start()
    try:
        await writer.do(f"open w {log}", "write w 0 1000")
        async with running_source(cfg, tmp_path / "cp.json") as src:
            await src.sink.wait_for(1000)
            await writer.do(f"copy {log} {log}.bak", "write w 1000 1000")
            await src.sink.wait_for(2000)
            await src.caught_up()  # the copy was judged a duplicate: read from its end on
            await writer.do(f"open bak {log}.bak", "write bak 2000 10")  # appended: new
            await src.sink.wait_for(2010)
            await src.caught_up()
        assert sorted(src.sink.numbers()) == list(range(2010)), src.sink.summary(2010)
    finally:
        await writer.close()


async def test_copy_outside_the_globs_with_the_agent_caught_up(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    cfg = source_config(log)
    writer = await Writer.start()
    try:
        await writer.do(f"open w {log}", "write w 0 1000")
        async with running_source(cfg, tmp_path / "cp.json") as src:
            await src.sink.wait_for(1000)
            # Truncated, then written past the old size before the agent looks: the
            # agent must see the truncation by content, not by the size shrinking.
            await writer.do(f"copy {log} {log}.1", "truncate w", "write w 1000 2000")
            await src.sink.wait_for(3000)
            await src.caught_up()
            assert src.metric("chatwatch_rotations_total", "app", "truncate") == 1
        assert sorted(src.sink.numbers()) == list(range(3000)), src.sink.summary(3000)
    finally:
        await writer.close()


async def test_copy_found_after_the_truncation_of_a_file_read_under_1kib(tmp_path: Path) -> None:
    """The agent had read only a few lines of app.log (under 1 KiB, so its fingerprint
    is shorter than a full head) when the file was copied and truncated, and it noticed
    the truncation before it found the copy. The copy is read on from where reading had
    stopped, not from its start (the tailing torture test once caught those first lines
    handed on twice, under load)."""
    log = tmp_path / "app.log"
    staging = tmp_path / "rotating"  # outside the glob until it is renamed
    cfg = source_config(f"{log}*")
    writer = await Writer.start()
    try:
        await writer.do(f"open w {log}", "write w 0 7")
        async with running_source(cfg, tmp_path / "cp.json") as src:
            await src.sink.wait_for(7)
            # The copy: the 7 lines read, plus 500 written to the original after the
            # agent last read it (written straight into the copy, so the agent cannot
            # see them in app.log first); then app.log is truncated and goes on.
            await writer.do(
                f"copy {log} {staging}",
                f"open c {staging}",
                "write c 7 500",
                "close c",
                "truncate w",
                "write w 507 10",
            )
            await src.sink.wait_for(17)
            assert src.metric("chatwatch_rotations_total", "app", "truncate") == 1
            await writer.do(f"rename {staging} {log}.1")
            await src.sink.wait_for(517)
            await src.caught_up()
        assert sorted(src.sink.numbers()) == list(range(517)), src.sink.summary(517)
    finally:
        await writer.close()
