"""`format: json` over what real JSON logging libraries write, and every reason it counts."""

from __future__ import annotations

import io
import logging
import re

import structlog
from pythonjsonlogger.json import JsonFormatter

from tests.decode_support import Run, decode, text_lines

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z$")


def structlog_output() -> str:
    buf = io.StringIO()
    log = structlog.wrap_logger(
        structlog.PrintLogger(file=buf),
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
    )
    log = log.bind(service="chatbot", session_id="sess-00042")
    log.info("http_request", route="/api/chat", status_code=200, duration_ms=123.4)
    log.info("llm_call", model="gpt-4o-mini", tokens_in=812, tokens_out=97, cost_usd=0.000214)
    log.info("user_message", text='héllo 🤖, "quoted"\nsecond line', order_id="00123")
    log.warning("auth_failure", reason="expired", usage={"ok": True, "retries": None})
    try:
        raise ValueError("upstream said no")
    except ValueError:
        log.exception("llm_error", model="gpt-4o")
    return buf.getvalue()


def test_structlog_json_renderer_lines_become_events_with_their_json_types() -> None:
    events, errors = decode("json", text_lines(structlog_output()))

    assert errors == {}
    assert [e["event"] for e in events] == [
        "http_request",
        "llm_call",
        "user_message",
        "auth_failure",
        "llm_error",
    ]
    for event in events:
        assert ISO_UTC.match(event.pop("timestamp")), event
        assert event.pop("service") == "chatbot"
        assert event.pop("session_id") == "sess-00042"
    http, llm, message, auth, error = events
    assert http == {
        "event": "http_request",
        "level": "info",
        "route": "/api/chat",
        "status_code": 200,
        "duration_ms": 123.4,
    }
    assert type(http["status_code"]) is int
    assert llm["tokens_in"] == 812 and llm["cost_usd"] == 0.000214
    # json.dumps escapes non-ASCII (surrogate pairs for the emoji): decoded back exactly.
    assert message["text"] == 'héllo 🤖, "quoted"\nsecond line'
    # A number inside a string stays a string: the decoder never guesses types.
    assert message["order_id"] == "00123"
    assert auth["level"] == "warning"
    assert auth["usage"] == {"ok": True, "retries": None}
    assert error["level"] == "error"
    assert "ValueError: upstream said no" in error["exception"]
    assert error["exception"].startswith("Traceback (most recent call last):")


def python_json_logger_output() -> str:
    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logger = logging.getLogger("chatbot.test_decode_json")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        logger.info(
            "request done",
            extra={"event": "http_request", "route": "/api/chat", "status_code": 503},
        )
        logger.warning("slow model", extra={"model": "gpt-4o", "latency_ms": 18250.5})
        try:
            _ = {"present": 1}["missing"]
        except KeyError:
            logger.error("lookup failed", exc_info=True, extra={"event": "error"})
    finally:
        logger.removeHandler(handler)
    return buf.getvalue()


def test_python_json_logger_formatter_lines_become_events() -> None:
    events, errors = decode("json", text_lines(python_json_logger_output()))

    assert errors == {}
    assert len(events) == 3
    request, slow, failed = events
    assert request["message"] == "request done"
    assert request["levelname"] == "INFO"
    assert request["name"] == "chatbot.test_decode_json"
    assert request["event"] == "http_request"
    assert request["status_code"] == 503
    assert re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}$", request["asctime"])
    assert slow["latency_ms"] == 18250.5 and slow["levelname"] == "WARNING"
    assert failed["levelname"] == "ERROR"
    assert "KeyError: 'missing'" in failed["exc_info"]


def test_every_line_that_is_no_event_is_counted_once_under_its_reason() -> None:
    lines = [
        b'\xef\xbb\xbf{"event": "first", "n": 1}',  # BOM on the first line (Windows editors)
        b'{"event": "http_request", "status_code": 200}',
        b"Starting chatbot on port 8080...",  # a print() among the JSON lines
        b'Traceback (most recent call last):  File "app.py", line 3',
        b'{"event": "http_req',  # a torn line: the writer died mid-line
        b"[1, 2, 3]",
        b'"just a string"',
        b"42",
        b"null",
        b'{"event": "user_message", "text": "caf\xe9"}',  # latin-1 bytes in a JSON line
        b"\xff\xfe\x00garbage",
        b"   \t ",
        b"",
        b'{"event": "http_request", "status_code": 500}',
        b'  {"event": "padded"}  ',
    ]
    events, errors = decode("json", lines)

    assert [e["event"] for e in events] == ["first", "http_request", "http_request", "padded"]
    assert errors == {"not_json": 3, "not_object": 4, "invalid_utf8": 2, "empty": 2}
    assert len(events) + sum(errors.values()) == len(lines)


def test_json_is_stateless_so_batch_boundaries_do_not_matter() -> None:
    lines = [*text_lines(structlog_output() + python_json_logger_output()), b"oops", b"[]"]
    whole, whole_errors = decode("json", lines)
    run = Run("json")
    for line in lines:
        run.feed([line])
    assert run.flush() == []
    assert run.events == whole
    assert run.errors == whole_errors == {"not_json": 1, "not_object": 1}
