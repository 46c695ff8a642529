"""LiteLLM's standard logging payload (``kwargs["standard_logging_object"]``) for one gateway request.

Built from what the request left in its state (who asked, the model group, usage, cost, the attempts) at
its end, off the response path. Never the caller's key (its hash, as LiteLLM logs it), nor the
deployment's; message content only when content logging is on (see docs/observability.md).
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

from llmswitch.server.accesslog import cache_status

# request-body fields that are the caller's parameters (LiteLLM's model_parameters), not content
_PARAMETERS = (
    "temperature",
    "top_p",
    "max_tokens",
    "max_completion_tokens",
    "n",
    "stop",
    "presence_penalty",
    "frequency_penalty",
    "seed",
    "stream",
    "tool_choice",
    "reasoning_effort",
)
_CONTENT_FIELDS = ("messages", "system", "contents", "input", "prompt", "systemInstruction")


def standard_payload(
    state: dict[str, Any],
    *,
    status: int,
    started_at: float,
    ended_at: float,
    body: Any = None,
    content: bool = False,
    api_base: str | None = None,
    trace_id: str | None = None,
    call_type: str = "acompletion",
) -> dict[str, Any]:
    """The payload of a request whose state is ``state`` (``body``: its decoded JSON body, if any)."""
    principal = state.get("principal")
    rec = getattr(principal, "record", None)
    cache = cache_status(state)
    usage = state.get("usage")
    error = state.get("error")
    trail = state.get("trail") or ()
    last = trail[-1] if trail else None
    served = last if last is not None and last.outcome == "ok" else None
    prompt = usage.input_tokens if usage is not None else 0
    completion = usage.output_tokens if usage is not None else 0
    ttft_ms = state.get("ttft_ms")
    failed = error is not None or status >= 400
    params: dict[str, Any] = {}
    if isinstance(body, dict):
        for name in _PARAMETERS:
            if name in body:
                params[name] = body[name]
    payload: dict[str, Any] = {
        "id": state.get("spend_id"),
        "trace_id": trace_id or state.get("request_id"),
        "call_type": call_type,
        "stream": bool(params.get("stream", False)),
        "response_cost": state.get("cost") or 0.0,
        "status": "failure" if failed else "success",
        "total_tokens": prompt + completion,
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "startTime": started_at,
        "endTime": ended_at,
        "completionStartTime": started_at + ttft_ms / 1000 if isinstance(ttft_ms, float) else ended_at,
        "response_time": ended_at - started_at,
        "model": served.model if served is not None else state.get("model"),
        "model_id": state.get("deployment"),
        "model_group": state.get("model"),
        "custom_llm_provider": served.provider if served is not None else (last.provider if last else None),
        "api_base": _plain_base(api_base),
        "metadata": {
            "user_api_key_hash": getattr(principal, "key_hash", None) or None,
            "user_api_key_alias": getattr(rec, "key_alias", None),
            "user_api_key_user_id": getattr(rec, "user_id", None),
            "user_api_key_team_id": getattr(rec, "team_id", None),
            "requester_custom_headers": None,
            "attempts": [_attempt_entry(a) for a in trail],
        },
        "cache_hit": None if cache is None else cache == "hit",
        "request_tags": list(getattr(rec, "tags", None) or ()),
        "end_user": body.get("user") if isinstance(body, dict) and isinstance(body.get("user"), str) else None,
        "model_parameters": params,
        "hidden_params": {"http_status": status},
        "messages": _content(body) if content else None,
        "response": None,
        "error_str": None,
        "error_information": None,
    }
    if failed:
        payload["error_str"] = str(error)[:1000] if error is not None else f"status {status}"
        payload["error_information"] = {
            "error_class": type(error).__name__ if error is not None else None,
            "error_code": str(getattr(error, "status_code", None) or status),
            "llm_provider": getattr(error, "provider", None),
        }
    return payload


def _attempt_entry(a: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"deployment": a.deployment, "model_group": a.group, "outcome": a.outcome}
    if a.error is not None:
        entry["error"] = a.error
    if a.status is not None:
        entry["status"] = a.status
    entry["ms"] = round(a.elapsed * 1000, 3)
    return entry


def _content(body: Any) -> Any:
    if not isinstance(body, dict):
        return None
    found = {name: body[name] for name in _CONTENT_FIELDS if name in body}
    if list(found) == ["messages"]:
        return found["messages"]
    return found or None


def _plain_base(url: str | None) -> str | None:
    """An api_base without what could be a credential (userinfo, query string)."""
    if not url:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}"


def now() -> float:
    return time.time()
