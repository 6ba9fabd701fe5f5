"""Config of metric definitions (`metrics:`), compiled into update functions by extract.py.

Everything a user can get wrong is rejected here, at load time, with the key path that
is wrong (`metrics[3].buckets: ...`), so nothing surprises at 3 a.m.

Semantics, in brief (docs hold the long form):

- `match`: field path -> condition; all must hold. A plain value is equality; a mapping
  holds operators (`in`, `not`, `regex`, `exists`, `gt`, `gte`, `lt`, `lte`), all of which
  must hold. Values compare as their text form, as Prometheus compares label values:
  `200` matches `"200"`, `true` matches `"true"`. A missing (or null) field fails every
  condition except `not` and `exists: false`. `regex` must match the whole value.
- Field paths: `usage.prompt_tokens` reaches into nested objects; a flat key containing
  the dots (`"usage.prompt_tokens": 3`) is tried first. Wherever a field path is read,
  `a | b` reads `a`, or `b` when `a` is missing (alternatives, first present wins); in
  numbers (`value`, `cost`), `a + b` adds fields (present when its first field is; a
  missing later one counts 0).
- `labels`: label name -> field path, or `{field, regex, replacement, default, required}`:
  the regex must match the whole value; `replacement` may use `$1`, `${1}`, `$name`,
  `${name}` (Go/Prometheus expansion; in the config file `${...}` is environment
  expansion, so write `$${name}` or `$name`); a missing field or a value the regex does
  not match gives `default` (empty, that is no label, unless set); `required: true` skips
  events without the field instead (counted as `missing_label`). Then `path_template`
  turns id segments of a path into `:id`, and `map` looks the value up (unmapped values
  give `default`).
- counter: counts matching events, or adds `value` (times `scale`); names end in `_total`.
- gauge: `action` is `set` (from `value`), `inc`, `dec` (by 1, or by `value` when given) or
  `set_to_event_time` (the event's `timestamp_field`, else the time it was read); or a
  mapping from the value of `action_field` to one of those actions. `action_field` may be
  left out when `match` names exactly one field.
- histogram: `value` times `scale` observed into `buckets` (default: Prometheus' buckets).
- `value` may be a mapping `{label value: field}` with `value_label`: each field present
  is added/observed with that label (`{input: usage.prompt_tokens, output: ...}`).
- `cost` (counters, histograms): the value is what the call cost in USD, from token
  counts and the root `pricing:` table (pricing.py); the price is looked up by model.
"""

from __future__ import annotations

import math
import re
from typing import Any, Literal

from prometheus_client import Histogram
from pydantic import Field, PrivateAttr, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from agent.metrics.pricing import PriceTable
from agent.support.configmodel import Duration, Model

METRIC_NAME_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL_NAME_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")

MATCH_OPERATORS = ("in", "not", "regex", "exists", "gt", "gte", "lt", "lte")
GAUGE_ACTIONS = ("set", "inc", "dec", "set_to_event_time")
ORIGIN_LABELS = ("source", "path")
DEFAULT_BUCKETS: tuple[float, ...] = tuple(b for b in Histogram.DEFAULT_BUCKETS if b != math.inf)
MAX_LABEL_VALUE_BYTES = 1024
"""Default cap on a label value taken from an event (root `max_label_value_bytes`)."""
MIN_LABEL_VALUE_BYTES = 16
"""Smallest cap accepted: room for the `…` marker and a recognisable start."""

# `$$`, `${name}` or `$name` (name as long as possible, as Go's regexp.Expand reads it).
_TEMPLATE_RE = re.compile(r"\$(?:\$|\{([A-Za-z0-9_]+)\}|([A-Za-z0-9_]+))")


def parse_replacement(template: str) -> list[tuple[bool, str | int]]:
    """Split a relabel `replacement` into `(is_group_ref, text_or_group)` parts.

    Follows Go's `regexp.Expand`, as Prometheus does: `$$` is a literal `$`; `$1x` is
    group `1x` (names are taken as long as possible), hence `${1}x` for group 1 then `x`.
    """
    parts: list[tuple[bool, str | int]] = []
    pos = 0
    for m in _TEMPLATE_RE.finditer(template):
        if m.start() > pos:
            parts.append((False, template[pos : m.start()]))
        pos = m.end()
        if m.group(0) == "$$":
            parts.append((False, "$"))
            continue
        ref = m.group(1) or m.group(2)
        parts.append((True, int(ref) if ref.isdigit() else ref))
    if pos < len(template):
        parts.append((False, template[pos:]))
    return parts


def _err(loc: tuple[str | int, ...], message: str, value: Any) -> InitErrorDetails:
    return InitErrorDetails(
        type=PydanticCustomError("value_error", message),
        loc=loc,
        input=value,
    )


def _compile_regex(pattern: Any) -> re.Pattern[str] | str:
    """The compiled pattern, or an error message."""
    if not isinstance(pattern, str):
        return f"expected a regular expression (a string), got {pattern!r}"
    try:
        return re.compile(pattern)
    except re.error as exc:
        return f"not a valid regular expression: {exc}"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def valid_path(path: str) -> bool:
    return bool(path) and all(path.split("."))


def parse_field(expr: str, *, sums: bool = False) -> list[list[str]] | str:
    """`a | b + c` as alternatives of summed paths (`[["a"], ["b", "c"]]`), or what is
    wrong with it. `sums` allows `+` (numbers only)."""
    alternatives: list[list[str]] = []
    for alt in expr.split("|"):
        terms = [t.strip() for t in alt.split("+")]
        if len(terms) > 1 and not sums:
            return f"{expr!r}: `+` adds numbers; it belongs in `value` or `cost` only"
        for term in terms:
            if not valid_path(term):
                return (
                    f"not a field path (such as `status` or `usage.model`, or alternatives "
                    f"`a | b`): {expr!r}"
                )
        alternatives.append(terms)
    return alternatives


def field_text(alternatives: list[list[str]]) -> str:
    """The normal spelling of a parsed field expression: `a | b + c`."""
    return " | ".join(" + ".join(terms) for terms in alternatives)


def normal_field(expr: str, *, sums: bool = False) -> str:
    """`expr` spelled the normal way; raises ValueError (a message for the user) if bad."""
    if "|" not in expr and "+" not in expr:
        if not valid_path(expr):
            raise ValueError(
                f"not a field path (such as `status` or `usage.model`, or alternatives "
                f"`a | b`): {expr!r}"
            )
        return expr
    parsed = parse_field(expr, sums=sums)
    if isinstance(parsed, str):
        raise ValueError(parsed)
    return field_text(parsed)


def presence_field(expr: str) -> str:
    """The alternatives whose presence makes `expr` present: the first path of each sum."""
    parsed = parse_field(expr, sums=True)
    assert not isinstance(parsed, str), expr
    return " | ".join(dict.fromkeys(terms[0] for terms in parsed))


def _scalar_key(value: Any) -> Any:
    """A YAML key or value (`200`, `true`) as the text a label value compares with."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(int(value)) if float(value).is_integer() else repr(float(value))
    return value


class LabelFrom(Model):
    """A label computed from a field in the manner of Prometheus relabelling."""

    field: str
    regex: str | None = None
    replacement: str = "$1"
    default: str = ""
    required: bool = False
    """When the field is missing (or null), skip the event for this metric and count it
    (`chatwatch_extract_errors_total{reason="missing_label"}`) instead of using `default`."""
    path_template: bool = False
    """Turn the id segments of a URL path into `:id` (UUIDs, numbers, hex ids of 8 or more
    digits) and drop the query string: `/sessions/8f2c...e1/messages?x=1` becomes
    `/sessions/:id/messages`."""
    map: dict[str, str] | None = None
    """Value -> label value (`{"Escalated to agent": escalated}`), applied last; a value not
    in the map gives `default`."""

    @field_validator("field")
    @classmethod
    def _field_path(cls, value: str) -> str:
        return normal_field(value)

    @field_validator("map", mode="before")
    @classmethod
    def _map_text(cls, value: Any) -> Any:
        """YAML reads `200: ok` or `true: yes` with a number or bool key: compare as text."""
        if not isinstance(value, dict):
            return value
        return {_scalar_key(k): _scalar_key(v) for k, v in value.items()}

    @field_validator("regex")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            compiled = _compile_regex(value)
            if isinstance(compiled, str):
                raise ValueError(compiled)
        return value

    @model_validator(mode="after")
    def _replacement_groups(self) -> LabelFrom:
        if self.regex is None:
            if self.replacement != "$1":
                raise ValidationError.from_exception_data(
                    "LabelFrom",
                    [_err(("replacement",), "`replacement` needs a `regex`", self.replacement)],
                )
            return self
        compiled = re.compile(self.regex)
        for is_ref, part in parse_replacement(self.replacement):
            if not is_ref:
                continue
            if isinstance(part, int):
                if part <= compiled.groups:
                    continue
                problem = f"refers to group ${part} but the regex has {compiled.groups} group(s)"
            else:
                name = part
                if name in compiled.groupindex:
                    continue
                problem = f"refers to group {name!r}, which the regex does not have"
                if name[0].isdigit():
                    digits = re.match(r"\d+", name)
                    assert digits is not None
                    rest = name[digits.end() :]
                    problem += f" (write ${{{digits.group(0)}}}{rest} for group {digits.group(0)})"
            raise ValidationError.from_exception_data(
                "LabelFrom", [_err(("replacement",), problem, self.replacement)]
            )
        return self


class CostConfig(Model):
    """What an LLM call cost, from its token counts and the price of its model (USD per
    million tokens, from the root `pricing:` or `pricing_file:`).

    cost = ((input - cache_read - cache_write) x input price + cache_read x cached_input
    price + cache_write x cache_write price + output x output price) / 1e6. A model with
    no price is not guessed: the event is counted in `chatwatch_genai_unpriced_total`."""

    model: str
    """Field whose value names the model, the key of the price table."""
    input: str | None = None
    """Input (prompt) tokens, cached ones included (as OpenAI's `prompt_tokens`); `a + b`
    adds fields (Anthropic: `usage.input_tokens + usage.cache_read_input_tokens + ...`)."""
    output: str | None = None
    """Output (completion) tokens."""
    cache_read: str | None = None
    """Input tokens served from the provider's cache (part of `input`), at `cached_input`."""
    cache_write: str | None = None
    """Input tokens written to the provider's cache (part of `input`), at `cache_write`."""
    _table: PriceTable | None = PrivateAttr(default=None)

    @field_validator("model")
    @classmethod
    def _model_field(cls, value: str) -> str:
        return normal_field(value)

    @field_validator("input", "output", "cache_read", "cache_write")
    @classmethod
    def _token_field(cls, value: str | None) -> str | None:
        return None if value is None else normal_field(value, sums=True)

    @model_validator(mode="after")
    def _some_tokens(self) -> CostConfig:
        if self.input is None and self.output is None:
            raise ValueError("give the token fields: `input` and/or `output`")
        return self

    @property
    def table(self) -> PriceTable | None:
        """The price table the root config attached (`pricing:` / `pricing_file:`)."""
        return self._table

    def price_with(self, table: PriceTable) -> None:
        self._table = table

    def token_fields(self) -> list[tuple[str, str]]:
        """(kind, field) of the token counts given, in the order the formula reads them."""
        kinds = ("input", "cache_read", "cache_write", "output")
        return [(k, getattr(self, k)) for k in kinds if getattr(self, k) is not None]


class MetricConfig(Model):
    name: str
    type: Literal["counter", "gauge", "histogram"]
    help: str = ""
    match: dict[str, Any] = {}
    """Field path -> value (equality) or {in, not, regex, exists, gt, gte, lt, lte}."""
    labels: dict[str, str | LabelFrom] = {}
    """Label name -> field path, or {field, regex, replacement, default}."""
    static_labels: dict[str, str] = {}
    origin_labels: list[Literal["source", "path"]] = []
    """Add the source name (`source`) and/or file path (`path`) as labels of those names."""
    value: str | dict[str, str] | None = None
    """Field path of the number: added (counter), set/added (gauge), observed (histogram);
    or, for counters and histograms, a map `{label value: field path}` with `value_label`:
    each field present is counted under its label value."""
    value_label: str | None = None
    """With a `value` map: the label that says which field was counted
    (`gen_ai_token_type` with `{input: ..., output: ...}`)."""
    cost: CostConfig | None = None
    """Counters and histograms: the value is what the event's LLM call cost in USD, from
    token counts priced by the root `pricing:` table (instead of `value`)."""
    scale: float = 1.0
    buckets: list[float] | None = None
    action: str | dict[str, str] | None = None
    action_field: str | None = None
    timestamp_field: str | None = None
    """For `set_to_event_time`: the event's time (epoch seconds, epoch ms, or ISO 8601)."""
    max_series: int = Field(default=1000, gt=0)
    max_label_value_bytes: int | None = Field(default=None, ge=MIN_LABEL_VALUE_BYTES)
    """Cap on the UTF-8 size of each label value taken from an event; a longer one is cut
    to fit, ending in `…`, and counted in `chatwatch_label_values_truncated_total`. Unset:
    the root `max_label_value_bytes`."""
    expire_after: Duration | None = None

    @field_validator("name")
    @classmethod
    def _metric_name(cls, value: str) -> str:
        if not METRIC_NAME_RE.match(value):
            raise ValueError(f"not a valid Prometheus metric name: {value!r}")
        if ":" in value:
            raise ValueError("colons in metric names are reserved for recording rules")
        if value.startswith("chatwatch_"):
            raise ValueError(
                "names starting with chatwatch_ are reserved for chatwatch's own metrics"
            )
        return value

    @field_validator("labels", mode="before")
    @classmethod
    def _label_specs(cls, value: Any) -> Any:
        """Validate relabel mappings here so an error names only the key that is wrong."""
        if not isinstance(value, dict):
            return value
        out: dict[str, Any] = {}
        problems: list[InitErrorDetails] = []
        for name, spec in value.items():
            if isinstance(spec, dict):
                try:
                    spec = LabelFrom.model_validate(spec)
                except ValidationError as exc:
                    for e in exc.errors():
                        problems.append(
                            InitErrorDetails(
                                type=PydanticCustomError(e["type"], e["msg"]),
                                loc=(name, *e["loc"]),
                                input=e["input"],
                            )
                        )
                    continue
            elif not isinstance(spec, str):
                problems.append(
                    _err(
                        (name,),
                        "expected a field path or {field, regex, replacement, default}",
                        spec,
                    )
                )
                continue
            else:
                try:
                    spec = normal_field(spec)
                except ValueError as exc:
                    problems.append(_err((name,), str(exc), spec))
                    continue
            out[name] = spec
        if problems:
            raise ValidationError.from_exception_data("labels", problems)
        return out

    @field_validator("buckets")
    @classmethod
    def _buckets(cls, value: list[float] | None) -> list[float] | None:
        if value is None:
            return None
        if value and value[-1] == math.inf:
            value = value[:-1]  # +Inf is always there
        if not value:
            raise ValueError("give at least one bucket upper bound (+Inf is added for you)")
        for i, b in enumerate(value):
            if math.isnan(b) or math.isinf(b):
                raise ValueError(f"bucket {i} is {b}: bounds must be finite numbers")
            if i and b <= value[i - 1]:
                raise ValueError(
                    f"bucket bounds must strictly increase: {value[i - 1]:g} is followed by {b:g}"
                )
        return value

    @field_validator("scale")
    @classmethod
    def _scale(cls, value: float) -> float:
        if not math.isfinite(value) or value == 0:
            raise ValueError("scale must be a finite, non-zero number")
        return value

    @field_validator("action_field", "timestamp_field")
    @classmethod
    def _path(cls, value: str | None) -> str | None:
        return None if value is None else normal_field(value)

    @field_validator("value", mode="before")
    @classmethod
    def _value(cls, value: Any) -> Any:
        if isinstance(value, str):
            return normal_field(value, sums=True)
        if isinstance(value, dict):
            if not value:
                raise ValueError("the value map is empty: give {label value: field path}")
            return {_scalar_key(k): normal_field(str(v), sums=True) for k, v in value.items()}
        return value

    @field_validator("match", mode="after")
    @classmethod
    def _match_keys(cls, value: dict[str, Any]) -> dict[str, Any]:
        """Alternatives in a key (`"a | b": {exists: true}`) spelled the normal way; keys
        that are not field paths are reported by the checks below."""
        out = {}
        for key, cond in value.items():
            parsed = parse_field(key)
            out[key if isinstance(parsed, str) else field_text(parsed)] = cond
        return out

    @field_validator("origin_labels")
    @classmethod
    def _origin_unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("each origin label may appear once")
        return value

    @model_validator(mode="after")
    def _semantics(self) -> MetricConfig:
        problems: list[InitErrorDetails] = []
        problems += self._check_match()
        problems += self._check_labels()
        problems += self._check_type()
        if problems:
            raise ValidationError.from_exception_data("MetricConfig", problems)
        return self

    # -- checks -------------------------------------------------------------------------

    def _check_match(self) -> list[InitErrorDetails]:
        problems = []
        for path, cond in self.match.items():
            loc: tuple[str | int, ...] = ("match", path)
            if isinstance(parse_field(path), str):
                problems.append(_err(loc, f"not a field path: {path!r}", path))
                continue
            if isinstance(cond, list):
                problems.append(
                    _err(loc, "a list is not a value to compare with; use {in: [...]}", cond)
                )
                continue
            if not isinstance(cond, dict):
                continue  # equality with a scalar
            if not cond:
                problems.append(
                    _err(loc, f"give an operator: one of {', '.join(MATCH_OPERATORS)}", cond)
                )
            for op, arg in cond.items():
                oloc = (*loc, op)
                if op not in MATCH_OPERATORS:
                    problems.append(
                        _err(
                            oloc,
                            f"unknown operator; expected one of {', '.join(MATCH_OPERATORS)}",
                            op,
                        )
                    )
                elif op == "in":
                    if not isinstance(arg, list) or not arg or not all(map(_is_scalar, arg)):
                        problems.append(_err(oloc, "expected a non-empty list of values", arg))
                elif op == "not":
                    ok = _is_scalar(arg) or (isinstance(arg, list) and all(map(_is_scalar, arg)))
                    if not ok:
                        problems.append(_err(oloc, "expected a value or a list of values", arg))
                elif op == "regex":
                    compiled = _compile_regex(arg)
                    if isinstance(compiled, str):
                        problems.append(_err(oloc, compiled, arg))
                elif op == "exists":
                    if not isinstance(arg, bool):
                        problems.append(_err(oloc, "expected true or false", arg))
                elif not _is_number(arg) or not math.isfinite(arg):
                    problems.append(_err(oloc, "expected a number", arg))
        return problems

    def _check_labels(self) -> list[InitErrorDetails]:
        problems = []
        seen: dict[str, str] = {}
        reserved = {"le"} if self.type == "histogram" else set()
        groups: list[tuple[str, list[str]]] = [
            ("labels", list(self.labels)),
            ("static_labels", list(self.static_labels)),
            ("value_label", [self.value_label] if self.value_label is not None else []),
        ]
        for key, names in groups:
            for name in names:
                loc: tuple[str | int, ...] = (key,) if key == "value_label" else (key, name)
                if not LABEL_NAME_RE.match(name):
                    problems.append(_err(loc, f"not a valid label name: {name!r}", name))
                elif name.startswith("__"):
                    problems.append(_err(loc, "label names starting with __ are reserved", name))
                elif name in reserved:
                    problems.append(_err(loc, "`le` is the bucket label of histograms", name))
                elif name in seen:
                    problems.append(_err(loc, f"label {name!r} is also set in {seen[name]}", name))
                seen.setdefault(name, key)
        for i, name in enumerate(self.origin_labels):
            if name in seen:
                problems.append(
                    _err(("origin_labels", i), f"label {name!r} is also set in {seen[name]}", name)
                )
        return problems

    def _check_type(self) -> list[InitErrorDetails]:
        problems = []
        if self.type != "gauge":
            for key in ("action", "action_field", "timestamp_field"):
                if getattr(self, key) is not None:
                    problems.append(
                        _err((key,), f"`{key}` applies to gauges only", getattr(self, key))
                    )
        if self.type == "counter" and not self.name.endswith("_total"):
            problems.append(
                _err(
                    ("name",),
                    f"counter names end in _total (Prometheus convention, required by "
                    f"OpenMetrics): use {self.name}_total",
                    self.name,
                )
            )
        if self.type != "counter":
            for suffix in ("_total", "_bucket", "_count", "_sum"):
                if self.name.endswith(suffix) and (self.type == "histogram" or suffix != "_total"):
                    problems.append(
                        _err(("name",), f"a {self.type} name should not end in {suffix}", self.name)
                    )
                    break
        if self.type != "histogram" and self.buckets is not None:
            problems.append(
                _err(("buckets",), "`buckets` applies to histograms only", self.buckets)
            )
        problems += self._check_value()
        if self.type == "histogram" and self.value is None and self.cost is None:
            problems.append(
                _err(
                    ("value",),
                    "a histogram needs `value`: the field path of the number to observe",
                    None,
                )
            )
        if self.type == "gauge":
            problems += self._check_gauge()
        return problems

    def _check_value(self) -> list[InitErrorDetails]:
        problems = []
        mapped = isinstance(self.value, dict)
        if self.cost is not None:
            if self.type == "gauge":
                problems.append(_err(("cost",), "`cost` applies to counters and histograms", None))
            if self.value is not None:
                problems.append(
                    _err(("value",), "give `value` or `cost`, not both: cost is the value", None)
                )
        if mapped and self.type == "gauge":
            problems.append(
                _err(("value",), "a value map applies to counters and histograms", self.value)
            )
        if mapped and self.value_label is None:
            problems.append(
                _err(
                    ("value_label",),
                    "a value map needs `value_label`: the label that says which field was counted",
                    None,
                )
            )
        if not mapped and self.value_label is not None:
            problems.append(
                _err(("value_label",), "`value_label` goes with a value map", self.value_label)
            )
        return problems

    def _check_gauge(self) -> list[InitErrorDetails]:
        problems = []
        action = self.action
        if action is None:
            if self.value is None:
                problems.append(
                    _err(
                        ("action",),
                        "a gauge needs `value` (to set it) or an `action` "
                        "(set, inc, dec, set_to_event_time, or a mapping to those)",
                        None,
                    )
                )
            return problems
        actions = [action] if isinstance(action, str) else list(action.values())
        for a in actions:
            if a not in GAUGE_ACTIONS:
                loc: tuple[str | int, ...] = (
                    ("action",)
                    if isinstance(action, str)
                    else ("action", next(k for k, v in action.items() if v == a))
                )
                problems.append(
                    _err(
                        loc, f"unknown action {a!r}; expected one of {', '.join(GAUGE_ACTIONS)}", a
                    )
                )
        if "set" in actions and self.value is None:
            problems.append(
                _err(("value",), "action `set` needs `value`: the field path of the number", None)
            )
        if self.timestamp_field is not None and "set_to_event_time" not in actions:
            problems.append(
                _err(
                    ("timestamp_field",),
                    "`timestamp_field` is used by action `set_to_event_time` only",
                    self.timestamp_field,
                )
            )
        if isinstance(action, dict):
            if not action:
                problems.append(_err(("action",), "the action mapping is empty", action))
            if self.action_field is None and len(self.match) != 1:
                problems.append(
                    _err(
                        ("action_field",),
                        "an action mapping needs `action_field`: the field whose value picks the "
                        "action (it may be left out only when `match` names exactly one field)",
                        None,
                    )
                )
        elif self.action_field is not None:
            problems.append(
                _err(
                    ("action_field",),
                    "`action_field` goes with an action mapping",
                    self.action_field,
                )
            )
        return problems

    # -- derived ------------------------------------------------------------------------

    @property
    def resolved_action_field(self) -> str | None:
        if isinstance(self.action, dict):
            return self.action_field or next(iter(self.match))
        return None

    @property
    def label_value_limit(self) -> int:
        """The cap on label values from events: this metric's, else the default (the
        root config fills in its own `max_label_value_bytes` at load)."""
        limit = self.max_label_value_bytes
        return MAX_LABEL_VALUE_BYTES if limit is None else limit

    @property
    def bucket_bounds(self) -> tuple[float, ...]:
        return tuple(self.buckets) if self.buckets is not None else DEFAULT_BUCKETS

    @property
    def help_text(self) -> str:
        return self.help or f"{self.name}: a {self.type} from chatbot logs (chatwatch)."
