"""docs/configuration.md documents every key of the config, checked against the models.

The walker below visits `agent.config.Config` and every model nested in it (lists,
optional values, mappings, unions), whoever owns them, so a key added anywhere shows up
here as a failure naming the key until the reference documents it. Run this module as a
script to print table rows for the keys that are missing:

    .venv/bin/python -m tests.test_docs_config
"""

from __future__ import annotations

import ast
import inspect
import itertools
import re
import textwrap
import types
import typing
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal, Union

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from agent.config import Config
from agent.support.duration import format_duration, parse_duration
from tests.deploy_support import REPO

DOC = REPO / "docs" / "configuration.md"


@dataclass(frozen=True)
class Key:
    path: str  # `sources[].paths`, `metrics[].labels.<label>.field`
    type: str
    default: str
    doc: str
    section: str


def _is_duration(info: FieldInfo | None, annotation: Any) -> bool:
    metadata = list(info.metadata) if info is not None else []
    metadata += list(getattr(annotation, "__metadata__", ()))
    return any(getattr(m, "func", None) is parse_duration for m in metadata)


def _models_in(annotation: Any) -> list[tuple[str, type[BaseModel]]]:
    """Models reachable from a type, each with the path suffix leading to it."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [("", annotation)]
    if origin is typing.Annotated:
        return _models_in(args[0])
    if origin in (Union, types.UnionType):
        return [m for a in args for m in _models_in(a)]
    if origin in (list, tuple, set, frozenset):
        return [("[]" + s, m) for a in args if a is not Ellipsis for s, m in _models_in(a)]
    if origin is dict:
        return [(".<name>" + s, m) for s, m in _models_in(args[1])]
    return []


def type_name(annotation: Any, info: FieldInfo | None = None) -> str:
    if _is_duration(info, annotation):
        return "duration"
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return type_name(args[0], None) if not _is_duration(None, annotation) else "duration"
    if origin in (Union, types.UnionType):
        parts = [type_name(a) for a in args if a is not type(None)]
        return " or ".join(dict.fromkeys(parts))
    if origin is Literal:
        return " \\| ".join(f"`{a}`" for a in args)
    if origin in (list, tuple, set, frozenset):
        return f"list of {type_name(args[0])}" if args else "list"
    if origin is dict:
        return f"map of {type_name(args[1])}" if args else "map"
    if annotation is SecretStr:
        return "secret"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "object"
    if annotation is Any:
        return "any"
    return getattr(annotation, "__name__", str(annotation))


def default_text(info: FieldInfo, annotation: Any) -> str:
    if info.is_required():
        return "required"
    if info.default_factory is not None:
        value: Any = info.default_factory()  # type: ignore[call-arg]
    else:
        value = info.default
    if value is PydanticUndefined:
        return "required"
    if value is None:
        return "-"
    if isinstance(value, BaseModel):
        return "see below"
    if isinstance(value, SecretStr):
        return '`""`' if not value.get_secret_value() else "(set)"
    if _is_duration(info, annotation) and isinstance(value, int | float):
        return f"`{format_duration(float(value))}`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, str):
        return f'`"{value}"`' if value == "" or " " in value else f"`{value}`"
    if isinstance(value, list | dict) and not value:
        return "`[]`" if isinstance(value, list) else "`{}`"
    return f"`{value}`"


@cache
def _attribute_docs(model: type[BaseModel]) -> dict[str, str]:
    """Docstrings written under fields (`x: int = 1` then `\"\"\"...\"\"\"`), base classes too."""
    docs: dict[str, str] = {}
    for cls in reversed(model.__mro__):
        if not (isinstance(cls, type) and issubclass(cls, BaseModel)) or cls is BaseModel:
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
        except (OSError, TypeError):
            continue
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for prev, node in itertools.pairwise(body):
            if (
                isinstance(prev, ast.AnnAssign)
                and isinstance(prev.target, ast.Name)
                and isinstance(node, ast.Expr)
                and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)
            ):
                docs[prev.target.id] = " ".join(node.value.value.split())
    return docs


def walk(
    model: type[BaseModel] = Config,
    prefix: str = "",
    section: str = "",
    seen: tuple[type[BaseModel], ...] = (),
) -> list[Key]:
    """Every key of `model` and the models nested in it, depth first. A model nested in
    itself (the route tree) is documented once, at its first level."""
    keys: list[Key] = []
    seen = (*seen, model)
    secret_fields: tuple[str, ...] = getattr(model, "secret_fields", ())
    for name, info in model.model_fields.items():
        if info.exclude:
            continue  # not user-facing (e.g. base_dir)
        key = info.alias or name
        path = f"{prefix}.{key}" if prefix else key
        annotation = info.annotation
        doc = info.description or _attribute_docs(model).get(name, "")
        keys.append(
            Key(
                path,
                type_name(annotation, info),
                default_text(info, annotation),
                doc,
                section or key,
            )
        )
        if name in secret_fields:
            keys.append(Key(f"{path}_file", "path", "-", f"file holding `{key}`", section or key))
        for suffix, sub in _models_in(annotation):
            if sub not in seen:
                keys.extend(walk(sub, f"{path}{suffix}", section or key, seen))
    return keys


def documented_keys() -> set[str]:
    """Every backticked key in the first column of a table in docs/configuration.md."""
    found: set[str] = set()
    for line in DOC.read_text().splitlines():
        m = re.match(r"\|\s*`([^`]+)`\s*\|", line)
        if m:
            found.add(m.group(1))
    return found


def test_walker_sees_nested_and_foreign_models() -> None:
    paths = {k.path for k in walk()}
    # Spot checks across owners: root, sources, metrics, server, alerting, secrets.
    assert {
        "state_dir",
        "sources[].paths",
        "checkpoint.interval",
        "metrics[].buckets",
        "metrics[].labels.<name>.regex",
        "server.tls.cert_file",
        "server.basic_auth.password_file",
        "alerting.route.routes",
        "alerting.receivers[].slack_configs[].api_url_file",
        "alerting.receivers[].email_configs[].from",
    } <= paths
    assert "base_dir" not in paths


def test_every_config_key_is_documented() -> None:
    missing = [k for k in walk() if k.path not in documented_keys()]
    assert not missing, (
        "docs/configuration.md does not document: "
        + ", ".join(k.path for k in missing)
        + "\nrows to add (python -m tests.test_docs_config):\n"
        + "\n".join(_row(k) for k in missing)
    )


def test_documented_keys_exist() -> None:
    """No stale rows: every documented key is a key of the models."""
    stale = documented_keys() - {k.path for k in walk()}
    assert not stale, (
        f"docs/configuration.md documents keys the config no longer has: {sorted(stale)}"
    )


def _rows() -> dict[str, list[str]]:
    """key -> its row's cells (key, type, default, meaning), `\\|` kept inside a cell."""
    rows: dict[str, list[str]] = {}
    for line in DOC.read_text().splitlines():
        if not line.startswith("| `"):
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        rows[cells[0].strip("`")] = cells
    return rows


def test_documented_types_and_defaults_match_the_models() -> None:
    rows = _rows()
    wrong = [
        f"{k.path}: documented {rows[k.path][1]} / {rows[k.path][2]}, "
        f"the model says {k.type} / {k.default}"
        for k in walk()
        if k.path in rows and rows[k.path][1:3] != [k.type, k.default]
    ]
    assert not wrong, "\n".join(wrong)


def _row(k: Key) -> str:
    return f"| `{k.path}` | {k.type} | {k.default} | {k.doc} |"


if __name__ == "__main__":
    have = documented_keys() if DOC.exists() else set()
    section = ""
    for k in walk():
        if k.path in have:
            continue
        if k.section != section:
            section = k.section
            print(
                f"\n## {section}\n\n| key | type | default | meaning |\n| --- | --- | --- | --- |"
            )
        print(_row(k))
