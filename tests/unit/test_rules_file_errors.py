"""What the author of a rules file is told: the line of the offending rule, in plain words, the
secrets' form checked at start, and the file checked without its secrets when asked."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from service.errors import ConfigError
from workers.judging.rules import DEFAULT_RULES, load_rules, parse_rules, resolve

WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
FILE = """\
[action.hook]
type = "webhook"
url = "https://x.example/hook"
secret_env = "HOOK_SECRET"

[[rule]]
name = "first"
actions = ["hook"]

[[rule]]
name = "second"
when = { outcome = ["rejected"] }
actions = ["hook", "nope"]

[watchdog]
actions = ["hook"]
"""


def refusal(text: str, environ: dict[str, str] | None = None, packages: tuple[str, ...] = ()) -> str:
    environ = {"HOOK_SECRET": WHSEC} if environ is None else environ
    with pytest.raises(ConfigError) as refused:
        parse_rules(text, environ, "rules.toml", callable_packages=packages)
    return str(refused.value)


def test_an_undefined_action_is_named_on_its_rules_line() -> None:
    message = refusal(FILE.replace('actions = ["hook"]\n', 'actions = ["hook"]\n', 1))
    assert "rules.toml:13: rule.1.actions: rule 'second' names actions that are not defined: nope" in message


def test_a_watchdog_that_cannot_alert_is_named_on_its_line() -> None:
    message = refusal(FILE.replace(', "nope"', ""))
    assert "rules.toml:16: watchdog.actions: the watchdog's action 'hook' is a webhook" in message


def test_a_pattern_is_explained_in_plain_words_without_the_actions_type() -> None:
    message = refusal(FILE.replace('secret_env = "HOOK_SECRET"', 'secret_env = "hook secret"'))
    assert "rules.toml:4: action.hook.secret_env: should be the name of an environment variable" in message
    assert "webhook.secret_env" not in message
    assert "String should match pattern" not in message


@pytest.mark.parametrize("secret", ["s3cr3t", "whsec_not base64!", "whsec_x"])
def test_a_webhook_secret_not_in_the_whsec_form_stops_the_start_and_is_never_shown(secret: str) -> None:
    text = (
        FILE.replace(', "nope"', "")
        .replace('actions = ["hook"]\n\n[watchdog]', "")
        .replace("[watchdog]\n", "")
    )
    message = refusal(text.split("[watchdog]")[0], {"HOOK_SECRET": secret})
    assert (
        "rules.toml:4: action.hook.secret_env: the secret in HOOK_SECRET is not a whsec_<base64> secret"
        in message
    )
    assert secret not in message.replace("HOOK_SECRET", "")


def test_without_requiring_secrets_unset_variables_are_reported_not_refused() -> None:
    text = FILE.replace(', "nope"', "").split("[watchdog]")[0]
    rules = parse_rules(text, {}, "rules.toml", require_secrets=False)
    assert rules.unset == ("HOOK_SECRET",)
    with pytest.raises(ConfigError, match="not set: HOOK_SECRET"):
        parse_rules(text, {}, "rules.toml")


def test_every_undefined_action_of_a_rule_is_named() -> None:
    message = refusal(FILE.replace('"hook", "nope"', '"nope", "hook", "nada"'))
    assert "rule 'second' names actions that are not defined: nope, nada" in message


# Actions to build files from: each a table, apart by a blank line.
HOOK = FILE.split("\n\n")[0] + "\n"  # a webhook, its secret in HOOK_SECRET
CHAT = '[action.chat]\ntype = "slack"\nurl_env = "CHAT_URL"\n'
MAIL = """\
[action.mail]
type = "email"
smtp_host = "smtp.example.com"
smtp_port = 587
{login}sender = "cubehook@example.com"
recipients = ["compliance@example.com"]
"""
LOGIN = 'username_env = "SMTP_USER"\npassword_env = "SMTP_PASSWORD"\n'
LOG = '[action.log]\ntype = "log"\n'
SYNC = '[action.sync]\ntype = "python"\ncallable = "json:dumps"\n'

ALERTS = "\n".join([CHAT, MAIL.format(login=""), LOG, HOOK, SYNC, "[watchdog]\nactions = [{names}]\n"])
ALERTS_ENV = {"CHAT_URL": "https://hooks.slack.com/services/T0/B0/x", "HOOK_SECRET": WHSEC}


@pytest.mark.parametrize("names", ['"chat"', '"mail"', '"log"', '"chat", "mail", "log"'])
def test_the_watchdog_alerts_by_slack_email_or_log(names: str) -> None:
    rules = parse_rules(ALERTS.format(names=names), ALERTS_ENV, "rules.toml", callable_packages=("json",))
    assert rules.file.watchdog.actions == [name.strip(' "') for name in names.split(",")]


@pytest.mark.parametrize(
    ("names", "why"),
    [
        ('"hook"', "the watchdog's action 'hook' is a webhook: alerts go by slack, email or log"),
        ('"sync"', "the watchdog's action 'sync' is a python: alerts go by slack, email or log"),
        ('"pager"', "the watchdog names an action that is not defined: pager"),
        ('"log", "hook"', "the watchdog's action 'hook' is a webhook"),  # each is checked, not only the first
    ],
)
def test_a_watchdog_action_that_cannot_alert_stops_the_start_on_its_line(names: str, why: str) -> None:
    message = refusal(ALERTS.format(names=names), ALERTS_ENV)
    assert f"rules.toml:25: watchdog.actions: {why}" in message


def test_the_watchdog_names_each_undefined_action() -> None:
    message = refusal(ALERTS.format(names='"pager", "log", "sms"'), ALERTS_ENV)
    assert message == (
        "invalid rules file:\n"
        "  rules.toml:25: watchdog.actions: the watchdog names an action that is not defined: pager\n"
        "  rules.toml:25: watchdog.actions: the watchdog names an action that is not defined: sms"
    )


SECRETS = "\n".join([HOOK, CHAT, MAIL.format(login=LOGIN)])
SECRETS_ENV = {"HOOK_SECRET": WHSEC, "CHAT_URL": "https://hooks.slack.com/services/T0/B0/x",
               "SMTP_USER": "u", "SMTP_PASSWORD": "p"}  # fmt: skip


@pytest.mark.parametrize("unset", ["HOOK_SECRET", "CHAT_URL", "SMTP_USER", "SMTP_PASSWORD"])
def test_each_kind_of_secret_variable_is_checked_at_start(unset: str) -> None:
    environ = {name: value for name, value in SECRETS_ENV.items() if name != unset}
    assert (
        refusal(SECRETS, environ)
        == f"rules.toml: environment variables named by actions are not set: {unset}"
    )
    assert refusal(SECRETS, environ | {unset: ""}) == refusal(SECRETS, environ)  # set but empty: not set
    rules = parse_rules(SECRETS, environ, "rules.toml", require_secrets=False)
    assert rules.unset == (unset,)
    assert rules.secrets == environ


def test_all_the_unset_variables_are_named_at_once() -> None:
    assert refusal(SECRETS, {"CHAT_URL": "https://hooks.slack.com/services/T0/B0/x"}) == (
        "rules.toml: environment variables named by actions are not set: HOOK_SECRET, SMTP_USER, SMTP_PASSWORD"
    )
    rules = parse_rules(SECRETS, SECRETS_ENV, "rules.toml")
    assert (rules.secrets, rules.unset, rules.source) == (SECRETS_ENV, (), "rules.toml")
    assert rules.secret("SMTP_USER") == "u"


def test_an_unset_slack_url_is_reported_not_refused_when_secrets_are_not_required() -> None:
    text = SECRETS.split("[action.mail]")[0]
    rules = parse_rules(text, {"HOOK_SECRET": WHSEC}, "rules.toml", require_secrets=False)
    assert rules.unset == ("CHAT_URL",)


def test_without_a_source_the_errors_say_rules() -> None:
    with pytest.raises(ConfigError, match=r"^<rules>: not valid TOML: "):
        parse_rules("x = ", {})
    with pytest.raises(ConfigError, match=r"^<rules>: environment variables named by actions are not set: "):
        parse_rules(SECRETS, {})
    assert parse_rules("", {}).source == "<rules>"


def test_at_most_ten_problems_are_listed() -> None:
    twelve = "\n".join('[[rule]]\nname = ""\nactions = []\n' for _ in range(6))
    message = refusal(twelve)
    assert message.count("\n  rules.toml:") == 10
    assert "rule.4.actions" in message
    assert "rule.5" not in message


# Where an error points: its table's header, then the line of its key when written in that table;
# line 1 when the table cannot be found (the documented fallback), never another table's line.
@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('[action.a]\ntype = "log"\n\n[action.b]\ntype = "pigeon"\n', "rules.toml:4: action.b: Input tag 'pigeon'"),
        ('[action.a]\ntype = "log"\n\n[action."b"]\ntype = "pigeon"\n', "rules.toml:4: action.b: Input tag"),
        ('[action]\nb = { type = "pigeon" }\n', "rules.toml:1: action.b: Input tag 'pigeon'"),
        ('[action.a]\ntype = "log"\n\n[watchdog]\nactions = ["a"]\n\n[extra]\nx = 1\n',
         "rules.toml:1: extra: Extra inputs are not permitted"),
        ('watchdog = { actions = ["nope"] }\n[action.a]\ntype = "log"\n',
         "rules.toml:1: watchdog.actions: the watchdog names an action that is not defined: nope"),
        ('[[rule]]\nname = "a"\n\n[[rule]]\nname = "b"\nactions = ["x"]\n', "rules.toml:1: rule.0.actions: Field required"),
        ('rule = [{ name = "a", actions = ["x"] }, { name = "b", actions = [] }]\n',
         "rules.toml:1: rule.1.actions: List should have at least 1 item"),
        ('rule = [{ name = "a", actions = [] }]\n', "rules.toml:1: rule.0.actions: List should have at least 1 item"),
        ('[[rule]]\nname = "a"\nactions = ["x"]\nwhen.outcome = ["maybe"]\n', "rules.toml:4: rule.0.when.outcome.0:"),
    ],
)  # fmt: skip
def test_each_error_points_at_its_line(text: str, where: str) -> None:
    message = refusal(text, {})
    assert message.startswith(f"invalid rules file:\n  {where}"), message


def test_the_message_lists_one_problem_a_line() -> None:
    text = '[action.a]\ntype = "pigeon"\n\n[[rule]]\nname = "r"\nactions = []\n'
    assert refusal(text, {}) == (
        "invalid rules file:\n"
        "  rules.toml:1: action.a: Input tag 'pigeon' found using 'type' does not match any of the expected"
        " tags: 'webhook', 'slack', 'email', 'log', 'python'\n"
        "  rules.toml:6: rule.0.actions: List should have at least 1 item after validation, not 0"
    )


@pytest.mark.parametrize(
    ("target", "why"),
    [
        ("no_such_module_for_cubehook:run", "cannot import no_such_module_for_cubehook: No module named 'no_such_module_for_cubehook'"),
        ("json:nope", "json has no nope"),
        ("math:pi", "math:pi is not callable"),
    ],
)  # fmt: skip
def test_a_python_action_that_cannot_be_called_stops_the_start(target: str, why: str) -> None:
    packages = ("no_such_module_for_cubehook", "json", "math")
    with pytest.raises(ValueError, match=f"^{why}$"):
        resolve(target, packages)
    text = f'[action.log]\ntype = "log"\n\n[action.sync]\ntype = "python"\ncallable = "{target}"\n'
    assert refusal(text, {}, packages) == f"invalid rules file:\n  rules.toml:6: action.sync.callable: {why}"


def test_a_python_action_resolves_to_its_function() -> None:
    assert resolve("json:dumps", ("json",))({"a": 1}) == '{"a": 1}'
    assert resolve("os.path:join", ("os.path",)) is os.path.join  # type: ignore[comparison-overlap]
    assert resolve("os.path:join", ("os",)) is os.path.join  # type: ignore[comparison-overlap]
    rules = parse_rules(
        '[action.sync]\ntype = "python"\ncallable = "json:dumps"\n', {}, callable_packages=("json",)
    )
    assert rules.callable_packages == ("json",)


@pytest.mark.parametrize(
    ("target", "packages", "why"),
    [
        ("os:system", (), "os: not in a package CUBEHOOK_CALLABLE_PACKAGES names (it names none)"),
        ("os:system", ("mycompany.kyc", "os.path"), "os: not in a package CUBEHOOK_CALLABLE_PACKAGES names (mycompany.kyc, os.path)"),
        ("subprocess:run", ("sub",), "subprocess: not in a package CUBEHOOK_CALLABLE_PACKAGES names (sub)"),
        ("json:_default_encoder", ("json",), "json:_default_encoder: a private name"),
    ],
)  # fmt: skip
def test_a_python_action_outside_the_named_packages_is_refused(
    target: str, packages: tuple[str, ...], why: str
) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(why)}$"):
        resolve(target, packages)
    text = f'[action.sync]\ntype = "python"\ncallable = "{target}"\n'
    assert refusal(text, {}, packages) == f"invalid rules file:\n  rules.toml:3: action.sync.callable: {why}"


def test_a_module_outside_the_named_packages_is_never_imported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "cubehook_import_probe.py").write_text('raise RuntimeError("imported")\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ValueError, match="not in a package CUBEHOOK_CALLABLE_PACKAGES names"):
        resolve("cubehook_import_probe:run", ("json",))
    with pytest.raises(RuntimeError, match="imported"):  # named: imported, as the probe shows
        resolve("cubehook_import_probe:run", ("cubehook_import_probe",))


def test_without_a_file_the_default_rules_need_no_secrets() -> None:
    rules = load_rules(None, {})
    assert (rules.file, rules.secrets, rules.unset, rules.source) == (
        DEFAULT_RULES,
        {},
        (),
        "built-in default",
    )


def test_a_file_is_held_to_the_same_rules_as_text(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(FILE.replace(', "nope"', "").split("[watchdog]")[0].replace("https://", "http://"))
    env = {"HOOK_SECRET": WHSEC}
    with pytest.raises(
        ConfigError, match=rf"^invalid rules file:\n  {path}:3: action.hook.url: http:// is refused"
    ):
        load_rules(path, env)
    assert load_rules(path, env, allow_insecure_transport=True).source == str(path)
    with pytest.raises(
        ConfigError, match=rf"^{path}: environment variables named by actions are not set: HOOK_SECRET"
    ):
        load_rules(path, {}, allow_insecure_transport=True)
    assert load_rules(path, {}, allow_insecure_transport=True, require_secrets=False).unset == (
        "HOOK_SECRET",
    )


# A field's error named as the author wrote it, whatever the action's type (pydantic puts the type
# in the path), and every pattern explained in plain words.
@pytest.mark.parametrize(
    ("action", "where", "why"),
    [
        ('type = "webhook"\nurl = "ftp://x"\nsecret_env = "S"', "3: action.a.url", "should start with https://"),
        ('type = "webhook"\nurl = "https://x"\nsecret_env = "s"', "4: action.a.secret_env",
         "should be the name of an environment variable (capitals, digits, _)"),
        ('type = "slack"\nurl_env = "chat url"', "3: action.a.url_env",
         "should be the name of an environment variable (capitals, digits, _)"),
        ('type = "email"\nsmtp_host = "h"\nusername_env = "u"\nsender = "a@b"\nrecipients = ["a@b"]',
         "4: action.a.username_env", "should be the name of an environment variable (capitals, digits, _)"),
        ('type = "email"\nsmtp_host = "h"\npassword_env = "p"\nsender = "a@b"\nrecipients = ["a@b"]',
         "4: action.a.password_env", "should be the name of an environment variable (capitals, digits, _)"),
        ('type = "email"\nsmtp_host = "h"\nsender = "nobody"\nrecipients = ["a@b"]', "4: action.a.sender",
         "should be an e-mail address"),
        ('type = "email"\nsmtp_host = "h"\nsender = "a@b"\nrecipients = ["nobody"]', "5: action.a.recipients.0",
         "should be e-mail addresses"),
        ('type = "log"\nlevel = "debug"', "3: action.a.level", "Extra inputs are not permitted"),
        ('type = "python"\ncallable = "nope"', "3: action.a.callable", 'should be "package.module:function"'),
    ],
)  # fmt: skip
def test_a_fields_error_is_named_without_the_actions_type(action: str, where: str, why: str) -> None:
    assert refusal(f"[action.a]\n{action}\n", {}) == f"invalid rules file:\n  rules.toml:{where}: {why}"


def test_without_a_file_the_watchdog_alerts_in_the_log() -> None:
    rules = load_rules(None, {}).file
    assert rules.watchdog.actions == ["log"]
    assert rules.action["log"].type == "log"
