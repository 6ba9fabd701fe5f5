"""Crash-safe file replacement for the agent's state (checkpoints, alerts, notifications).

The new content goes to a temporary file in the same folder, is fsynced, renamed over
the old file, and the folder is fsynced, so after a crash or power loss the file holds
either the old content or the new, never a mix. A failed write removes its temporary
file, so a full or read-only volume leaves no `.tmp` litter behind.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from agent.support.selfmetrics import SelfCounter, SelfMetrics


def write_failures(stats: SelfMetrics) -> SelfCounter:
    """`chatwatch_state_write_failures_total{file}`, counted by whoever owns a state file
    (`checkpoints`, `alerts`, `notifications`): any increase means the state volume is
    full or read-only."""
    return stats.counter(
        "chatwatch_state_write_failures_total",
        "Writes of a state file that failed, by file; the previous content is kept.",
        ("file",),
    )


def write_atomic(path: Path, data: bytes, mode: int = 0o644, previous: Path | None = None) -> None:
    """Replace `path` with `data`; raises OSError with the old file untouched.

    With `previous`, the file being replaced is kept there (one generation back), so a
    reader that finds `path` corrupt, or missing after a crash between the two renames,
    can fall back to it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        if previous is not None and os.path.isfile(path) and not os.path.islink(path):
            os.replace(path, previous)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    dfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
