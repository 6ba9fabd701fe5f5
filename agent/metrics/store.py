"""The agent's series: plain dicts keyed by label-value tuples, tuned for the hot path.

A `Family` holds one configured metric. Its `series` dict maps a tuple of label values
(in `labelnames` order) to a list used as a mutable cell: `[value]` for a counter or
gauge; for a histogram the per-bucket counts followed by the sum,
`[b0, ..., bn-1, +Inf, sum]` (not cumulative; cumulative counts are computed when read).
An update is then one dict lookup and an in-place add. The extractor updates these dicts directly;
`admit()` is the only call it makes, and only for a label set it has not seen.

Series caps: past `max_series`, new label sets are dropped and counted
(`chatwatch_series_dropped_total{metric}`), with at most one warning per minute per
metric, so a flood of distinct values cannot grow memory.

Expiry: families with `expire_after` record when each series was last updated
(`touched`); `expire(now)` removes the idle ones. Counters and histograms without
`expire_after` never expire, so `increase()` over sparse counters stays right.

Across restarts: `capture()` copies every configured series' value (cheap, on the event
loop, at the same instant as the file offsets), `values_json()` turns that copy into the
checkpoint's `metrics` section (off the loop), and `restore()` puts the values back into
families whose definition (type, label names, static labels, buckets) is unchanged, so
counters continue where they were instead of starting again at 0.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from itertools import chain
from operator import itemgetter
from typing import Any

from prometheus_client.utils import floatToGoString

from agent.metrics.config import MetricConfig
from agent.support.selfmetrics import SelfCounter, SelfGauge, SelfMetrics

SeriesKey = tuple[tuple[str, str], ...]
"""Label pairs sorted by name, including ("__name__", name)."""

LabelValues = tuple[str, ...]

log = logging.getLogger("chatwatch.store")

WARN_EVERY = 60.0
_FIRST = itemgetter(0)


def _key_maker(labelnames: tuple[str, ...], static: tuple[tuple[str, str], ...], le: bool) -> Any:
    """Compile `f(values, name[, le]) -> SeriesKey` with pairs already in sorted order."""
    slots: list[tuple[str, str]] = [("__name__", "n")]
    slots += [(name, f"v[{i}]") for i, name in enumerate(labelnames)]
    slots += [(name, repr(value)) for name, value in static]
    if le:
        slots.append(("le", "le"))
    slots.sort(key=lambda s: s[0])
    body = ", ".join(f"({name!r}, {expr})" for name, expr in slots)
    args = "v, n, le" if le else "v, n"
    return eval(f"lambda {args}: ({body},)")  # built from validated label names


class Family:
    """The series of one configured metric."""

    def __init__(
        self,
        cfg: MetricConfig,
        labelnames: tuple[str, ...],
        dropped: SelfCounter,
        series_gauge: SelfGauge,
    ) -> None:
        self.name = cfg.name
        self.kind = cfg.type
        self.help = cfg.help_text
        self.labelnames = labelnames
        self.static: tuple[tuple[str, str], ...] = tuple(sorted(cfg.static_labels.items()))
        self.bounds: tuple[float, ...] = cfg.bucket_bounds if cfg.type == "histogram" else ()
        self.le_strings = [floatToGoString(b) for b in self.bounds] + ["+Inf"]
        self.max_series = cfg.max_series
        self.expire_after = cfg.expire_after
        self.series: dict[LabelValues, Any] = {}
        self.touched: dict[LabelValues, float] | None = {} if cfg.expire_after else None
        self._dropped = dropped
        self._series_gauge = series_gauge
        self._labels = (cfg.name,)
        self._last_warning = -WARN_EVERY
        self._dropped_since_warning = 0
        self._keys: dict[LabelValues, SeriesKey] = {}
        self.created: list[tuple[LabelValues, float]] | None = (
            [] if self.kind in ("counter", "histogram") else None
        )
        """Counter series admitted since the rules last looked, with their creation time."""
        self._make_key: Callable[..., SeriesKey] = _key_maker(labelnames, self.static, le=False)
        self._make_bucket_key: Callable[..., SeriesKey] = _key_maker(
            labelnames, self.static, le=True
        )
        series_gauge.set(self._labels, 0)

    def shape(self) -> tuple[Any, ...]:
        """What must stay equal for series to be kept across a config reload."""
        return (self.kind, self.labelnames, self.static, self.bounds)

    def definition(self) -> dict[str, Any]:
        """`shape()` as JSON: what must stay equal for saved values to be restored."""
        return {
            "type": self.kind,
            "labels": list(self.labelnames),
            "static": dict(self.static),
            "buckets": list(self.bounds),
        }

    def admit(self, key: LabelValues, now: float) -> bool:
        """May a new label set be added? Counts and (rarely) logs what is dropped."""
        if len(self.series) < self.max_series:
            self._series_gauge.set(self._labels, len(self.series) + 1)
            created = self.created
            if created is not None and len(created) < self.max_series:
                created.append((key, now))
            return True
        self._dropped.inc(self._labels)
        self._dropped_since_warning += 1
        if now - self._last_warning >= WARN_EVERY:
            log.warning(
                "metric %s reached max_series=%d; new label sets are dropped "
                "(%d dropped since the last warning); labels of the dropped one: %s",
                self.name,
                self.max_series,
                self._dropped_since_warning,
                dict(zip(self.labelnames, key, strict=False)),
            )
            self._last_warning = now
            self._dropped_since_warning = 0
        return False

    def expire(self, now: float) -> None:
        touched = self.touched
        if touched is None or self.expire_after is None:
            return
        deadline = now - self.expire_after
        idle = [k for k, t in touched.items() if t <= deadline]
        if not idle:
            return
        for k in idle:
            del touched[k]
            self.series.pop(k, None)
            self._keys.pop(k, None)
        self._series_gauge.set(self._labels, len(self.series))

    def clear(self) -> None:
        self.series.clear()
        self._keys.clear()
        if self.touched is not None:
            self.touched.clear()
        self._series_gauge.set(self._labels, 0)

    @property
    def sample_name(self) -> str:
        return self.name

    def take_created(
        self, keep: Callable[[str], bool] | None = None
    ) -> Iterator[tuple[SeriesKey, float]]:
        """Sample keys of the counter series created since the last call, with the time;
        with `keep`, only those whose sample name it accepts."""
        created = self.created
        if not created:
            return
        self.created = []
        name, make = self.name, self._make_key

        def wanted(sample: str) -> bool:
            return keep is None or keep(sample)

        plain = wanted(name)
        buckets, sums, counts = (
            wanted(name + "_bucket"),
            wanted(name + "_sum"),
            wanted(name + "_count"),
        )
        for values, t in created:
            if values not in self.series:
                continue  # expired meanwhile
            if self.kind != "histogram":
                if plain:
                    yield _drop_empty(make(values, name), values), t
                continue
            if buckets:
                for le in self.le_strings:
                    key = self._make_bucket_key(values, name + "_bucket", le)
                    yield _drop_empty(key, values), t
            if sums:
                yield _drop_empty(make(values, name + "_sum"), values), t
            if counts:
                yield _drop_empty(make(values, name + "_count"), values), t

    def samples(
        self, keep: Callable[[str], bool] | None = None
    ) -> Iterator[tuple[SeriesKey, float]]:
        """Every sample; with `keep`, only those whose sample name it accepts."""
        name = self.name
        if self.kind != "histogram":
            if keep is not None and not keep(name):
                return
            keys = self._keys
            make = self._make_key
            for values, cell in list(self.series.items()):
                key = keys.get(values)
                if key is None:
                    key = keys[values] = _drop_empty(make(values, name), values)
                yield key, cell[0]
            return
        bucket_name, sum_name, count_name = name + "_bucket", name + "_sum", name + "_count"
        buckets = sums = counts_ = True
        if keep is not None:
            buckets, sums, counts_ = keep(bucket_name), keep(sum_name), keep(count_name)
            if not (buckets or sums or counts_):
                return
        make, make_bucket, les = self._make_key, self._make_bucket_key, self.le_strings
        for values, counts in list(self.series.items()):
            if buckets:
                total = 0.0
                for le, c in zip(les, counts, strict=False):
                    total += c
                    yield _drop_empty(make_bucket(values, bucket_name, le), values), total
            else:
                total = 0.0
                for c in counts[:-1]:
                    total += c  # as above, not sum(): the same additions in the same order
            if sums:
                yield _drop_empty(make(values, sum_name), values), counts[-1]
            if counts_:
                yield _drop_empty(make(values, count_name), values), total


def _drop_empty(key: SeriesKey, values: LabelValues) -> SeriesKey:
    """A label with an empty value is no label (as in Prometheus): `{error_type=""}` from a
    missing field must not show up in rule results or alert labels."""
    if "" not in values:
        return key
    return tuple(pair for pair in key if pair[1] != "")


@dataclass(slots=True)
class FamilyValues:
    """One configured metric's series at one instant (`Store.capture`).

    Column-wise, so that a capture allocates a few lists per metric and no object per
    series: a copy of 10k series then costs about a millisecond and wakes no garbage
    collection on the event loop."""

    name: str
    definition: dict[str, Any]
    keys: list[LabelValues]
    values: list[float]
    """A counter's or gauge's value per series; for a histogram each series' cell in
    turn (per-bucket counts, then the sum: `len(buckets) + 2` numbers)."""
    touched: dict[LabelValues, float] | None
    """When each series was last updated (metrics with `expire_after` only)."""


def values_json(captured: list[FamilyValues], now: float) -> dict[str, Any]:
    """The checkpoint's `metrics` section from a capture; pure work on private copies, so
    it runs off the event loop.

        {"<metric>": {"type", "labels", "static", "buckets",  (the definition)
                      "series": [[label values], ...],
                      "values": [numbers, in series order],
                      "touched": [unix time per series]}}  (with expire_after only)

    Non-finite numbers (a gauge set to +Inf) are written as "NaN", "+Inf", "-Inf": JSON
    has no such numbers."""
    out: dict[str, Any] = {}
    for fv in captured:
        values: list[Any] = fv.values
        if not all(map(math.isfinite, values)):
            values = [_encode(v) for v in values]
        entry = {**fv.definition, "series": fv.keys, "values": values}
        if fv.touched is not None:
            entry["touched"] = [fv.touched.get(k, now) for k in fv.keys]
        out[fv.name] = entry
    return out


def _encode(value: float) -> float | str:
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("+Inf" if value > 0 else "-Inf")


def _decode(value: Any) -> float:
    if isinstance(value, str):
        if value not in ("NaN", "+Inf", "-Inf"):
            raise ValueError(f"not a number: {value!r}")
        return float(value.replace("Inf", "inf").replace("NaN", "nan"))
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"not a number: {value!r}")
    return float(value)


class ExternalFamily:
    """A family produced elsewhere (recording rules, ALERTS), replaced as a whole."""

    __slots__ = ("help", "kind", "name", "samples")

    def __init__(
        self, name: str, kind: str, help: str, samples: list[tuple[dict[str, str], float]]
    ) -> None:
        self.name = name
        self.kind = kind
        self.help = help
        self.samples = samples


class Store:
    """Every series chatwatch exposes: configured metrics plus families set by the rules."""

    def __init__(self, stats: SelfMetrics | None = None) -> None:
        self.families: dict[str, Family] = {}
        self.external: dict[str, ExternalFamily] = {}
        self.stats: SelfMetrics | None = None
        if stats is not None:
            self.attach(stats)

    def attach(self, stats: SelfMetrics) -> None:
        """Register the store's self-metrics (the Extractor does it if nobody did)."""
        if self.stats is not None:
            return
        self.stats = stats
        self._dropped = stats.counter(
            "chatwatch_series_dropped_total",
            "New label sets dropped because the metric reached max_series.",
            ("metric",),
        )
        self._series = stats.gauge(
            "chatwatch_series", "Series currently held per configured metric.", ("metric",)
        )
        for name, fam in self.families.items():
            fam._dropped, fam._series_gauge = self._dropped, self._series
            self._series.set((name,), len(fam.series))

    def define(self, cfg: MetricConfig, labelnames: tuple[str, ...], now: float = 0.0) -> Family:
        """The family for a metric definition; existing series survive a reload when the
        definition keeps its type, label names, static labels and buckets."""
        if self.stats is None:
            self.attach(SelfMetrics())
        fam = Family(cfg, labelnames, self._dropped, self._series)
        old = self.families.get(cfg.name)
        if old is not None and old.shape() == fam.shape():
            fam.series = old.series
            fam._keys = old._keys
            if fam.touched is not None:
                fam.touched = (
                    old.touched if old.touched is not None else dict.fromkeys(fam.series, now)
                )
            self._series.set((cfg.name,), len(fam.series))
        if not labelnames and fam.kind in ("counter", "histogram") and not fam.series:
            # A counter without labels exists from the start at 0, as a client library's
            # does: rate() sees the first event, and "no series" means "not configured".
            fam.series[()] = [0.0] * (len(fam.bounds) + 2 if fam.kind == "histogram" else 1)
            if fam.touched is not None:
                fam.touched[()] = now
            self._series.set((cfg.name,), 1)
        self.families[cfg.name] = fam
        return fam

    def retain(self, names: Iterable[str]) -> None:
        """Forget configured metrics that are no longer defined (after a reload)."""
        keep = set(names)
        for name in list(self.families):
            if name not in keep:
                del self.families[name]
                if self.stats is not None:
                    self._series.remove((name,))

    def set_family(
        self, name: str, kind: str, help: str, samples: list[tuple[dict[str, str], float]]
    ) -> None:
        """Replace a whole family produced elsewhere (recording rules, ALERTS).

        An empty `samples` list removes it from /metrics and from snapshots.
        """
        if name in self.families:
            raise ValueError(f"{name} is a configured metric; choose another name")
        if not samples:
            self.external.pop(name, None)
            return
        cleaned = [
            ({k: v for k, v in labels.items() if k != "__name__"}, v) for labels, v in samples
        ]
        self.external[name] = ExternalFamily(name, kind, help, cleaned)

    def expire(self, now: float) -> None:
        for fam in self.families.values():
            if fam.touched is not None:
                fam.expire(now)

    # -- across restarts -----------------------------------------------------------------

    def capture(self) -> list[FamilyValues]:
        """A copy of every configured series' value: cheap enough for the event loop, so
        it is taken in the same step as the file offsets it belongs with."""
        out: list[FamilyValues] = []
        for fam in self.families.values():
            cells = fam.series.values()
            if fam.kind == "histogram":
                values = list(chain.from_iterable(cells))
            else:
                values = list(map(_FIRST, cells))
            touched = dict(fam.touched) if fam.touched is not None else None
            out.append(FamilyValues(fam.name, fam.definition(), list(fam.series), values, touched))
        return out

    def restore(self, saved: Mapping[str, Any], now: float) -> list[str]:
        """Put back the values `values_json` saved, into the metrics defined now.

        A metric whose definition changed since (type, label names, static labels,
        buckets) starts fresh, logged once; so does a metric whose saved section is
        malformed. Series beyond `max_series` are dropped. Returns the names of the
        metrics that started fresh. Call it before anything is counted."""
        fresh: list[str] = []
        for name, fam in self.families.items():
            entry = saved.get(name)
            if entry is None:
                continue
            if not isinstance(entry, dict):
                entry = {}
            old = {k: entry.get(k) for k in ("type", "labels", "static", "buckets")}
            if old != fam.definition():
                changed = [k for k, v in fam.definition().items() if old[k] != v]
                log.warning(
                    "metric %s: its definition changed since the checkpoint (%s); "
                    "its series start fresh",
                    name,
                    ", ".join(f"{k} {old[k]!r} -> {fam.definition()[k]!r}" for k in changed),
                )
                fresh.append(name)
                continue
            try:
                rows = _rows(fam, entry, now)
            except (TypeError, ValueError, IndexError) as exc:
                log.error(
                    "metric %s: its saved series are unreadable (%s); they start fresh",
                    name,
                    exc,
                )
                fresh.append(name)
                continue
            if len(rows) > fam.max_series:
                log.warning(
                    "metric %s: %d saved series, max_series=%d; the rest are dropped",
                    name,
                    len(rows),
                    fam.max_series,
                )
                rows = rows[: fam.max_series]
            for key, cell, touched in rows:
                fam.series[key] = cell  # in place: the extractor holds this dict
                if fam.touched is not None:
                    fam.touched[key] = touched
            self._series.set((name,), len(fam.series))
        for name in saved:
            if name not in self.families:
                log.info("metric %s is no longer configured; its saved series are dropped", name)
        return fresh

    def take_created(
        self, keep: Callable[[str], bool] | None = None
    ) -> list[tuple[SeriesKey, float]]:
        """Counter and histogram samples that appeared since the last call, with the time
        their series was created (at 0 then): `History.append(..., created=)`. With
        `keep`, only the samples whose name it accepts (what rules can read)."""
        out: list[tuple[SeriesKey, float]] = []
        for fam in self.families.values():
            if fam.created:
                out.extend(fam.take_created(keep))
        return out

    def snapshot(
        self, keep: Callable[[str], bool] | None = None
    ) -> Iterator[tuple[SeriesKey, float]]:
        """Every current sample: histograms expanded to _bucket{le}, _sum, _count. With
        `keep`, only the samples whose name it accepts (what rules can read): a metric it
        refuses costs nothing."""
        for fam in list(self.families.values()):
            yield from fam.samples(keep)
        for ext in list(self.external.values()):
            if keep is not None and not keep(ext.name):
                continue
            for labels, value in ext.samples:
                pairs = [*labels.items(), ("__name__", ext.name)]
                pairs.sort()
                yield tuple(pairs), value


def _rows(
    fam: Family, entry: dict[str, Any], now: float
) -> list[tuple[LabelValues, list[float], float]]:
    """The saved series of `fam` as (label values, cell, touched); raises on anything
    malformed."""
    series, values, touched = entry.get("series"), entry.get("values"), entry.get("touched")
    if not isinstance(series, list) or not isinstance(values, list):
        raise TypeError("series or values is not a list")
    width = len(fam.bounds) + 2 if fam.kind == "histogram" else 1
    if len(values) != width * len(series):
        raise ValueError(f"{len(values)} numbers for {len(series)} series of {width}")
    if touched is not None and (not isinstance(touched, list) or len(touched) != len(series)):
        raise ValueError("touched does not fit the series")
    arity = len(fam.labelnames)
    out = []
    for i, labels in enumerate(series):
        if not isinstance(labels, list) or len(labels) != arity:
            raise ValueError(f"label values {labels!r} do not fit {list(fam.labelnames)}")
        cell = [_decode(v) for v in values[i * width : (i + 1) * width]]
        when = now if touched is None else float(touched[i])
        out.append((tuple(str(v) for v in labels), cell, when))
    return out
