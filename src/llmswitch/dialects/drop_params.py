"""``drop_params`` / ``additional_drop_params`` in a request body, in any dialect (LiteLLM's proxy names).

They tell the gateway what to do with parameters the chosen deployment cannot take
(``llmswitch.providers.params``); they are read out of the body here and never sent to a provider.

    >>> req = ir.Request(model="m", messages=[])
    >>> read_drop_params({"drop_params": True, "additional_drop_params": ["user"]}, req)
    >>> req.drop_params, req.additional_drop_params
    (True, ['user'])
"""

from __future__ import annotations

from typing import Any

from llmswitch import ir
from llmswitch.dialects._json import invalid

CALL_KEYS = frozenset(("drop_params", "additional_drop_params"))


def read_drop_params(body: dict[str, Any], req: ir.Request) -> None:
    """Fill ``req.drop_params`` / ``req.additional_drop_params`` from ``body``, validating both."""
    drop = body.get("drop_params")
    if drop is not None:
        if not isinstance(drop, bool):
            raise invalid("drop_params", f"must be a boolean, got {type(drop).__name__}")
        req.drop_params = drop
    more = body.get("additional_drop_params")
    if more is not None:
        if not isinstance(more, list) or not all(isinstance(k, str) and k for k in more):
            raise invalid("additional_drop_params", "must be a list of parameter names")
        req.additional_drop_params = more or None
