"""A busy file costs a few wake-ups a second, not one per line.

The chatbot writes one line per `write()`, hundreds a second. The tailer reads the
watcher's events at once when the file was idle, and while lines keep coming at most
every `WATCH_COALESCE` seconds, so many lines arrive in one read and one batch (inotify
merges the events of the writes in between). And the watcher itself: what it reports
for files and for directories that appear below a recursive watch.
"""

from __future__ import annotations

import asyncio
import os
import struct
from pathlib import Path

from agent.sources.inotify import IN_Q_OVERFLOW, Change, Inotify
from agent.sources.tail import WATCH_COALESCE
from tests.tailkit import running_source, source_config


async def test_lines_written_one_by_one_are_handed_on_in_few_batches(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.touch()
    lines = 600
    async with running_source(source_config(tmp_path / "*.log"), tmp_path / "cp.json") as src:
        loop = asyncio.get_running_loop()
        started = loop.time()
        with log.open("ab", buffering=0) as out:
            for n in range(lines):
                out.write(b'{"n": %d}\n' % n)
                await asyncio.sleep(0.002)  # about 500 lines/s, the tailer in this loop
        took = loop.time() - started
        await src.sink.wait_for(lines)
    assert src.sink.numbers() == list(range(lines))
    # One read per WATCH_COALESCE while lines keep coming (plus the one that starts it,
    # and the last one); one per line would be 600.
    reads = took / WATCH_COALESCE + 2
    assert len(src.sink.batches) <= 2 * reads, (len(src.sink.batches), took)


def test_the_watcher_reports_files_added_changed_and_removed(tmp_path: Path) -> None:
    with Inotify([str(tmp_path)], recursive=False) as watcher:
        assert watcher.read() == set()
        path = tmp_path / "app.log"
        with path.open("ab", buffering=0) as out:
            for _ in range(100):
                out.write(b"line\n")
        assert watcher.read() == {(Change.added, str(path)), (Change.modified, str(path))}
        path.rename(tmp_path / "app.log.1")
        os.unlink(tmp_path / "app.log.1")
        assert watcher.read() == {
            (Change.deleted, str(path)),
            (Change.added, str(tmp_path / "app.log.1")),
            (Change.deleted, str(tmp_path / "app.log.1")),
        }


def test_a_recursive_watch_covers_directories_that_appear_later(tmp_path: Path) -> None:
    (tmp_path / "old").mkdir()
    with Inotify([str(tmp_path)], recursive=True) as watcher:
        (tmp_path / "old" / "a.log").write_text("x\n")
        (tmp_path / "new").mkdir()
        assert (Change.added, str(tmp_path / "new")) in watcher.read()
        (tmp_path / "new" / "b.log").write_text("y\n")
        changes = watcher.read()
    assert (Change.added, str(tmp_path / "new" / "b.log")) in changes


def test_after_lost_events_a_recursive_watch_still_covers_new_directories(
    tmp_path: Path,
) -> None:
    """The kernel drops events when its queue overflows (IN_Q_OVERFLOW): a directory
    made meanwhile had no watch added for it. After the overflow the roots are rescanned
    and watched again, so lines in that directory keep waking the tailer."""
    with Inotify([str(tmp_path)], recursive=True) as watcher:
        (tmp_path / "new").mkdir()
        os.read(watcher.fd, 65536)  # the mkdir event, lost (never parsed)
        overflow = struct.pack("iIII", -1, IN_Q_OVERFLOW, 0, 0)
        changes: set[tuple[Change, str]] = set()
        watcher._parse(overflow, changes)
        assert (Change.added, str(tmp_path)) in changes  # a rescan of the root
        (tmp_path / "new" / "b.log").write_text("y\n")
        assert (Change.added, str(tmp_path / "new" / "b.log")) in watcher.read()
