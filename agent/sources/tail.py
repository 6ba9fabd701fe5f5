"""Tail files by glob, across every kind of rotation, without losing or repeating a line.

How a `FileSource` works, in the order a reader meets it:

* **Finding files.** The globs are expanded at start, whenever the watcher reports a
  file added or removed in a watched directory, and every `stat_interval` as a safety
  net (some filesystems rotate without an event). Watching uses inotify (`inotify.py`,
  read on the event loop) on the directories the globs live in, plus the directories
  symlinked files point into. Nothing polls in between: an idle source sleeps until the
  next event or timer. An event from idle files is read at once; while files keep
  changing, events are read at most every `WATCH_COALESCE` seconds, so one wake-up
  reads what many writes appended.

* **Identity.** An open file is its inode: we keep its descriptor, so a rename keeps us
  reading the same bytes, and a rotated file that still matches the globs (`app.log.1`
  for `app.log*`) is recognised as the stream we already read, not a new file. For
  checkpoints and for copies we use a fingerprint, `dev:inode:hash(first 1 KiB)` (see
  `checkpoint.py`). Before reading more, each open file is checked to still hold the
  bytes we fingerprinted (its first bytes and the bytes just before our offset); if not,
  or if it shrank below our offset, it was truncated in place (copytruncate or plain
  truncation) and reading restarts at 0.

* **Copies (copytruncate).** The truncated content lives on in the copy. The old
  incarnation's checkpoint is kept; a new file whose first 1 KiB hashes the same and
  that holds the same bytes just before that checkpoint's offset is the copy, and it is
  read from that offset on, so lines written between our last read and the truncation
  are picked up from the copy (when the copy matches the globs) and nothing is read
  twice. A new file whose first 1 KiB equals the first 1 KiB of a file still open is
  held unread: once that original is truncated or closed, the copy continues from where
  reading of the copied content had got to (even if that was under 1 KiB); if the
  original still holds the content after `rotate_wait`, the copy is a plain duplicate
  and only what is appended to it later is read. When the truncation is noticed before
  the copy is found, the copy is recognised by the old incarnation's fingerprint, which
  is a prefix of the copy's head when less than 1 KiB of it had been read. A new file
  under 1 KiB is new (its
  prefix is too short to tell a copy from a file that merely starts alike), so a copy of
  a file that is still under 1 KiB may be read again. A file that appears empty is
  identified once its first bytes arrive, so a copy being written is not mistaken for a
  new file. The head and tail fingerprints are taken from the bytes as they were read,
  never by reading the file again (it may have been truncated in between).

* **Rotated away.** A file that no longer matches the globs (renamed out, deleted, a
  symlink retargeted) is still read by its descriptor, because writers keep writing to
  it for a moment after rotation; it is closed once it has not grown for `rotate_wait`.
  A copy is only ever of a file that still exists: a new file whose first bytes equal
  those of a *deleted* one (the same lines written again) is new and read from its
  start, and a deleted file's checkpoint is dropped once it is closed, so neither a
  look-alike nor a file reusing its inode is taken for it.

* **Handing on.** Each chunk (256 KiB) is split into lines (`lines.py`), decoded, and
  handed to the sink as one batch; only after the sink returns does the file's
  checkpoint advance, to just past the last complete line handed on.

* **Partial lines.** A last line without its newline is held. It is handed on as it is
  once the file has had no more bytes to read for `partial_line_timeout`, or when its
  file is closed after rotation. The timeout runs from when the agent last read the
  file, after handing that read on, and when it runs out the file must still end where
  reading stopped: a loop blocked for seconds (a slow sink, a long history copy) never
  hands on the start of a line its writer finished meanwhile. The rest of a line handed
  on, if it comes, is then skipped (the checkpoint records that it points mid-line).
  At `stop()` a partial line is *not* handed on: the checkpoint stays at its start and
  the next run reads it whole.

* **Multi-line events.** With `multiline`, the decoder holds the lines of the event it
  is still joining (its next line decides whether the event is complete) and says how
  many (`held_lines`); the splitter tells where each line starts, and the checkpoint
  stays at the first held line. At `stop()` a held event is *not* handed on: the next
  run reads it again, whole. It is handed on once its file has been quiet for
  `multiline.timeout`, or when the file is closed after rotation; a file truncated (or
  copied and truncated) in the middle of one keeps it with its unfinished last line
  (below), so a copy read from the old checkpoint reads the event whole.

* **Where to start.** A file with a checkpoint resumes at it. Otherwise `start_at`
  applies on a source's first run (no checkpoints for it at all); files found later,
  while running or after a restart, are new since we last looked and are read from the
  beginning.

* **Held at start.** The agent starts a source with `hold_at_start()`: each file found
  at start is read only up to where it ended then (its backlog: after a restart, what was
  written while the agent was down), and what is appended later, like files found later,
  waits for `release()`. The agent reads every backlog first (in the log's own time where
  the source names its timestamp: agent/catchup.py), evaluates once, then releases the
  sources, so the first line read live is counted after an evaluation and alerts as
  any later line does. While held, rotated files are not closed and no timer hands on a
  partial line or a held event: they wait for the release.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fnmatch
import glob
import hashlib
import logging
import math
import os
import stat
import time
from collections.abc import Callable, Iterable
from typing import Literal

from agent.decode.base import Decoder, OnError
from agent.decode.events import Event, Origin, Sink
from agent.decode.formats import make_decoder
from agent.sources.checkpoint import (
    FINGERPRINT_BYTES,
    TAIL_BYTES,
    Checkpoint,
    Checkpoints,
)
from agent.sources.config import SourceConfig
from agent.sources.inotify import Change, Inotify
from agent.sources.lines import LineSplitter, SourceCounters
from agent.support.selfmetrics import SelfMetrics
from agent.support.tasks import cancel_and_wait

log = logging.getLogger("chatwatch.tail")

CHUNK = 256 * 1024
"""Bytes per read; each chunk's lines are handed on as one batch."""
ROUND_BYTES = 1024 * 1024
"""Bytes read from one file before giving the other files and the event loop a turn."""
WATCH_COALESCE = 0.2
"""Seconds between two reads of the watcher's events while lines keep coming (when the
files were idle, an event is read at once): inotify merges the events of the writes in
between, so a busy file costs a few wake-ups a second, not one per line."""

DecoderFactory = Callable[[SourceConfig, OnError], Decoder]
State = Literal["live", "held", "pending"]


def _hash(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=12).hexdigest()


class _File:
    """One open file (one inode) and how far it was read."""

    __slots__ = (
        "backlog_end",
        "before",
        "copy_head",
        "copy_of",
        "cp",
        "decoder",
        "decoder_dirty",
        "departed",
        "dev",
        "fd",
        "head",
        "held",
        "ino",
        "last_growth",
        "limit",
        "lost_since",
        "origin",
        "path",
        "paths",
        "pos",
        "since",
        "size",
        "splitter",
        "state",
        "tail",
    )

    def __init__(self, fd: int, dev: int, ino: int, path: str, source: str) -> None:
        self.fd = fd
        self.dev = dev
        self.ino = ino
        self.path = path
        """The path the file was found under (events' origin; stable across renames)."""
        self.paths: set[str] = {path}
        """Paths matching the globs that lead to this inode now."""
        self.origin = Origin(source, path)
        self.state: State = "live"
        self.pos = 0
        """Read position; bytes before it are handed on or held by the splitter."""
        self.size = 0
        self.cp: Checkpoint | None = None
        self.splitter: LineSplitter | None = None
        self.decoder: Decoder | None = None
        self.decoder_dirty = False
        self.held: list[int] = []
        """Multi-line sources: the offsets of the lines the decoder holds (an event not
        complete yet); the checkpoint stays at the first."""
        self.tail = b""
        """The bytes just before the committed offset (what `cp.tail_hash` hashes)."""
        self.head = b""
        """The file's first bytes (up to 1 KiB) as read (what `cp.head_hash` hashes)."""
        self.before = b""
        """The bytes just before `pos`, as read: the tail and head come from what was
        read, never from reading the file again, which may have been truncated since."""
        now = time.monotonic()
        self.last_growth = now
        self.since = now
        self.lost_since: float | None = None
        self.copy_of: _File | None = None
        """For a held copy: the open file it is a copy of."""
        self.copy_head = b""
        self.departed = False
        self.limit: float = math.inf
        """Reading stops here while the source is held at start (see `hold_at_start`)."""
        self.backlog_end: float = math.inf
        """Where the file ended when it was found at start (the end of its backlog)."""


class _Denied:
    __slots__ = ("initial", "next_retry")

    def __init__(self, initial: bool, next_retry: float) -> None:
        self.initial = initial
        self.next_retry = next_retry


class _HeldPartial:
    """The unfinished last line of a file that was truncated, waiting for its copy.

    With `multiline`, also (or only: `data` may be empty) the event its decoder was still
    joining; `end` and `end_tail` then say where the old checkpoint goes if no copy
    continues the file: past that event and `data`."""

    __slots__ = ("data", "deadline", "decoder", "end", "end_tail", "key", "origin", "tail")

    def __init__(
        self,
        key: str,
        data: bytes,
        tail: bytes,
        origin: Origin,
        decoder: Decoder,
        deadline: float,
        end: int | None = None,
        end_tail: bytes = b"",
    ) -> None:
        self.key = key
        self.data = data
        self.tail = tail
        self.origin = origin
        self.decoder = decoder
        self.deadline = deadline
        self.end = end
        self.end_tail = end_tail


class FileSource:
    """Lines from the files matching one source's globs, handed on in batches to `sink`."""

    def __init__(
        self,
        cfg: SourceConfig,
        sink: Sink,
        checkpoints: Checkpoints,
        stats: SelfMetrics,
        decoder_factory: DecoderFactory = make_decoder,
    ) -> None:
        self.cfg = cfg
        self.sink = sink
        self.checkpoints = checkpoints
        self._decoder_factory = decoder_factory
        self._name = cfg.name
        self._label = (cfg.name,)
        self._multiline = cfg.multiline is not None
        self._event_timeout = cfg.multiline.timeout if cfg.multiline is not None else math.inf
        self._patterns = [os.path.abspath(p) for p in cfg.paths]
        self._counters = SourceCounters(stats, cfg.name)
        self._rotations = stats.counter(
            "chatwatch_rotations_total",
            "Files rotated under the tailer, by kind (rename, delete, symlink, truncate).",
            ("source", "kind"),
        )
        self._watched = stats.gauge(
            "chatwatch_files_watched", "Files held open by the source.", ("source",)
        )
        self._lag = stats.gauge(
            "chatwatch_file_lag_bytes",
            "Bytes written to a file but not yet handed on.",
            ("source", "path"),
        )
        self._open_errors = stats.counter(
            "chatwatch_file_open_errors_total",
            "Failed attempts to open or list a matching file, by reason.",
            ("source", "reason"),
        )
        self.opened = asyncio.Event()
        """Set once the globs were scanned and the existing files opened."""
        self.caught_up = asyncio.Event()
        """Set once every open file was read to its end: what the files held at start
        (after a restart, the lines since the checkpoint) has been handed on."""
        self._files: dict[tuple[int, int], _File] = {}
        self._denied: dict[str, _Denied] = {}
        self._dir_errors: set[str] = set()
        self._held_partials: list[_HeldPartial] = []
        self._changes: set[tuple[Change, str]] = set()
        self._wake = asyncio.Event()
        self._deadline = math.inf
        self._first_run = True
        self._holding = False
        self._backlog_open = True
        self.backlog_read = asyncio.Event()
        """Set, while held at start, once every file was read up to where it ended at start."""
        self._stopping = False
        self._running = False
        self._closed = False
        self._done = asyncio.Event()
        self._watch_key: frozenset[tuple[str, bool, int]] = frozenset()
        self._watch_restart: asyncio.Event | None = None

    # -- lifecycle ----------------------------------------------------------------------

    async def run(self) -> None:
        """Tail until `stop()`; hands on everything read before returning."""
        if self._stopping:
            return
        self._running = True
        watcher: asyncio.Task[None] | None = None
        try:
            self._first_run = not self.checkpoints.for_source(self._name)
            self._scan(initial=True)
            self.opened.set()
            watcher = asyncio.create_task(self._watch(), name=f"watch:{self._name}")
            await self._loop()
        finally:
            if watcher is not None:
                await cancel_and_wait([watcher])
            self._shutdown()
            self._done.set()

    async def stop(self) -> None:
        """Stop reading and hand on what was read, so checkpoints can be saved.

        The decoder's held state (CRI/docker partial records) is handed on. An unfinished
        last line of a file still in place is *not*: its checkpoint stays at the line's
        start, so the next run reads the line whole once its writer finishes it, instead
        of handing on a fragment now and losing the rest. Nor is a multi-line event still
        being joined (with `multiline`, nothing the decoder holds): its checkpoint stays
        at its first line.
        """
        self._stopping = True
        self._wake.set()
        if self._running:
            await self._done.wait()
        else:
            self._shutdown()

    def hold_at_start(self, read_backlog: bool = True) -> None:
        """Before `run()`: read each file found at start only up to where it ended then,
        and, without `read_backlog`, not at all until `read_backlog()`; everything else
        waits for `release()` (see "Held at start" above)."""
        self._holding = True
        self._backlog_open = read_backlog

    def read_backlog(self) -> None:
        """Read the backlog of each file found at start (up to where it ended then)."""
        self._backlog_open = True
        for f in self._files.values():
            f.limit = f.backlog_end
        self._wake.set()

    def release(self) -> None:
        """Tail live: read on past the backlog, as far as the files go."""
        self._holding = False
        for f in self._files.values():
            f.limit = math.inf
        self._wake.set()

    def backlog(self) -> dict[Origin, int]:
        """Bytes of backlog not read yet, per file (nothing once released)."""
        out: dict[Origin, int] = {}
        if self._holding:
            for f in self._files.values():
                if f.state == "live" and f.backlog_end != math.inf:
                    out[f.origin] = out.get(f.origin, 0) + max(0, int(f.backlog_end) - f.pos)
        return out

    async def _loop(self) -> None:
        interval = self.cfg.stat_interval
        next_full = time.monotonic() + interval
        more = True
        while not self._stopping:
            if not more:
                timeout = max(0.0, min(next_full, self._deadline) - time.monotonic())
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(timeout):
                        await self._wake.wait()
            if self._stopping:
                break
            self._wake.clear()
            changes, self._changes = self._changes, set()
            now = time.monotonic()
            full = now >= next_full
            if full:
                next_full = now + interval
            # Poll before scanning: a truncation must be seen before its copy is judged.
            more = await self._poll_all(verify=full)
            if full or self._needs_scan(changes):
                self._scan(initial=False)
                more = await self._poll_all(verify=False) or more
            if not more:
                self.caught_up.set()
                if self._holding and self._backlog_open and not any(self.backlog().values()):
                    self.backlog_read.set()
            if full:
                self._touch_checkpoints()
            self._housekeeping(time.monotonic())

    def _shutdown(self) -> None:
        if self._closed:
            return
        self._closed = True
        for f in list(self._files.values()):
            if f.cp is not None and f.state == "live":
                if not self._multiline:  # a multi-line event being joined is read again
                    self._flush_decoder(f.decoder, f.origin)
                self._commit(f)
            deleted = _unlinked(f.fd)
            self._forget(f)
            if deleted and f.cp is not None:  # nothing can read it on (see `_close`)
                self.checkpoints.remove(self._name, f.cp.key)
        for held in self._held_partials:
            self._emit_held_partial(held)
        self._held_partials.clear()
        self._watched.set(self._label, 0)

    # -- watching -----------------------------------------------------------------------

    async def _watch(self) -> None:
        """Turn inotify events in the watched directories into wake-ups of the loop."""
        while not self._stopping:
            dirs = self._watch_dirs()
            self._watch_key = dirs
            restart = asyncio.Event()
            self._watch_restart = restart
            groups = [
                (sorted(d for d, r, _ in dirs if r == recursive), recursive)
                for recursive in (False, True)
            ]
            groups = [(d, r) for d, r in groups if d]
            if not groups:
                await restart.wait()
                continue
            try:
                async with asyncio.TaskGroup() as tg:
                    for paths, recursive in groups:
                        tg.create_task(self._watch_group(paths, recursive, restart))
            except Exception as exc:
                log.warning(
                    "file watcher failed; relying on the periodic stat until it restarts",
                    extra={"source": self._name, "error": repr(exc)},
                )
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(1.0):
                        await restart.wait()

    async def _watch_group(self, dirs: list[str], recursive: bool, stop: asyncio.Event) -> None:
        """Read the watcher's events as they come when the files were idle, and at most
        every `WATCH_COALESCE` seconds while they keep changing."""
        loop = asyncio.get_running_loop()
        ready = asyncio.Event()

        def readable() -> None:  # level-triggered: listen again only after reading
            loop.remove_reader(watcher.fd)
            ready.set()

        async def relay_stop() -> None:
            await stop.wait()
            ready.set()

        with Inotify(dirs, recursive) as watcher:
            relay = asyncio.create_task(relay_stop())
            last_read = -math.inf
            try:
                while not stop.is_set():
                    loop.add_reader(watcher.fd, readable)
                    await ready.wait()
                    ready.clear()
                    if stop.is_set():
                        break
                    pause = last_read + WATCH_COALESCE - time.monotonic()
                    if pause > 0:  # still busy: let the kernel merge the events meanwhile
                        with contextlib.suppress(TimeoutError):
                            async with asyncio.timeout(pause):
                                await stop.wait()
                    changes = watcher.read()
                    last_read = time.monotonic()
                    if changes:
                        self._changes.update(changes)
                        self._wake.set()
            finally:
                loop.remove_reader(watcher.fd)
                await cancel_and_wait([relay])

    def _watch_dirs(self) -> frozenset[tuple[str, bool, int]]:
        dirs: set[tuple[str, bool, int]] = set()

        def add(path: str, recursive: bool) -> None:
            with contextlib.suppress(OSError):
                st = os.stat(path)
                if stat.S_ISDIR(st.st_mode):
                    dirs.add((path, recursive, st.st_ino))

        for pattern in self._patterns:
            add(*_static_dir(pattern))
        for f in self._files.values():
            for p in f.paths:
                if os.path.islink(p):
                    add(os.path.dirname(os.path.realpath(p)), False)
        return frozenset(dirs)

    def _update_watch(self) -> None:
        if self._watch_restart is not None and self._watch_dirs() != self._watch_key:
            self._watch_restart.set()

    def _needs_scan(self, changes: Iterable[tuple[Change, str]]) -> bool:
        known: set[str] | None = None
        for change, path in changes:
            if change != Change.modified:
                return True
            if known is None:
                known = {p for f in self._files.values() for p in f.paths}
            if path not in known and any(fnmatch.fnmatch(path, p) for p in self._patterns):
                return True
        return False

    # -- finding files ------------------------------------------------------------------

    def _excluded(self, path: str) -> bool:
        name = os.path.basename(path)
        for pattern in self.cfg.exclude:
            if "/" in pattern:
                if fnmatch.fnmatch(path, os.path.abspath(pattern)):
                    return True
            elif fnmatch.fnmatch(name, pattern):
                return True
        return False

    def _scan(self, initial: bool) -> None:
        """Expand the globs; follow renames, notice files gone, open new ones."""
        found: dict[tuple[int, int], list[str]] = {}
        seen: set[str] = set()
        for pattern in self._patterns:
            matches = glob.glob(pattern, recursive=True)
            if not matches:
                self._check_dir(pattern)
            for path in matches:
                if path in seen or self._excluded(path):
                    continue
                seen.add(path)
                try:
                    st = os.stat(path)
                except OSError:
                    continue  # vanished, or a dangling symlink
                if stat.S_ISREG(st.st_mode):
                    found.setdefault((st.st_dev, st.st_ino), []).append(path)

        now = time.monotonic()
        for key, f in list(self._files.items()):
            f.paths = set(found.pop(key, ()))
            if not f.departed and f.path not in f.paths:
                f.departed = True
                kind = self._departure(f)
                self._rotations.inc((self._name, kind))
                log.info(
                    "file rotated",
                    extra={"source": self._name, "path": f.path, "kind": kind},
                )
            if f.paths:
                f.lost_since = None
                if f.cp is not None and f.cp.path not in f.paths:
                    f.cp.path = min(f.paths)
                    self.checkpoints.mark_dirty()
            elif f.lost_since is None:
                f.lost_since = now

        for path in [p for p in self._denied if p not in seen]:
            del self._denied[path]
        for paths in found.values():
            path = min(paths)
            denied = self._denied.get(path)
            if denied is not None and denied.next_retry > now:
                continue
            self._open(path, initial)
        self._update_watch()

    def _departure(self, f: _File) -> str:
        try:
            if os.fstat(f.fd).st_nlink == 0:
                return "delete"
        except OSError:
            return "delete"
        return "symlink" if os.path.islink(f.path) else "rename"

    def _check_dir(self, pattern: str) -> None:
        """A glob that matches nothing may hide an unreadable directory: say so once."""
        directory, _ = _static_dir(pattern)
        try:
            with os.scandir(directory):
                pass
        except PermissionError:
            self._open_errors.inc((self._name, "permission_denied"))
            if directory not in self._dir_errors:
                self._dir_errors.add(directory)
                log.warning(
                    "cannot list directory (permission denied); its files are not read",
                    extra={"source": self._name, "path": directory},
                )
            return
        except OSError:
            return
        self._dir_errors.discard(directory)

    def _open(self, path: str, initial: bool) -> None:
        now = time.monotonic()
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
        except FileNotFoundError:
            return
        except OSError as exc:
            reason = (
                "permission_denied"
                if exc.errno in (errno.EACCES, errno.EPERM)
                else errno.errorcode.get(exc.errno or 0, "error").lower()
            )
            self._open_errors.inc((self._name, reason))
            denied = self._denied.get(path)
            if denied is None:
                log.warning(
                    "cannot open file; retrying",
                    extra={
                        "source": self._name,
                        "path": path,
                        "reason": reason,
                        "retry_every": self.cfg.permission_retry,
                    },
                )
                denied = self._denied[path] = _Denied(initial, now)
            denied.next_retry = now + self.cfg.permission_retry
            return
        denied = self._denied.pop(path, None)
        if denied is not None:
            initial = denied.initial
            log.info("file is readable now", extra={"source": self._name, "path": path})
        st = os.fstat(fd)
        key = (st.st_dev, st.st_ino)
        if not stat.S_ISREG(st.st_mode) or key in self._files:
            os.close(fd)
            if key in self._files:
                self._files[key].paths.add(path)
            return
        f = _File(fd, st.st_dev, st.st_ino, path, self._name)
        f.decoder = self._decoder_factory(self.cfg, self._counters.decode_error)
        self._files[key] = f
        self._watched.set(self._label, len(self._files))
        self._wake.set()  # opened outside a scan (a retry): read it on the next turn
        if not initial and st.st_size == 0:
            f.state = "pending"  # identified when its first bytes arrive (it may be a copy)
        else:
            self._identify(f, st.st_size, initial)
            if self._holding and initial and f.state == "live":
                f.backlog_end = st.st_size
                f.limit = st.st_size if self._backlog_open else f.pos

    def _identify(self, f: _File, size: int, initial: bool) -> None:
        """Decide where to start reading a newly found file (see the module docstring)."""
        cps = self.checkpoints
        name = self._name
        mine = cps.for_source(name)
        inode_known = False
        for cp in mine:
            if (cp.dev, cp.ino) != (f.dev, f.ino) or cps.is_live(name, cp.key):
                continue
            inode_known = True
            if self._holds(f.fd, size, cp, head=True):
                cps.remove(name, cp.key)
                self._begin(f, cp.offset, cp.mid_line)
                log.info(
                    "resuming at checkpoint",
                    extra={"source": name, "path": f.path, "offset": cp.offset},
                )
                return
        if size >= FINGERPRINT_BYTES:
            head = os.pread(f.fd, FINGERPRINT_BYTES, 0)
            head_hash = _hash(head)
            for cp in mine:
                if (
                    cp.head_len == FINGERPRINT_BYTES
                    and cp.head_hash == head_hash
                    and (cp.dev, cp.ino) != (f.dev, f.ino)
                    and not cps.is_live(name, cp.key)
                    and self._still_there(cp)
                    and self._continue_copy(f, size, cp)
                ):
                    return
            # The original was truncated (noticed before its copy was found) when we had
            # read less than 1 KiB of it: its fingerprint is a prefix of the copy's head.
            short = [
                cp
                for cp in mine
                if 0 < cp.head_len < FINGERPRINT_BYTES
                and (cp.dev, cp.ino) != (f.dev, f.ino)
                and not cps.is_live(name, cp.key)
                and self._still_there(cp)
            ]
            short.sort(key=lambda cp: (cp.head_len, cp.offset), reverse=True)
            for cp in short:
                if self._continue_copy(f, size, cp, prefix=True):
                    return
            # A copy of a file still open, which may or may not be truncated next (or
            # was, unnoticed yet: compare with its head as read, too): wait.
            for g in self._files.values():
                if g is f or g.state == "held" or _unlinked(g.fd):
                    continue  # a file that starts like a deleted one is new
                known = g.head if g.state == "live" else b""
                if (known and head.startswith(known)) or _pread(g.fd, len(head), 0) == head:
                    log.debug(
                        "copy of an open file; held",
                        extra={"source": name, "path": f.path, "of": g.path, "size": size},
                    )
                    f.state = "held"
                    f.copy_of = g
                    f.copy_head = head
                    f.since = time.monotonic()
                    return
        if initial and not inode_known and self._first_run and self.cfg.start_at == "end":
            self._begin(f, size, not _ends_line(f.fd, size))
        else:
            self._begin(f, 0, False)
        log.debug(
            "new file",
            extra={"source": name, "path": f.path, "offset": f.pos, "size": size, "ino": f.ino},
        )

    def _still_there(self, cp: Checkpoint) -> bool:
        """Does the file checkpoint `cp` was taken from still exist? Only then can a new
        file holding the same first bytes be its copy (copytruncate); once it was
        deleted, such a file is new: the same lines written again."""
        g = self._files.get((cp.dev, cp.ino))
        if g is not None:
            return not _unlinked(g.fd)
        try:
            st = os.stat(cp.path)
        except OSError:
            return False
        return (st.st_dev, st.st_ino) == (cp.dev, cp.ino)

    def _holds(self, fd: int, size: int, cp: Checkpoint, head: bool) -> bool:
        """Does the file still hold the bytes checkpoint `cp` describes?"""
        if size < cp.offset or size < cp.head_len:
            return False
        if head and cp.head_len and _hash(os.pread(fd, cp.head_len, 0)) != cp.head_hash:
            return False
        start = max(0, cp.offset - TAIL_BYTES)
        return _hash(os.pread(fd, cp.offset - start, start)) == cp.tail_hash

    def _begin(self, f: _File, offset: int, mid_line: bool) -> None:
        """Start reading `f` (a new file, or a truncated one) at `offset`."""
        f.state = "live"
        f.copy_of = None
        f.copy_head = b""
        f.pos = offset
        if self._holding:  # what is there now is not backlog: it waits for the release
            f.limit = f.backlog_end = offset
        f.held = []
        f.splitter = LineSplitter(
            self.cfg.max_line_bytes,
            self._counters.too_long,
            mid_line=mid_line,
            track=offset if self._multiline else None,
        )
        head = _pread(f.fd, FINGERPRINT_BYTES, 0)
        start = max(0, offset - TAIL_BYTES)
        f.tail = f.before = _pread(f.fd, offset - start, start)
        f.head = head
        f.cp = Checkpoint(
            source=self._name,
            path=min(f.paths) if f.paths else f.path,
            dev=f.dev,
            ino=f.ino,
            head_len=len(head),
            head_hash=_hash(head),
            offset=offset,
            tail_hash=_hash(f.tail),
            mid_line=mid_line,
            updated=time.time(),
        )
        self.checkpoints.put(f.cp)

    # -- reading ------------------------------------------------------------------------

    async def _poll_all(self, verify: bool) -> bool:
        """Read what is new in every open file; True if some file has more to read."""
        more = False
        for f in list(self._files.values()):
            if self._stopping:
                break
            if f.state != "held" and self._poll(f, verify):
                more = True
            await asyncio.sleep(0)
        return more

    def _poll(self, f: _File, verify: bool) -> bool:
        try:
            size = os.fstat(f.fd).st_size
        except OSError:
            return False
        if f.state == "pending":
            if size == 0:
                return False
            self._identify(f, size, initial=False)
            if f.state != "live":
                return False
        assert f.cp is not None
        if size < f.pos or ((size != f.size or verify) and not self._holds_own(f, size)):
            self._truncated(f)
        f.size = size
        more = self._read(f, ROUND_BYTES) if size > f.pos else False
        self._lag.set((self._name, f.path), max(0, max(size, f.pos) - f.cp.offset))
        return more

    def _holds_own(self, f: _File, size: int) -> bool:
        cp = f.cp
        assert cp is not None
        if cp.head_len and _hash(os.pread(f.fd, cp.head_len, 0)) != cp.head_hash:
            return False
        n = len(f.tail)
        return not n or os.pread(f.fd, n, cp.offset - n) == f.tail

    def _read(self, f: _File, budget: float) -> bool:
        """Read up to `budget` bytes, handing on each chunk's lines; True if more is there."""
        splitter = f.splitter
        assert splitter is not None
        while budget > 0:
            want = CHUNK if f.limit == math.inf else min(CHUNK, int(f.limit) - f.pos)
            if want <= 0:
                return False  # held at start: the rest waits for the release
            try:
                data = os.pread(f.fd, want, f.pos)
            except OSError as exc:
                log.warning(
                    "read failed", extra={"source": self._name, "path": f.path, "error": str(exc)}
                )
                return False
            if not data:
                return False
            start = f.pos
            f.pos += len(data)
            budget -= len(data)
            known = len(f.head)
            if known < FINGERPRINT_BYTES and start <= known:
                f.head += data[known - start : FINGERPRINT_BYTES - start]
            self._counters.bytes.inc(self._label, len(data))
            self._hand_on(f, splitter.feed(data))
            self._commit(f, data)
            # After handing on: time the sink took (a slow agent) is not idle time.
            f.last_growth = time.monotonic()
            f.before = (f.before + data[-TAIL_BYTES:])[-TAIL_BYTES:]
            if len(data) < CHUNK:
                return False
            if self._stopping:
                return False
        return True

    def _hand_on(self, f: _File, lines: list[bytes]) -> None:
        if not lines:
            return
        assert f.decoder is not None
        self._counters.lines.inc(self._label, len(lines))
        events: list[Event] = []
        f.decoder.decode(lines, events)
        f.decoder_dirty = True
        if self._multiline:
            held = f.decoder.held_lines
            if held:
                assert f.splitter is not None
                f.held = (f.held + f.splitter.starts)[-held:]
            elif f.held:
                f.held = []
        if events:
            self._emit(f.origin, events)

    def _emit(self, origin: Origin, events: list[Event]) -> None:
        self._counters.events.inc(self._label, len(events))
        try:
            self.sink(origin, events)
        except Exception:
            log.exception("the sink failed on a batch of events; the batch is dropped")

    def _commit(self, f: _File, data: bytes = b"") -> None:
        """Advance the checkpoint to just past the last line handed on.

        `data` is the chunk just read (it ends at `f.pos`; `f.before` holds the bytes
        before it). The tail and head hashes come from those bytes as read.
        """
        cp, splitter = f.cp, f.splitter
        assert cp is not None and splitter is not None
        if f.held:  # the first line of a multi-line event not handed on yet
            committed, mid_line = f.held[0], False
        else:
            committed, mid_line = f.pos - splitter.uncommitted, splitter.mid_line
        if committed == cp.offset and mid_line == cp.mid_line:
            return
        if committed != cp.offset:
            want = min(TAIL_BYTES, committed)
            end = len(data) - (f.pos - committed)
            if end >= 0 and end + len(f.before) >= want:
                seen = f.before + data[max(0, end - TAIL_BYTES) : end]
                f.tail = seen[len(seen) - want :]
            elif end < 0 and len(f.before) + end >= want:  # in the bytes before `data`
                f.tail = f.before[: len(f.before) + end][len(f.before) + end - want :]
            else:
                f.tail = _pread(f.fd, want, committed - want)
            cp.tail_hash = _hash(f.tail)
        if cp.head_len < len(f.head):
            self.checkpoints.remove(self._name, cp.key)
            cp.head_len = len(f.head)
            cp.head_hash = _hash(f.head)
        cp.offset = committed
        cp.mid_line = mid_line
        cp.updated = time.time()
        self.checkpoints.put(cp)

    def _flush_file(self, f: _File) -> None:
        """Hand on the held partial line and whatever the decoder holds."""
        if f.splitter is not None:
            line = f.splitter.flush()
            if line is not None:
                self._hand_on(f, [line])
        self._flush_decoder(f.decoder, f.origin)
        f.decoder_dirty = False
        f.held = []
        if f.cp is not None:
            self._commit(f)

    def _flush_event(self, f: _File) -> None:
        """The file has been quiet for `multiline.timeout`: its last event is complete."""
        self._flush_decoder(f.decoder, f.origin)
        f.held = []
        if f.cp is not None:
            self._commit(f)

    def _flush_decoder(self, decoder: Decoder | None, origin: Origin) -> None:
        if decoder is None:
            return
        events: list[Event] = []
        decoder.flush(events)
        if events:
            self._emit(origin, events)

    # -- rotation -----------------------------------------------------------------------

    def _truncated(self, f: _File) -> None:
        """The file was truncated in place: keep the old incarnation for its copy, restart."""
        old, splitter = f.cp, f.splitter
        assert old is not None and splitter is not None
        self._rotations.inc((self._name, "truncate"))
        log.info(
            "file truncated; reading it again from the start",
            extra={"source": self._name, "path": f.path, "offset": old.offset},
        )
        self.checkpoints.release(self._name, old.key)
        partial = splitter.partial
        if self._multiline and f.decoder is not None and (f.held or partial):
            # The event being joined stays with its decoder: a copy read from the old
            # checkpoint (its first line) reads it whole; without one it goes on as it is.
            end = f.pos - splitter.uncommitted + len(partial)
            if end == f.pos:
                self._held_partials.append(
                    _HeldPartial(
                        old.key,
                        partial,
                        f.tail,
                        f.origin,
                        f.decoder,
                        time.monotonic() + self.cfg.rotate_wait,
                        end=end,
                        end_tail=f.before[-min(TAIL_BYTES, end) :] if end else b"",
                    )
                )
                f.decoder = self._decoder_factory(self.cfg, self._counters.decode_error)
            else:  # a long line was being skipped: the event ends before it
                self._flush_decoder(f.decoder, f.origin)
            f.held = []
            self._begin(f, 0, False)
            self._resolve_held(f)
            return
        if partial and f.decoder is not None:
            self._held_partials.append(
                _HeldPartial(
                    old.key,
                    partial,
                    f.tail,
                    f.origin,
                    f.decoder,
                    time.monotonic() + self.cfg.rotate_wait,
                )
            )
        self._flush_decoder(f.decoder, f.origin)
        self._begin(f, 0, False)
        self._resolve_held(f)

    def _continue_copy(self, f: _File, size: int, cp: Checkpoint, prefix: bool = False) -> bool:
        """If `f` is a copy of the incarnation `cp` describes, read it on from there.

        `cp` must describe a file that no longer holds that content (truncated, or
        closed). With `prefix`, `cp` may fingerprint fewer than 1 KiB (it is known to be
        the original of `f`); else its full 1 KiB head already matched.
        """
        if size >= cp.offset:
            if not self._holds(f.fd, size, cp, head=prefix):
                return False
            offset, mid_line = cp.offset, cp.mid_line
            self._held_partials = [h for h in self._held_partials if h.key != cp.key]
        else:  # an older copy: everything in it was read already
            if prefix and cp.head_len and _hash(_pread(f.fd, cp.head_len, 0)) != cp.head_hash:
                return False
            offset, mid_line = size, not _ends_line(f.fd, size)
        self.checkpoints.remove(self._name, cp.key)
        self._begin(f, offset, mid_line)
        log.info(
            "recognised a copy of a file already read; continuing where it was",
            extra={"source": self._name, "path": f.path, "offset": offset, "was": cp.path},
        )
        return True

    def _resolve_held(self, g: _File) -> None:
        """`g` was truncated or closed: copies of it waiting for that can be judged."""
        for f in list(self._files.values()):
            if f.state == "held" and f.copy_of is g:
                self._judge(f, expired=False)

    def _judge(self, f: _File, expired: bool) -> None:
        """Decide about a held copy `f` of the open file `g`.

        While `g` still holds the copied content, `f` is a plain duplicate: after
        `rotate_wait` only what is appended to it is read. Once `g` no longer holds it
        (truncated: copytruncate; or closed), `f` carries on from where reading of that
        content in `g` had got to - from the start if `g`'s content was never read.
        """
        g = f.copy_of
        assert g is not None
        try:
            size = os.fstat(f.fd).st_size
        except OSError:
            return
        if (g.dev, g.ino) in self._files:
            if _pread(g.fd, len(f.copy_head), 0) == f.copy_head:
                if expired:
                    log.info(
                        "a copy of a file still being read; reading only what is appended",
                        extra={"source": self._name, "path": f.path, "of": g.path},
                    )
                    self._begin(f, size, not _ends_line(f.fd, size))
                return
            if g.state == "live" and g.cp is not None and not self._holds_own(g, g.size):
                self._poll(g, verify=True)  # notices the truncation, which judges f
                if f.state != "held":
                    return
        cps = self.checkpoints
        gone = [
            cp
            for cp in cps.for_source(self._name)
            if (cp.dev, cp.ino) == (g.dev, g.ino) and not cps.is_live(self._name, cp.key)
        ]
        gone.sort(key=lambda cp: (cp.head_len, cp.offset), reverse=True)
        for cp in gone:
            if self._continue_copy(f, size, cp, prefix=True):
                return
        self._begin(f, 0, False)
        log.debug(
            "copy of content never read; reading it all",
            extra={"source": self._name, "path": f.path, "of": g.path},
        )

    def _emit_held_partial(self, held: _HeldPartial) -> None:
        """No copy continued a truncated file: its unfinished last line goes on as it is
        (and, with `multiline`, the event its decoder was joining)."""
        events: list[Event] = []
        if held.data:
            self._counters.lines.inc(self._label)
            held.decoder.decode([held.data], events)
        held.decoder.flush(events)
        if events:
            self._emit(held.origin, events)
        cp = next((c for c in self.checkpoints.for_source(self._name) if c.key == held.key), None)
        if cp is not None:
            if held.end is not None:
                cp.offset = held.end
                cp.mid_line = bool(held.data)
                cp.tail_hash = _hash(held.end_tail)
            else:
                cp.offset += len(held.data)
                cp.mid_line = True
                cp.tail_hash = _hash((held.tail + held.data)[-TAIL_BYTES:])
            self.checkpoints.mark_dirty()

    def _housekeeping(self, now: float) -> None:
        """Timers: idle partial lines, draining rotated files, held copies, retries."""
        deadline = math.inf
        idle = self.cfg.partial_line_timeout
        wait = self.cfg.rotate_wait
        for f in list(self._files.values()):
            if f.limit != math.inf:
                continue  # held at start: closing and timers wait for the release
            if f.lost_since is not None:
                at = max(f.lost_since, f.last_growth) + wait
                if now >= at:
                    self._close(f)
                    continue
                deadline = min(deadline, at)
            if f.state == "held":
                at = f.since + wait
                if now < at:
                    deadline = min(deadline, at)
                    continue
                self._judge(f, expired=True)
            elif f.state == "live" and f.splitter is not None:
                partial = bool(f.splitter.partial)
                event_due = (
                    bool(f.held) and not partial and now >= f.last_growth + self._event_timeout
                )
                line_due = (partial or f.decoder_dirty) and now >= f.last_growth + idle
                if (event_due or line_due) and _has_unread(f):
                    # The timer ran out while the loop was blocked, yet the file has bytes
                    # we have not read: the writer did not stop, the agent was slow. Read
                    # them first; the timers run again from when the file is found idle.
                    f.last_growth = now
                    self._wake.set()
                    continue
                if f.held and not partial:
                    at = f.last_growth + self._event_timeout
                    if now >= at:
                        self._flush_event(f)
                    else:
                        deadline = min(deadline, at)
                if partial or f.decoder_dirty:
                    at = f.last_growth + idle
                    if now >= at:
                        self._flush_file(f)
                    else:
                        deadline = min(deadline, at)
        keep = []
        for held in self._held_partials:
            if now >= held.deadline:
                self._emit_held_partial(held)
            else:
                keep.append(held)
                deadline = min(deadline, held.deadline)
        self._held_partials = keep
        for path, denied in list(self._denied.items()):
            if now >= denied.next_retry:
                self._open(path, denied.initial)
            retry = self._denied.get(path)
            if retry is not None:
                deadline = min(deadline, retry.next_retry)
        self._deadline = deadline

    def _close(self, f: _File) -> None:
        """A file rotated away and quiet for `rotate_wait`: read its last bytes, let go."""
        if f.state == "live":
            self._read(f, math.inf)
            self._flush_file(f)
        deleted = _unlinked(f.fd)
        log.info("closed rotated file", extra={"source": self._name, "path": f.path})
        self._forget(f)
        self._resolve_held(f)
        if deleted and f.cp is not None:
            # Its content is gone for good: a new file that starts alike (the same lines
            # written again), or that reuses its inode, is new, not this one read on.
            self.checkpoints.remove(self._name, f.cp.key)

    def _forget(self, f: _File) -> None:
        with contextlib.suppress(OSError):
            os.close(f.fd)
        self._files.pop((f.dev, f.ino), None)
        if f.cp is not None:
            self.checkpoints.release(self._name, f.cp.key)
        self._lag.remove((self._name, f.path))
        self._watched.set(self._label, len(self._files))

    def _touch_checkpoints(self) -> None:
        now = time.time()
        for f in self._files.values():
            if f.cp is not None:
                self.checkpoints.touch(self._name, f.cp.key, now)


def _static_dir(pattern: str) -> tuple[str, bool]:
    """The directory to watch for a glob, and whether files may lie deeper below it."""
    parts = pattern.split(os.sep)
    for i, part in enumerate(parts):
        if any(c in part for c in "*?["):
            return os.sep.join(parts[:i]) or os.sep, len(parts) - i > 1
    return os.path.dirname(pattern) or os.sep, False


def _has_unread(f: _File) -> bool:
    """Whether the file's size differs from how far it was read: bytes to read (or a
    truncation to notice), so it is not idle."""
    try:
        return os.fstat(f.fd).st_size != f.pos
    except OSError:
        return False


def _unlinked(fd: int) -> bool:
    """Was the open file deleted (no name leads to it any more)?"""
    try:
        return os.fstat(fd).st_nlink == 0
    except OSError:
        return True


def _pread(fd: int, size: int, offset: int) -> bytes:
    """Read up to `size` bytes at `offset`; nothing if the file cannot be read."""
    try:
        return os.pread(fd, size, offset)
    except OSError:
        return b""


def _ends_line(fd: int, offset: int) -> bool:
    """Is `offset` at the start of a line (the file start, or just after a newline)?"""
    return offset == 0 or os.pread(fd, 1, offset - 1) == b"\n"
