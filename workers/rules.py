"""The rules file: which actions run for which decisions. Pure: text in, frozen plan out.

A TOML file (``CUBEHOOK_RULES_FILE``) with named actions and rules that pick them::

    [action.onboarding]
    type = "webhook"
    url = "https://onboarding.internal/complycube"
    secret_env = "ONBOARDING_WEBHOOK_SECRET"     # never the secret itself

    [[rule]]
    name = "onboard the clear ones"
    when = { outcome = ["clear"] }
    actions = ["onboarding"]

Validated once, at start-up, with errors that name the line and the field. Secrets are named by
environment variable and looked up then, so a missing one stops the start, not a job at 3 a.m.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, model_validator

from service.errors import ConfigError
from workers.action_config import (
    ALLOWED_IN_DEVELOPMENT,
    INSECURE,
    ActionConfig,
    AnyAction,
    EmailAction,
    LogAction,
    SlackAction,
    Strict,
)
from workers.decide import Decision, Kind
from workers.reconcile import Issue

OutcomeName = Literal["clear", "attention", "rejected"]
ALL_OUTCOMES: tuple[OutcomeName, ...] = ("clear", "attention", "rejected")


class When(Strict):
    """Every condition given must hold; a list matches any of its values."""

    outcome: list[OutcomeName] = Field(default_factory=lambda: list(ALL_OUTCOMES))
    template: list[str] | None = None  # workflowTemplateId
    check_type: list[str] | None = None  # some check of the session has one of these types
    discrepancy: list[Issue] | None = None  # some discrepancy is one of these
    needs_review: bool | None = None


class Rule(Strict):
    name: str = Field(min_length=1)
    when: When = Field(default_factory=When)
    actions: list[str] = Field(min_length=1)


class Watchdog(Strict):
    """Who hears about ComplyCube disabling the webhook: alert actions (slack, email, log)."""

    actions: list[str] = Field(default_factory=list)


class RulesFile(Strict):
    action: dict[str, ActionConfig] = Field(default_factory=dict)
    rule: list[Rule] = Field(default_factory=list)
    watchdog: Watchdog = Field(default_factory=Watchdog)

    @model_validator(mode="after")
    def _actions_exist(self) -> RulesFile:
        for rule in self.rule:
            unknown = [name for name in rule.actions if name not in self.action]
            if unknown:
                raise ValueError(f"rule {rule.name!r} names undefined actions: {', '.join(unknown)}")
        for name in self.watchdog.actions:
            if name not in self.action:
                raise ValueError(f"watchdog names an undefined action: {name}")
            if self.action[name].type == "webhook":
                raise ValueError(f"watchdog action {name!r} is a webhook: alerts go by slack, email or log")
        return self

    def env_names(self) -> list[str]:
        names = []
        for config in self.action.values():
            for field in ("secret_env", "url_env", "username_env", "password_env"):
                value = getattr(config, field, None)
                if value:
                    names.append(value)
        return names


DEFAULT_RULES = RulesFile(
    action={"log": LogAction(type="log")},
    rule=[Rule(name="log every outcome", actions=["log"])],
    watchdog=Watchdog(actions=["log"]),
)


@dataclass(frozen=True)
class Rules:
    """A validated rules file and the secrets its actions name, looked up once."""

    file: RulesFile
    secrets: Mapping[str, str]
    source: str = "built-in default"

    def secret(self, env_name: str) -> str:
        return self.secrets[env_name]


@dataclass(frozen=True, slots=True)
class Planned:
    action: str
    config: AnyAction
    rules: tuple[str, ...]  # the rules that chose it: the "why"


def plan(decision: Decision, rules: RulesFile) -> tuple[Planned, ...]:
    """The actions a decision triggers, each once, with the rules that chose it. Terminal
    decisions (abandoned, cancelled) trigger none."""
    if decision.kind is not Kind.OUTCOME or decision.outcome is None:
        return ()
    chosen: dict[str, list[str]] = {}
    for rule in rules.rule:
        if matches(rule.when, decision):
            for name in rule.actions:
                chosen.setdefault(name, []).append(rule.name)
    return tuple(Planned(name, rules.action[name], tuple(why)) for name, why in chosen.items())


def matches(when: When, decision: Decision) -> bool:
    if decision.outcome not in when.outcome:
        return False
    if when.template is not None and decision.template_id not in when.template:
        return False
    if when.check_type is not None and not any(c.get("type") in when.check_type for c in decision.checks):
        return False
    issues = {d.get("issue") for d in decision.discrepancies}
    if when.discrepancy is not None and not issues & {i.value for i in when.discrepancy}:
        return False
    return when.needs_review is None or when.needs_review == decision.needs_review


def parse_rules(
    text: str, environ: Mapping[str, str], source: str = "<rules>", allow_insecure_transport: bool = False
) -> Rules:
    """Validate a rules file; ConfigError naming the line and field of the first problems.
    ``allow_insecure_transport`` (development only) lets actions use http:// and clear-text SMTP."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    try:
        rules = RulesFile.model_validate(data, context={INSECURE: allow_insecure_transport})
    except ValidationError as exc:
        errors = exc.errors(include_input=False, include_url=False)[:10]
        raise _invalid(text, source, [(tuple(err["loc"]), err["msg"]) for err in errors]) from None
    missing = [name for name in rules.env_names() if not environ.get(name)]
    if missing:
        raise ConfigError(
            f"{source}: environment variables named by actions are not set: {', '.join(missing)}"
        )
    problems = _outside_problems(rules, environ, allow_insecure_transport)
    if problems:
        raise _invalid(text, source, problems)
    return Rules(rules, {name: environ[name] for name in rules.env_names()}, source)


def _invalid(text: str, source: str, problems: list[tuple[tuple[str | int, ...], str]]) -> ConfigError:
    """The error naming each problem's line and field."""
    lines = [
        f"{source}:{_line_of(text, loc)}: {'.'.join(str(p) for p in loc) or 'file'}: {why}"
        for loc, why in problems
    ]
    return ConfigError("invalid rules file:\n  " + "\n  ".join(lines))


def _outside_problems(
    rules: RulesFile, environ: Mapping[str, str], allow_insecure: bool
) -> list[tuple[tuple[str | int, ...], str]]:
    """What the file itself cannot show: the Slack URL in its variable (named, never shown: it is
    a secret) must be https; a CA file must be there to read."""
    problems: list[tuple[tuple[str | int, ...], str]] = []
    for name, config in rules.action.items():
        plain = isinstance(config, SlackAction) and not environ[config.url_env].startswith("https://")
        if isinstance(config, SlackAction) and plain and not allow_insecure:
            why = f"the URL in {config.url_env} is not https:// ({ALLOWED_IN_DEVELOPMENT})"
            problems.append((("action", name, "url_env"), why))
        if isinstance(config, EmailAction) and config.ca_file is not None and not config.ca_file.is_file():
            problems.append((("action", name, "ca_file"), f"no such file: {config.ca_file}"))
    return problems


def load_rules(
    path: Path | None, environ: Mapping[str, str], allow_insecure_transport: bool = False
) -> Rules:
    if path is None:
        return Rules(DEFAULT_RULES, {})
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read rules file {path}: {exc.strerror}") from None
    return parse_rules(text, environ, str(path), allow_insecure_transport)


def _line_of(text: str, loc: tuple[object, ...]) -> int:
    """The line a validation error points at: the table it is in, then its key if it is written
    there. TOML parsers keep no positions, so this reads the text; it falls back to line 1."""
    lines = text.splitlines()
    start = 0
    if len(loc) >= 2 and loc[0] == "rule" and isinstance(loc[1], int):
        headers = [n for n, line in enumerate(lines) if re.match(r"\s*\[\[\s*rule\s*\]\]", line)]
        if loc[1] < len(headers):
            start = headers[loc[1]]
    elif len(loc) >= 2 and loc[0] == "action":
        name = re.escape(str(loc[1]))
        start = next(
            (n for n, line in enumerate(lines) if re.match(rf"\s*\[\s*action\.\"?{name}\"?\s*\]", line)), 0
        )
    keys = [str(part) for part in loc[2:] if isinstance(part, str)]
    for key in reversed(keys):
        for n in range(start + 1, len(lines)):
            if re.match(r"\s*\[", lines[n]):
                break
            if re.search(rf"(^|[\s.{{,]){re.escape(key)}\s*=", lines[n]):
                return n + 1
    return start + 1
