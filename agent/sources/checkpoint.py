"""Where each file was read up to, persisted so a restart neither loses nor repeats lines.

One `Checkpoint` per file *incarnation* (a file's content since it was created or last
truncated), keyed by its fingerprint:

    <dev>:<inode>:<hash of the first head_len bytes>

`head_len` is `FINGERPRINT_BYTES` (1 KiB) once the file is that long; a shorter file is
fingerprinted by inode plus a hash of what it holds so far, and its key is updated as it
grows, until it reaches 1 KiB (as the OpenTelemetry filelog receiver does with its
fingerprint prefix). Alongside the offset we keep a hash of the bytes just before it
(`tail_hash`): a file matches a checkpoint only if it still holds exactly those bytes at
those places, which tells a file truncated and refilled, or a reused inode, from the
file we read.

The entries serialize as

    {"<source>": {"<fingerprint>": {"path": ..., "offset": ..., "updated": <unix time>, ...}}}

which the live agent writes as the `sources` section of its checkpoint (`agent/state.py`),
in the same atomic write as the metric values counted from the lines before those
offsets. `save()`/`load()` write and read that section alone (`{"version": 1,
"sources": ...}`, the format of earlier versions) for standalone use. Entries that no
source holds open and that have not changed for `forget_after` seconds are pruned.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import orjson

from agent.support.atomicfile import write_atomic, write_failures
from agent.support.selfmetrics import SelfMetrics

log = logging.getLogger("chatwatch.checkpoint")

FINGERPRINT_BYTES = 1024
"""How many leading bytes identify a file's content (with device and inode)."""
TAIL_BYTES = 256
"""How many bytes before the offset must still match for a checkpoint to apply."""


@dataclass(slots=True)
class Checkpoint:
    source: str
    path: str
    dev: int
    ino: int
    head_len: int
    head_hash: str
    offset: int
    tail_hash: str
    mid_line: bool = False
    """The offset is inside a line whose start was already handed on (flushed partial):
    the rest of that line is skipped on resume."""
    updated: float = 0.0

    @property
    def key(self) -> str:
        return fingerprint(self.dev, self.ino, self.head_hash)


def fingerprint(dev: int, ino: int, head_hash: str) -> str:
    return f"{dev}:{ino}:{head_hash}"


_FIELDS = tuple(f.name for f in fields(Checkpoint) if f.name != "source")


class Checkpoints:
    """In-memory map of checkpoints with atomic persistence; shared by all file sources."""

    def __init__(self, path: Path, stats: SelfMetrics, forget_after: float = 86400.0) -> None:
        self.path = Path(path)
        self.forget_after = forget_after
        self._entries: dict[tuple[str, str], Checkpoint] = {}
        self._live: set[tuple[str, str]] = set()
        self._dirty = False
        self._writes = stats.counter(
            "chatwatch_checkpoint_writes_total", "Checkpoint files written."
        )
        self._failures = stats.counter(
            "chatwatch_checkpoint_write_failures_total",
            "Checkpoint writes that failed (the previous file is kept).",
        )
        self._state_failures = write_failures(stats)

    # -- persistence ---------------------------------------------------------------------

    def load(self) -> None:
        """Read the checkpoint file; a missing file means no checkpoints yet.

        An unreadable or corrupt file is logged and set aside (renamed `*.corrupt`), and
        reading starts without checkpoints rather than refusing to start. (The live agent
        reads its checkpoint through `agent/state.py`, which calls `restore`.)
        """
        self._entries.clear()
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as exc:
            log.error("cannot read checkpoints", extra={"path": str(self.path), "error": str(exc)})
            return
        try:
            self.restore(orjson.loads(raw)["sources"])
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError, ValueError) as exc:
            self._entries.clear()
            aside = self.path.with_name(self.path.name + ".corrupt")
            log.error(
                "checkpoint file is corrupt; set aside, starting without checkpoints",
                extra={"path": str(self.path), "moved_to": str(aside), "error": str(exc)},
            )
            with contextlib.suppress(OSError):
                os.replace(self.path, aside)

    def save(self, now: float | None = None) -> bool:
        """Write all checkpoints atomically if anything changed; False if the write failed.

        Standalone use (tests, tools); the live agent writes the offsets as one section of
        its checkpoint (`agent/state.py`), together with the metric values of that instant.
        """
        now = time.time() if now is None else now
        sources = self.to_json(now)
        if not self._dirty:
            return True
        data = orjson.dumps({"version": 1, "sources": sources}, option=orjson.OPT_INDENT_2)
        try:
            write_atomic(self.path, data)
        except OSError as exc:
            self._failures.inc()
            self._state_failures.inc(("checkpoints",))
            log.error("cannot write checkpoints", extra={"path": str(self.path), "error": str(exc)})
            return False
        self._writes.inc()
        self._dirty = False
        return True

    def to_json(self, now: float) -> dict[str, dict[str, dict[str, Any]]]:
        """`{source: {fingerprint: entry}}`, after pruning what is long gone: a copy, so it
        can be serialized off the event loop while the sources read on."""
        self._prune(now)
        out: dict[str, dict[str, dict[str, Any]]] = {}
        for (source, key), cp in sorted(self._entries.items()):
            entry = asdict(cp)
            del entry["source"]
            out.setdefault(source, {})[key] = entry
        return out

    def restore(self, sources: dict[str, dict[str, dict[str, Any]]]) -> None:
        """Take over the entries `to_json` produced; raises (KeyError, TypeError, ...) on
        a malformed section, with nothing taken over."""
        entries: dict[tuple[str, str], Checkpoint] = {}
        for source, items in sources.items():
            for key, value in items.items():
                entries[(source, key)] = Checkpoint(
                    source=source, **{k: value[k] for k in _FIELDS if k in value}
                )
        self._entries = entries
        self._live.clear()

    def _prune(self, now: float) -> None:
        horizon = now - self.forget_after
        gone = [
            k for k, cp in self._entries.items() if k not in self._live and cp.updated < horizon
        ]
        for k in gone:
            del self._entries[k]
        if gone:
            self._dirty = True

    # -- used by file sources ------------------------------------------------------------

    def for_source(self, source: str) -> list[Checkpoint]:
        return [cp for (s, _), cp in self._entries.items() if s == source]

    def get(self, source: str, key: str) -> Checkpoint | None:
        return self._entries.get((source, key))

    def put(self, cp: Checkpoint, *, live: bool = True) -> None:
        """Store (or replace) the checkpoint under its current fingerprint."""
        k = (cp.source, cp.key)
        self._entries[k] = cp
        if live:
            self._live.add(k)
        self._dirty = True

    def remove(self, source: str, key: str) -> None:
        k = (source, key)
        self._live.discard(k)
        if self._entries.pop(k, None) is not None:
            self._dirty = True

    def release(self, source: str, key: str) -> None:
        """The file is no longer held open; its entry ages towards pruning from now on."""
        self._live.discard((source, key))

    def is_live(self, source: str, key: str) -> bool:
        return (source, key) in self._live

    def touch(self, source: str, key: str, now: float) -> None:
        """Mark an open, idle file as still present (so it is not pruned)."""
        cp = self._entries.get((source, key))
        if cp is not None and now - cp.updated > min(3600.0, self.forget_after / 4):
            cp.updated = now
            self._dirty = True

    def mark_dirty(self) -> None:
        self._dirty = True

    def __len__(self) -> int:
        return len(self._entries)
