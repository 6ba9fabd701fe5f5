"""`format: cri`: Kubernetes container logs (`/var/log/containers/*.log`) as containerd and
CRI-O write them: `<RFC3339Nano time> <stdout|stderr> <P|F> <payload>`, one line per chunk.
A container output line longer than the runtime's limit (16 KiB by default) is written as
`P` chunks followed by one `F` chunk; stdout and stderr chunks interleave freely.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import orjson
import structlog

from tests.decode_support import Run, decode

CHUNK = 16 * 1024  # containerd's default max_container_log_line_size


def stamps() -> Iterator[str]:
    """RFC3339Nano as Go formats it: trailing zeros of the fraction are dropped."""
    nanos = 669794202
    while True:
        yield f"2026-11-23T09:30:05.{nanos:09d}".rstrip("0").rstrip(".") + "Z"
        nanos += 1000


def cri(stream: str, output_line: bytes, clock: Iterator[str], chunk: int = CHUNK) -> list[bytes]:
    """The lines a CRI runtime writes for one line of container output."""
    pieces = [output_line[i : i + chunk] for i in range(0, len(output_line), chunk)] or [b""]
    tags = ["P"] * (len(pieces) - 1) + ["F"]
    return [
        f"{next(clock)} {stream} {tag} ".encode() + p for tag, p in zip(tags, pieces, strict=True)
    ]


def structlog_lines(n: int) -> list[bytes]:
    buf = io.StringIO()
    log = structlog.wrap_logger(
        structlog.PrintLogger(file=buf),
        processors=[structlog.processors.add_log_level, structlog.processors.JSONRenderer()],
    )
    for i in range(n):
        log.info("http_request", route="/api/chat", status_code=200 + i, duration_ms=10.5 * i)
    return buf.getvalue().encode().splitlines()


def test_json_app_in_a_pod_each_line_is_its_event_plus_stream_and_time() -> None:
    clock = stamps()
    lines = [cri("stdout", line, clock)[0] for line in structlog_lines(3)]
    events, errors = decode("cri", lines)

    assert errors == {}
    assert [e["status_code"] for e in events] == [200, 201, 202]
    assert events[0] == {
        "event": "http_request",
        "level": "info",
        "route": "/api/chat",
        "status_code": 200,
        "duration_ms": 0.0,
        "stream": "stdout",
        "time": "2026-11-23T09:30:05.669794202Z",
    }
    assert events[1]["time"] == "2026-11-23T09:30:05.669795202Z"


def test_the_applications_own_fields_win_over_the_wrappers() -> None:
    line = b'{"event": "x", "time": "app-time", "stream": "audit"}'
    events, errors = decode("cri", [b"2026-11-23T09:30:05Z stderr F " + line])
    assert errors == {}
    assert events == [{"event": "x", "time": "app-time", "stream": "audit"}]


def test_text_payloads_become_a_message_field() -> None:
    lines = [
        b"2026-11-23T09:30:05.1Z stdout F Starting chatbot on port 8080",
        b"2026-11-23T09:30:05.2Z stderr F [1, 2]",  # JSON, but not an object
        b'2026-11-23T09:30:05.3Z stderr F {"torn": ',  # looks like JSON, is not
        b"2026-11-23T09:30:05.4Z stdout F caf\xe9 cr\xc3\xa8me",  # latin-1 byte: replaced
        b"2026-11-23T09:30:05.5Z stdout F 42",  # numbers stay text
    ]
    events, errors = decode("cri", lines)
    assert errors == {}
    assert [(e["message"], e["stream"]) for e in events] == [
        ("Starting chatbot on port 8080", "stdout"),
        ("[1, 2]", "stderr"),
        ('{"torn": ', "stderr"),
        ("caf\ufffd crème", "stdout"),
        ("42", "stdout"),
    ]


def test_partial_chunks_are_joined_per_stream_while_the_other_stream_interleaves() -> None:
    clock = stamps()
    big = orjson.dumps({"event": "llm_call", "prompt": "p" * 40_000, "tokens_in": 9000})
    out_chunks = cri("stdout", big, clock)
    assert [c.split(b" ")[2] for c in out_chunks] == [b"P", b"P", b"F"]
    err_long = b"E" * 20_000
    err_chunks = cri("stderr", err_long, clock)
    short = cri("stderr", b"warning: slow upstream", clock)
    # stdout P, stderr P, stdout P, stderr F, stderr F (short), stdout F
    lines = [out_chunks[0], err_chunks[0], out_chunks[1], err_chunks[1], *short, out_chunks[2]]
    events, errors = decode("cri", lines)

    assert errors == {}
    assert [e.get("event", e.get("message", "")[:10]) for e in events] == [
        "EEEEEEEEEE",
        "warning: s",
        "llm_call",
    ]
    assert events[0]["message"] == err_long.decode()
    assert events[0]["stream"] == "stderr"
    assert events[2]["prompt"] == "p" * 40_000 and events[2]["tokens_in"] == 9000
    # The record's time is its first chunk's.
    assert events[2]["time"] == out_chunks[0].split(b" ")[0].decode()


def test_batch_boundaries_inside_a_partial_record_do_not_matter() -> None:
    clock = stamps()
    lines = cri("stdout", b'{"event": "big", "pad": "' + b"x" * 50_000 + b'"}', clock)
    lines += cri("stdout", b'{"event": "small"}', clock)
    whole, _ = decode("cri", lines)
    run = Run("cri")
    for line in lines:
        run.feed([line])
    assert run.events == whole
    assert [e["event"] for e in whole] == ["big", "small"]
    assert run.errors == {}


def test_a_record_growing_past_max_line_bytes_is_dropped_and_counted_once() -> None:
    clock = stamps()
    huge = b"h" * 100_000  # 7 chunks: dropped when the 2nd pushes it past 20000
    at_the_end = b"t" * 30_000  # P 16384 + F 13616: crosses the limit on its F chunk
    lines = [
        *cri("stdout", huge, clock),
        *cri("stderr", b"meanwhile on stderr", clock),
        *cri("stdout", b'{"event": "after_huge"}', clock),
        *cri("stdout", at_the_end, clock),
        *cri("stdout", b'{"event": "after_30k"}', clock),
        *cri("stdout", b"y" * 20_000, clock),  # exactly the limit: kept
    ]
    events, errors = decode("cri", lines, max_line_bytes=20_000)

    assert errors == {"too_long": 2}
    assert [e.get("event") or e["message"][:3] for e in events] == [
        "mea",
        "after_huge",
        "after_30k",
        "yyy",
    ]
    assert len(events[3]["message"]) == 20_000


def test_malformed_wrappers_are_counted_as_bad_cri() -> None:
    lines = [
        b"2026-11-23T09:30:05Z stdout F fine",
        b"hello world",  # a plain text line
        b'{"log":"docker line\\n","stream":"stdout","time":"2026-11-23T09:30:05Z"}',
        b"2026-11-23T09:30:05Z stdin F wrong stream",
        b"2026-11-23T09:30:05Z stdout X wrong tag",
        b"2026-11-23T09:30:05Z stdout FP glued tag",
        b"yesterday stdout F not a time",
        b"2026-11-23T09:30 stdout F time without seconds",
        b"2026-11-23T09:30:05Z stdout",  # cut after the stream
        b"2026-11-23T09:30:05Z  stdout F double space",
        b"2026-11-23T09:30:05Z stdout F:x tagged",  # extra tags after ':' are allowed
        b"2026-11-23T09:30:05+02:00 stderr F offset",
        b"2026-11-23T09:30:05Z stdout F",  # F with nothing after it: an empty output line
    ]
    events, errors = decode("cri", lines)
    assert [e["message"] for e in events] == ["fine", "tagged", "offset"]
    assert events[2]["time"] == "2026-11-23T09:30:05+02:00"
    assert errors == {"bad_cri": 9, "empty": 1}
    assert len(events) + sum(errors.values()) == len(lines)


def test_blank_output_lines_are_counted_as_empty() -> None:
    lines = [
        b"2026-11-23T09:30:05Z stdout F ",
        b"2026-11-23T09:30:05Z stdout F    ",
        b"2026-11-23T09:30:05Z stdout P ",
        b"2026-11-23T09:30:05Z stdout F ",  # the F ending an empty P: one empty record
        b"2026-11-23T09:30:05Z stdout F ok",
    ]
    events, errors = decode("cri", lines)
    assert events == [{"message": "ok", "stream": "stdout", "time": "2026-11-23T09:30:05Z"}]
    assert errors == {"empty": 3}


def test_flush_hands_on_the_partial_record_a_rotated_file_ends_with() -> None:
    clock = stamps()
    run = Run("cri")
    chunks = cri("stdout", b'{"event": "cut", "pad": "' + b"z" * 20_000 + b'"}', clock)
    run.feed(chunks[:1])  # the file rotated after the first chunk
    run.feed(cri("stderr", b"partial stderr", clock, chunk=8)[:1])
    assert run.events == []

    flushed = run.flush()
    assert [(e["message"], e["stream"]) for e in flushed] == [
        (chunks[0].split(b" ", 3)[3].decode(), "stdout"),
        ("partial ", "stderr"),
    ]
    assert run.flush() == []  # nothing is handed on twice
    assert run.errors == {}


def test_flush_ends_the_discarding_of_a_too_long_record() -> None:
    # copytruncate mid-way through an over-long record: the file starts over, and its
    # first record must not be taken for the rest of the dropped one.
    clock = stamps()
    run = Run("cri", max_line_bytes=20_000)
    run.feed(cri("stdout", b"x" * 50_000, clock)[:2])
    assert run.errors == {"too_long": 1}
    assert run.flush() == []
    run.feed(cri("stdout", b"after truncation", clock))
    assert [e["message"] for e in run.events] == ["after truncation"]


def test_inner_format_logfmt_regex_and_text() -> None:
    line = b'2026-11-23T09:30:05Z stdout F level=info msg="hi there" status=200'
    events, errors = decode("cri", [line], inner_format="logfmt")
    assert errors == {}
    assert events == [
        {
            "level": "info",
            "msg": "hi there",
            "status": "200",
            "stream": "stdout",
            "time": "2026-11-23T09:30:05Z",
        }
    ]

    events, errors = decode(
        "cri",
        [line, b"2026-11-23T09:30:05Z stdout F no level here"],
        inner_format="regex",
        regex=r"level=(?P<level>\w+)",
    )
    assert events == [{"level": "info", "stream": "stdout", "time": "2026-11-23T09:30:05Z"}]
    assert errors == {"no_match": 1}

    events, errors = decode("cri", [b'2026-11-23T09:30:05Z stdout F {"a": 1}'], inner_format="text")
    assert events == [{"message": '{"a": 1}', "stream": "stdout", "time": "2026-11-23T09:30:05Z"}]
