"""A real log writer process for the tailing tests, driven one command at a time.

Run as a program (`python tests/writer.py`), it reads commands on stdin, one per line,
does them to real files, and answers `ok` (or `err <why>`) on stdout:

    open KEY PATH            open PATH for appending (O_APPEND, as loggers do) as KEY
    fd KEY N                 use inherited descriptor N (a pipe) as KEY
    write KEY START COUNT [PER_WRITE]
                             append lines numbered START.. (PER_WRITE lines per write())
    pace KEY START COUNT PIECE PAUSE
                             append lines START.. in writes of PIECE bytes (splitting
                             lines across writes), PAUSE seconds apart
    raw KEY LITERAL          append the bytes of a Python bytes literal, e.g. b'{"n": 1}'
    close KEY | truncate KEY (ftruncate to 0 through the writer's descriptor)
    rename SRC DST | unlink PATH | copy SRC DST | chmod PATH OCTAL
    symlink TARGET LINK      point LINK at TARGET atomically (new link renamed over it)
    torture PATH TOTAL EVERY SEED
                             the torture scenario (see `torture`), then `ok`

Each line is a JSON object `{"n": N, "msg": ..., "pad": ...}`, so a test can check the
exact set of numbers that came out of the agent.

Imported, `Writer` is the test side: it starts the program and sends commands.
"""

from __future__ import annotations

import ast
import asyncio
import os
import random
import shutil
import sys
import time
from pathlib import Path

WRITER = Path(__file__).resolve()


def line(n: int) -> bytes:
    return b'{"n": %d, "msg": "chat message %d", "pad": "%s"}\n' % (n, n, b"x" * (n % 37))


def lines(start: int, count: int) -> bytes:
    return b"".join(line(n) for n in range(start, start + count))


def _append(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _open(path: str) -> int:
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)


def torture(path: str, total: int, every: int, seed: int) -> None:
    """Append `total` lines to `path`, rotating every `every` lines in a random style.

    Styles: rename+create (the old file, `path.K`, still matches `path*`; a few lines
    still go to the old descriptor after the rename, as a logger that reopens late),
    copytruncate (copy to `path.K`, then truncate through the writer's O_APPEND fd),
    truncation, and delete+recreate.

    Where the style itself destroys lines no tailer can have read yet, the writer
    cooperates, as logrotate cannot: it prints `sync N` and waits for `go`, the test
    answering once the agent has handed on every line numbered below N. Before a
    truncation N is every line written so far (truncation destroys what was not read).
    Before a delete N is one line into the current file (the agent must have the file
    open; the rest it must drain through its descriptor after the delete). copytruncate
    does no sync: nothing is written between copy and truncate, so every line survives
    in the copy or the file, and the agent must find the unread ones in the copy.
    """
    rng = random.Random(seed)
    fd = _open(path)
    n = 0
    file_start = 0
    rotation = 0
    while n < total:
        count = min(every, total - n)
        done = 0
        # Some files are written in one burst (rotated before the agent even looks), most
        # at a pace that lets the agent read them part way before they rotate.
        pause = rng.choice((0.0, 0.01, 0.02, 0.02))
        while done < count:
            per = min(rng.choice((1, 7, 50, 200)), count - done)
            _append(fd, lines(n + done, per))
            done += per
            if pause:
                time.sleep(rng.uniform(0, pause))
        n += count
        if n >= total:
            break
        rotation += 1
        style = rng.choice(("rename", "copytruncate", "truncate", "delete"))
        if style == "rename":
            os.rename(path, f"{path}.{rotation}")
            late = min(5, total - n)
            _append(fd, lines(n, late))  # the old file is still written after the rename
            n += late
            os.close(fd)
            fd = _open(path)
        elif style == "copytruncate":
            shutil.copyfile(path, f"{path}.{rotation}")
            os.ftruncate(fd, 0)
        elif style == "truncate":
            _sync(n)
            os.ftruncate(fd, 0)
        else:
            _sync(file_start + 1)
            os.unlink(path)
            os.close(fd)
            fd = _open(path)
        file_start = n
        _say(f"rotated {style} {n}")
    os.close(fd)


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _sync(n: int) -> None:
    _say(f"sync {n}")
    if sys.stdin.readline().strip() != "go":
        raise SystemExit("expected go")


def main() -> None:
    fds: dict[str, int] = {}
    for raw in sys.stdin:
        cmd, *args = raw.split(maxsplit=2) if raw.startswith("raw ") else raw.split()
        try:
            if cmd == "open":
                fds[args[0]] = _open(args[1])
            elif cmd == "fd":
                fds[args[0]] = int(args[1])
            elif cmd == "write":
                start, count = int(args[1]), int(args[2])
                per = int(args[3]) if len(args) > 3 else 100
                for i in range(start, start + count, per):
                    _append(fds[args[0]], lines(i, min(per, start + count - i)))
            elif cmd == "pace":
                data = lines(int(args[1]), int(args[2]))
                piece, pause = int(args[3]), float(args[4])
                for i in range(0, len(data), piece):
                    _append(fds[args[0]], data[i : i + piece])
                    time.sleep(pause)
            elif cmd == "raw":
                _append(fds[args[0]], ast.literal_eval(args[1]))
            elif cmd == "close":
                os.close(fds.pop(args[0]))
            elif cmd == "truncate":
                os.ftruncate(fds[args[0]], 0)
            elif cmd == "rename":
                os.rename(args[0], args[1])
            elif cmd == "unlink":
                os.unlink(args[0])
            elif cmd == "copy":
                shutil.copyfile(args[0], args[1])
            elif cmd == "chmod":
                os.chmod(args[0], int(args[1], 8))
            elif cmd == "symlink":
                tmp = args[1] + ".tmp-link"
                os.symlink(args[0], tmp)
                os.rename(tmp, args[1])
            elif cmd == "torture":
                torture(args[0], int(args[1]), int(args[2]), int(args[3]))
            else:
                raise ValueError(f"unknown command {cmd}")
        except Exception as exc:
            _say(f"err {exc!r}")
            raise SystemExit(1) from None
        _say("ok")


class Writer:
    """The test side: a running writer process and a way to send it commands."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, pass_fds: tuple[int, ...] = ()) -> Writer:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(WRITER),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            pass_fds=pass_fds,
        )
        return cls(proc)

    async def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command.encode() + b"\n")
        await self.proc.stdin.drain()

    async def reply(self, timeout: float = 60.0) -> str:
        assert self.proc.stdout is not None
        text = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        if not text:
            raise AssertionError(f"writer exited with {await self.proc.wait()}")
        return text.decode().strip()

    async def do(self, *commands: str) -> None:
        """Run commands in order, each finished before the next is sent."""
        for command in commands:
            await self.send(command)
            answer = await self.reply()
            assert answer == "ok", f"writer: {command!r} -> {answer}"

    async def close(self) -> None:
        if self.proc.returncode is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


if __name__ == "__main__":
    main()
