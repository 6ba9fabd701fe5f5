"""The agent's checkpoint: one file, one instant (DESIGN, "State: one checkpoint, one instant").

One atomic write holds what the agent knew at one instant:

    {"version": 2, "saved_at": <unix time>,
     "sources":       where each file was read up to      (sources/checkpoint.py)
     "metrics":       every configured series' value, with
                      its metric's definition             (metrics/store.py)
     "alerts":        pending, firing, recently resolved  (alerting/persistence.py)
     "notifications": groups, notification log, cooldowns,
                      undelivered notifications           (notify/notifier.py)}

All four sections are captured in one synchronous step on the event loop. Sources hand
each batch to the pipeline and advance their offset only after it returned, and the rules
and the notifier run on the loop too, so between two awaits the offsets, the counts, the
alerts and the notifications agree. After SIGTERM or `kill -9` the agent restores that
instant and reads on from the offsets: every line is counted exactly once, and counters
go on from their values instead of starting again at 0.

The capture is a copy (about 0.5 ms of the event loop for 10k counter series, 1 ms for
10k label sets half of them histograms); turning it into JSON and writing it (temporary file,
fsync, rename, fsync of the folder) happens in a thread, so tailing goes on meanwhile
(`bench/bench_checkpoint.py` measures both). It is written every
`checkpoint.interval`, when the notifier has something to keep (at most once a second),
and at shutdown. The file it replaces is kept as `<path>.1`: a corrupt or truncated
checkpoint is logged, set aside (`<path>.corrupt`), and the previous one is used - an
older instant, but a whole one, so exactly once still holds.

Upgrading from a version that wrote the offsets alone (`{"version": 1, "sources"}`) and
kept alerts and notifications in `<state_dir>/alerts.json` and `notifications.json`:
those are read once, written into the checkpoint, and removed after its first write.
Silences keep their own file (`silences.json`): they are what people asked for, written
the moment they ask, not a state of the pipeline.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from agent.alerting.manager import RuleManager
from agent.alerting.persistence import alerts_state, restore_alerts_state
from agent.metrics.store import FamilyValues, Store, values_json
from agent.notify.notifier import Notifier
from agent.notify.persistence import FILENAME as NOTIFICATIONS_FILENAME
from agent.notify.persistence import read_legacy as read_legacy_notifications
from agent.sources.checkpoint import Checkpoints
from agent.support.atomicfile import write_atomic, write_failures
from agent.support.selfmetrics import SelfMetrics

log = logging.getLogger("chatwatch.checkpoint")

VERSION = 2
LEGACY_ALERTS = "alerts.json"


@dataclass(slots=True)
class Capture:
    """One instant, copied on the event loop; serialized and written off it."""

    saved_at: float
    sources: dict[str, Any]
    metrics: list[FamilyValues]
    alerts: orjson.Fragment
    notifications: orjson.Fragment
    """Small sections are serialized at once, on the loop: what they refer to may change
    before the thread gets to them."""

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "version": VERSION,
                "saved_at": self.saved_at,
                "sources": self.sources,
                "metrics": values_json(self.metrics, self.saved_at),
                "alerts": self.alerts,
                "notifications": self.notifications,
            }
        )


@dataclass(slots=True)
class Saved:
    """What the checkpoint (or, on an upgrade, the older files) held."""

    sources: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    alerts: dict[str, Any] | None = None
    notifications: dict[str, Any] | None = None
    saved_at: float | None = None
    origin: str = "none"
    """The file it came from, or "none" (a first start)."""
    legacy: list[Path] = field(default_factory=list)
    """Files of an earlier version that were read, to remove once the checkpoint holds them."""


class _Unusable(Exception):
    """The file is not a checkpoint this version can use (corrupt, truncated, foreign)."""


class CheckpointFile:
    """The checkpoint on disk, one generation back kept as `<path>.1`."""

    def __init__(self, path: Path, state_dir: Path) -> None:
        self.path = Path(path)
        self.previous = self.path.with_name(self.path.name + ".1")
        self.state_dir = Path(state_dir)

    def load(self) -> Saved:
        """The newest usable checkpoint; never raises.

        A corrupt file is logged and set aside (`*.corrupt`) and the one before it used.
        A missing checkpoint with a previous one present means the agent stopped between
        the two renames of a write: the previous one is the last whole instant."""
        unusable = False
        for path in (self.path, self.previous):
            try:
                doc = _read(path)
            except FileNotFoundError:
                continue
            except OSError as exc:
                log.error("cannot read checkpoint", extra={"path": str(path), "error": str(exc)})
                unusable = True
                continue
            except _Unusable as exc:
                unusable = True
                aside = path.with_name(path.name + ".corrupt")
                log.error(
                    "checkpoint is corrupt or truncated; set aside, using the one before it",
                    extra={"path": str(path), "moved_to": str(aside), "error": str(exc)},
                )
                with contextlib.suppress(OSError):
                    os.replace(path, aside)
                continue
            if path == self.previous:
                log.warning(
                    "using the previous checkpoint",
                    extra={"path": str(path), "saved_at": doc.get("saved_at")},
                )
            if doc["version"] == 1:
                return self._upgrade(doc["sources"], str(path))
            return Saved(
                doc["sources"],
                doc["metrics"],
                doc["alerts"],
                doc["notifications"],
                float(doc["saved_at"]),
                str(path),
            )
        if unusable:
            log.error("no usable checkpoint; starting afresh", extra={"path": str(self.path)})
            return Saved()
        return self._upgrade({}, "none")

    def _upgrade(self, sources: dict[str, Any], origin: str) -> Saved:
        """An earlier version's state: offsets alone, alerts and notifications beside."""
        saved = Saved(sources=sources, origin=origin)
        alerts_path = self.state_dir / LEGACY_ALERTS
        try:
            saved.alerts = json.loads(alerts_path.read_text(encoding="utf-8"))
            saved.legacy.append(alerts_path)
        except FileNotFoundError:
            pass
        except (OSError, ValueError) as exc:
            log.warning(
                "alert state of the earlier version not read",
                extra={"path": str(alerts_path), "error": str(exc)},
            )
        notifications_path = self.state_dir / NOTIFICATIONS_FILENAME
        saved.notifications = read_legacy_notifications(self.state_dir)
        if saved.notifications is not None:
            saved.legacy.append(notifications_path)
        if origin != "none" or saved.legacy:
            log.info(
                "upgrading the state of an earlier version into one checkpoint; metric "
                "values were not kept by it, so they start at 0 this once",
                extra={"checkpoint": str(self.path), "read": [origin, *map(str, saved.legacy)]},
            )
        return saved

    def write(self, capture: Capture) -> int:
        """Serialize and replace the checkpoint (keeping the one before); returns the bytes
        written. Raises OSError with the files as they were. Runs in a thread."""
        data = capture.to_json()
        write_atomic(self.path, data, 0o600, previous=self.previous)
        return len(data)


def _read(path: Path) -> dict[str, Any]:
    raw = path.read_bytes()
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise _Unusable(f"not JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("version") not in (1, VERSION):
        raise _Unusable("not a chatwatch checkpoint of a known version")
    sections: dict[str, type] = {"sources": dict}
    if doc["version"] == VERSION:
        sections |= {"metrics": dict, "alerts": dict, "notifications": dict, "saved_at": float}
    for name, kind in sections.items():
        value = doc.get(name)
        if kind is float and isinstance(value, int):
            continue
        if not isinstance(value, kind):
            raise _Unusable(f"`{name}` is missing or not a {kind.__name__}")
    return doc


class AgentState:
    """Captures the agent's instant into its checkpoint, and restores it at start."""

    def __init__(
        self,
        file: CheckpointFile,
        stats: SelfMetrics,
        checkpoints: Checkpoints,
        store: Store,
        rules: RuleManager,
        notifier: Notifier,
    ) -> None:
        self.file = file
        self.checkpoints = checkpoints
        self.store = store
        self.rules = rules
        self.notifier = notifier
        self.restored_values = False
        """Whether metric values came back from a checkpoint (so /metrics may have shown
        higher ones before the restart, until the lines since it are counted again)."""
        self._lock = asyncio.Lock()
        self._legacy: list[Path] = []
        self._error: str | None = None
        self._writes = stats.counter(
            "chatwatch_checkpoint_writes_total", "Checkpoint files written."
        )
        self._failures = stats.counter(
            "chatwatch_checkpoint_write_failures_total",
            "Checkpoint writes that failed (the previous file is kept).",
        )
        self._state_failures = write_failures(stats)
        self._duration = stats.gauge(
            "chatwatch_checkpoint_write_duration_seconds",
            "Time the last checkpoint write took: on the event loop (the capture), and in all.",
            ("part",),
        )
        self._size = stats.gauge(
            "chatwatch_checkpoint_size_bytes", "Size of the last checkpoint written."
        )

    # -- start -------------------------------------------------------------------------

    def restore(self, now: float, log_time: Collection[str] = ()) -> Saved:
        """Put the last checkpoint's instant back: offsets, values, alerts, notifications.
        Call it before the sources start.

        `log_time`: the sources whose backlog is caught up in the log's own time. When the
        checkpoint has offsets of one of them, alerts are restored as of the checkpoint's
        instant (the downtime is replayed, not skipped: agent/catchup.py)."""
        saved = self.file.load()
        self._legacy = saved.legacy
        try:
            self.checkpoints.restore(saved.sources)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            log.error("file offsets in the checkpoint unreadable; files start afresh: %s", exc)
            self.checkpoints.restore({})
        if saved.metrics:
            self.store.restore(saved.metrics, now)
            self.restored_values = True
        alerts = 0
        if saved.alerts is not None:
            replayed = saved.saved_at is not None and any(
                self.checkpoints.for_source(name) for name in log_time
            )
            at = saved.saved_at if replayed and saved.saved_at is not None else now
            alerts = restore_alerts_state(self.rules.groups, saved.alerts, at, saved.origin)
        try:
            self.notifier.restore(saved.notifications, now)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            log.error("notification state in the checkpoint unreadable; not restored: %s", exc)
        if saved.origin != "none":
            log.info(
                "checkpoint restored",
                extra={
                    "path": saved.origin,
                    "files": len(self.checkpoints),
                    "metrics": len(saved.metrics),
                    "alerts": alerts,
                    "age_s": None if saved.saved_at is None else round(now - saved.saved_at, 3),
                },
            )
        return saved

    # -- every checkpoint.interval, on request, at shutdown -----------------------------

    def capture(self, now: float) -> Capture:
        """The instant, copied: one synchronous step on the event loop."""
        return Capture(
            now,
            self.checkpoints.to_json(now),
            self.store.capture(),
            orjson.Fragment(orjson.dumps(alerts_state(self.rules.groups, now))),
            orjson.Fragment(orjson.dumps(self.notifier.to_state())),
        )

    async def save(self) -> bool:
        """Capture now, write off the loop; False if it could not be written (logged and
        counted; the previous checkpoint stays)."""
        async with self._lock:  # one write at a time, in the order of their captures
            started = time.perf_counter()
            try:
                capture = self.capture(time.time())
            except Exception:  # a bug in a capture must not stop the agent
                log.exception("cannot capture the checkpoint")
                self._failed("capture failed")
                return False
            on_loop = time.perf_counter() - started
            try:
                size = await asyncio.to_thread(self.file.write, capture)
            except OSError as exc:
                self._failed(str(exc))
                return False
            self._duration.set(("event_loop",), on_loop)
            self._duration.set(("total",), time.perf_counter() - started)
            self._size.set((), size)
            self._writes.inc()
            if self._error is not None:
                log.info("checkpoint written again", extra={"path": str(self.file.path)})
                self._error = None
            self._forget_legacy()
            return True

    def _failed(self, error: str) -> None:
        self._failures.inc()
        self._state_failures.inc(("checkpoints",))
        if error != self._error:  # once per kind of failure, not every interval
            log.error(
                "cannot write checkpoint; the previous one is kept",
                extra={"path": str(self.file.path), "error": error},
            )
        self._error = error

    def _forget_legacy(self) -> None:
        for path in self._legacy:
            try:
                path.unlink(missing_ok=True)
            except OSError as exc:
                log.warning(
                    "cannot remove a migrated state file",
                    extra={"path": str(path), "error": str(exc)},
                )
                continue
            log.info(
                "state of an earlier version migrated into the checkpoint; removed",
                extra={"path": str(path), "checkpoint": str(self.file.path)},
            )
        self._legacy = []
