"""What the author of a rules file is told: the line of the offending rule, in plain words, the
secrets' form checked at start, and the file checked without its secrets when asked."""

from __future__ import annotations

import pytest

from service.errors import ConfigError
from workers.rules import parse_rules

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


def refusal(text: str, environ: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as refused:
        parse_rules(text, {"HOOK_SECRET": WHSEC} if environ is None else environ, "rules.toml")
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
