"""What every recipe in examples/recipes/ promises, checked the same way for each: its
sample log is what its generate.py writes; its config passes `chatwatch check`, which
names a receiver's variable when it is not set and never prints its value; its rules pass
`promtool check rules` and its rule unit tests pass in both runners, chatwatch's and
promtool's; every alert carries a severity, a summary, a description and a runbook link
to a section of the recipe's own README.

What a recipe's log means (its counts, its alert timeline, its live scenario) is tested in
its own tests/test_recipe_<name>.py."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.deploy_support import REPO, alerting_rules, anchors
from tests.recipe_support import chatwatch, promtool

RECIPES = REPO / "examples" / "recipes"


@dataclass(frozen=True)
class Recipe:
    name: str
    rules: int
    """How many rules (recording and alerting) `promtool check rules` finds in rules.yml."""
    receiver_env: tuple[str, ...] = ()
    """The variables the config's receivers read: `chatwatch check` needs each one set."""

    @property
    def folder(self) -> Path:
        return RECIPES / self.name

    def secrets(self) -> dict[str, str]:
        """Each receiver variable set to a recognisable URL that chatwatch must never print."""
        return {
            var: f"https://hooks.slack.com/services/T0RECIPE/B0RECIPE/{var}-do-not-print-me"
            for var in self.receiver_env
        }

    def chatwatch(self, *args: str, unset: str | None = None) -> subprocess.CompletedProcess[str]:
        """The real CLI with the receiver variables set (but `unset`); it prints none of them."""
        secrets = self.secrets()
        result = chatwatch(*args, env=secrets, unset=[unset] if unset else [])
        for value in secrets.values():
            assert value not in result.stdout + result.stderr
        return result


ALL = [
    Recipe("chat-widget-backend", rules=9),
    Recipe("fastapi-support-bot", rules=3, receiver_env=("SUPPORT_BOT_WEBHOOK_URL",)),
    Recipe("go-live-chat", rules=6, receiver_env=("SLACK_WEBHOOK_URL",)),
    Recipe("node-winston", rules=4, receiver_env=("SLACK_WEBHOOK_URL", "PAGER_WEBHOOK_URL")),
    Recipe("python-analysis-api", rules=4, receiver_env=("SLACK_WEBHOOK_URL",)),
]
each_recipe = pytest.mark.parametrize("recipe", ALL, ids=lambda r: r.name)


def test_every_recipe_folder_is_listed_here_and_has_its_own_tests() -> None:
    folders = sorted(p.name for p in RECIPES.iterdir() if p.is_dir())
    assert folders == [r.name for r in ALL]
    for name in folders:
        assert (REPO / "tests" / f"test_recipe_{name.replace('-', '_')}.py").is_file(), name


@each_recipe
def test_sample_log_is_what_generate_py_writes(recipe: Recipe, tmp_path: Path) -> None:
    out = tmp_path / "sample.log"
    subprocess.run(
        [sys.executable, str(recipe.folder / "generate.py"), "--out", str(out)],
        check=True,
        timeout=60,
    )
    sample = recipe.folder / "sample.log"
    assert out.read_bytes() == sample.read_bytes(), "sample.log drifted: rerun generate.py"
    assert len(sample.read_text(encoding="utf-8").splitlines()) >= 2000


@each_recipe
def test_config_passes_chatwatch_check(recipe: Recipe) -> None:
    result = recipe.chatwatch("check", "-c", str(recipe.folder / "chatwatch.yaml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().endswith("chatwatch.yaml: ok")


@pytest.mark.parametrize(
    ("recipe", "var"),
    [(r, var) for r in ALL for var in r.receiver_env],
    ids=lambda v: v.name if isinstance(v, Recipe) else v,
)
def test_chatwatch_check_names_a_receiver_variable_that_is_not_set(
    recipe: Recipe, var: str
) -> None:
    result = recipe.chatwatch("check", "-c", str(recipe.folder / "chatwatch.yaml"), unset=var)
    assert result.returncode == 1
    assert f"{var} is not set" in result.stdout + result.stderr


@each_recipe
def test_rules_pass_promtool_check(recipe: Recipe) -> None:
    result = promtool("check", "rules", str(recipe.folder / "rules.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {recipe.rules} rules found" in result.stdout


@each_recipe
def test_rule_unit_tests_pass_in_chatwatch(recipe: Recipe) -> None:
    result = recipe.chatwatch("test", "rules", str(recipe.folder / "rules_test.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@each_recipe
def test_rule_unit_tests_pass_in_promtool(recipe: Recipe) -> None:
    result = promtool("test", "rules", str(recipe.folder / "rules_test.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@each_recipe
def test_every_alert_has_severity_summary_description_and_a_runbook_in_the_readme(
    recipe: Recipe,
) -> None:
    readme = recipe.folder / "README.md"
    sections = anchors(readme)
    alerts = alerting_rules(recipe.folder / "rules.yml")
    assert alerts
    for rule in alerts:
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        assert {"summary", "description", "runbook_url"} <= set(rule["annotations"]), rule["alert"]
        page, _, anchor = rule["annotations"]["runbook_url"].partition("#")
        assert page.endswith(f"/examples/recipes/{recipe.name}/README.md"), page
        assert anchor in sections, f"{recipe.name}/README.md has no #{anchor}"
