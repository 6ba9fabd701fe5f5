"""The notification state file: what must survive a restart, written atomically.

It holds the alert groups (firing alerts with their start times), the notification log
(what each integration was last told, so a restart sends no duplicate firing message and
still sends a pending resolve), cooldowns, and every undelivered notification. Written as
JSON to a temporary file, fsynced, then renamed over the old one, so a crash leaves either
the old or the new state, never half of one.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import Any

import orjson

log = logging.getLogger("chatwatch.notify")

VERSION = 1
FILENAME = "notifications.json"


class StateFile:
    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, Any] | None:
        """The saved state, or None when there is none (or it cannot be used)."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.error(
                "cannot read notification state",
                extra={"path": str(self.path), "error": exc.strerror},
            )
            return None
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            data = None
        if not isinstance(data, dict) or data.get("version") != VERSION:
            aside = self.path.with_suffix(".unreadable")
            with contextlib.suppress(OSError):
                self.path.replace(aside)
            log.error(
                "notification state is not readable; starting afresh (kept aside)",
                extra={"path": str(aside)},
            )
            return None
        return data

    def save(self, data: dict[str, Any]) -> None:
        """Atomic replace: temp file in the same folder, fsync, rename, fsync the folder."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        body = orjson.dumps({"version": VERSION, **data})
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, body)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
