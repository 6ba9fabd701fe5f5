"""Decoder options in a source's config are checked when the config loads, not mid-stream."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tests.decode_support import source


@pytest.mark.parametrize("format", ["cri", "docker", "auto"])
def test_inner_format_regex_without_a_regex_is_a_config_error(format: str) -> None:
    with pytest.raises(ValidationError, match="`inner_format: regex` needs a `regex`"):
        source(format, inner_format="regex")


def test_inner_format_regex_with_a_regex_is_accepted() -> None:
    cfg = source("cri", inner_format="regex", regex=r"level=(?P<level>\w+)")
    assert cfg.inner_format == "regex"


def test_a_regex_without_named_groups_is_a_config_error() -> None:
    with pytest.raises(ValidationError, match="named group"):
        source("regex", regex=r"(\d+) (\w+)")
