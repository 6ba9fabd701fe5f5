"""A Python app that logs with `logging`, tracebacks included, to a real file.

    python tests/multiline/pyapp.py LOG EXPECTED [--rounds N] [--rotate-bytes B] [--pause S]

Each round logs the same records: plain lines, `logger.exception()` after explicitly and
implicitly chained exceptions, an exception group, an exception of a class of its own, a
warning with `stack_info=True` and an error without a traceback. EXPECTED gets one JSON
line per record, written from what the app did (the exception it caught, the name Python
prints for its class), never from the log: {"level", "message", "exception_type",
"exception_message"}. With --rotate-bytes the file rotates (RotatingFileHandler) while
the app writes, never inside a record; --pause sleeps that long after each round.
"""

from __future__ import annotations

import argparse
import json
import logging
import logging.handlers
import time
import urllib.error

FORMAT = "%(asctime)s [%(levelname)s] %(name)s - %(message)s"


class BotError(Exception):
    pass


def printed_name(exc: BaseException) -> str:
    """The exception's class as Python's traceback prints it."""
    cls = type(exc)
    if cls.__module__ in ("__main__", "builtins"):
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


def llm_call() -> None:
    try:
        raise TimeoutError("timed out")
    except TimeoutError as exc:
        raise RuntimeError("LLM call failed") from exc


def parse_reply() -> None:
    try:
        {}["choices"]
    except KeyError:
        json.loads("{")


def crm_lookup() -> None:
    raise urllib.error.URLError("crm-api unreachable")


def handoff() -> None:
    raise BotError("no agent available")


def fan_out() -> None:
    raise ExceptionGroup("tools failed", [ValueError("bad tool"), TypeError("bad args")])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("log")
    ap.add_argument("expected")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--rotate-bytes", type=int, default=0)
    ap.add_argument("--pause", type=float, default=0.0)
    args = ap.parse_args()

    if args.rotate_bytes:
        handler: logging.Handler = logging.handlers.RotatingFileHandler(
            args.log, maxBytes=args.rotate_bytes, backupCount=1000
        )
    else:
        handler = logging.FileHandler(args.log)
    handler.setFormatter(logging.Formatter(FORMAT))
    log = logging.getLogger("support_bot")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    expected = []

    def record(level: str, message: str, exc: BaseException | None = None) -> None:
        expected.append(
            {
                "level": level,
                "message": message,
                "exception_type": None if exc is None else printed_name(exc),
                "exception_message": None if exc is None else str(exc),
            }
        )

    for n in range(args.rounds):
        log.info("request started n=%d", n)
        record("INFO", f"request started n={n}")
        for step in (llm_call, parse_reply, crm_lookup, handoff, fan_out):
            try:
                step()
            except Exception as exc:
                message = f"{step.__name__} failed n={n}"
                log.exception(message)
                record("ERROR", message, exc)
        log.warning("slow reply n=%d", n, stack_info=True)
        record("WARNING", f"slow reply n={n}")
        log.error("gave up n=%d", n)
        record("ERROR", f"gave up n={n}")
        time.sleep(args.pause)
    handler.close()
    with open(args.expected, "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in expected)


if __name__ == "__main__":
    main()
