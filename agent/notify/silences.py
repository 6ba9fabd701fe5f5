"""Silences: Alertmanager's silence/silence.go, pure, and the file that keeps them.

A silence mutes every alert whose labels match all of its matchers while it is active:
pending before `startsAt`, active from `startsAt` until `endsAt`, expired after. The
rules for creating, updating and expiring are Alertmanager 0.25's, so `amtool` and
Grafana see the answers they expect:

- A new silence gets a random UUID; a start in the past becomes now.
- Posting a silence with an existing id updates it in place when that does not rewrite
  history (same matchers; an active silence keeps its start second and does not end in
  the past; a pending one does not start in the past). Otherwise the old silence is
  expired and a new one, with a new id, takes its place. An unknown id is an error.
- Expiring sets `endsAt` to now (a pending silence gets `startsAt` = `endsAt` = now);
  expiring an expired silence does nothing.
- Expired silences are kept for `retention` (Alertmanager's `--data.retention`, 120h) so
  `amtool silence query --expired` shows them, then dropped.

`Silences` never reads the clock: every method takes `now`. `SilenceFile` persists them
in the state directory (`silences.json`), written atomically on every change.
"""

from __future__ import annotations

import contextlib
import logging
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import orjson

from agent.notify.matchers import Matcher, valid_label_name
from agent.support.atomicfile import write_atomic
from agent.support.goformat import go_quote

log = logging.getLogger("chatwatch.notify")

RETENTION = 120 * 3600.0
"""Seconds an expired silence is kept (Alertmanager's default `--data.retention`)."""
FILENAME = "silences.json"
VERSION = 1

State = Literal["pending", "active", "expired"]


class SilenceError(ValueError):
    """A silence Alertmanager would refuse; the message is Alertmanager's."""


class SilenceNotFound(SilenceError):
    def __init__(self) -> None:
        super().__init__("silence not found")


@dataclass(slots=True)
class Silence:
    id: str
    matchers: list[Matcher]
    starts_at: float
    ends_at: float
    created_by: str
    comment: str
    updated_at: float = 0.0

    def state(self, now: float) -> State:
        """Alertmanager's types.CalcSilenceState: active from startsAt until endsAt."""
        if now < self.starts_at:
            return "pending"
        if now < self.ends_at:
            return "active"
        return "expired"

    def matches(self, labels: dict[str, str]) -> bool:
        return all(m.matches(labels) for m in self.matchers)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "matchers": [[m.name, m.op, m.value] for m in self.matchers],
            "starts_at": self.starts_at,
            "ends_at": self.ends_at,
            "created_by": self.created_by,
            "comment": self.comment,
            "updated_at": self.updated_at,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Silence:
        return cls(
            id=str(data["id"]),
            matchers=[Matcher.make(n, op, v) for n, op, v in data["matchers"]],
            starts_at=float(data["starts_at"]),
            ends_at=float(data["ends_at"]),
            created_by=str(data["created_by"]),
            comment=str(data["comment"]),
            updated_at=float(data["updated_at"]),
        )


def silence_matcher(index: int, name: str, op: str, value: str) -> Matcher:
    """Matcher `index` of a silence, or SilenceError worded as Alertmanager's validateMatcher."""
    where = f"silence invalid: invalid label matcher {index}"
    if not valid_label_name(name):
        raise SilenceError(f"{where}: invalid label name {go_quote(name)}")
    if op in ("=~", "!~"):
        try:
            re.compile(value)
        except re.error as exc:
            raise SilenceError(
                f"{where}: invalid regular expression {go_quote(value)}: {exc}"
            ) from None
    return Matcher.make(name, op, value)


def validate(silence: Silence) -> None:
    """Alertmanager's validateSilence, with its messages (amtool shows them)."""
    if not silence.matchers:
        raise SilenceError("silence invalid: at least one matcher required")
    for i, m in enumerate(silence.matchers):
        silence_matcher(i, m.name, m.op, m.value)
    # A silence whose every matcher matches the empty string would mute every alert.
    if all(m.op in ("=", "=~") and m.matches({}) for m in silence.matchers):
        raise SilenceError("silence invalid: at least one matcher must not match the empty string")
    if silence.ends_at < silence.starts_at:
        raise SilenceError("silence invalid: end time must not be before start time")


def _can_update(old: Silence, new: Silence, now: float) -> bool:
    """Alertmanager's canUpdate: the change leaves the history of what was muted intact."""
    if [(m.name, m.op, m.value) for m in old.matchers] != [
        (m.name, m.op, m.value) for m in new.matchers
    ]:
        return False
    state = old.state(now)
    if state == "active":
        # Compared to the second, as Alertmanager 0.25 does: a client that echoes the
        # start it was shown (in milliseconds) may update the silence.
        return int(new.starts_at) == int(old.starts_at) and new.ends_at >= now
    if state == "pending":
        return new.starts_at >= now
    return False


class Silences:
    """Every silence of one agent, by id."""

    def __init__(self, retention: float = RETENTION) -> None:
        self.retention = retention
        self.by_id: dict[str, Silence] = {}
        self.version = 0
        """Bumped on every change; lets readers notice a change cheaply."""

    def set(self, silence: Silence, now: float) -> str:
        """Create (empty id) or update a silence; returns its id, new if it was replaced.

        Raises SilenceNotFound for an unknown id and SilenceError for an invalid silence;
        nothing changes then."""
        validate(silence)
        old = self.by_id.get(silence.id) if silence.id else None
        if silence.id and old is None:
            raise SilenceNotFound()
        if old is not None and _can_update(old, silence, now):
            silence.updated_at = now
            self.by_id[silence.id] = silence
            self.version += 1
            return silence.id
        if old is not None and old.state(now) != "expired":
            self._expire(old, now)
        silence.id = str(uuid.uuid4())
        silence.starts_at = max(silence.starts_at, now)
        silence.updated_at = now
        self.by_id[silence.id] = silence
        self.version += 1
        return silence.id

    def expire(self, silence_id: str, now: float) -> None:
        """End a silence now. Raises SilenceNotFound; an expired silence stays as it is."""
        silence = self.by_id.get(silence_id)
        if silence is None:
            raise SilenceNotFound()
        if silence.state(now) != "expired":
            self._expire(silence, now)
            self.version += 1

    def _expire(self, silence: Silence, now: float) -> None:
        if silence.state(now) == "pending":
            silence.starts_at = now
        silence.ends_at = now
        silence.updated_at = now

    def get(self, silence_id: str) -> Silence | None:
        return self.by_id.get(silence_id)

    def all(self) -> list[Silence]:
        return list(self.by_id.values())

    def mutes(self, labels: dict[str, str], now: float) -> list[str]:
        """Ids of the active silences that match these labels, sorted (silencedBy)."""
        return sorted(
            s.id for s in self.by_id.values() if s.state(now) == "active" and s.matches(labels)
        )

    def next_end(self, now: float) -> float | None:
        """When the next active or pending silence ends: an alert it mutes may need to be
        notified then."""
        return min((s.ends_at for s in self.by_id.values() if s.ends_at > now), default=None)

    def gc(self, now: float) -> int:
        """Drop silences expired longer than `retention` ago; returns how many."""
        gone = [i for i, s in self.by_id.items() if s.ends_at + self.retention <= now]
        for i in gone:
            del self.by_id[i]
        if gone:
            self.version += 1
        return len(gone)

    def to_json(self) -> list[dict[str, Any]]:
        return [s.to_json() for s in self.by_id.values()]

    def restore(self, data: list[dict[str, Any]], now: float) -> None:
        for item in data:
            silence = Silence.from_json(item)
            self.by_id[silence.id] = silence
        self.gc(now)
        self.version += 1


class SilenceFile:
    """`silences.json` in the state directory: written whole and atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> list[dict[str, Any]]:
        """The saved silences; none when there is no file or it cannot be used (a file
        that cannot be parsed is kept aside as `.unreadable` and logged)."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return []
        except OSError as exc:
            log.error("cannot read silences", extra={"path": str(self.path), "error": exc.strerror})
            return []
        try:
            data = orjson.loads(raw)
            if not isinstance(data, dict) or data.get("version") != VERSION:
                raise ValueError("unknown version")
            silences = data["silences"]
            for item in silences:
                Silence.from_json(item)
        except (ValueError, KeyError, TypeError):
            aside = self.path.with_suffix(".unreadable")
            with contextlib.suppress(OSError):
                self.path.replace(aside)
            log.error(
                "silences are not readable; starting without (kept aside)",
                extra={"path": str(aside)},
            )
            return []
        result: list[dict[str, Any]] = silences
        return result

    def save(self, silences: Silences) -> None:
        """Raises OSError with the old file untouched."""
        data = {"version": VERSION, "silences": silences.to_json()}
        write_atomic(self.path, orjson.dumps(data), 0o600)
