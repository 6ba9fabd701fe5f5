"""`format: docker`: Docker's json-file log driver
(`/var/lib/docker/containers/<id>/<id>-json.log`), one JSON object per line:
`{"log":"<output>\\n","stream":"stdout","time":"<RFC3339Nano>"}`. Docker copies container
output in 16 KiB pieces; the pieces of a longer line are written as records whose `log`
does not end in a newline, and only the last one has it.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import structlog

from tests.decode_support import Run, decode

PIECE = 16 * 1024  # docker's stream copier buffer


def stamps() -> Iterator[str]:
    micros = 123456
    while True:
        yield f"2026-11-23T09:30:05.{micros:06d}789Z"
        micros += 1


def go_json(record: dict[str, str]) -> bytes:
    """As Go's encoding/json writes it: compact, UTF-8, with <, > and & escaped."""
    text = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026").encode()


def docker(
    stream: str, output: bytes, clock: Iterator[str], *, newline: bool = True, piece: int = PIECE
) -> list[bytes]:
    """The json-file records docker writes for `output` (one line of container output)."""
    pieces = [output[i : i + piece] for i in range(0, len(output), piece)] or [b""]
    records = []
    for i, chunk in enumerate(pieces):
        log = chunk.decode("utf-8", "replace")
        if i == len(pieces) - 1 and newline:
            log += "\n"
        records.append(go_json({"log": log, "stream": stream, "time": next(clock)}))
    return records


def structlog_lines() -> list[bytes]:
    buf = io.StringIO()
    log = structlog.wrap_logger(
        structlog.PrintLogger(file=buf),
        processors=[structlog.processors.add_log_level, structlog.processors.JSONRenderer()],
    )
    log.info("conversation_ended", category="billing", resolution="resolved", turns=7)
    log.error("llm_call", model="gpt-4o", error="<timeout> & retry")
    return buf.getvalue().encode().splitlines()


def test_json_app_under_docker_each_record_is_its_event_plus_stream_and_time() -> None:
    clock = stamps()
    lines = [rec for line in structlog_lines() for rec in docker("stdout", line, clock)]
    assert b"\\u003ctimeout\\u003e \\u0026 retry" in lines[1]  # as docker wrote it
    events, errors = decode("docker", lines)

    assert errors == {}
    assert events == [
        {
            "event": "conversation_ended",
            "level": "info",
            "category": "billing",
            "resolution": "resolved",
            "turns": 7,
            "stream": "stdout",
            "time": "2026-11-23T09:30:05.123456789Z",
        },
        {
            "event": "llm_call",
            "level": "error",
            "model": "gpt-4o",
            "error": "<timeout> & retry",
            "stream": "stdout",
            "time": "2026-11-23T09:30:05.123457789Z",
        },
    ]


def test_text_output_becomes_a_message_without_its_line_ending() -> None:
    clock = stamps()
    lines = [
        *docker("stdout", b"Listening on :8080", clock),
        *docker("stderr", b"WARNING: windows line\r", clock),
        *docker("stdout", b"123", clock),
    ]
    events, errors = decode("docker", lines)
    assert errors == {}
    assert [(e["message"], e["stream"]) for e in events] == [
        ("Listening on :8080", "stdout"),
        ("WARNING: windows line", "stderr"),
        ("123", "stdout"),
    ]


def test_16k_pieces_are_joined_per_stream_while_the_other_stream_interleaves() -> None:
    clock = stamps()
    big = json.dumps({"event": "llm_call", "completion": "c" * 50_000, "tokens_out": 12000})
    out = docker("stdout", big.encode(), clock)
    assert [json.loads(r)["log"].endswith("\n") for r in out] == [False, False, False, True]
    err = docker("stderr", b"Traceback: " + b"e" * 20_000, clock)
    lines = [out[0], err[0], out[1], out[2], err[1], out[3]]
    events, errors = decode("docker", lines)

    assert errors == {}
    assert [e["stream"] for e in events] == ["stderr", "stdout"]
    assert events[0]["message"] == "Traceback: " + "e" * 20_000
    assert events[1]["completion"] == "c" * 50_000
    assert events[1]["tokens_out"] == 12000
    assert events[1]["time"] == json.loads(out[0])["time"]  # the first piece's time

    run = Run("docker")  # one line per batch: the same events
    for line in lines:
        run.feed([line])
    assert run.events == events and run.errors == {}


def test_a_record_growing_past_max_line_bytes_is_dropped_and_counted_once() -> None:
    clock = stamps()
    lines = [
        *docker("stdout", b"x" * 100_000, clock),
        *docker("stdout", b'{"event": "after"}', clock),
        *docker("stderr", b"s" * 30_000, clock),  # crosses 20000 on its last piece
        *docker("stderr", b"k" * 20_000, clock),  # exactly the limit: kept
    ]
    events, errors = decode("docker", lines, max_line_bytes=20_000)
    assert errors == {"too_long": 2}
    assert events[0]["event"] == "after"
    assert events[1]["message"] == "k" * 20_000
    assert len(events) == 2


def test_malformed_records_are_counted_as_bad_docker() -> None:
    lines = [
        b'{"log":"ok\\n","stream":"stdout","time":"2026-11-23T09:30:05Z"}',
        b"2026-11-23T09:30:05Z stdout F a CRI line",
        b'["log", "x"]',
        b'{"stream":"stdout","time":"2026-11-23T09:30:05Z"}',
        b'{"log":42,"stream":"stdout"}',
        b'{"log":"x\\n","stream":{"name":"stdout"}}',
        b'{"log":"x\\n","stream":"stdout","time":1732354205}',
        b'{"log":"torn\\n","str',
        b'{"log":"caf\xe9\\n","stream":"stdout"}',  # not UTF-8: docker never writes this
        b"   ",
        b'{"log":"\\n","stream":"stdout","time":"2026-11-23T09:30:05Z"}',  # empty output
        b'{"log":"no stream or time\\n"}',
    ]
    events, errors = decode("docker", lines)
    assert events == [
        {"message": "ok", "stream": "stdout", "time": "2026-11-23T09:30:05Z"},
        {"message": "no stream or time"},
    ]
    assert errors == {"bad_docker": 8, "empty": 2}
    assert len(events) + sum(errors.values()) == len(lines)


def test_flush_hands_on_output_that_never_got_its_newline() -> None:
    # A container that printed "bye" without a newline and exited; the file then rotated.
    clock = stamps()
    run = Run("docker")
    run.feed(docker("stdout", b'{"event": "shutdown", "ok": true}', clock, newline=False))
    run.feed(docker("stderr", b"e" * 20_000, clock, newline=False))
    assert run.events == []
    flushed = run.flush()
    assert flushed[0]["event"] == "shutdown" and flushed[0]["ok"] is True
    assert flushed[1] == {"message": "e" * 20_000, "stream": "stderr", "time": flushed[1]["time"]}
    assert run.flush() == []
    assert run.errors == {}


def test_inner_format_logfmt() -> None:
    clock = stamps()
    lines = docker("stdout", b'level=warn msg="rate limited" retry_after=30', clock)
    events, errors = decode("docker", lines, inner_format="logfmt")
    assert errors == {}
    assert events == [
        {
            "level": "warn",
            "msg": "rate limited",
            "retry_after": "30",
            "stream": "stdout",
            "time": "2026-11-23T09:30:05.123456789Z",
        }
    ]
