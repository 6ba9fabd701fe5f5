"""YAML as chatwatch reads it: one loader for the config and for rule files.

PyYAML keeps the last of two equal keys silently; Prometheus (and so chatwatch) rejects
them, so `for: 5m` written twice is an error naming both lines, not a silent override.
"""

from __future__ import annotations

from typing import Any

import yaml


class YAMLProblem(ValueError):
    """Text that is not valid YAML: the message names the file, line and column."""


class _UniqueKeyLoader(yaml.SafeLoader):
    pass


def _construct_mapping(
    loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False
) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"mapping key {key!r} already defined at line {seen[key]}",
                key_node.start_mark,
            )
        seen[key] = key_node.start_mark.line + 1
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_yaml(text: str, file: str) -> Any:
    """The document in `text`; YAMLProblem (`file: line L, column C: not valid YAML: ...`)."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise YAMLProblem(f"{file}: {where}not valid YAML: {problem}") from None
