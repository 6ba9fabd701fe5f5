"""Scenario: the configured path is a symlink, retargeted to a new file at rotation.

The targets live in another directory than the link (as with `current.log ->
releases/app-2.log`), so the agent has to watch where the link points, not only where
the link is. The old target is still written for a moment after the switch.
"""

from __future__ import annotations

from pathlib import Path

from tests.tailkit import running_source, source_config, wait_until
from tests.writer import Writer


async def test_symlink_retargeted_to_a_new_file(tmp_path: Path) -> None:
    targets = tmp_path / "releases"
    targets.mkdir()
    link = tmp_path / "current.log"
    one, two = targets / "app-1.log", targets / "app-2.log"
    cfg = source_config(link)
    writer = await Writer.start()
    try:
        await writer.do(f"open one {one}", f"symlink {one} {link}", "write one 0 500")
        async with running_source(cfg, tmp_path / "cp.json") as src:
            await src.sink.wait_for(500)
            await writer.do("write one 500 500")  # a write to the target, not the link dir
            await src.sink.wait_for(1000)
            await writer.do(
                f"open two {two}",
                f"symlink {two} {link}",
                "write two 1000 500",
                "write one 1500 100",  # the old target, still written after the switch
                "close one",
            )
            await src.sink.wait_for(1600)
            assert src.metric("chatwatch_rotations_total", "app", "symlink") == 1
            await wait_until(lambda: src.metric("chatwatch_files_watched", "app") == 1)
            await writer.do("write two 1600 100")
            await src.sink.wait_for(1700)
        assert sorted(src.sink.numbers()) == list(range(1700)), src.sink.summary(1700)
        assert {origin.path for origin, _ in src.sink.batches} == {str(link)}
    finally:
        await writer.close()
