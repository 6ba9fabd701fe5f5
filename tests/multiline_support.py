"""Real stack traces for the multi-line tests: programs in tests/multiline/ run for real
(Python's `logging`, a Go panic, Java's `java.util.logging`, Node's `console.error`), and
the container wrappers (CRI, docker json-file) put around their lines.

What each test expects comes from the programs' side: the Python app writes down the
exceptions it caught, the Go and Java programs die in known ways; never from chatwatch.
Where `go` or `javac` is missing, a recorded real run of the same program is used.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import orjson

from tests.deploy_support import require_tool

HERE = Path(__file__).resolve().parent / "multiline"

TEXT_REGEX = r"^(?P<ts>\d{4}-\d\d-\d\d[ T]\S+) \[?(?P<level>[A-Za-z]+)\]? (?P<message>.*)$"
"""The first line of every record the programs below log (a Python record, a Go or Java
log line, a Node info line), with its time and level."""
PY_REGEX = r"^(?P<ts>\S+ \S+) \[(?P<level>\w+)\] (?P<logger>\S+) - (?P<message>.*)$"
"""pyapp.py's logging format."""


@dataclass
class Expected:
    """One event the program logged (or died with): its exception's type and message."""

    exception_type: str | None
    exception_message: str | None = None
    """None: not checked (a message the runtime words as it likes)."""
    message: str | None = None
    level: str | None = None


def python_app(tmp: Path, rounds: int = 1, rotate_bytes: int = 0) -> tuple[Path, list[Expected]]:
    """Run tests/multiline/pyapp.py writing `tmp/app.log`; what it logged, in order."""
    log, expected = tmp / "app.log", tmp / "expected.jsonl"
    subprocess.run(
        [sys.executable, str(HERE / "pyapp.py"), str(log), str(expected), "--rounds", str(rounds)]
        + (["--rotate-bytes", str(rotate_bytes)] if rotate_bytes else []),
        check=True,
        timeout=60,
    )
    records = [json.loads(line) for line in expected.read_text().splitlines()]
    return log, [
        Expected(r["exception_type"], r["exception_message"], r["message"], r["level"])
        for r in records
    ]


GO_KINDS = {
    # panic.go's KIND -> the exception type chatwatch documents for that death
    "index": "runtime.Error",
    "error": "panic",
    "value": "main.quota",
    "recovered": "panic",
    "deadlock": "fatal error",
}


def go_panics(tmp: Path) -> tuple[bytes, list[Expected]]:
    """panic.go run once per kind, its output (stdout and stderr) appended to one log."""
    go = shutil.which("go")
    if go is None:
        output = (HERE / "go_panics.log").read_bytes()
    else:
        binary = tmp / "panicker"
        subprocess.run(
            [go, "build", "-o", str(binary), str(HERE / "panic.go")],
            check=True,
            timeout=300,
            cwd=tmp,
            env={"HOME": str(tmp), "GOCACHE": str(tmp / "gocache"), "PATH": "/usr/bin:/bin"},
        )
        output = b""
        for kind in GO_KINDS:
            run = subprocess.run(
                [str(binary), kind], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30
            )
            assert run.returncode == 2, (kind, run.returncode)
            output += run.stdout
    expected = []
    for kind in GO_KINDS.values():
        expected += [Expected(None), Expected(kind)]
    return output, expected


JAVA_FORMAT = "%1$tFT%1$tT.%1$tLZ %4$s %3$s - %5$s%6$s%n"
JAVA_EXPECTED = [
    Expected(None),
    Expected("java.lang.IllegalStateException", "order lookup failed"),
    Expected("java.lang.NullPointerException"),
    Expected(None),
    Expected("java.lang.ArithmeticException", "/ by zero"),
]


def java_trace(tmp: Path) -> tuple[bytes, list[Expected]]:
    """Main.java logging through java.util.logging (one line a record, then the stack
    trace), then dying of an uncaught exception; stdout and stderr in one log."""
    javac, java = shutil.which("javac"), shutil.which("java")
    if javac is None or java is None:
        return (HERE / "java_trace.log").read_bytes(), JAVA_EXPECTED
    subprocess.run([javac, "-d", str(tmp), str(HERE / "Main.java")], check=True, timeout=120)
    run = subprocess.run(
        [
            java,
            f"-Djava.util.logging.SimpleFormatter.format={JAVA_FORMAT}",
            "-cp",
            str(tmp),
            "Main",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=120,
    )
    assert run.returncode == 1, run.stdout[-2000:]
    return run.stdout, JAVA_EXPECTED


NODE_EXPECTED = [
    Expected(None),
    Expected("TypeError", "cannot load session"),
    Expected(None),
    Expected("RangeError", "page size must be at most 100"),
    Expected("Error", "ENOENT: no such file or directory, open '/nonexistent/prompt.txt'"),
    Expected(None),
]


def node_errors() -> tuple[bytes, list[Expected]]:
    """errors.js: `console.error(err)` of three errors between log lines."""
    node = require_tool("node")
    run = subprocess.run(
        [node, str(HERE / "errors.js")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    assert run.returncode == 0, run.stdout[-2000:]
    return run.stdout, NODE_EXPECTED


# -- container wrappers -------------------------------------------------------------------


def cri_time(i: int) -> bytes:
    return b"2026-01-01T10:%02d:%02d.%09dZ" % (i // 60 % 60, i % 60, i * 7919 % 10**9)


def to_cri(lines: list[bytes], stream: bytes = b"stderr", chunk: int = 0) -> list[bytes]:
    """Each line as the CRI runtime writes it; with `chunk`, lines longer than that are
    split into `P` chunks ending with an `F` one, as the runtime splits long lines."""
    out = []
    for i, line in enumerate(lines):
        pieces = [line[j : j + chunk] for j in range(0, len(line), chunk)] if chunk else [line]
        pieces = pieces or [b""]
        for k, piece in enumerate(pieces):
            tag = b"F" if k == len(pieces) - 1 else b"P"
            out.append(b"%s %s %s %s" % (cri_time(i), stream, tag, piece))
    return out


def to_docker(lines: list[bytes], stream: str = "stderr", chunk: int = 0) -> list[bytes]:
    """Each line as docker's json-file driver writes it; with `chunk`, longer lines are
    split into records without the trailing newline, as docker splits lines over 16 KiB."""
    out = []
    for i, line in enumerate(lines):
        text = line.decode() + "\n"
        pieces = [text[j : j + chunk] for j in range(0, len(text), chunk)] if chunk else [text]
        time = cri_time(i).decode()
        out += [orjson.dumps({"log": p, "stream": stream, "time": time}) for p in pieces]
    return out


def wrap(fmt: str, lines: list[bytes], chunk: int = 0) -> list[bytes]:
    if fmt == "cri":
        return to_cri(lines, chunk=chunk)
    if fmt == "docker":
        return to_docker(lines, chunk=chunk)
    return lines


def source(fmt: str, regex: str = TEXT_REGEX, **multiline: object) -> dict[str, object]:
    """Settings of a source reading `fmt` (`plain`: text decoded by `regex`) with multiline."""
    settings: dict[str, object] = {"name": "app", "paths": ["/unused"], "multiline": multiline}
    if fmt == "plain":
        settings |= {"format": "regex", "regex": regex}
    else:
        settings |= {"format": fmt}
    return settings
