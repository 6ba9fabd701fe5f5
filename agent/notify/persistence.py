"""The notification state file: what must survive a restart, written atomically.

It holds the alert groups (firing alerts with their start times), the notification log
(what each integration was last told, so a restart sends no duplicate firing message and
still sends a pending resolve), cooldowns, and every undelivered notification
(`Notifier.to_state`). Written as JSON to a temporary file, fsynced, then renamed over the
old one, so a crash leaves either the old or the new state, never half of one.

The live agent keeps this state as the `notifications` section of its checkpoint
(`agent/state.py`) instead, captured at the same instant as the alerts it follows from;
it reads `notifications.json` once, when upgrading from a version that wrote it, with
`read_legacy`. A Notifier on its own (tests, tools) still uses this file.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any

import orjson

from agent.support.atomicfile import write_atomic

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
        write_atomic(self.path, orjson.dumps({"version": VERSION, **data}), 0o600)


def read_legacy(state_dir: Path) -> dict[str, Any] | None:
    """The `notifications.json` an earlier version left in `state_dir`, to migrate it into
    the agent's checkpoint; None when there is none or it cannot be used (logged)."""
    return StateFile(Path(state_dir) / FILENAME).load()
