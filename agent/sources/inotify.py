"""Directory watching with Linux inotify, read on the event loop: tail.py's wake-ups.

Why not a watcher thread: at a steady 2,000 lines/s a thread that takes every event
(one per `write()`) costs more CPU than reading the lines. inotify merges an event with
the one queued before it when they are the same (same file, same kind), so an agent
that reads its events only every so often while lines keep coming gets one event per
file per read, however many lines were written meanwhile. `Inotify` is the kernel side
(a descriptor to add to the event loop, and what it says, as `Change`s); when to read
it is tail.py's business.

Watches cover the given directories, and with `recursive` every directory below them,
added as they appear. A queue overflow is reported as a change of the watched
directory itself, which makes the tailer look at the globs again.
"""

from __future__ import annotations

import contextlib
import ctypes
import enum
import errno
import logging
import os
import struct

_libc = ctypes.CDLL(None, use_errno=True)  # the C library Python itself runs on
_libc.inotify_init1.argtypes = [ctypes.c_int]
_libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]

IN_MODIFY = 0x2
IN_ATTRIB = 0x4
IN_MOVED_FROM = 0x40
IN_MOVED_TO = 0x80
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_DELETE_SELF = 0x400
IN_MOVE_SELF = 0x800
IN_Q_OVERFLOW = 0x4000
IN_IGNORED = 0x8000
IN_ISDIR = 0x40000000
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC

MASK = (
    IN_MODIFY
    | IN_ATTRIB
    | IN_MOVED_FROM
    | IN_MOVED_TO
    | IN_CREATE
    | IN_DELETE
    | IN_DELETE_SELF
    | IN_MOVE_SELF
)
log = logging.getLogger("chatwatch.tail")

_HEADER = struct.Struct("iIII")  # wd, mask, cookie, len (then the name, NUL-padded)


class Change(enum.IntEnum):
    """What happened to a path."""

    added = 1
    modified = 2
    deleted = 3


class Inotify:
    """An inotify descriptor watching directories; `read()` drains what it says."""

    def __init__(self, dirs: list[str], recursive: bool) -> None:
        fd = _libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"inotify_init1: {os.strerror(err)}")
        self.fd: int = fd
        self.recursive = recursive
        self._paths: dict[int, str] = {}
        self._roots = list(dirs)
        self._full = False
        try:
            for d in dirs:
                self._add(d)
        except BaseException:
            self.close()  # not leaked to every retry of the watcher
            raise

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> Inotify:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _add(self, directory: str) -> None:
        """Watch `directory` (and, with `recursive`, every directory below it)."""
        wd = _libc.inotify_add_watch(self.fd, os.fsencode(directory), MASK)
        if wd < 0:
            err = ctypes.get_errno()
            if err in (errno.ENOENT, errno.ENOTDIR, errno.EACCES, errno.EPERM):
                return  # gone meanwhile, or not ours to read: the periodic scan covers it
            if err == errno.ENOSPC:  # fs.inotify.max_user_watches reached (busy nodes)
                if not self._full:
                    self._full = True
                    log.warning(
                        "inotify watch limit reached (fs.inotify.max_user_watches); "
                        "directories beyond it are found by the periodic scan",
                        extra={"path": directory},
                    )
                return
            raise OSError(err, f"inotify_add_watch {directory}: {os.strerror(err)}")
        self._paths[wd] = directory
        if self.recursive:
            with contextlib.suppress(OSError), os.scandir(directory) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        self._add(entry.path)

    def read(self) -> set[tuple[Change, str]]:
        """The changes queued since the last read (empty if none)."""
        changes: set[tuple[Change, str]] = set()
        while True:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                return changes
            if not data:
                return changes
            self._parse(data, changes)

    def _parse(self, data: bytes, changes: set[tuple[Change, str]]) -> None:
        offset = 0
        size = _HEADER.size
        while offset + size <= len(data):
            wd, mask, _cookie, length = _HEADER.unpack_from(data, offset)
            name = data[offset + size : offset + size + length].rstrip(b"\0")
            offset += size + length
            if mask & IN_Q_OVERFLOW:  # events were lost: rescan, and watch again below
                changes.update((Change.added, root) for root in self._roots)
                for root in self._roots:  # directories made meanwhile (re-adding is a no-op)
                    self._add(root)
                continue
            directory = self._paths.get(wd)
            if directory is None:
                continue
            if mask & IN_IGNORED:
                del self._paths[wd]
                continue
            path = os.path.join(directory, os.fsdecode(name)) if name else directory
            if mask & (IN_CREATE | IN_MOVED_TO):
                changes.add((Change.added, path))
                if self.recursive and mask & IN_ISDIR:
                    self._add(path)
            elif mask & (IN_DELETE | IN_MOVED_FROM | IN_DELETE_SELF | IN_MOVE_SELF):
                changes.add((Change.deleted, path))
            else:
                changes.add((Change.modified, path))
