"""The whole configuration: one YAML file, validated by pydantic models.

`load()` reads the file, expands `${VAR}` in string values, validates, and either returns
a `Config` or raises `ConfigError` listing every problem as `file: key.path: what was
expected`. Unknown keys are errors everywhere.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, ValidationInfo, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from agent.metrics.config import MAX_LABEL_VALUE_BYTES, MIN_LABEL_VALUE_BYTES, MetricConfig
from agent.metrics.presets import PresetConfig, expand
from agent.metrics.pricing import ModelPrice, price_table
from agent.notify.config import AlertingConfig, missing_hint
from agent.server.config import ServerConfig
from agent.sources.config import CheckpointConfig, SourceConfig
from agent.support.configmodel import Duration, Model
from agent.support.yamlfile import YAMLProblem, load_yaml


class Config(Model):
    sources: list[SourceConfig] = Field(min_length=1)
    state_dir: str = "/var/lib/chatwatch"
    """Checkpoints and alert state live here (one writable volume in a read-only pod)."""
    checkpoint: CheckpointConfig = CheckpointConfig()
    server: ServerConfig = ServerConfig()
    metrics: list[MetricConfig] = []
    max_label_value_bytes: int = Field(default=MAX_LABEL_VALUE_BYTES, ge=MIN_LABEL_VALUE_BYTES)
    """Cap on the UTF-8 size of a label value taken from an event, for every metric that
    does not set its own: a longer one is cut to fit, ending in `…` (the event is still
    counted), and counted in `chatwatch_label_values_truncated_total{metric,label}`."""
    metrics_presets: list[PresetConfig] = []
    """Presets whose definitions are added to `metrics` at load: `[genai]`, or
    `[{preset: genai, ...options}]`."""
    pricing: dict[str, ModelPrice] = {}
    """Model (or `/regex/`) -> USD per million tokens, for `cost:` and the genai preset."""
    pricing_file: str | None = None
    """A YAML file holding the same mapping as `pricing:` (which wins for a model in both)."""
    rule_files: list[str] = []
    evaluation_interval: Duration = 1.0
    alerting: AlertingConfig = AlertingConfig()

    # Where the file was read from; rule_files globs are relative to its folder.
    base_dir: Path = Field(default=Path("."), exclude=True)

    @model_validator(mode="after")
    def _metric_presets_and_prices(self, info: ValidationInfo) -> Config:
        """Add the presets' definitions to `metrics` and give cost metrics their prices."""

        def problem(loc: tuple[str | int, ...], message: str) -> ValidationError:
            error = PydanticCustomError("value_error", message)
            return ValidationError.from_exception_data(
                "Config", [InitErrorDetails(type=error, loc=loc, input=None)]
            )

        base = (info.context or {}).get("base_dir")
        try:
            table = price_table(self.pricing, self.pricing_file, base)
        except ValueError as exc:
            where: tuple[str | int, ...] = ("pricing_file",) if self.pricing_file else ("pricing",)
            raise problem(where, str(exc)) from None
        defined = {m.name: f"metrics[{i}]" for i, m in enumerate(self.metrics)}
        generated: list[MetricConfig] = []
        for i, preset in enumerate(self.metrics_presets):
            for m in expand(preset, priced=bool(table)):
                if m.name in defined:
                    raise problem(
                        ("metrics_presets", i),
                        f"the preset defines {m.name}, as {defined[m.name]} does: rename "
                        "yours or name the preset once (widen its `match:` instead)",
                    )
                defined[m.name] = f"metrics_presets[{i}]"
                generated.append(m)
        self.metrics = [*self.metrics, *generated]
        for m in self.metrics:
            if m.max_label_value_bytes is None:
                m.max_label_value_bytes = self.max_label_value_bytes
        for i, m in enumerate(self.metrics):
            if m.cost is None:
                continue
            if not table:
                raise problem(
                    ("metrics", i, "cost"),
                    "a cost needs prices: set `pricing:` or `pricing_file:` at the root",
                )
            m.cost.price_with(table)
        return self

    @model_validator(mode="after")
    def _unique_names(self) -> Config:
        seen: set[str] = set()
        for i, src in enumerate(self.sources):
            if src.name in seen:
                raise ValueError(f"sources[{i}].name: {src.name!r} is used by another source")
            seen.add(src.name)
        if sum(1 for s in self.sources if s.stdin) > 1:
            raise ValueError("only one source can read stdin")
        metric_names: set[str] = set()
        for i, m in enumerate(self.metrics):
            if m.name in metric_names:
                raise ValueError(f"metrics[{i}].name: {m.name!r} is defined twice")
            metric_names.add(m.name)
        return self

    @property
    def checkpoint_path(self) -> Path:
        if self.checkpoint.path:
            return self.resolve(self.checkpoint.path)
        return self.resolve(self.state_dir) / "checkpoints.json"

    def resolve(self, path: str) -> Path:
        """A path from the config, relative to the config file's folder."""
        p = Path(path)
        return p if p.is_absolute() else self.base_dir / p


class ConfigError(Exception):
    """A config the user must fix. `problems` are complete sentences naming file and key."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


_ENV_RE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_env(value: Any, env: Mapping[str, str], where: str = "") -> Any:
    """Expand `${VAR}` and `${VAR:-default}` in every string; `$$` is a literal `$`.

    Expansion happens on parsed values, never on the YAML text, so a variable's value
    cannot change the structure of the document.
    """
    if isinstance(value, str):

        def sub(m: re.Match[str]) -> str:
            if m.group(0) == "$$":
                return "$"
            name, default = m.group(1), m.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            raise ConfigError([f"{where or '(root)'}: environment variable {name} is not set"])

        return _ENV_RE.sub(sub, value) if "$" in value else value
    if isinstance(value, list):
        return [expand_env(v, env, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {
            k: expand_env(v, env, f"{where}.{k}" if where else str(k)) for k, v in value.items()
        }
    return value


def format_loc(loc: tuple[int | str, ...]) -> str:
    """`('sources', 1, 'paths', 0)` -> `sources[1].paths[0]`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not out:
            out = str(part)
        else:
            out += f".{part}"
    return out or "(root)"


def _yaml_type(value: Any) -> str:
    """What YAML made of a value, in the user's words (the value itself is not shown: it
    may be a secret)."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _friendly(err: Mapping[str, Any]) -> str:
    kind = err.get("type", "")
    msg = str(err.get("msg", ""))
    if kind == "extra_forbidden":
        return "unknown key (check its spelling and where it is nested)"
    if kind == "missing":
        return "required key is missing"
    if kind == "literal_error":
        return msg.replace("Input should be", "expected one of")
    if kind.endswith(("_type", "_parsing")) and "input" in err:
        got = err["input"]
        expected = msg.split(",")[0].replace("Input should be", "expected")
        text = f"{expected}; got {_yaml_type(got)}"
        if kind == "string_type" and isinstance(got, int | float | bool):
            text += ' (quote it, as in "5", if it is meant as text)'
        return text
    return msg.removeprefix("Value error, ")


def validation_problems(file: str, exc: ValidationError) -> list[str]:
    problems = []
    for err in exc.errors():
        loc = tuple(
            p for p in err["loc"] if not (isinstance(p, str) and "[" in p and p.endswith("]"))
        )
        text = _friendly(err)
        if err.get("type") == "missing" and loc[:1] == ("alerting",):
            text += missing_hint(loc[1:])
        problems.append(f"{file}: {format_loc(loc)}: {text}")
    return problems


def load(path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> Config:
    """Read and validate a config file, or raise ConfigError naming every problem."""
    file = str(path)
    try:
        text = Path(file).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{file}: cannot read: {exc.strerror}"]) from None
    return loads(text, file, env)


def loads(text: str, file: str = "<config>", env: Mapping[str, str] | None = None) -> Config:
    try:
        raw = load_yaml(text, file)
    except YAMLProblem as exc:
        raise ConfigError([str(exc)]) from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(
            [f"{file}: (root): expected a mapping of keys such as sources:, metrics:"]
        )
    try:
        raw = expand_env(raw, os.environ if env is None else env)
    except ConfigError as exc:
        raise ConfigError([f"{file}: {p}" for p in exc.problems]) from None
    raw.pop("base_dir", None)
    base_dir = Path(file).resolve().parent if file != "<config>" else Path.cwd()
    try:
        cfg = Config.model_validate(raw, context={"base_dir": base_dir})
    except ValidationError as exc:
        raise ConfigError(validation_problems(file, exc)) from None
    cfg.base_dir = base_dir
    return cfg
