"""Building blocks shared by every config model: strict base model, durations, secrets.

Each component keeps its config type beside its code (as Vector does); this module holds
only what they all share, so `agent.config` can assemble the root without import cycles.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, ClassVar
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainSerializer,
    SecretStr,
    ValidationInfo,
    model_validator,
)

from agent.support.duration import format_duration, parse_duration

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


def http_url(value: str) -> str:
    """A URL chatwatch will POST to: `http://` or `https://` and a host. Raises ValueError
    without echoing the value, since webhook URLs are secrets (Slack's carries its token)."""
    parsed = urlsplit(value.strip())
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        shown = f"scheme {parsed.scheme!r}" if parsed.scheme else "text that is not a URL"
        raise ValueError(f"expected an http:// or https:// URL, got {shown} (value not shown)")
    return value


def host_port(value: str) -> str:
    """`host:port` (an SMTP smarthost)."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"expected host:port such as smtp.example.org:587, got {value!r}")
    return value


def secret_http_url(value: SecretStr) -> SecretStr:
    """`http_url` for a secret field."""
    http_url(value.get_secret_value())
    return value


SECRET_SHOWN = "<secret>"
_URL_PASSWORD = re.compile(r"^([a-z][a-z0-9+.-]*://[^/@:\s]*):[^/@\s]*@", re.IGNORECASE)


def redacted(model: BaseModel) -> dict[str, Any]:
    """The model as plain data for people to read, every secret shown as `<secret>`:
    secret fields, header values (they carry tokens) and passwords inside URLs."""
    return redact_data(model.model_dump(mode="python", exclude_none=True, by_alias=True))


def redact_data(value: Any, key: str = "") -> Any:
    """`redacted` for data already dumped from a model (secrets still `SecretStr`)."""
    return _redact(value, key)


def _redact(value: Any, key: str) -> Any:
    if isinstance(value, SecretStr):
        return SECRET_SHOWN
    if isinstance(value, dict):
        if key.endswith("headers"):
            return dict.fromkeys(value, SECRET_SHOWN)
        return {str(k): _redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact(v, key) for v in value]
    if isinstance(value, str):
        return _URL_PASSWORD.sub(rf"\1:{SECRET_SHOWN}@", value)
    if isinstance(value, Path):
        return str(value)
    return value
