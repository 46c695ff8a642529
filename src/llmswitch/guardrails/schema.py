"""JSON answers checked against the request's ``response_format`` before they are returned.

``json_object`` answers must parse as a JSON object; ``json_schema`` answers must also validate against
the schema (with the ``jsonschema`` package, in the ``guardrails`` extra). An answer that fails is
refused with a 400 naming the first problem's location, not the answer's content.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from llmswitch.guardrails.base import PASSED, Context, Guardrail, Outcome


class JSONSchema(Guardrail):
    kind = "json_schema"
    whole_answer = True

    def __init__(self, name: str, *, modes: frozenset[str], default_on: bool = False) -> None:
        super().__init__(name, modes=modes, default_on=default_on)
        import jsonschema  # refused at startup when missing, not on a request

        self._jsonschema: Any = jsonschema
        self._validators: dict[str, Any] = {}

    def _validator(self, schema: dict[str, Any]) -> Any:
        key = json.dumps(schema, sort_keys=True)
        v = self._validators.get(key)
        if v is None:
            cls = self._jsonschema.validators.validator_for(schema)
            v = cls(schema)
            if len(self._validators) < 256:
                self._validators[key] = v
        return v

    def check_now(self, texts: Sequence[str], context: Context) -> Outcome:
        rf = context.request.response_format if context.request is not None else None
        if context.phase != "output" or rf is None or rf.type == "text" or not texts:
            return PASSED
        text = "".join(texts)
        try:
            value = json.loads(text)
        except ValueError:
            return Outcome(found={"INVALID_JSON": 1}, blocked=True, reason="the answer is not valid JSON")
        if rf.type == "json_object" or not rf.schema:
            if not isinstance(value, dict):
                return Outcome(found={"INVALID_JSON": 1}, blocked=True, reason="the answer is not a JSON object")
            return PASSED
        error = self._jsonschema.exceptions.best_match(self._validator(rf.schema).iter_errors(value))
        if error is None:
            return PASSED
        where = "/".join(str(p) for p in error.absolute_path) or "(root)"
        rule = error.validator
        return Outcome(
            found={"SCHEMA_MISMATCH": 1},
            blocked=True,
            reason=f"the answer does not match the response_format schema at {where} ({rule})",
        )
