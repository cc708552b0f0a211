"""A webhook action's secrets: one variable or a list of them, each holding one secret or several
(comma-separated) while a receiver rotates; all checked at start, none ever shown."""

from __future__ import annotations

import pytest

from service.errors import ConfigError
from workers.judging.action_config import WebhookAction
from workers.judging.rules import parse_rules

ROTATING = """
[action.hook]
type = "webhook"
url = "https://crm.example/h"
secret_env = SECRET_ENV

[[rule]]
name = "all"
actions = ["hook"]
"""
NEXT = "whsec_dGhlIG5leHQgb25l"  # base64 of "the next one"


def test_a_webhook_action_may_name_several_secret_variables_each_holding_several() -> None:
    text = ROTATING.replace("SECRET_ENV", '["HOOK_NEXT", "HOOK_SECRET"]')
    env = {"HOOK_NEXT": f"{NEXT}, {NEXT}", "HOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
    rules = parse_rules(text, env)
    config = rules.file.action["hook"]
    assert isinstance(config, WebhookAction)
    assert config.secret_env == ("HOOK_NEXT", "HOOK_SECRET")
    assert rules.file.env_names() == ["HOOK_NEXT", "HOOK_SECRET"]
    assert rules.signing_secrets(config.secret_env) == [NEXT, NEXT, env["HOOK_SECRET"]]
    single = parse_rules(ROTATING.replace("SECRET_ENV", '"HOOK_SECRET"'), env).file.action["hook"]
    assert isinstance(single, WebhookAction)
    assert single.secret_env == ("HOOK_SECRET",)  # the one-name form, as before


@pytest.mark.parametrize(
    ("secret_env", "env", "why"),
    [
        ('["HOOK_NEXT", "HOOK_SECRET"]', {"HOOK_NEXT": NEXT}, "not set: HOOK_SECRET"),
        ('"HOOK_NEXT"', {"HOOK_NEXT": f"{NEXT},whsec_not base64!"},
         "secret_env: secret 2 of 2 in HOOK_NEXT is not a whsec_<base64> secret"),
        ('"HOOK_NEXT"', {"HOOK_NEXT": " , "}, "secret_env: HOOK_NEXT holds no secret"),
        ("[]", {}, "secret_env: should name an environment variable, or be a list of such names"),
        ('["HOOK_NEXT", "whsec_in_the_file"]', {"HOOK_NEXT": NEXT},
         "secret_env: should be the name of an environment variable (capitals, digits, _)"),
    ],
)  # fmt: skip
def test_a_webhook_actions_secrets_are_checked_at_start_and_never_shown(
    secret_env: str, env: dict[str, str], why: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_rules(ROTATING.replace("SECRET_ENV", secret_env), env, "rules.toml")
    assert why in str(refused.value)
    assert "not base64" not in str(refused.value)
    assert "whsec_in_the_file" not in str(refused.value)
