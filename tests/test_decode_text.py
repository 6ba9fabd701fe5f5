"""Text formats: `regex` over the stdlib logging text format, `logfmt` over structlog's
LogfmtRenderer and the corner cases of logfmt quoting."""

from __future__ import annotations

import io
import logging

import orjson
import structlog

from tests.decode_support import decode, text_lines

TEXT_FORMAT = (
    "%(asctime)s [%(levelname)s] [req:%(request_id)s] [session:%(session_id)s] "
    "%(name)s - %(message)s"
)
TEXT_REGEX = (
    r"^(?P<time>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) \[(?P<level>[A-Z]+)\] "
    r"\[req:(?P<request_id>[^\]]*)\] \[session:(?P<session_id>[^\]]*)\] "
    r"(?P<logger>\S+) - (?P<message>.*)$"
)


class _Context(logging.Filter):
    """Gives every record the request/session ids the format needs, as chatbots do."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.__dict__.setdefault("request_id", "-")
        record.__dict__.setdefault("session_id", "-")
        return True


def stdlib_text_output() -> tuple[bytes, int]:
    """The chatbot's text log, and how many lines its traceback took."""
    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    handler.addFilter(_Context())
    logger = logging.getLogger("chatbot.handlers")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    ids = {"request_id": "9f1c2a", "session_id": "sess-0042"}
    try:
        logger.info("conversation started [channel=web] 🤖", extra=ids)
        logger.warning("LLM latency 18250 ms", extra=ids)
        logger.info("no context here")
        before = buf.tell()
        try:
            raise TimeoutError("upstream model timed out")
        except TimeoutError:
            logger.exception("reply failed", extra=ids)
        traceback_lines = buf.getvalue()[before:].count("\n") - 1
        logger.debug("done", extra={"request_id": "", "session_id": "sess-0042"})
    finally:
        logger.removeHandler(handler)
    return buf.getvalue().encode(), traceback_lines


def test_stdlib_text_log_parsed_by_a_regex_source() -> None:
    text, traceback_lines = stdlib_text_output()
    lines = text_lines(text.decode())
    events, errors = decode("regex", lines, regex=TEXT_REGEX)

    assert traceback_lines >= 3
    # Traceback lines do not match the line format: each is counted, none is an event.
    assert errors == {"no_match": traceback_lines}
    assert [(e["level"], e["message"]) for e in events] == [
        ("INFO", "conversation started [channel=web] 🤖"),
        ("WARNING", "LLM latency 18250 ms"),
        ("INFO", "no context here"),
        ("ERROR", "reply failed"),
        ("DEBUG", "done"),
    ]
    first = events[0]
    assert first["request_id"] == "9f1c2a" and first["session_id"] == "sess-0042"
    assert first["logger"] == "chatbot.handlers"
    assert events[2]["request_id"] == "-"
    assert events[4]["request_id"] == ""  # matched empty: present, not left out
    assert all(len(e) == 6 for e in events)


def test_regex_groups_that_did_not_take_part_are_left_out() -> None:
    regex = r"^(?P<level>\w+) (?P<msg>[^|]*?)(?: \| user=(?P<user>\S+))?$"
    events, errors = decode("regex", [b"INFO hello | user=ana", b"INFO hello"], regex=regex)
    assert errors == {}
    assert events == [
        {"level": "INFO", "msg": "hello", "user": "ana"},
        {"level": "INFO", "msg": "hello"},
    ]


def test_regex_text_invalid_utf8_is_replaced_not_counted_and_blank_lines_are_empty() -> None:
    lines = [
        b"2026-11-23 09:30:05,123 [INFO] [req:a] [session:b] bot - caf\xe9 ok\r",
        b"   ",
        b"random text",
    ]
    events, errors = decode("regex", lines, regex=TEXT_REGEX)
    assert [e["message"] for e in events] == ["caf\ufffd ok"]
    assert errors == {"empty": 1, "no_match": 1}


def structlog_logfmt_output() -> str:
    buf = io.StringIO()
    log = structlog.wrap_logger(
        structlog.PrintLogger(file=buf),
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.LogfmtRenderer(key_order=["level", "event"]),
        ],
    )
    log.info("http_request", route="/api/chat", status_code=200, duration_ms=12.5, cached=True)
    log.warning("auth_failure", reason="bad token", user=None, retry=False)
    log.info("user_message", text='he said "hi"\nthen left', path="C:\\tmp\\x y", eq="a=b")
    return buf.getvalue()


def test_structlog_logfmt_renderer_lines_become_events_of_strings() -> None:
    events, errors = decode("logfmt", text_lines(structlog_logfmt_output()))
    assert errors == {}
    assert events == [
        {
            "level": "info",
            "event": "http_request",
            "route": "/api/chat",
            "status_code": "200",  # numbers stay strings; extract converts
            "duration_ms": "12.5",
            "cached": True,  # structlog writes True as a bare flag
        },
        {
            "level": "warning",
            "event": "auth_failure",
            "reason": "bad token",
            "user": "",
            "retry": "false",
        },
        {
            "level": "info",
            "event": "user_message",
            "text": 'he said "hi"\nthen left',
            "path": "C:\\tmp\\x y",
            "eq": "a=b",
        },
    ]


def test_logfmt_quoting_escapes_and_leniency() -> None:
    lines = [
        rb'a=1 a=2 b="x\ty" c= d e="\u00e9\ud83e\udd16" f="\ud800 lone" g="\q kept"',
        rb'msg="unterminated quote runs to the end',
        b'path=/a\\b  spaced="two  spaces"\r',
        b"level=info msg=caf\xe9",
        b"Traceback (most recent call last):",
        b"   ",
        b"== ==",
    ]
    events, errors = decode("logfmt", lines)
    assert events == [
        {
            "a": "2",
            "b": "x\ty",
            "c": "",
            "d": True,
            "e": "é🤖",
            "f": "\ufffd lone",
            "g": "\\q kept",
        },
        {"msg": "unterminated quote runs to the end"},
        {"path": "/a\\b", "spaced": "two  spaces"},
        {"level": "info", "msg": "caf\ufffd"},
    ]
    assert errors == {"not_logfmt": 2, "empty": 1}
    for event in events:
        orjson.dumps(event)  # later stages can always encode what the decoder gives
