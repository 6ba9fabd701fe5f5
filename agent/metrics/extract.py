"""Metric definitions compiled into update functions: events in, series updated.

This is the hot path. Each definition becomes one small Python function generated from
its config (field reads, conditions and label reads inlined; no interpretation of the
config per event), and definitions are indexed by an equality/`in` condition, so an event
only visits the definitions that can match it: `{event: http_request}` puts a definition
in the bucket for `event == "http_request"`; definitions with no such condition are
visited by every event.

Pure stage: it takes events, their origin and the clock given to it; it never does I/O.
Values that cannot be used (missing, not a number, negative counter increment, bad event
timestamp) skip the event for that metric and are counted in
`chatwatch_extract_errors_total{metric,reason}`; an LLM call whose model has no price
(`cost:`) is counted in `chatwatch_genai_unpriced_total{metric,model}`.

A label value taken from an event is capped at the metric's `max_label_value_bytes`
(UTF-8): a longer one is cut on a character boundary and ends in `…`, and counted in
`chatwatch_label_values_truncated_total{metric,label}`. Truncated, not dropped: the
event still counts (a request with a runaway `user_id` is still a request), and one
oversized value costs one bounded series instead of megabytes on every scrape; values
that differ only past the cap share a series. The cap is applied only when an event's
key is not a series yet: a value over the cap never becomes part of a series, so every
event carrying one takes that path and is cut and counted, while updates of existing
series, the hot path, do no work for it.

Only what a definition uses is generated: field alternatives (`a | b`), sums, value maps
and cost add code to the definitions that use them and cost nothing to the others.
"""

from __future__ import annotations

import logging
import re
import time
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable
from typing import Any

import orjson

from agent.decode.events import Event, Origin
from agent.decode.timestamps import event_time, number
from agent.metrics.config import LabelFrom, MetricConfig, parse_field, parse_replacement
from agent.metrics.store import Family, Store
from agent.support.selfmetrics import SelfCounter, SelfMetrics

log = logging.getLogger("chatwatch.extract")

UpdateFn = Callable[[Event, float, str, str], None]

_RELABEL_CACHE_SIZE = 4096
UNPRICED_MODELS = 100
"""Distinct unpriced model names counted per metric; more are counted as `(other)`."""
INLINE_BUCKETS = 8
"""Up to this many values of an index field, buckets are an if/elif chain in the loop."""
_ACTION_CODES = {"inc": 0, "dec": 1, "set": 2, "set_to_event_time": 3}
LABEL_MARKER = "\u2026"
"""Ends a label value cut to `max_label_value_bytes` (`…`, 3 bytes in UTF-8)."""
_MARKER_BYTES = len(LABEL_MARKER.encode())


# -- value conversions (called only off the fast path: when a value is not a str/number) --


def text(value: Any) -> str | None:
    """The text form used to compare values and to make label values; None if missing."""
    cls = value.__class__
    if cls is str:
        return value
    if value is None:
        return None
    if cls is bool:
        return "true" if value else "false"
    if cls is int:
        return str(value)
    if cls is float:
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def label_text(value: Any) -> str:
    """A label value: the text form, empty (no label) when the field is missing."""
    t = text(value)
    return "" if t is None else t


def clip_label(value: str, limit: int) -> str | None:
    """`value` cut to at most `limit` bytes of UTF-8, ending in `LABEL_MARKER`, on a
    character boundary; None when it fits already."""
    if value.isascii():
        if len(value) <= limit:
            return None
        return value[: limit - _MARKER_BYTES] + LABEL_MARKER
    # Lone surrogates (text decoded with surrogateescape) pass as 3-byte sequences.
    data = value.encode("utf-8", "surrogatepass")
    if len(data) <= limit:
        return None
    end = limit - _MARKER_BYTES
    while end > 0 and data[end] & 0xC0 == 0x80:  # a continuation byte: back off
        end -= 1
    return data[:end].decode("utf-8", "surrogatepass") + LABEL_MARKER


# Text of small ints (status codes, counts), looked up instead of formatted per event.
_INT_TEXT: dict[int, str] = {i: str(i) for i in range(1024)}


# A path segment that is an id: a UUID, a number, or 8+ hex digits with at least one digit.
_ID_SEGMENT = re.compile(
    r"(?<=/)(?:"
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|[0-9]+"
    r"|(?=[a-fA-F]*[0-9])[0-9a-fA-F]{8,}"
    r")(?=/|$)"
)


def template_path(path: str) -> str:
    """`/sessions/8f2c4e1a-.../messages/42?x=1` -> `/sessions/:id/messages/:id`: ids in
    a URL path become `:id` and the query string and fragment go, so a route label stays
    bounded without a hand-written regex."""
    for sep in "?#":
        cut = path.find(sep)
        if cut >= 0:
            path = path[:cut]
    return _ID_SEGMENT.sub(":id", path)


def _relabeller(spec: LabelFrom) -> Callable[[Any], str]:
    """Label value from a field value, Prometheus relabel style, with a bounded memo:
    regex and replacement, then `path_template`, then `map` (unmapped: `default`)."""
    default = spec.default
    if spec.regex is None and not spec.path_template and spec.map is None:

        def plain(value: Any) -> str:
            t = text(value)
            return default if t is None else t

        return plain
    fullmatch = re.compile(spec.regex).fullmatch if spec.regex is not None else None
    parts = parse_replacement(spec.replacement)
    templated = spec.path_template
    mapping = spec.map
    cache: dict[str, str] = {}

    def relabel(value: Any) -> str:
        t = value if value.__class__ is str else text(value)
        if t is None:
            return default
        out = cache.get(t)
        if out is not None:
            return out
        out = t
        m = fullmatch(t) if fullmatch is not None else None
        if fullmatch is not None and m is None:
            out = default
        else:
            if m is not None:
                pieces = []
                for is_ref, part in parts:
                    # Group references were checked against the regex at load.
                    pieces.append((m.group(part) or "") if is_ref else str(part))
                out = "".join(pieces)
            if templated:
                out = template_path(out)
            if mapping is not None:
                out = mapping.get(out, default)
        if len(cache) >= _RELABEL_CACHE_SIZE:
            cache.clear()
        cache[t] = out
        return out

    return relabel


# -- code generation --------------------------------------------------------------------
#
# Each definition becomes a block of straight-line code that leaves early with `break`
# (the block sits in `while True: ... break`, which costs nothing in CPython 3.11). Blocks
# of the definitions in one index bucket are fused into one function, so an event costs
# one index lookup and one call however many definitions it feeds, and a field several
# of them read is read once.


class _Gen:
    """Accumulates the source of one generated function and the names it refers to."""

    def __init__(self, env: dict[str, Any] | None = None) -> None:
        self.lines: list[str] = []
        self.env: dict[str, Any] = env if env is not None else {}
        self.env.setdefault("text", text)
        self.env.setdefault("label_text", label_text)
        self.env.setdefault("_ints", _INT_TEXT)
        self.env.setdefault("bisect_left", bisect_left)
        self.env.setdefault("_number", number)
        self.env.setdefault("event_time", event_time)
        self.shared: dict[str, str] = {}
        self.shared_labels: dict[str, str] = {}
        self.indent = 1

    def const(self, value: Any, hint: str = "c") -> str:
        name = f"_{hint}{len(self.env)}"
        self.env[name] = value
        return name

    def var(self, hint: str = "v") -> str:
        self.env.setdefault("#vars", [0])
        counter = self.env["#vars"]
        counter[0] += 1
        return f"{hint}{counter[0]}"

    def emit(self, line: str, extra: int = 0) -> None:
        self.lines.append("    " * (self.indent + extra) + line)

    def read(self, path: str) -> str:
        """Emit an unconditional read of a field path; returns the variable holding it.
        Alternatives (`a | b`) are read in order until one is present."""
        var = self.var("f")
        extra = 0
        for i, alternative in enumerate(path.split(" | ")):
            if i:
                self.emit(f"if {var} is None:", extra)
                extra += 1
            self._read_path(var, alternative, extra)
        return var

    def _read_path(self, var: str, path: str, extra: int) -> None:
        self.emit(f"{var} = e.get({path!r})", extra)
        if "." in path:
            # A flat key containing the dots first (`"usage.total": 3`), then the nesting.
            head, *rest = path.split(".")
            self.emit(f"if {var} is None:", extra)
            self.emit(f"{var} = e.get({head!r})", extra + 1)
            for part in rest:
                self.emit(
                    f"{var} = {var}.get({part!r}) if {var}.__class__ is dict else None", extra + 1
                )

    def get(self, path: str) -> str:
        """A variable the caller may overwrite, holding the field's raw value."""
        shared = self.shared.get(path)
        if shared is None:
            return self.read(path)
        var = self.var("f")
        self.emit(f"{var} = {shared}")
        return var

    def text_of(self, path: str) -> str:
        var = self.get(path)
        self.emit(f"if {var}.__class__ is not str:")
        self.emit(
            f"{var} = (_ints.get({var}) if {var}.__class__ is int else None) or text({var})", 1
        )
        return var

    def label_of(self, path: str) -> str:
        """A variable holding the field's value as a label value (text, '' if missing)."""
        shared = self.shared_labels.get(path)
        if shared is not None:
            return shared
        var = self.get(path)
        self.emit(f"if {var}.__class__ is not str:")
        self.emit(
            f"{var} = (_ints.get({var}) if {var}.__class__ is int else None) or label_text({var})",
            1,
        )
        return var

    def hoist(self, paths: Counter[str], labels: Counter[str] | None = None) -> None:
        """Read once, up front, every path (and label value) more than one block reads."""
        for path, n in sorted(paths.items()):
            if n > 1 and path not in self.shared:
                self.shared[path] = self.read(path)
        for path, n in sorted((labels or Counter()).items()):
            if n > 1 and path not in self.shared_labels:
                self.shared_labels[path] = self.label_of(path)

    def compile(self, name: str, args: str, filename: str) -> tuple[Any, str]:
        src = f"def {name}({args}):\n" + "\n".join(self.lines) + "\n"
        namespace = {k: v for k, v in self.env.items() if not k.startswith("#")}
        exec(compile(src, filename, "exec"), namespace)
        return namespace[name], src


def _read_keys(expr: str) -> list[str]:
    """What the code of a numeric field expression reads: the expression itself, or each
    path of a sum (`a | b + c` reads `a`, `b`, `c`)."""
    if " + " not in expr:
        return [expr]
    parsed = parse_field(expr, sums=True)
    assert not isinstance(parsed, str), expr
    return [term for terms in parsed for term in terms]


def _scalar_text(value: Any) -> str:
    t = text(value)
    return "null" if t is None else t


def _index_values(cfg: MetricConfig) -> dict[str, set[str]]:
    """Conditions usable as an index: field path -> the text values it must equal."""
    out: dict[str, set[str]] = {}
    for path, cond in cfg.match.items():
        if not isinstance(cond, dict):
            if cond is not None:
                out[path] = {_scalar_text(cond)}
        elif set(cond) == {"in"} and None not in cond["in"]:
            out[path] = {_scalar_text(v) for v in cond["in"]}
    field = cfg.resolved_action_field
    if field is not None and field not in out and isinstance(cfg.action, dict):
        out[field] = set(cfg.action)
    return out


class CompiledMetric:
    """One definition, as a block of generated code, and the index entry chosen for it."""

    def __init__(
        self,
        cfg: MetricConfig,
        family: Family,
        errors: SelfCounter,
        index_field: str | None,
        index_values: set[str],
        unpriced: SelfCounter | None = None,
        truncated: SelfCounter | None = None,
    ) -> None:
        self.cfg = cfg
        self.family = family
        self.index_field = index_field
        self.index_values = index_values
        self._errors = errors
        self._warned = False
        self._unpriced = unpriced
        self._unpriced_models: set[str] = set()
        self._truncated = truncated
        self._limit = cfg.label_value_limit
        self._capped = self._capped_labels()

    def paths(self) -> Counter[str]:
        """Field paths the block reads (to hoist the ones several blocks share)."""
        cfg = self.cfg
        out: Counter[str] = Counter()
        for path, cond in cfg.match.items():
            if not self._indexed(path, cond):
                out[path] += 1
        if cfg.resolved_action_field:
            out[cfg.resolved_action_field] += 1
        if cfg.timestamp_field:
            out[cfg.timestamp_field] += 1
        numbers = list(cfg.value.values()) if isinstance(cfg.value, dict) else [cfg.value]
        if cfg.cost is not None:
            numbers += [field for _, field in cfg.cost.token_fields()]
        for expr in numbers:
            if expr:
                out.update(_read_keys(expr))
        for spec in cfg.labels.values():
            out[spec if isinstance(spec, str) else spec.field] += 1
        return out

    def label_paths(self) -> Counter[str]:
        """Field paths used as plain labels (their text value can be shared too), and the
        model that picks a price."""
        out = Counter(spec for spec in self.cfg.labels.values() if isinstance(spec, str))
        if self.cfg.cost is not None:
            out[self.cfg.cost.model] += 1
        return out

    def _indexed(self, path: str, cond: Any) -> bool:
        return path == self.index_field and (
            (not isinstance(cond, dict) and cond is not None) or set(cond or {}) == {"in"}
        )

    # Called from generated code only when something is wrong.

    def err(self, reason: str) -> None:
        self._errors.inc((self.cfg.name, reason))

    def num(self, value: Any) -> float | None:
        if value is None:
            self._errors.inc((self.cfg.name, "missing_value"))
            return None
        f = number(value)
        if f is None:
            self._errors.inc((self.cfg.name, "not_a_number"))
        return f

    def unpriced(self, model: str) -> None:
        """An LLM call whose model the price table does not know: counted, never guessed."""
        models = self._unpriced_models
        if model not in models:
            if len(models) >= UNPRICED_MODELS:
                model = "(other)"
            else:
                models.add(model)
                log.warning(
                    "metric %s: no price for model %r in the pricing table; its calls are "
                    "counted in chatwatch_genai_unpriced_total, not costed",
                    self.cfg.name,
                    model,
                )
        if self._unpriced is not None:
            self._unpriced.inc((self.cfg.name, model))

    def _capped_labels(self) -> list[tuple[int, str]]:
        """(position in the series key, name) of the labels whose values come from the
        event and so are capped: not origin labels, value map labels or mapped values,
        which the config bounds."""
        out = []
        for i, name in enumerate(self.family.labelnames):
            spec = self.cfg.labels.get(name)
            if spec is not None and (isinstance(spec, str) or spec.map is None):
                out.append((i, name))
        return out

    def cap(self, k: tuple[str, ...]) -> tuple[str, ...]:
        """A key that is not a series yet, with its label values cut to the cap (each cut
        counted). Called only then: a key with a value over the cap never becomes a
        series, so every event carrying one comes here, and existing series cost
        nothing."""
        limit = self._limit
        short = limit // 4  # characters: at most 4 bytes each
        out: list[str] | None = None
        for i, name in self._capped:
            value = k[i]
            if len(value) <= short:
                continue
            cut = clip_label(value, limit)
            if cut is None:
                continue
            if out is None:
                out = list(k)
            out[i] = cut
            if self._truncated is not None:
                self._truncated.inc((self.cfg.name, name))
        return k if out is None else tuple(out)

    def internal(self, exc: Exception) -> None:
        self._errors.inc((self.cfg.name, "internal"))
        if not self._warned:
            self._warned = True
            log.error("metric %s: unexpected error (reported once)", self.cfg.name, exc_info=exc)

    # -- code --------------------------------------------------------------------------

    def emit(self, g: _Gen) -> None:
        """Emit this definition's block into `g` (inside a function of `e`, `now`, origin)."""
        fam = self.family
        self.names = {
            "series": g.const(fam.series, "series"),
            "touched": g.const(fam.touched, "touched"),
            "admit": g.const(fam.admit, "admit"),
            "err": g.const(self.err, "err"),
            "num": g.const(self.num, "num"),
            "internal": g.const(self.internal, "internal"),
            "cap": g.const(self.cap, "cap"),
        }
        if self.cfg.cost is not None:
            table = self.cfg.cost.table
            if table is None:
                raise ValueError(
                    f"metric {self.cfg.name}: `cost` needs prices: set `pricing:` or "
                    "`pricing_file:` at the root of the config"
                )
            self.names["price"] = g.const(table.lookup, "price")
            self.names["unpriced"] = g.const(self.unpriced, "unpriced")
        g.emit(f"# {self.cfg.name}")
        g.emit("while True:")
        g.emit("try:", 1)
        g.indent += 2
        self._emit_body(g)
        g.indent -= 2
        g.emit("except Exception as exc:", 1)
        g.emit(f"{self.names['internal']}(exc)", 2)
        g.emit("break", 1)

    def _emit_body(self, g: _Gen) -> None:
        cfg, n = self.cfg, self.names
        for path, cond in cfg.match.items():
            if not self._indexed(path, cond):
                self._emit_condition(g, path, cond)
        # Gauge action picked by a field's value.
        action_var: str | None = None
        actions: set[str] = set()
        if isinstance(cfg.action, dict):
            field = cfg.resolved_action_field
            assert field is not None
            amap = g.const({k: _ACTION_CODES[v] for k, v in cfg.action.items()}, "amap")
            var = g.text_of(field)
            action_var = g.var("a")
            g.emit(f"{action_var} = {amap}.get({var})")
            g.emit(f"if {action_var} is None: break")
            actions = set(cfg.action.values())
        elif isinstance(cfg.action, str):
            actions = {cfg.action}
        elif cfg.type == "gauge":
            actions = {"set"}
        # Value.
        x: str | None = None
        if isinstance(cfg.value, str) and " + " not in cfg.value:
            x = g.get(cfg.value)
            g.emit(f"if {x}.__class__ is not int and {x}.__class__ is not float:")
            g.emit(f"{x} = {n['num']}({x})", 1)
            g.emit(f"if {x} is None: break", 1)
        elif isinstance(cfg.value, str):
            x = self._emit_number(g, cfg.value)
            g.emit(f"if {x} is None:")
            g.emit(f"{n['err']}('missing_value')", 1)
            g.emit("break", 1)
        elif cfg.cost is not None:
            x = self._emit_cost(g)
        if x is not None:
            self._emit_checked(g, x)
        # Event time, for set_to_event_time.
        ts: str | None = None
        if "set_to_event_time" in actions:
            if cfg.timestamp_field is not None:
                raw = g.get(cfg.timestamp_field)
                why = f"'missing_timestamp' if {raw} is None else 'bad_timestamp'"
                ts = g.var("t")
                extra = 0
                if action_var is not None:
                    g.emit(f"{ts} = None")
                    g.emit(f"if {action_var} == 3:")
                    extra = 1
                g.emit(f"{ts} = event_time({raw})", extra)
                g.emit(f"if {ts} is None:", extra)
                g.emit(f"{n['err']}({why})", extra + 1)
                g.emit("break", extra + 1)
            else:
                ts = "now"
        # Labels, in the family's (sorted) label order.
        values = [self._emit_label(g, name) for name in self.family.labelnames]
        if isinstance(cfg.value, dict):
            self._emit_value_map(g, cfg.value, values)
            return
        g.emit("k = (" + "".join(f"{v}, " for v in values) + ")")
        self._emit_update(g, actions, action_var, x, ts)
        if self.family.touched is not None:
            g.emit(f"{n['touched']}[k] = now")

    def _emit_checked(self, g: _Gen, x: str) -> None:
        """Scale the number in `x`; a counter refuses a negative increment."""
        if self.cfg.scale != 1.0:
            g.emit(f"{x} = {x} * {self.cfg.scale!r}")
        if self.cfg.type == "counter":
            g.emit(f"if {x} < 0:")
            g.emit(f"{self.names['err']}('negative_value')", 1)
            g.emit("break", 1)

    def _emit_number(self, g: _Gen, expr: str) -> str:
        """A variable holding the number of a field expression, None when it is missing;
        a value that is not a number is counted and leaves the block (`break`).
        Alternatives are tried in order; a sum is present when its first path is, and
        its other paths add 0 when missing."""
        parsed = parse_field(expr, sums=True)
        assert not isinstance(parsed, str), expr
        num = self.names["num"]
        x = g.var("x")
        g.emit(f"{x} = None")
        for i, terms in enumerate(parsed):
            extra = 0
            if i:
                g.emit(f"if {x} is None:")
                g.indent += 1
                extra = 1
            first = g.get(terms[0])
            g.emit(f"if {first} is not None:")
            g.indent += 1
            for j, term in enumerate(terms):
                var = first if j == 0 else g.get(term)
                guard = "" if j == 0 else f"{var} is not None and "
                g.emit(f"if {guard}{var}.__class__ is not int and {var}.__class__ is not float:")
                g.emit(f"{var} = {num}({var})", 1)
                g.emit(f"if {var} is None: break", 1)
                if j:
                    g.emit(f"if {var} is not None: {first} = {first} + {var}")
            g.emit(f"{x} = {first}")
            g.indent -= 1 + extra
        return x

    def _emit_cost(self, g: _Gen) -> str:
        """The USD cost of the call: its tokens priced by the model's line of the table."""
        cost = self.cfg.cost
        assert cost is not None
        n = self.names
        model = g.label_of(cost.model)
        g.emit(f"if {model} == '':")
        g.emit(f"{n['err']}('missing_model')", 1)
        g.emit("break", 1)
        p = g.var("p")
        g.emit(f"{p} = {n['price']}({model})")
        g.emit(f"if {p} is None:")
        g.emit(f"{n['unpriced']}({model})", 1)
        g.emit("break", 1)
        tokens = {kind: self._emit_number(g, field) for kind, field in cost.token_fields()}
        present = " and ".join(f"{tokens[k]} is None" for k in ("input", "output") if k in tokens)
        g.emit(f"if {present}:")
        g.emit(f"{n['err']}('missing_value')", 1)
        g.emit("break", 1)
        for var in tokens.values():
            g.emit(f"if {var} is None: {var} = 0")
        terms = []
        if "input" in tokens:
            uncached = g.var("u")
            g.emit(
                f"{uncached} = {tokens['input']}"
                + "".join(f" - {tokens[k]}" for k in ("cache_read", "cache_write") if k in tokens)
            )
            g.emit(f"if {uncached} < 0:")
            g.emit(f"{n['err']}('negative_value')", 1)
            g.emit("break", 1)
            terms.append(f"{uncached} * {p}[0]")
        for kind, slot in (("cache_read", 1), ("cache_write", 2), ("output", 3)):
            if kind in tokens:
                terms.append(f"{tokens[kind]} * {p}[{slot}]")
        x = g.var("x")
        g.emit(f"{x} = " + " + ".join(terms))
        return x

    def _emit_value_map(self, g: _Gen, value: dict[str, str], labels: list[str]) -> None:
        """One update per field of the value map that is present, under its label value.
        Each sits in its own `while True:` so a missing or unusable field skips only it."""
        cfg = self.cfg
        position = self.family.labelnames.index(cfg.value_label or "")
        for label_value, expr in value.items():
            g.emit("while True:")
            g.indent += 1
            x = self._emit_number(g, expr)
            g.emit(f"if {x} is None: break")
            self._emit_checked(g, x)
            key = [*labels]
            key[position] = repr(label_value)
            g.emit("k = (" + "".join(f"{v}, " for v in key) + ")")
            self._emit_update(g, set(), None, x, None)
            if self.family.touched is not None:
                g.emit(f"{self.names['touched']}[k] = now")
            g.emit("break")
            g.indent -= 1

    def _emit_condition(self, g: _Gen, path: str, cond: Any) -> None:
        if not isinstance(cond, dict):
            cond = {"exists": False} if cond is None else {"in": [cond]}
        var = g.text_of(path)
        for op, arg in cond.items():
            if op == "in":
                wanted = frozenset(_scalar_text(v) for v in arg if v is not None)
                also_missing = f" and {var} is not None" if None in arg else ""
                if len(wanted) == 1:
                    g.emit(f"if {var} != {next(iter(wanted))!r}{also_missing}: break")
                else:
                    g.emit(f"if {var} not in {g.const(wanted, 'set')}{also_missing}: break")
            elif op == "not":
                items = arg if isinstance(arg, list) else [arg]
                unwanted = frozenset(_scalar_text(v) for v in items if v is not None)
                or_missing = f" or {var} is None" if None in items else ""
                g.emit(f"if {var} in {g.const(unwanted, 'set')}{or_missing}: break")
            elif op == "regex":
                fm = g.const(re.compile(arg).fullmatch, "re")
                g.emit(f"if {var} is None or {fm}({var}) is None: break")
            elif op == "exists":
                g.emit(f"if {var} is {'None' if arg else 'not None'}: break")
            else:
                sym = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}[op]
                num = g.var("n")
                g.emit(f"{num} = _number({var})")
                g.emit(f"if {num} is None or not ({num} {sym} {float(arg)!r}): break")

    def _emit_label(self, g: _Gen, name: str) -> str:
        cfg = self.cfg
        if name == cfg.value_label:
            return "None"  # set per field of the value map
        if name in cfg.origin_labels and name not in cfg.labels:
            return "o_source" if name == "source" else "o_path"
        spec = cfg.labels[name]
        if isinstance(spec, str):
            return g.label_of(spec)
        var = g.get(spec.field)
        if spec.required:
            g.emit(f"if {var} is None:")
            g.emit(f"{self.names['err']}('missing_label')", 1)
            g.emit("break", 1)
        g.emit(f"{var} = {g.const(_relabeller(spec), 'relabel')}({var})")
        return var

    def _emit_update(
        self, g: _Gen, actions: set[str], action_var: str | None, x: str | None, ts: str | None
    ) -> None:
        cfg, n = self.cfg, self.names
        series, admit = n["series"], n["admit"]
        # Each series is a list (a mutable cell): one dict lookup per update, no store.
        width = len(self.family.bounds) + 2 if cfg.type == "histogram" else 1
        get = g.const(self.family.series.get, "get")
        g.emit(f"c = {get}(k)")
        g.emit("if c is None:")
        extra = 1
        if self._capped:  # a new key: values over the cap are cut (maybe to a series)
            g.emit(f"k = {n['cap']}(k)", 1)
            g.emit(f"c = {get}(k)", 1)
            g.emit("if c is None:", 1)
            extra = 2
        g.emit(f"if not {admit}(k, now): break", extra)
        g.emit(f"c = {series}[k] = [0.0] * {width}", extra)
        if cfg.type == "counter":
            g.emit(f"c[0] += {x or '1.0'}")
            return
        if cfg.type == "histogram":
            assert x is not None
            bounds = g.const(self.family.bounds, "bounds")
            g.emit(f"c[bisect_left({bounds}, {x})] += 1.0")
            g.emit(f"c[-1] += {x}")
            return
        amount = x or "1.0"
        stmts = {
            "inc": f"c[0] += {amount}",
            "dec": f"c[0] -= {amount}",
            "set": f"c[0] = {x}",
            "set_to_event_time": f"c[0] = {ts}",
        }
        if action_var is None:
            (action,) = actions
            g.emit(stmts[action])
            return
        for i, action in enumerate(sorted(actions, key=_ACTION_CODES.__getitem__)):
            g.emit(f"{'if' if i == 0 else 'elif'} {action_var} == {_ACTION_CODES[action]}:")
            g.emit(stmts[action], 1)


def labelnames_of(cfg: MetricConfig) -> tuple[str, ...]:
    """The label names whose values come from each event (fields, origin and the label of
    a value map), sorted."""
    names = {*cfg.labels, *cfg.origin_labels}
    if cfg.value_label is not None:
        names.add(cfg.value_label)
    return tuple(sorted(names))


def _choose_index(metrics: list[MetricConfig]) -> list[tuple[str | None, set[str]]]:
    """Per definition, the field to index it by: the candidate most definitions share."""
    candidates = [_index_values(m) for m in metrics]
    popularity = Counter(f for c in candidates for f in c)
    chosen: list[tuple[str | None, set[str]]] = []
    for cand in candidates:
        if not cand:
            chosen.append((None, set()))
            continue
        field = max(cand, key=lambda f: (popularity[f], -len(cand[f]), f))
        chosen.append((field, cand[field]))
    return chosen


Runner = Callable[[list[Event], float, str, str], None]


class Extractor:
    """A Sink: updates the store from events, through the compiled definitions."""

    def __init__(
        self,
        metrics: list[MetricConfig],
        store: Store,
        stats: SelfMetrics,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._clock = clock
        self.errors = stats.counter(
            "chatwatch_extract_errors_total",
            "Events skipped for a metric because a value could not be used, by reason.",
            ("metric", "reason"),
        )
        truncated = stats.counter(
            "chatwatch_label_values_truncated_total",
            "Label values from events longer than the metric's max_label_value_bytes, cut "
            "to fit (the event is still counted).",
            ("metric", "label"),
        )
        store.attach(stats)  # no-op when the store was given the same registry already
        unpriced = None
        if any(m.cost is not None for m in metrics):
            unpriced = stats.counter(
                "chatwatch_genai_unpriced_total",
                "LLM calls left out of a cost metric because the pricing table has no price "
                "for their model.",
                ("metric", "model"),
            )
        self.compiled: list[CompiledMetric] = []
        for cfg, (field, values) in zip(metrics, _choose_index(metrics), strict=True):
            family = store.define(cfg, labelnames_of(cfg), now=clock())
            self.compiled.append(
                CompiledMetric(cfg, family, self.errors, field, values, unpriced, truncated)
            )
        store.retain(m.name for m in metrics)
        self.sources: list[str] = []
        self._run: Runner = self._compile()

    def _compile(self) -> Runner:
        env: dict[str, Any] = {}
        buckets: dict[str, dict[str, list[CompiledMetric]]] = {}
        always: list[CompiledMetric] = []
        for cm in self.compiled:
            if cm.index_field is None:
                always.append(cm)
                continue
            table = buckets.setdefault(cm.index_field, {})
            for v in sorted(cm.index_values):
                table.setdefault(v, []).append(cm)
        # The loop over the batch. Per index field, the event's value picks its bucket:
        # a short if/elif chain inlined in the loop when the field has few values, else a
        # dict of fused functions (one call). Then the always-visited blocks, inline.
        g = _Gen(env)
        g.emit("for e in events:")
        g.indent = 2
        reads: Counter[str] = Counter(dict.fromkeys(buckets, 2))
        label_reads: Counter[str] = Counter()
        for m in always:
            reads.update(m.paths())
            label_reads.update(m.label_paths())
        g.hoist(reads, label_reads)
        for field, table in buckets.items():
            key = g.var("key")
            g.emit(f"{key} = {g.shared[field]}")
            g.emit(f"if {key}.__class__ is not str: {key} = text({key})")
            if len(table) <= INLINE_BUCKETS:
                for i, (value, members) in enumerate(table.items()):
                    g.emit(f"{'if' if i == 0 else 'elif'} {key} == {value!r}:")
                    g.indent += 1
                    self._emit_bucket(g, members)
                    g.indent -= 1
                continue
            functions = {}
            for value, members in table.items():
                fg = _Gen(env)
                self._emit_bucket(fg, members)
                args = "e, now, o_source, o_path"
                fn, src = fg.compile("bucket", args, f"<bucket {field}={value}>")
                self.sources.append(src)
                functions[value] = fn
            fn_var = g.var("fn")
            g.emit(f"{fn_var} = {g.const(functions, 'index')}.get({key})")
            g.emit(f"if {fn_var} is not None: {fn_var}(e, now, o_source, o_path)")
        for m in always:
            m.emit(g)
        if not buckets and not always:
            g.emit("pass")
        g.indent = 1
        run, src = g.compile("run", "events, now, o_source, o_path", "<extractor>")
        self.sources.append(src)
        return run

    @staticmethod
    def _emit_bucket(g: _Gen, members: list[CompiledMetric]) -> None:
        """The blocks of one bucket, sharing the reads several of them make."""
        saved = dict(g.shared), dict(g.shared_labels)
        g.hoist(
            sum((m.paths() for m in members), Counter()),
            sum((m.label_paths() for m in members), Counter()),
        )
        for m in members:
            m.emit(g)
        g.shared, g.shared_labels = saved

    def __call__(self, origin: Origin, events: list[Event]) -> None:
        if events:
            self._run(events, self._clock(), origin.source, origin.path)
