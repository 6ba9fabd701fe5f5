"""The in-memory TSDB the rule engine reads: recent samples of the series rules can read.

Every `evaluation_interval` the pipeline appends one snapshot of the store, keeping only
the series some loaded rule can select (`Interest`, from every selector of every rule;
none with no rules). Timestamps are integer milliseconds, as in Prometheus, so range
arithmetic is exact; everything is trimmed to `retention` seconds. A series that was in
the previous snapshot and is missing from this one gets Prometheus' staleness marker, so
instant selectors stop returning it at once instead of 5 minutes later.

A series of the snapshots is a `RunSeries`: its values as runs (a value and the snapshot
it first appeared in) over the snapshot times kept once (`Grid`), so a snapshot writes
only the series that changed, yet each series still has a sample at every snapshot, as
with one Prometheus scrape per evaluation. Single samples (rule results, rule unit tests)
go into a plain `Series` of explicit arrays; both read the same through `ts` and `vals`,
and the hot readers (instant selectors, `rate()` and friends) read the runs directly.

Beside the samples each series keeps the timestamps of its "irregular" samples (staleness
markers and counter resets), usually none. That tells in O(1) whether a window needs the
slow path in `rate()` and friends, which keeps evaluation over 10k series fast without
changing a single bit of the result.
"""

from __future__ import annotations

import struct
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import chain, repeat
from math import copysign
from operator import ne, sub
from typing import Any, Literal

from agent.support.goregexp import compile_anchored

SeriesKey = tuple[tuple[str, str], ...]

STALE_BITS = 0x7FF0000000000002
"""Prometheus' staleness marker: a NaN with this exact bit pattern (value.StaleNaN)."""
_STALE_BYTES = struct.pack("<Q", STALE_BITS)
STALE_NAN: float = struct.unpack("<d", _STALE_BYTES)[0]
_pack = struct.Struct("<d").pack

BYTES_PER_SAMPLE = 16
"""What a sample costs in a series' arrays: an int64 millisecond timestamp and a float64."""


def is_stale(value: float) -> bool:
    """Whether `value` is the staleness marker (and not just any NaN)."""
    return value != value and _pack(value) == _STALE_BYTES


MatchOp = Literal["=", "!=", "=~", "!~"]


@dataclass(frozen=True, slots=True)
class Matcher:
    """A label matcher as in `name="value"`; regexes are anchored as in Prometheus."""

    name: str
    op: MatchOp
    value: str

    def compile(self) -> _CompiledMatcher:
        return _CompiledMatcher(self)


class _CompiledMatcher:
    __slots__ = ("name", "op", "regex", "value")

    def __init__(self, m: Matcher) -> None:
        self.name = m.name
        self.op = m.op
        self.value = m.value
        # Go's regexp, anchored as Prometheus anchors it (`^(?:v)$`), translated to Python.
        self.regex = compile_anchored(m.value) if m.op in ("=~", "!~") else None

    def matches(self, value: str) -> bool:
        op = self.op
        if op == "=":
            return value == self.value
        if op == "!=":
            return value != self.value
        assert self.regex is not None
        hit = self.regex.match(value) is not None
        return hit if op == "=~" else not hit


_NONE, _SOME, _ALL = 0, 1, 2


class Interest:
    """Which series the loaded rules can select: the history keeps only those.

    Built from the matchers of every selector of every rule (`Expr.selectors`, range
    selectors and those inside subqueries included). Most selectors name their metric, so
    the answer is usually known per metric name (`wants_name`) and a metric no rule reads
    is never copied at all; selectors with other matchers, or without a fixed name
    (`{__name__=~"http_.*"}`, `{job="chatbot"}`), are checked per series (`wants`).
    """

    def __init__(self, selectors: Iterable[Sequence[Matcher]]) -> None:
        self._named: dict[str, list[list[_CompiledMatcher]]] = {}
        self._unnamed: list[tuple[list[_CompiledMatcher], list[_CompiledMatcher]]] = []
        for matchers in selectors:
            name = next(
                (m.value for m in matchers if m.name == "__name__" and m.op == "=" and m.value),
                None,
            )
            if name is not None:
                rest = list(matchers)
                rest.remove(Matcher("__name__", "=", name))
                self._named.setdefault(name, []).append([m.compile() for m in rest])
            else:
                by_name = [m.compile() for m in matchers if m.name == "__name__"]
                others = [m.compile() for m in matchers if m.name != "__name__"]
                self._unnamed.append((by_name, others))
        self._scopes: dict[str, int] = {}
        self._some: dict[str, list[list[_CompiledMatcher]]] = {}
        self._verdicts: dict[SeriesKey, bool] = {}

    def _scope(self, name: str) -> int:
        """Whether a rule can read all, some or none of the series named `name`."""
        scope = self._scopes.get(name)
        if scope is not None:
            return scope
        candidates = list(self._named.get(name, ()))
        for by_name, others in self._unnamed:
            if all(m.matches(name) for m in by_name):
                candidates.append(others)
        if not candidates:
            scope = _NONE
        elif any(not rest for rest in candidates):
            scope = _ALL
        else:
            scope = _SOME
            self._some[name] = candidates
        self._scopes[name] = scope
        return scope

    def wants_name(self, name: str) -> bool:
        """Whether a rule can read any series named `name`."""
        return self._scope(name) != _NONE

    def wants(self, key: SeriesKey) -> bool:
        """Whether a rule can read the series `key` (remembered where it takes matching:
        the same series come with every snapshot)."""
        verdict = self._verdicts.get(key)
        if verdict is not None:
            return verdict
        labels = dict(key)
        name = labels.get("__name__", "")
        scope = self._scope(name)
        if scope != _SOME:
            return scope == _ALL
        verdict = any(
            all(m.matches(labels.get(m.name, "")) for m in rest) for rest in self._some[name]
        )
        if len(self._verdicts) >= 1_000_000:
            self._verdicts.clear()  # series come and go: bound what is remembered
        self._verdicts[key] = verdict
        return verdict

    def forget_series(self) -> None:
        """Drop the remembered verdicts (of series that may be gone by now)."""
        self._verdicts.clear()


EVERYTHING = Interest([[]])
"""Keep every series (rule unit tests, tools that build a history by hand)."""


class Series:
    """One series' samples: timestamps in ms, values, and where the irregular ones are."""

    __slots__ = (
        "irregular",
        "key",
        "key_noname",
        "labels",
        "prev",
        "ts",
        "vals",
    )

    def __init__(self, key: SeriesKey) -> None:
        self.key = key
        self.labels = dict(key)
        self.key_noname: SeriesKey = tuple(p for p in key if p[0] != "__name__")
        self.ts = array("q")
        self.vals = array("d")
        # Timestamps of staleness markers and of values lower than the value before
        # (counter resets), in order; trimmed with the samples.
        self.irregular: list[int] = []
        self.prev = float("nan")  # last non-stale value, for reset detection

    def add(self, t_ms: int, value: float) -> None:
        ts = self.ts
        if ts and t_ms <= ts[-1]:
            if t_ms < ts[-1]:
                return  # out of order: Prometheus rejects it too
            self._drop_last()
        if value != value and _pack(value) == _STALE_BYTES:
            self.irregular.append(t_ms)
        else:
            if value < self.prev:
                self.irregular.append(t_ms)
            self.prev = value
        ts.append(t_ms)
        self.vals.append(value)

    def _drop_last(self) -> None:
        """Same timestamp again: the newer value wins (a recording rule re-evaluated)."""
        t = self.ts.pop()
        self.vals.pop()
        if self.irregular and self.irregular[-1] == t:
            self.irregular.pop()
        self.prev = float("nan")
        for v in reversed(self.vals):
            if not is_stale(v):
                self.prev = v
                break

    def trim(self, min_ms: int) -> None:
        """Drop samples older than `min_ms`."""
        ts = self.ts
        if not ts or ts[0] >= min_ms:
            return
        i = bisect_left(ts, min_ms)
        del ts[:i]
        del self.vals[:i]
        if self.irregular:
            del self.irregular[: bisect_left(self.irregular, min_ms)]

    def regular(self, lo: int, hi: int) -> bool:
        """Whether samples lo..hi-1 hold no staleness marker and no drop between them."""
        irregular = self.irregular
        if irregular:
            i = bisect_right(irregular, self.ts[lo])  # a drop *at* lo is outside the window
            if i < len(irregular) and irregular[i] <= self.ts[hi - 1]:
                return False
            v = self.vals[lo]
            if v != v and _pack(v) == _STALE_BYTES:
                return False
        return True

    def last_is_stale(self) -> bool:
        return bool(self.vals) and is_stale(self.vals[-1])

    def truncate(self, from_ms: int) -> None:
        """Drop samples at or after `from_ms` (a subquery's steps that must be recomputed)."""
        ts = self.ts
        if not ts or ts[-1] < from_ms:
            return
        i = bisect_left(ts, from_ms)
        del ts[i:]
        del self.vals[i:]
        if self.irregular:
            del self.irregular[bisect_left(self.irregular, from_ms) :]
        self.prev = float("nan")
        for v in reversed(self.vals):
            if not is_stale(v):
                self.prev = v
                break


class Grid:
    """The times of the snapshots (ms), shared by the series that come from them.

    Snapshot `i` (counted from the first, never renumbered) was taken at `ts[i - base]`;
    trimming the oldest raises `base`."""

    __slots__ = ("base", "built", "ts")

    def __init__(self) -> None:
        self.ts = array("q")
        self.base = 0
        self.built: list[RunSeries] = []
        """Series read as arrays since the last snapshot (`RunSeries.ts`): dropped at the
        next one, so at rest only the runs take memory."""

    @property
    def last(self) -> int:
        """The newest snapshot's number."""
        return self.base + len(self.ts) - 1


def _same(a: float, b: float) -> bool:
    """The same float64, bit for bit as far as a sample goes (0.0 and -0.0 differ)."""
    return a == b and (a != 0.0 or copysign(1.0, a) == copysign(1.0, b))


class RunSeries(Series):
    """A series of the snapshots, held as runs: a value and the snapshot it was first seen
    in. It has a sample at every snapshot from then on, as in Prometheus with one scrape
    per evaluation interval, but a snapshot that leaves it unchanged writes nothing; the
    last run lasts until the newest snapshot. A staleness marker (the series left the
    snapshots) is a run of one snapshot; the next run, if any, starts when it returns.

    `ts` and `vals` give the same arrays an explicit `Series` would hold (built when read,
    kept until the next snapshot); the hot readers (`latest`, `span`) work on the runs.
    `head` is a sample before the first run: the 0 of a counter created between two
    snapshots."""

    __slots__ = ("_built", "grid", "head", "stale_runs", "starts", "values")

    def __init__(self, key: SeriesKey, grid: Grid) -> None:  # no Series.__init__: no arrays
        self.key = key
        self.key_noname = tuple(p for p in key if p[0] != "__name__")
        self.irregular = []
        self.prev = float("nan")
        self.grid = grid
        self.starts = array("q")
        self.values = array("d")
        self.stale_runs = 0
        self.head: tuple[int, float] | None = None
        self._built: tuple[array[int], array[float]] | None = None

    def put(self, tick: int, t_ms: int, value: float) -> None:
        """A new run from snapshot `tick` (taken at `t_ms`) on."""
        if value != value and _pack(value) == _STALE_BYTES:
            self.irregular.append(t_ms)
            self.stale_runs += 1
        else:
            if value < self.prev:
                self.irregular.append(t_ms)
            self.prev = value
        self.starts.append(tick)
        self.values.append(value)

    def is_open(self) -> bool:
        """Whether the last run lasts until the newest snapshot (not a staleness marker)."""
        values = self.values
        return bool(values) and not is_stale(values[-1])

    @property
    def labels(self) -> dict[str, str]:
        """Built when asked (a regex matcher, on a new selection): not kept per series."""
        return dict(self.key)

    @labels.setter
    def labels(self, value: dict[str, str]) -> None:
        raise AttributeError("the labels of a RunSeries are its key")

    # -- read as explicit samples --------------------------------------------------------

    @property
    def ts(self) -> array[int]:
        return self._arrays()[0]

    @ts.setter
    def ts(self, value: array[int]) -> None:
        raise AttributeError("a RunSeries is written with put()")

    @property
    def vals(self) -> array[float]:
        return self._arrays()[1]

    @vals.setter
    def vals(self, value: array[float]) -> None:
        raise AttributeError("a RunSeries is written with put()")

    def _arrays(self) -> tuple[array[int], array[float]]:
        # Whatever changes the runs or the grid drops what was built (History.append and
        # sweep, through forget_arrays and cut), so a built pair is always current.
        built = self._built
        if built is None:
            built = self._built = self._build()
            self.grid.built.append(self)
        return built

    def forget_arrays(self) -> None:
        self._built = None

    def _build(self) -> tuple[array[int], array[float]]:
        grid = self.grid
        gts, base, last = grid.ts, grid.base, grid.last
        starts, values = self.starts, self.values
        ts: array[int] = array("q")
        vals: array[float] = array("d")
        if self.head is not None:
            ts.append(self.head[0])
            vals.append(self.head[1])
        n = len(starts)
        if not n:
            return ts, vals
        if not self.stale_runs:  # one stretch of snapshots: the first run to the newest
            first = starts[0]
            ts.extend(gts[first - base : last + 1 - base])
            if last - first + 1 == n:  # a new value at every snapshot
                vals.extend(values)
                return ts, vals
            ends = [*starts[1:], last + 1]
            if n <= 8:
                for v, a, b in zip(values, starts, ends, strict=True):
                    vals.extend(array("d", (v,)) * (b - a))
            else:
                vals.extend(chain.from_iterable(map(repeat, values, map(sub, ends, starts))))
            return ts, vals
        for j in range(n):
            a, v = starts[j], values[j]
            if v != v and _pack(v) == _STALE_BYTES:
                b = a + 1
            else:
                b = starts[j + 1] if j + 1 < n else last + 1
            ts.extend(gts[a - base : b - base])
            vals.extend(array("d", (v,)) * (b - a))
        return ts, vals

    def count(self) -> int:
        """How many samples the series holds (without building them)."""
        starts = self.starts
        n = 0 if self.head is None else 1
        if not starts:
            return n
        if not self.stale_runs:
            return n + self.grid.last - starts[0] + 1
        return n + len(self._build()[0]) - (0 if self.head is None else 1)

    # -- the hot readers -----------------------------------------------------------------

    def latest(self, ref: int, oldest: int) -> float | None:
        """An instant selector's value: the newest sample at or before `ref`, unless it is
        older than `oldest` or a staleness marker."""
        starts = self.starts
        if starts:
            grid = self.grid
            gts = grid.ts
            i = len(gts) - 1 if gts[-1] <= ref else bisect_right(gts, ref) - 1
            if i >= 0:
                tick = i + grid.base
                j = len(starts) - 1
                if starts[j] > tick:
                    j = bisect_right(starts, tick) - 1
                if j >= 0:
                    v = self.values[j]
                    if (v != v and _pack(v) == _STALE_BYTES) or gts[i] < oldest:
                        return None
                    return v
        head = self.head
        if head is not None and oldest <= head[0] <= ref:
            return head[1]
        return None

    def span(
        self, first: int, last: int, start: int, end: int
    ) -> tuple[int, int, int, float, float] | None:
        """For the window [start, end] (ms), which holds snapshots `first`..`last`: the
        series' samples in it as (count, first time, last time, first value, last value),
        when they are plain: no staleness marker, no reset after the first, no `head` in
        the window, and a first value that is a number. None: read `ts` and `vals` instead
        (the general path). A count below 2 comes with zeros."""
        starts = self.starts
        if self.stale_runs or not starts:
            return None
        head = self.head
        if head is not None and start <= head[0] <= end:
            return None
        k = len(starts) - 1
        s0 = starts[0]
        lo = s0 if s0 > first else first
        n = last - lo + 1
        if n < 2:
            return 0, 0, 0, 0.0, 0.0
        values = self.values
        if not k:  # one run: one value all along
            v0 = v1 = values[0]
        else:
            sk = starts[k]
            v1 = values[k] if sk <= last else values[bisect_right(starts, last, 0, k) - 1]
            v0 = values[k] if sk <= lo else values[bisect_right(starts, lo, 0, k) - 1]
        if v0 != v0:
            return None
        grid = self.grid
        gts, base = grid.ts, grid.base
        t0, t1 = gts[lo - base], gts[last - base]
        irregular = self.irregular
        if irregular:
            i = bisect_right(irregular, t0)
            if i < len(irregular) and irregular[i] <= t1:
                return None
        return n, t0, t1, v0, v1

    # -- trimming ------------------------------------------------------------------------

    def cut(self, new_base: int, min_ms: int) -> bool:
        """Drop what is older than snapshot `new_base` (taken at or after `min_ms`) and a
        head older than `min_ms`; whether anything is left."""
        head = self.head
        if head is not None and head[0] < min_ms:
            self.head = None
        if self.irregular:
            del self.irregular[: bisect_left(self.irregular, min_ms)]
        starts, values = self.starts, self.values
        if starts and starts[0] < new_base:
            j = bisect_right(starts, new_base) - 1
            v = values[j]
            stale = v != v and _pack(v) == _STALE_BYTES
            if stale and starts[j] < new_base:
                j += 1  # the marker itself is older: drop it too
            elif not stale:
                if j == len(starts) - 1 and new_base > self.grid.last:
                    j += 1  # the last run, but no snapshot is left in it
                else:
                    starts[j] = new_base
            if j:
                dropped = values[:j]
                self.stale_runs -= sum(1 for v in dropped if v != v and is_stale(v))
                del starts[:j]
                del values[:j]
        self._built = None
        return bool(starts) or self.head is not None


def window(ts: array[int], start: int, end: int) -> tuple[int, int]:
    """Indices [lo, hi) of the timestamps in the closed range [start, end].

    Samples usually arrive at a steady interval, so the positions are guessed from the
    spacing and checked (two comparisons) before falling back to binary search."""
    n = len(ts)
    last = ts[n - 1]
    hi = n if last <= end else bisect_right(ts, end)
    if hi == 0:
        return 0, 0
    first = ts[0]
    if first >= start:
        return 0, hi
    if n > 1:
        g = n - 1 - (last - start) * (n - 1) // (last - first)
        if 0 < g < n and ts[g - 1] < start <= ts[g]:
            return g, hi
        g += 1
        if 0 < g < n and ts[g - 1] < start <= ts[g]:
            return g, hi
    return bisect_left(ts, start, 0, hi), hi


def _by_key(s: Series) -> SeriesKey:
    return s.key


_NOTHING = 2**63
_EVERYTHING = -(2**63)


class History:
    """Recent samples of the series the rules can read, bounded by `retention` seconds."""

    def __init__(self, retention: float, interest: Interest = EVERYTHING) -> None:
        self.retention = retention
        self.interest = interest
        """Which series `append` keeps (`set_interest` changes it)."""
        self._series: dict[SeriesKey, Series] = {}
        # Label index: label name -> label value -> series with that pair; built for a
        # label name when a selector first matches on it with `=` (a label no selector
        # names, a user id, costs no index).
        self._postings: dict[str, dict[str, dict[SeriesKey, Series]]] = {}
        self._snapshot: dict[SeriesKey, Series] = {}
        self._select_cache: dict[tuple[Matcher, ...], list[Series]] = {}
        self._last_sweep_ms: int | None = None
        self._started = False
        self.memo: dict[tuple[str, int], Any] = {}
        """Results of subexpressions at one instant, shared by the rules of a cycle (many
        rules compute the same `rate(x[5m])`). A snapshot clears it; a single sample (a
        recording rule's result, ALERTS) only drops the results that read its metric."""
        self._memo_readers: dict[str, list[tuple[str, int]]] = {}
        self.subqueries: dict[str, Any] = {}
        """Each subquery's results at its steps, kept between evaluations and extended step
        by step (engine.py owns the values; each has a `last_used_ms`, so a sweep drops
        those no rule reads any more)."""
        # The earliest timestamp written in each epoch (an epoch ends when `changes_since`
        # is asked), so cached subquery steps at or after a write are recomputed.
        self._write_floors: list[int] = [_NOTHING]
        self._floors_base = 0
        self._grid = Grid()

    def __len__(self) -> int:
        return len(self._series)

    def sample_count(self) -> int:
        """Samples held (staleness markers included), as explicit or as runs."""
        return sum(
            s.count() if isinstance(s, RunSeries) else len(s.ts) for s in self._series.values()
        )

    def byte_count(self) -> int:
        """What the samples take in arrays: BYTES_PER_SAMPLE per explicit sample or run, and
        the snapshot times once."""
        total = 8 * len(self._grid.ts)
        for s in self._series.values():
            if isinstance(s, RunSeries):
                total += BYTES_PER_SAMPLE * (len(s.starts) + (s.head is not None))
            else:
                total += BYTES_PER_SAMPLE * len(s.ts)
        return total

    # -- writing ---------------------------------------------------------------------

    def append(
        self,
        ts: float,
        samples: Iterable[tuple[SeriesKey, float]],
        created: Iterable[tuple[SeriesKey, float]] = (),
    ) -> None:
        """Add one snapshot taken at `ts`; series missing from it since the last one go stale.

        `created`: counter samples new since the last snapshot, with their creation time.
        Each gets a 0 at that time, as Prometheus does with created timestamps, so that
        `increase()` counts a new label value's first events (without it, three errors of
        a new type read as an increase of two). Not on the first snapshot: what was read
        before it is a backlog whose counting time says nothing about when it happened.
        """
        t_ms = round(ts * 1000)
        self.forget_memo()
        grid = self._grid
        for read in grid.built:
            read.forget_arrays()  # what the last cycle read as arrays: runs are enough at rest
        grid.built.clear()
        if grid.ts and t_ms <= grid.ts[-1]:
            self._append_again(t_ms, samples, created)
            return
        grid.ts.append(t_ms)
        tick = grid.last
        get = self._series.get
        wants = None if self.interest is EVERYTHING else self.interest.wants
        earliest = t_ms
        if self._started:
            for key, created_at in created:
                if get(key) is None and (wants is None or wants(key)):
                    zero_ms = min(round(created_at * 1000), t_ms - 1)
                    fresh = self._create_runs(key)
                    fresh.head = (zero_ms, 0.0)
                    fresh.prev = 0.0
                    earliest = min(earliest, zero_ms)
        self._started = True
        self._wrote(earliest)
        current: dict[SeriesKey, Series] = {}
        for key, value in samples:
            s = get(key)
            if s is None:
                if wants is not None and not wants(key):
                    continue
                s = self._create_runs(key)
            if isinstance(s, RunSeries):
                values = s.values
                if values:
                    last = values[-1]
                    if value == last and (
                        value != 0.0 or copysign(1.0, value) == copysign(1.0, last)
                    ):
                        current[key] = s  # unchanged: the last run goes on, nothing to write
                        continue
                if value == value:  # RunSeries.put inlined for a number: the hot loop
                    if value < s.prev:
                        s.irregular.append(t_ms)
                    s.prev = value
                    s.starts.append(tick)
                    values.append(value)
                else:
                    s.put(tick, t_ms, value)
            else:  # explicit: it changes at most snapshots, or also takes single samples
                times = s.ts
                if value != value or (times and t_ms <= times[-1]):
                    s.add(t_ms, value)  # NaN, staleness marker or not newer: the general path
                else:  # Series.add inlined
                    if value < s.prev:
                        s.irregular.append(t_ms)
                    s.prev = value
                    times.append(t_ms)
                    s.vals.append(value)
            current[key] = s
        previous = self._snapshot
        for key in previous.keys() - current.keys():
            s = previous[key]
            if isinstance(s, RunSeries):
                if s.is_open():
                    s.put(tick, t_ms, STALE_NAN)
            elif not s.last_is_stale():
                s.add(t_ms, STALE_NAN)
        self._snapshot = current
        self._maybe_sweep(t_ms)

    def _append_again(
        self,
        t_ms: int,
        samples: Iterable[tuple[SeriesKey, float]],
        created: Iterable[tuple[SeriesKey, float]],
    ) -> None:
        """A snapshot not after the newest one (the clock went back, or the same instant
        again): it makes no snapshot of its own. Each series it changes takes it as a single
        sample, as `add` would (a newer value at the same time wins, an older time is
        ignored); a series of runs becomes explicit for that."""
        get = self._series.get
        wants = None if self.interest is EVERYTHING else self.interest.wants
        earliest = t_ms
        if self._started:
            for key, created_at in created:
                if get(key) is None and (wants is None or wants(key)):
                    zero_ms = min(round(created_at * 1000), t_ms - 1)
                    self._create(key).add(zero_ms, 0.0)
                    earliest = min(earliest, zero_ms)
        self._started = True
        self._wrote(earliest)
        current: dict[SeriesKey, Series] = {}
        for key, value in samples:
            s = get(key)
            if s is None:
                if wants is not None and not wants(key):
                    continue
                s = self._create(key)
            elif isinstance(s, RunSeries):
                if s.is_open() and (t_ms < self._grid.ts[-1] or _same(value, s.values[-1])):
                    current[key] = s  # older than its last sample, or the same again
                    continue
                s = self._explicit(s)
            s.add(t_ms, value)
            current[key] = s
        previous = self._snapshot
        for key in previous.keys() - current.keys():
            s = previous[key]
            if isinstance(s, RunSeries):
                if not s.is_open():
                    continue
                s = self._explicit(s)
            if not s.last_is_stale():
                s.add(t_ms, STALE_NAN)
        self._snapshot = current
        self._maybe_sweep(t_ms)

    def set_interest(self, interest: Interest) -> None:
        """Keep only what `interest` wants from now on (after a rule reload): series of
        the snapshots no rule reads any more are forgotten; rule results (`add`) stay."""
        self.interest = interest
        if interest is EVERYTHING:
            return
        self.forget_memo()
        for key, s in list(self._snapshot.items()):
            if not interest.wants(key):
                self._remove(s)

    def add(self, key: SeriesKey, ts: float, value: float) -> None:
        """Add a single sample (rule tests, recording rules); `value` may be `STALE_NAN`."""
        t_ms = round(ts * 1000)
        if self.memo:
            for label, name in key:
                if label == "__name__":
                    self._forget_readers(name)
                    break
            else:
                self._forget_readers("")
        s = self._series.get(key)
        if s is None:
            s = self._create(key)
        elif isinstance(s, RunSeries):
            s = self._explicit(s)
        s.add(t_ms, value)
        self._wrote(t_ms)
        self._maybe_sweep(t_ms)

    def _wrote(self, t_ms: int) -> None:
        floors = self._write_floors
        if t_ms < floors[-1]:
            floors[-1] = t_ms

    def changes_since(self, token: int | None) -> tuple[int, int]:
        """The earliest timestamp written since the call that returned `token` (None: since
        ever), and the token for the next call. Results computed from samples up to some
        time T stay valid while nothing is written at or before T."""
        floors = self._write_floors
        i = -1 if token is None else token - self._floors_base
        earliest = _EVERYTHING if i < 0 else min(floors[i:])
        if floors[-1] != _NOTHING:
            floors.append(_NOTHING)  # writes from now on belong to the next caller's epoch
            if len(floors) > 4096:
                del floors[:2048]
                self._floors_base += 2048
        return earliest, self._floors_base + len(floors) - 1

    def remember(self, key: tuple[str, int], names: frozenset[str] | None, value: Any) -> None:
        """Keep a result that read the metrics `names` (None: any metric)."""
        self.memo[key] = value
        for name in names if names is not None else ("",):
            self._memo_readers.setdefault(name, []).append(key)

    def forget_memo(self) -> None:
        self.memo.clear()
        self._memo_readers.clear()

    def _forget_readers(self, name: str) -> None:
        memo = self.memo
        for n in (name, "") if name else ("",):
            for k in self._memo_readers.pop(n, ()):
                memo.pop(k, None)
        if not name:  # a series without a name may match any selector
            self.forget_memo()

    def _create(self, key: SeriesKey) -> Series:
        s = Series(key)
        self._index(s)
        return s

    def _create_runs(self, key: SeriesKey) -> RunSeries:
        s = RunSeries(key, self._grid)
        self._index(s)
        return s

    def _index(self, s: Series) -> None:
        key = s.key
        self._series[key] = s
        postings = self._postings
        for name, value in key:
            by_value = postings.get(name)
            if by_value is not None:
                members = by_value.get(value)
                if members is None:
                    by_value[value] = {key: s}
                else:
                    members[key] = s
        self._select_cache.clear()

    def _explicit(self, s: RunSeries) -> Series:
        """`s` as explicit arrays, in its place: a series of the snapshots that also takes
        single samples (a rule's result under the same name, a snapshot out of step)."""
        e = Series.__new__(Series)
        e.key, e.labels, e.key_noname = s.key, s.labels, s.key_noname
        ts, vals = s._build()
        e.ts, e.vals = ts, vals
        e.irregular, e.prev = s.irregular, s.prev
        s.forget_arrays()
        key = s.key
        self._series[key] = e
        for name, value in key:
            by_value = self._postings.get(name)
            if by_value is not None:
                by_value[value][key] = e
        if key in self._snapshot:
            self._snapshot[key] = e
        self._select_cache.clear()
        return e

    def _remove(self, s: Series) -> None:
        del self._series[s.key]
        self._snapshot.pop(s.key, None)
        for name, value in s.key:
            by_value = self._postings.get(name)
            if by_value is None:
                continue
            members = by_value[value]
            del members[s.key]
            if not members:
                del by_value[value]
        self._select_cache.clear()

    def _adapt(self) -> None:
        """Keep each series of the snapshots in the form that suits it (at a sweep): one
        that changes at most snapshots needs a point per snapshot anyway, and explicit
        arrays read fastest; one that rarely changes is kept as runs."""
        for s in list(self._snapshot.values()):
            if isinstance(s, RunSeries):
                runs = len(s.starts)
                if runs >= 16 and not s.stale_runs and 2 * runs > s.count():
                    self._explicit(s)
                continue
            vals = s.vals
            n = len(vals)
            if n >= 16 and _same(vals[-1], vals[-16]):  # cheap first: unchanged of late
                changes = sum(map(ne, vals[1:], vals[:-1]))
                if 8 * changes < n:
                    self._runs(s)

    def _runs(self, e: Series) -> None:
        """`e` as runs, in its place, when its samples are what runs hold: on the
        snapshot times, one after another but after a staleness marker, up to the newest
        snapshot while it is in the snapshots (a `head` before them). Else it stays."""
        grid = self._grid
        gts, base = grid.ts, grid.base
        ts, vals = e.ts, e.vals
        n = len(ts)
        r = RunSeries(e.key, grid)
        starts, values = r.starts, r.values
        i = 0
        g = bisect_left(gts, ts[0])
        if g >= len(gts) or gts[g] != ts[0]:
            r.head = (ts[0], vals[0])
            i = 1
        tick = -2
        stale = True
        while i < n:
            t, v = ts[i], vals[i]
            g = tick + 1 - base
            if not (0 <= g < len(gts) and gts[g] == t):
                g = bisect_left(gts, t)
                if g >= len(gts) or gts[g] != t:
                    return  # a sample between the snapshots
            if g + base != tick + 1 and not stale and starts:
                return  # a gap with no staleness marker
            was_stale, tick = stale, g + base
            stale = v != v and _pack(v) == _STALE_BYTES
            if was_stale or stale or not _same(v, values[-1]) or not starts:
                starts.append(tick)
                values.append(v)
                r.stale_runs += stale
            i += 1
        if starts and not stale and (tick != grid.last or e.key not in self._snapshot):
            return  # it would run on to the newest snapshot
        r.irregular, r.prev = e.irregular, e.prev
        built_ts, built_vals = r._build()
        if built_ts.tobytes() != ts.tobytes() or built_vals.tobytes() != vals.tobytes():
            return  # not the same samples, bit for bit: keep it as it is
        key = e.key
        self._series[key] = r
        for name, value in key:
            by_value = self._postings.get(name)
            if by_value is not None:
                by_value[value][key] = r
        if key in self._snapshot:
            self._snapshot[key] = r
        self._select_cache.clear()

    def _posting(self, name: str) -> dict[str, dict[SeriesKey, Series]]:
        """The index of label `name`, built on first use and kept up to date from then."""
        by_value = self._postings.get(name)
        if by_value is None:
            by_value = self._postings[name] = {}
            for key, s in self._series.items():
                for label, value in key:
                    if label == name:
                        members = by_value.get(value)
                        if members is None:
                            by_value[value] = {key: s}
                        else:
                            members[key] = s
                        break
        return by_value

    def _maybe_sweep(self, now_ms: int) -> None:
        retention_ms = round(self.retention * 1000)
        every = max(1000, retention_ms // 8)
        if self._last_sweep_ms is not None and now_ms - self._last_sweep_ms < every:
            return
        self._last_sweep_ms = now_ms
        self.sweep(now_ms - retention_ms)

    def sweep(self, min_ms: int) -> None:
        """Trim samples older than `min_ms`; forget series with nothing left."""
        self.forget_memo()
        self.interest.forget_series()
        grid = self._grid
        cut = bisect_left(grid.ts, min_ms)
        new_base = grid.base + cut
        dead: list[Series] = []
        for s in self._series.values():
            if isinstance(s, RunSeries):
                if not s.cut(new_base, min_ms):
                    dead.append(s)
                continue
            ts = s.ts
            if not ts or ts[-1] < min_ms:
                dead.append(s)
            elif ts[0] < min_ms:
                s.trim(min_ms)
        if cut:
            del grid.ts[:cut]
            grid.base = new_base
        for s in dead:
            self._remove(s)
        for key in [k for k, v in self.subqueries.items() if v.last_used_ms < min_ms]:
            del self.subqueries[key]  # a subquery no rule has read for a whole retention
        self._adapt()

    # -- reading ---------------------------------------------------------------------

    def ticks_within(self, start: int, end: int) -> tuple[int, int]:
        """The first and last snapshot (numbers, see `Grid`) taken in [start, end] ms;
        the last is below the first when there is none."""
        grid = self._grid
        gts, base = grid.ts, grid.base
        n = len(gts)
        if not n:
            return 0, -1
        last = n - 1 if gts[n - 1] <= end else bisect_right(gts, end) - 1
        first = 0 if gts[0] >= start else bisect_left(gts, start, 0, last + 1)
        return base + first, base + last

    def series(self, matchers: Sequence[Matcher]) -> list[Series]:
        """Every series the matchers select, sorted by labels as Prometheus' storage returns
        them (sums then add up in the same order); cached until the set of series changes."""
        key = tuple(matchers)
        hit = self._select_cache.get(key)
        if hit is not None:
            return hit
        result = sorted(self._match(matchers), key=_by_key)
        self._select_cache[key] = result
        return result

    def _match(self, matchers: Sequence[Matcher]) -> list[Series]:
        candidates: dict[SeriesKey, Series] | None = None
        rest: list[_CompiledMatcher] = []
        for m in matchers:
            if m.op == "=" and m.value != "":
                posting = self._posting(m.name).get(m.value)
                if not posting:
                    return []
                if candidates is None or len(posting) < len(candidates):
                    if candidates is not None:
                        posting = {k: v for k, v in posting.items() if k in candidates}
                    candidates = posting
                else:
                    candidates = {k: v for k, v in candidates.items() if k in posting}
            else:
                rest.append(m.compile())
        pool = candidates.values() if candidates is not None else self._series.values()
        if not rest:
            return list(pool)
        out = []
        for s in pool:
            labels = s.labels
            if all(m.matches(labels.get(m.name, "")) for m in rest):
                out.append(s)
        return out

    def select(
        self, matchers: Sequence[Matcher], start: float, end: float
    ) -> list[tuple[SeriesKey, list[tuple[float, float]]]]:
        """Samples in the closed window [start, end] (seconds) of each selected series.

        Staleness markers are left out, as in a Prometheus range selector; series with no
        sample in the window are left out.
        """
        lo_ms, hi_ms = round(start * 1000), round(end * 1000)
        out = []
        for s in self.series(matchers):
            lo, hi = bisect_left(s.ts, lo_ms), bisect_right(s.ts, hi_ms)
            points = [(s.ts[i] / 1000, s.vals[i]) for i in range(lo, hi) if not is_stale(s.vals[i])]
            if points:
                out.append((s.key, points))
        return out
