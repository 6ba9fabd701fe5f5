"""An idle source costs (almost) no CPU: it sleeps on inotify, it does not poll."""

from __future__ import annotations

import asyncio
import resource
import time
from pathlib import Path

from tests.tailkit import running_source, source_config


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def test_watching_a_quiet_file_uses_almost_no_cpu(tmp_path: Path) -> None:
    (tmp_path / "app.log").write_bytes(b'{"n": 0}\n')
    async with running_source(source_config(tmp_path / "*.log"), tmp_path / "cp.json") as src:
        await src.sink.wait_for(1)
        await asyncio.sleep(0.5)
        cpu, wall = _cpu(), time.monotonic()
        await asyncio.sleep(3.0)
        used = (_cpu() - cpu) / (time.monotonic() - wall)
    # Measured ~0.06% (10 s, this machine); busy polling would be tens of percent.
    assert used < 0.02, f"idle source used {used:.1%} of a CPU"
