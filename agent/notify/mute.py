"""The mute stage: which alerts are left out of notifications, and by what.

Alertmanager's notify pipeline runs, for every flush of an aggregation group, a MuteStage
with the inhibitor and then a MuteStage with the silencer before its DedupStage: a muted
alert is dropped from the flush before anything decides what is new, so it is neither
sent firing nor resolved. `MuteStage` is that pair. Each muter answers, for a label set
and a time, the ids of whatever mutes it: silence ids for the silencer, fingerprints of
the inhibiting alerts for the inhibitor (Alertmanager's `silencedBy` and `inhibitedBy`).

The inhibitor (inhibit.py) is consulted first, as Alertmanager's pipeline does, so an
alert both inhibited and silenced counts as inhibited. Either may be absent: `replay`
has inhibition but no silences (they are the live agent's state).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from agent.notify.silences import Silences


class Muter(Protocol):
    def mutes(self, labels: dict[str, str], now: float) -> list[str]:
        """Ids of what mutes an alert with these labels at `now`; empty: not muted."""
        ...

    def next_end(self, now: float) -> float | None:
        """The next time after `now` at which an alert muted now may stop being muted
        (a silence's end), so the notifier can look again then; None if unknown."""
        ...


@dataclass(frozen=True, slots=True)
class MuteStatus:
    """Alertmanager's AlertStatus: `suppressed` when silenced or inhibited."""

    silenced_by: list[str] = field(default_factory=list)
    inhibited_by: list[str] = field(default_factory=list)

    @property
    def reason(self) -> str | None:
        """What the pipeline drops the alert for: `inhibition` before `silence`."""
        if self.inhibited_by:
            return "inhibition"
        if self.silenced_by:
            return "silence"
        return None

    @property
    def state(self) -> str:
        return "suppressed" if self.reason else "active"


class MuteStage:
    def __init__(self, silencer: Silences | None = None, inhibitor: Muter | None = None) -> None:
        self.silencer: Muter | None = silencer
        self.inhibitor = inhibitor
        """Replaced on every (re)build of the dispatcher: it reads that dispatcher's alerts."""

    def status(self, labels: dict[str, str], now: float) -> MuteStatus:
        inhibited = self.inhibitor.mutes(labels, now) if self.inhibitor is not None else []
        silenced = self.silencer.mutes(labels, now) if self.silencer is not None else []
        return MuteStatus(silenced_by=silenced, inhibited_by=inhibited)

    def reason(self, labels: dict[str, str], now: float) -> str | None:
        """Why the alert is muted (`inhibition`, `silence`), or None: it is notified."""
        if self.inhibitor is not None and self.inhibitor.mutes(labels, now):
            return "inhibition"
        if self.silencer is not None and self.silencer.mutes(labels, now):
            return "silence"
        return None

    def next_end(self, now: float) -> float | None:
        ends = [m.next_end(now) for m in (self.silencer, self.inhibitor) if m is not None]
        return min((t for t in ends if t is not None), default=None)
