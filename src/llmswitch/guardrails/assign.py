"""Guardrails given to a key or a team (``/key/generate``, ``/key/update``, ``/team/new``, ``/team/update``
with ``"guardrails": ["name", ...]``), kept in its ``metadata.guardrails`` as LiteLLM keeps them, so
no store column is needed and ``/key/info`` shows them where LiteLLM does."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llmswitch.guardrails.run import _invalid

if TYPE_CHECKING:
    from llmswitch.server.app import Gateway


def assign_guardrails(gw: Gateway, body: dict[str, Any], fields: dict[str, Any], current: Any = None) -> None:
    """Put the body's ``guardrails`` (checked against the configured names) into ``fields["metadata"]``,
    merged with the metadata the request sets, else the record's ``current`` metadata."""
    if "guardrails" not in body:
        return
    value = body["guardrails"]
    if value is None or value == []:
        names: list[str] = []
    elif gw.guardrails is None:
        raise _invalid("guardrails", "no guardrails are configured on this gateway")
    else:
        names = list(dict.fromkeys(gw.guardrails.names(value, "guardrails")))
    metadata = dict(fields.get("metadata", current or {}))
    if names:
        metadata["guardrails"] = names
    else:
        metadata.pop("guardrails", None)
    fields["metadata"] = metadata
