"""Building blocks shared by every config model: strict base model, durations, secrets.

Each component keeps its config type beside its code (as Vector does); this module holds
only what they all share, so `agent.config` can assemble the root without import cycles.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, ClassVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainSerializer,
    SecretStr,
    ValidationInfo,
    model_validator,
)

_DURATION_RE = re.compile(r"^\s*((?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w|y))+)\s*$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)")
_UNIT_SECONDS = {
    "ms": 0.001,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 7 * 86400.0,
    "y": 365 * 86400.0,
}


def parse_duration(value: Any) -> float:
    """Parse `500ms`, `5s`, `15m`, `1h`, `1d`, `1h30m` (Prometheus style) into seconds.

    Plain numbers are taken as seconds so `interval: 5` also works.
    """
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 500ms, 5s, 15m, 1h or 1d")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    if isinstance(value, str):
        m = _DURATION_RE.match(value)
        if m:
            return sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(m.group(1)))
    raise ValueError(f"expected a duration such as 500ms, 5s, 15m, 1h or 1d, got {value!r}")


def format_duration(seconds: float) -> str:
    """The shortest Prometheus-style spelling of a duration (`90` -> `1m30s`)."""
    if seconds == 0:
        return "0s"
    ms = round(seconds * 1000)
    out = []
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
        n, ms = divmod(ms, size)
        if n:
            out.append(f"{n}{unit}")
    return "".join(out)


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
]


class Model(BaseModel):
    """Strict base: unknown keys are errors; `x_file` fills any secret field `x`.

    A subclass lists its secret fields in `secret_fields`; for each, the config may give
    either the value or `<name>_file`, a path whose content (trailing newline stripped) is
    the value, as a mounted Kubernetes Secret provides it.
    """

    model_config = ConfigDict(extra="forbid", frozen=False, populate_by_name=True)
    secret_fields: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="before")
    @classmethod
    def _read_secret_files(cls, data: Any, info: ValidationInfo) -> Any:
        if not cls.secret_fields or not isinstance(data, dict):
            return data
        data = dict(data)
        for name in cls.secret_fields:
            file_key = f"{name}_file"
            if file_key not in data:
                continue
            path = data.pop(file_key)
            if name in data and data[name] is not None:
                raise ValueError(f"give either {name} or {file_key}, not both")
            file = Path(str(path))
            base = (info.context or {}).get("base_dir")
            if base is not None and not file.is_absolute():
                file = Path(base) / file  # relative to the config file, as every path
            try:
                data[name] = file.read_text(encoding="utf-8").rstrip("\r\n")
            except OSError as exc:
                raise ValueError(f"{file_key}: cannot read {path}: {exc.strerror}") from None
        return data


Secret = SecretStr
