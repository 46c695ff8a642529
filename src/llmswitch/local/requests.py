"""An OpenAI chat request body as llama-cpp-python's ``create_chat_completion`` keywords, and its errors
as OpenAI's. Pure: no model is needed to test it.

    >>> completion_kwargs({"model": "m", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 8})
    {'messages': [{'role': 'user', 'content': 'Hi'}], 'model': 'm', 'max_tokens': 8}
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

# sampling settings llama-cpp-python takes under OpenAI's names or its own (extras from an OpenAI caller)
_SAMPLING = (
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "typical_p",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "repeat_penalty",
    "tfs_z",
    "mirostat_mode",
    "mirostat_tau",
    "mirostat_eta",
)
# body keys that ask nothing of the model, or that the origin itself handles
_IGNORED = frozenset(("model", "messages", "stream", "stream_options", "user", "metadata", "n", "store"))

_CONTEXT = re.compile(r"exceed context window|context window|too long", re.IGNORECASE)


class GenerationError(Exception):
    """A request the local model could not answer, with the HTTP status an OpenAI server would give."""

    def __init__(self, message: str, status: int, code: str | None = None, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.param = param

    @classmethod
    def from_llama(cls, exc: Exception) -> GenerationError:
        """llama-cpp-python's exception for a request: a ``ValueError`` is the request's fault."""
        if isinstance(exc, GenerationError):
            return exc
        text = f"llamacpp: {exc}"
        if isinstance(exc, ValueError):
            if _CONTEXT.search(str(exc)):
                return cls(text, 400, "context_length_exceeded", "messages")
            return cls(text, 400)
        return cls(f"{text} ({type(exc).__name__})", 500)

    def openai_error(self) -> dict[str, Any]:
        kind = "invalid_request_error" if self.status < 500 else "server_error"
        return {"error": {"message": str(self), "type": kind, "param": self.param, "code": self.code}}


def completion_kwargs(body: dict[str, Any], json_schema_grammar: Callable[[str], Any] | None = None) -> dict[str, Any]:
    """``create_chat_completion`` keywords for an OpenAI chat body (``stream`` left to the caller).

    ``json_schema_grammar`` turns a JSON schema (as text) into a llama.cpp grammar; OpenAI's
    ``response_format: json_schema`` needs it (llama-cpp-python only knows ``json_object``).
    """
    n = body.get("n")
    if n not in (None, 1):
        raise GenerationError("llamacpp: n must be 1 (a local model answers one choice)", 400, param="n")
    kwargs: dict[str, Any] = {"messages": [_message(m, i) for i, m in enumerate(body.get("messages") or [])]}
    if not kwargs["messages"]:
        raise GenerationError("llamacpp: messages must not be empty", 400, param="messages")
    if body.get("model"):
        kwargs["model"] = str(body["model"])
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is not None:
        kwargs["max_tokens"] = int(max_tokens)
    for key in _SAMPLING:
        if body.get(key) is not None:
            kwargs[key] = body[key]
    stop = body.get("stop")
    if stop:
        kwargs["stop"] = [stop] if isinstance(stop, str) else list(stop)
    bias = body.get("logit_bias")
    if bias:
        kwargs["logit_bias"] = {int(token): float(value) for token, value in bias.items()}
    _response_format(body.get("response_format"), kwargs, json_schema_grammar)
    _tools(body, kwargs)
    unknown = sorted(k for k in body if k not in _IGNORED and k not in _HANDLED and k not in _SAMPLING)
    if unknown:
        raise GenerationError(
            f"llamacpp: unsupported parameter(s): {', '.join(unknown)}", 400, "unsupported_parameter", unknown[0]
        )
    return kwargs


_HANDLED = frozenset(
    (
        "max_tokens",
        "max_completion_tokens",
        "stop",
        "logit_bias",
        "response_format",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
    )
)


def _message(message: Any, index: int) -> dict[str, Any]:
    """A message with text-part lists joined to one string (chat templates expect text)."""
    if not isinstance(message, dict):
        raise GenerationError(f"llamacpp: messages[{index}] is not an object", 400, param=f"messages[{index}]")
    content = message.get("content")
    if not isinstance(content, list):
        return message
    texts = []
    for part in content:
        if isinstance(part, dict) and part.get("type") in ("text", "input_text"):
            texts.append(str(part.get("text") or ""))
        else:
            kind = part.get("type") if isinstance(part, dict) else type(part).__name__
            raise GenerationError(
                f"llamacpp: messages[{index}] has a {kind!r} part; this provider takes text only",
                400,
                param=f"messages[{index}].content",
            )
    return {**message, "content": "".join(texts)}


def _response_format(fmt: Any, kwargs: dict[str, Any], grammar: Callable[[str], Any] | None) -> None:
    if not isinstance(fmt, dict) or fmt.get("type") in (None, "text"):
        return
    if fmt.get("type") == "json_object":
        kwargs["response_format"] = {"type": "json_object"}
        return
    if fmt.get("type") == "json_schema":
        spec = fmt.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if not isinstance(schema, dict):
            raise GenerationError(
                "llamacpp: response_format.json_schema.schema must be an object", 400, param="response_format"
            )
        if grammar is None:
            # llama-cpp-python's own form: a JSON object constrained by the schema
            kwargs["response_format"] = {"type": "json_object", "schema": schema}
            return
        try:
            kwargs["grammar"] = grammar(json.dumps(schema))
        except Exception as exc:
            raise GenerationError(
                f"llamacpp: cannot constrain output to this JSON schema: {exc}", 400, param="response_format"
            ) from exc
        return
    raise GenerationError(
        f"llamacpp: response_format type {fmt.get('type')!r} is not supported", 400, param="response_format"
    )


def _tools(body: dict[str, Any], kwargs: dict[str, Any]) -> None:
    """Tools go to the chat template; a call is parsed out only when ``tool_choice`` names the function
    (llama-cpp-python then constrains the output to its arguments' schema)."""
    tools = body.get("tools")
    choice = body.get("tool_choice")
    if not tools or choice == "none":
        return
    kwargs["tools"] = tools
    if choice == "required" and len(tools) == 1:
        # one tool the model must call is that tool named
        choice = {"type": "function", "function": {"name": tools[0]["function"]["name"]}}
    elif choice == "required":
        raise GenerationError(
            "llamacpp: tool_choice 'required' needs a single tool, or name the function to call",
            400,
            param="tool_choice",
        )
    if choice is not None and choice != "auto":
        kwargs["tool_choice"] = choice
