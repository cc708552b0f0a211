"""POST the decision document to an internal URL, signed per the Standard Webhooks spec
(https://www.standardwebhooks.com): ``webhook-id`` (the idempotency key: the same on every
retry, so the receiver can drop copies), ``webhook-timestamp`` and ``webhook-signature``
(``v1,`` + base64 HMAC-SHA256 of ``id.timestamp.body`` under the base64 secret after ``whsec_``;
under each of several secrets, space-separated, while one is rotated).
"""

from __future__ import annotations

import time

from service import standard_webhooks
from service.errors import ActionRejected
from workers.actions.base import ActionContext, post
from workers.actions.document import decision_document, encode
from workers.judging.action_config import WebhookAction


def standard_signature(secrets: list[str], message_id: str, timestamp: int, body: bytes) -> str:
    try:
        return standard_webhooks.sign_with_each(secrets, message_id, timestamp, body)
    except ValueError:
        raise ActionRejected("the webhook secret is not a whsec_<base64> value") from None


def send(context: ActionContext) -> str:
    config = context.config
    assert isinstance(config, WebhookAction)
    body = encode(decision_document(context.decision))
    timestamp = int(time.time())
    headers = {
        "content-type": "application/json",
        "webhook-id": context.idempotency_key,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": standard_signature(
            context.rules.signing_secrets(config.secret_env), context.idempotency_key, timestamp, body
        ),
        "idempotency-key": context.idempotency_key,
    }
    return post(
        context.http, config.url, "webhook target", config.timeout_seconds, content=body, headers=headers
    )
