"""Prices of LLM models, for metrics whose value is what a call cost (`cost:`).

The root config's `pricing:` (and `pricing_file:`, the same mapping in its own YAML file)
maps a model name to its prices in USD per million tokens:

    pricing:
      gpt-4o-mini: {input: 0.15, output: 0.60, cached_input: 0.075}
      /^claude-3-5-haiku-/: {input: 0.80, output: 4.00, cached_input: 0.08, cache_write: 1.00}

A key is a model name, or a regular expression written between slashes (searched in the
name: anchor it with `^...$` to match the whole name). A name is looked up exactly first,
then against the regular expressions in the order they are written; the first that
matches gives the price. A model that matches nothing has no price: chatwatch does not
guess one (the caller counts it).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError, field_validator, model_validator

from agent.support.configmodel import Model
from agent.support.yamlfile import YAMLProblem, load_yaml

PER_TOKEN = 1e-6
"""Prices are per million tokens."""
_LOOKUP_CACHE_SIZE = 4096

Prices = tuple[float, float, float, float]
"""USD per token: (input, cached input, cache write, output)."""


class ModelPrice(Model):
    """USD per million tokens of one model."""

    input: float
    """Input (prompt) tokens not served from a cache."""
    output: float
    """Output (completion) tokens."""
    cached_input: float | None = None
    """Input tokens served from the provider's prompt cache; unset: the `input` price."""
    cache_write: float | None = None
    """Input tokens written to the provider's prompt cache (Anthropic's cache creation);
    unset: the `input` price."""

    @field_validator("input", "output", "cached_input", "cache_write")
    @classmethod
    def _price(cls, value: float | None) -> float | None:
        if value is not None and (not math.isfinite(value) or value < 0):
            raise ValueError("a price is a number of USD per million tokens, 0 or more")
        return value

    @model_validator(mode="before")
    @classmethod
    def _mapping(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            raise ValueError(
                "expected {input: USD, output: USD} per million tokens "
                "(and optionally cached_input, cache_write)"
            )
        return data

    def per_token(self) -> Prices:
        i = self.input
        cached = i if self.cached_input is None else self.cached_input
        write = i if self.cache_write is None else self.cache_write
        return (i * PER_TOKEN, cached * PER_TOKEN, write * PER_TOKEN, self.output * PER_TOKEN)


def is_pattern(key: str) -> bool:
    return len(key) >= 2 and key.startswith("/") and key.endswith("/")


def check_keys(prices: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(key, problem) for each key that is an invalid regular expression."""
    problems = []
    for key in prices:
        if is_pattern(key):
            try:
                re.compile(key[1:-1])
            except re.error as exc:
                problems.append((key, f"not a valid regular expression: {exc}"))
    return problems


class PriceTable:
    """Model name -> per-token prices: exact names first, then patterns in order."""

    def __init__(self, prices: Mapping[str, ModelPrice]) -> None:
        self.prices = dict(prices)
        self._exact: dict[str, Prices] = {}
        self._patterns: list[tuple[re.Pattern[str], Prices]] = []
        for key, price in prices.items():
            if is_pattern(key):
                self._patterns.append((re.compile(key[1:-1]), price.per_token()))
            else:
                self._exact[key] = price.per_token()
        self._memo: dict[str, Prices | None] = {}

    def __bool__(self) -> bool:
        return bool(self.prices)

    def lookup(self, model: str) -> Prices | None:
        """The model's per-token prices, or None when the table has none for it."""
        memo = self._memo
        if model in memo:
            return memo[model]
        found = self._exact.get(model)
        if found is None:
            for pattern, prices in self._patterns:
                if pattern.search(model):
                    found = prices
                    break
        if len(memo) >= _LOOKUP_CACHE_SIZE:
            memo.clear()
        memo[model] = found
        return found


def read_pricing_file(path: Path) -> dict[str, ModelPrice]:
    """The price mapping in a YAML file; raises ValueError naming the file and the key."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from None
    try:
        raw = load_yaml(text, str(path))
    except YAMLProblem as exc:
        raise ValueError(str(exc)) from None
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a mapping of model -> {{input, output}} prices")
    problems = [f"{path}: {key}: {why}" for key, why in check_keys(raw)]
    prices: dict[str, ModelPrice] = {}
    for key, value in raw.items():
        try:
            prices[str(key)] = ModelPrice.model_validate(value)
        except ValidationError as exc:
            for err in exc.errors():
                where = ".".join(str(p) for p in (key, *err["loc"]))
                problems.append(f"{path}: {where}: {err['msg'].removeprefix('Value error, ')}")
    if problems:
        raise ValueError("; ".join(problems))
    return prices


def price_table(
    pricing: Mapping[str, ModelPrice], pricing_file: str | None, base_dir: Path | None
) -> PriceTable:
    """The root config's prices: `pricing_file` (relative to the config's folder), then
    `pricing:` on top of it (a model in both takes the inline price). Raises ValueError."""
    prices: dict[str, ModelPrice] = {}
    if pricing_file is not None:
        path = Path(pricing_file)
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        prices.update(read_pricing_file(path))
    bad = check_keys(pricing)
    if bad:
        raise ValueError("; ".join(f"pricing.{key}: {why}" for key, why in bad))
    prices.update(pricing)
    return PriceTable(prices)
