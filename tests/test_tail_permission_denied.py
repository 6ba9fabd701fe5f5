"""Scenario: a matching log file the agent may not read; later it may.

Root ignores file modes, and CI runs as root, so the agent runs in its own process as
the unprivileged user `nobody` when the tests run as root (as the current user
otherwise): the mode-000 file then really fails to open, with EACCES, as it would in a
pod whose log volume has the wrong owner.
"""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.tailkit import RunnerProcess, source_config, wait_until
from tests.writer import Writer


def _unprivileged() -> int | None:
    if os.geteuid() != 0:
        return None
    return pwd.getpwnam("nobody").pw_uid


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory the unprivileged agent can reach (pytest's tmp_path is root-only)."""
    path = Path(tempfile.mkdtemp(prefix="chatwatch-perm-"))
    path.chmod(0o755)
    state = path / "state"
    state.mkdir()
    uid = _unprivileged()
    if uid is not None:
        os.chown(state, uid, uid)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


async def test_unreadable_file_is_counted_retried_and_read_once_allowed(shared_dir: Path) -> None:
    log = shared_dir / "app.log"
    cfg = source_config(shared_dir / "*.log", permission_retry=0.5)
    writer = await Writer.start()
    runner = None
    try:
        await writer.do(f"open w {log}", f"chmod {log} 000", "write w 0 500")
        runner = await RunnerProcess.start(cfg, shared_dir / "state" / "cp.json", _unprivileged())
        await writer.do("write w 500 500")
        # It keeps failing (and being retried) while the file stays unreadable.
        await wait_until(lambda: runner is not None and runner.proc.returncode is None, 1)
        assert runner.events == []
        await writer.do(f"chmod {log} 644", "write w 1000 500")
        await wait_until(lambda: len(runner.events) >= 1500, 20, lambda: f"{len(runner.events)}")
        assert await runner.terminate() == 0
        assert sorted(runner.numbers()) == list(range(1500))
        assert runner.stats is not None
        errors = runner.stats["chatwatch_file_open_errors_total"]
        assert errors.get("app,permission_denied", 0) >= 1, errors
    finally:
        if runner is not None:
            await runner.kill()
        await writer.close()


async def test_directory_without_search_permission_is_counted(shared_dir: Path) -> None:
    """An unreadable directory hides its files from the glob: said and counted, not silent."""
    logs = shared_dir / "logs"
    logs.mkdir()
    (logs / "app.log").write_bytes(b'{"n": 0}\n')
    logs.chmod(0o700)  # owner root: no way in for the unprivileged agent
    if _unprivileged() is None:
        logs.chmod(0o000)
    cfg = source_config(logs / "*.log", stat_interval=0.5)
    runner = await RunnerProcess.start(cfg, shared_dir / "state" / "cp.json", _unprivileged())
    try:
        logs.chmod(0o755)
        await wait_until(lambda: len(runner.events) >= 1, 20)
        assert await runner.terminate() == 0
        assert runner.numbers() == [0]
        assert runner.stats is not None
        errors = runner.stats["chatwatch_file_open_errors_total"]
        assert errors.get("app,permission_denied", 0) >= 1, errors
    finally:
        logs.chmod(0o755)
        await runner.kill()
