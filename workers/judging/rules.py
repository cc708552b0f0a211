"""The rules file: which actions run for which decisions. Pure: text in, frozen plan out.

A TOML file (``CUBEHOOK_RULES_FILE``) with named actions and rules that pick them::

    [action.onboarding]
    type = "webhook"
    url = "https://onboarding.internal/complycube"
    secret_env = "ONBOARDING_WEBHOOK_SECRET"     # never the secret itself (or a list of names)

    [[rule]]
    name = "onboard the clear ones"
    when = { outcome = ["clear"] }
    actions = ["onboarding"]

Validated once, at start-up, with errors that name the line and the field. Secrets are named by
environment variable and looked up then, so a missing one stops the start, not a job at 3 a.m.
"""

from __future__ import annotations

import importlib
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError

from service import standard_webhooks
from service.errors import ConfigError
from workers.judging.action_config import (
    ALLOWED_IN_DEVELOPMENT,
    INSECURE,
    ActionConfig,
    AnyAction,
    EmailAction,
    LogAction,
    PythonAction,
    SlackAction,
    Strict,
    WebhookAction,
)
from workers.judging.judge import Decision, Kind
from workers.judging.reconcile import Issue

OutcomeName = Literal["clear", "attention", "rejected"]
Problem = tuple[tuple[str | int, ...], str]  # where in the file (the keys down to it), and why
ALL_OUTCOMES: tuple[OutcomeName, ...] = ("clear", "attention", "rejected")


class When(Strict):
    """Every condition given must hold; a list matches any of its values."""

    outcome: list[OutcomeName] = Field(default_factory=lambda: list(ALL_OUTCOMES))
    template: list[str] | None = None  # workflowTemplateId
    check_type: list[str] | None = None  # some check of the session has one of these types
    discrepancy: list[Issue] | None = None  # some discrepancy is one of these
    needs_review: bool | None = None
    # outcome: decided by cubehook, automatically; manual: by a person in the console
    kind: list[Literal["outcome", "manual"]] | None = None


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

    def reference_problems(self) -> list[Problem]:
        """Names that point nowhere: a rule's or the watchdog's actions that are not defined, and
        watchdog actions that cannot carry an alert. Located, for the error to name the line."""
        problems: list[Problem] = []
        for n, rule in enumerate(self.rule):
            unknown = [name for name in rule.actions if name not in self.action]
            if unknown:
                why = f"rule {rule.name!r} names actions that are not defined: {', '.join(unknown)}"
                problems.append((("rule", n, "actions"), why))
        for name in self.watchdog.actions:
            kind = self.action[name].type if name in self.action else None
            if kind is None:
                why = f"the watchdog names an action that is not defined: {name}"
            elif kind not in ("slack", "email", "log"):
                why = f"the watchdog's action {name!r} is a {kind}: alerts go by slack, email or log"
            else:
                continue
            problems.append((("watchdog", "actions"), why))
        return problems

    def env_names(self) -> list[str]:
        names: list[str] = []
        for config in self.action.values():
            for field in ("secret_env", "url_env", "username_env", "password_env"):
                value = getattr(config, field, None)
                if isinstance(value, tuple):
                    names.extend(value)
                elif value:
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
    # Variables the actions name but the environment does not set: only when parsed without
    # requiring them (`cubehook rules check` without --strict); the workers never start so.
    unset: tuple[str, ...] = ()
    # CUBEHOOK_CALLABLE_PACKAGES: where a python action's function may come from (checked again
    # when it runs); none unless the operator names them.
    callable_packages: tuple[str, ...] = ()

    def secret(self, env_name: str) -> str:
        return self.secrets[env_name]

    def signing_secrets(self, env_names: tuple[str, ...]) -> list[str]:
        """Every secret the variables hold, in their order (each may hold several)."""
        return [secret for name in env_names for secret in standard_webhooks.secrets_in(self.secrets[name])]


@dataclass(frozen=True, slots=True)
class Planned:
    action: str
    config: AnyAction
    rules: tuple[str, ...]  # the rules that chose it: the "why"


def plan(decision: Decision, rules: RulesFile) -> tuple[Planned, ...]:
    """The actions a decision triggers, each once, with the rules that chose it. Terminal
    decisions (abandoned, cancelled) trigger none; a person's (manual) ones do, as automatic ones."""
    if decision.kind not in (Kind.OUTCOME, Kind.MANUAL) or decision.outcome is None:
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
    if when.kind is not None and decision.kind.value not in when.kind:
        return False
    return when.needs_review is None or when.needs_review == decision.needs_review


def parse_rules(
    text: str,
    environ: Mapping[str, str],
    source: str = "<rules>",
    allow_insecure_transport: bool = False,
    require_secrets: bool = True,
    callable_packages: tuple[str, ...] = (),
) -> Rules:
    """Validate a rules file; ConfigError naming the line and field of the first problems.
    ``allow_insecure_transport`` (development only) lets actions use http:// and clear-text SMTP;
    without ``require_secrets`` the variables the actions name may be unset (Rules.unset); a
    python action's function must be in ``callable_packages`` (CUBEHOOK_CALLABLE_PACKAGES)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    try:
        rules = RulesFile.model_validate(data, context={INSECURE: allow_insecure_transport})
    except ValidationError as exc:
        errors = exc.errors(include_input=False, include_url=False)[:10]
        raise _invalid(text, source, [_plain(err) for err in errors]) from None
    if problems := rules.reference_problems():
        raise _invalid(text, source, problems)
    missing = [name for name in rules.env_names() if not environ.get(name)]
    if missing and require_secrets:
        raise ConfigError(
            f"{source}: environment variables named by actions are not set: {', '.join(missing)}"
        )
    known = {name: environ[name] for name in rules.env_names() if environ.get(name)}
    problems = _outside_problems(rules, known, allow_insecure_transport, callable_packages)
    if problems:
        raise _invalid(text, source, problems)
    return Rules(rules, known, source, tuple(missing), callable_packages)


# A field whose value must match a pattern, and what that pattern means, in plain words.
PATTERNS = {
    "callable": 'should be "package.module:function"',
    "secret_env": "should be the name of an environment variable (capitals, digits, _)",
    "url_env": "should be the name of an environment variable (capitals, digits, _)",
    "username_env": "should be the name of an environment variable (capitals, digits, _)",
    "password_env": "should be the name of an environment variable (capitals, digits, _)",
    "url": "should start with https://",
    "sender": "should be an e-mail address",
    "recipients": "should be e-mail addresses",
}
ACTION_TYPES = ("webhook", "slack", "email", "log", "python")


def _plain(error: Any) -> Problem:  # noqa: ANN401 - pydantic's ErrorDetails
    """A validation error as the file's author reads it: where (without the action's type, which
    pydantic adds to the path of a tagged union), and why, in plain words for a pattern."""
    loc = tuple(error["loc"])
    if len(loc) >= 3 and loc[0] == "action" and loc[2] in ACTION_TYPES:
        loc = loc[:2] + loc[3:]
    named = [part for part in loc if isinstance(part, str)]
    if error["type"] == "string_pattern_mismatch" and named and named[-1] in PATTERNS:
        return loc, PATTERNS[named[-1]]
    return loc, str(error["msg"]).removeprefix("Value error, ")


def _invalid(text: str, source: str, problems: list[Problem]) -> ConfigError:
    """The error naming each problem's line and field."""
    lines = [
        f"{source}:{_line_of(text, loc)}: {'.'.join(str(p) for p in loc) or 'file'}: {why}"
        for loc, why in problems
    ]
    return ConfigError("invalid rules file:\n  " + "\n  ".join(lines))


def _outside_problems(
    rules: RulesFile, environ: Mapping[str, str], allow_insecure: bool, packages: tuple[str, ...]
) -> list[Problem]:
    """What the file itself cannot show, in the variables that are set (named, never shown: they
    are secrets): the Slack URL must be https, a webhook's secret a whsec_ one; and a CA file
    must be there to read, a python action's callable in an allowed package and importable."""
    problems: list[Problem] = []
    for name, config in rules.action.items():
        if isinstance(config, WebhookAction):
            problems += [(("action", name, "secret_env"), why) for why in _secret_problems(config, environ)]
        url = environ.get(config.url_env, "https://") if isinstance(config, SlackAction) else ""
        plain = isinstance(config, SlackAction) and not url.startswith("https://")
        if isinstance(config, SlackAction) and plain and not allow_insecure:
            why = f"the URL in {config.url_env} is not https:// ({ALLOWED_IN_DEVELOPMENT})"
            problems.append((("action", name, "url_env"), why))
        if isinstance(config, EmailAction) and config.ca_file is not None and not config.ca_file.is_file():
            problems.append((("action", name, "ca_file"), f"no such file: {config.ca_file}"))
        if isinstance(config, PythonAction):
            try:
                resolve(config.callable, packages)
            except ValueError as exc:
                problems.append((("action", name, "callable"), str(exc)))
    return problems


def _secret_problems(config: WebhookAction, environ: Mapping[str, str]) -> list[str]:
    """What is wrong with the secrets a webhook action's variables hold (set ones only)."""
    problems = []
    for env_name in (n for n in config.secret_env if n in environ):
        secrets = standard_webhooks.secrets_in(environ[env_name])
        if not secrets:
            problems.append(f"{env_name} holds no secret")
        for n, secret in enumerate(secrets, 1):
            try:
                standard_webhooks.secret_key(secret)
            except ValueError:
                which = "the secret" if len(secrets) == 1 else f"secret {n} of {len(secrets)}"
                problems.append(f"{which} in {env_name} is not a whsec_<base64> secret")
    return problems


def resolve(target: str, packages: tuple[str, ...]) -> Callable[[dict[str, Any]], object]:
    """The function ``package.module:function`` names; ValueError saying why not. The module must
    be one of ``packages`` or inside one, checked before it is imported (an import runs code):
    without that, ``os:system`` would pass, and so would any module the worker can import."""
    module_name, _, attribute = target.partition(":")
    if not any(module_name == p or module_name.startswith(f"{p}.") for p in packages):
        named = ", ".join(packages) or "it names none"
        raise ValueError(f"{module_name}: not in a package CUBEHOOK_CALLABLE_PACKAGES names ({named})")
    if attribute.startswith("_"):
        raise ValueError(f"{target}: a private name")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import {module_name}: {exc}") from None
    found = getattr(module, attribute, None)
    if found is None:
        raise ValueError(f"{module_name} has no {attribute}")
    if not callable(found):
        raise ValueError(f"{target} is not callable")  # noqa: TRY004 - a rules-file error, as the others
    function: Callable[[dict[str, Any]], object] = found
    return function


def load_rules(
    path: Path | None,
    environ: Mapping[str, str],
    allow_insecure_transport: bool = False,
    require_secrets: bool = True,
    callable_packages: tuple[str, ...] = (),
) -> Rules:
    if path is None:
        return Rules(DEFAULT_RULES, {}, callable_packages=callable_packages)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read rules file {path}: {exc.strerror}") from None
    return parse_rules(text, environ, str(path), allow_insecure_transport, require_secrets, callable_packages)


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
    elif loc and loc[0] == "watchdog":
        start = next((n for n, line in enumerate(lines) if re.match(r"\s*\[\s*watchdog\s*\]", line)), 0)
    inside = loc[1:] if loc and loc[0] == "watchdog" else loc[2:]  # the keys below the table
    keys = [str(part) for part in inside if isinstance(part, str)]
    for key in reversed(keys):
        for n in range(start + 1, len(lines)):
            if re.match(r"\s*\[", lines[n]):
                break
            if re.search(rf"(^|[\s.{{,]){re.escape(key)}\s*=", lines[n]):
                return n + 1
    return start + 1
