"""Call a function of the deployment's own with the decision document (the ``python`` action):
for teams that sync results into their own database or service without an HTTP hop. The function
runs in the worker, under the job's timeout; whatever it raises is a failure to retry (then the
dead-letter queue), like a target's 5xx; ActionRejected from it dead-letters at once. Only a
function of a package CUBEHOOK_CALLABLE_PACKAGES names is ever imported or called."""

from __future__ import annotations

from service.errors import ActionFailed, ActionRejected
from workers.actions.base import ActionContext
from workers.actions.document import decision_document
from workers.judging.action_config import PythonAction
from workers.judging.rules import resolve


def send(context: ActionContext) -> str:
    config = context.config
    assert isinstance(config, PythonAction)
    try:
        # Resolved at start too (imports are cached); allowed packages checked again here, for a
        # rules object built otherwise than by the workers' start.
        function = resolve(config.callable, context.rules.callable_packages)
    except ValueError as exc:
        raise ActionRejected(str(exc)) from None
    try:
        function(decision_document(context.decision))
    except ActionRejected:
        raise
    except Exception as exc:
        raise ActionFailed(f"{config.callable} raised {type(exc).__name__}") from exc
    return f"called {config.callable}"
