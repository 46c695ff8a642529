"""OpenAI-shaped result objects returned by the SDK: attribute access and ``model_dump()``.

Field names follow the openai SDK's ``ChatCompletion`` / ``ChatCompletionChunk`` /
``CreateEmbeddingResponse`` and LiteLLM's additions (``reasoning_content``, ``thinking_blocks``,
``provider_specific_fields``), so code written against either keeps working:

    >>> r = ModelResponse(id="x", created=0, model="m", choices=[Choices(index=0,
    ...     message=Message(role="assistant", content="hi"), finish_reason="stop")])
    >>> r.choices[0].message.content, r.model_dump()["object"]
    ('hi', 'chat.completion')

Optional fields are left out of ``model_dump()`` when unset; required ones (``content``,
``finish_reason``) are always present, as on the wire.
"""

from __future__ import annotations

from typing import Any

import msgspec


def _enc_hook(obj: Any) -> Any:
    dump = getattr(obj, "model_dump", None)
    if dump is not None:
        return dump()
    raise TypeError(f"cannot serialize {type(obj).__name__}")


class _CostAttribute:
    """``result.cost``: USD the call cost by ``llmswitch.cost``'s table, ``None`` when its model has no price.

    Kept in the instance ``__dict__`` (the struct has ``dict=True``), not as a field, so it never
    appears in ``model_dump()``: the OpenAI JSON of a result stays OpenAI's.
    """

    def __get__(self, obj: Any, owner: type | None = None) -> float | None:
        if obj is None:
            return None
        value: float | None = obj.__dict__.get("_cost")
        return value

    def __set__(self, obj: Any, value: float | None) -> None:
        obj.__dict__["_cost"] = value


class _Result(msgspec.Struct, omit_defaults=True):
    def model_dump(self, **_: Any) -> dict[str, Any]:
        """The OpenAI JSON of this object as plain dicts and lists."""
        out: dict[str, Any] = msgspec.to_builtins(self, enc_hook=_enc_hook)
        return out

    def model_dump_json(self, **_: Any) -> str:
        return msgspec.json.encode(self, enc_hook=_enc_hook).decode()

    # LiteLLM results also behave like dicts
    def __getitem__(self, key: str) -> Any:
        try:
            return getattr(self, key)
        except AttributeError:
            raise KeyError(key) from None

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key, default)

    def __contains__(self, key: str) -> bool:
        return getattr(self, key, None) is not None


class Function(_Result):
    arguments: str
    name: str | None = None


class ChatCompletionMessageToolCall(_Result):
    id: str
    type: str
    function: Function | None = None
    # a custom tool's call: {"name", "input"}
    custom: dict[str, Any] | None = None
    provider_specific_fields: dict[str, Any] | None = None


class PromptTokensDetails(_Result):
    cached_tokens: int
    # cache writes (Anthropic's cache_creation_input_tokens), counted inside prompt_tokens
    cache_creation_tokens: int | None = None
    audio_tokens: int | None = None


class CompletionTokensDetails(_Result):
    reasoning_tokens: int
    audio_tokens: int | None = None
    accepted_prediction_tokens: int | None = None
    rejected_prediction_tokens: int | None = None


class Usage(_Result):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails | None = None
    completion_tokens_details: CompletionTokensDetails | None = None
    # the 5-minute / 1-hour split of cache writes where the provider reports it
    cache_creation: dict[str, int] | None = None
    # web searches and fetches billed per request, as LiteLLM's Usage carries them
    server_tool_use: dict[str, int] | None = None


class Message(_Result):
    content: str | None
    role: str
    tool_calls: list[ChatCompletionMessageToolCall] | None = None
    refusal: str | None = None
    # the legacy function calling's answer (to callers of ``functions``)
    function_call: Function | None = None
    # a spoken answer: id, data (base64), transcript, expires_at
    audio: dict[str, Any] | None = None
    reasoning_content: str | None = None
    # reasoning blocks with their signatures, to be sent back unchanged on the next turn
    thinking_blocks: list[dict[str, Any]] | None = None
    annotations: list[dict[str, Any]] | None = None
    provider_specific_fields: dict[str, Any] | None = None
    parsed: Any = None


class Choices(_Result):
    index: int
    message: Message
    finish_reason: str | None
    logprobs: Any = None
    provider_specific_fields: dict[str, Any] | None = None


class ModelResponse(_Result, dict=True):
    """A chat completion, as ``openai.types.chat.ChatCompletion``; ``cost`` is its USD cost (or ``None``)."""

    id: str
    created: int
    model: str
    choices: list[Choices]
    object: str = "chat.completion"
    usage: Usage | None = None
    system_fingerprint: str | None = None
    service_tier: str | None = None

    cost = _CostAttribute()

    def model_dump(self, **kw: Any) -> dict[str, Any]:
        out = super().model_dump(**kw)
        out.setdefault("object", "chat.completion")
        return out


class ChatCompletionDeltaToolCall(_Result):
    index: int
    function: Function | None = None
    id: str | None = None
    type: str | None = None
    custom: dict[str, Any] | None = None
    provider_specific_fields: dict[str, Any] | None = None


class FunctionDelta(_Result):
    name: str | None = None
    arguments: str | None = None


class Delta(_Result):
    role: str | None = None
    content: str | None = None
    tool_calls: list[ChatCompletionDeltaToolCall] | None = None
    refusal: str | None = None
    function_call: FunctionDelta | None = None
    audio: dict[str, Any] | None = None
    reasoning_content: str | None = None
    thinking_blocks: list[dict[str, Any]] | None = None
    annotations: list[dict[str, Any]] | None = None
    provider_specific_fields: dict[str, Any] | None = None


class StreamingChoices(_Result):
    index: int
    delta: Delta
    finish_reason: str | None
    logprobs: Any = None
    # a provider's own finish reason where OpenAI's word hides it (Anthropic's pause_turn …)
    provider_specific_fields: dict[str, Any] | None = None


class ModelResponseStream(_Result, dict=True):
    """One streamed chunk, as ``openai.types.chat.ChatCompletionChunk``."""

    id: str
    created: int
    model: str
    choices: list[StreamingChoices]
    object: str = "chat.completion.chunk"
    usage: Usage | None = None
    system_fingerprint: str | None = None

    cost = _CostAttribute()

    def model_dump(self, **kw: Any) -> dict[str, Any]:
        out = super().model_dump(**kw)
        out.setdefault("object", "chat.completion.chunk")
        return out


class EmbeddingData(_Result):
    index: int
    embedding: list[float]
    object: str = "embedding"

    def model_dump(self, **kw: Any) -> dict[str, Any]:
        return {"object": "embedding", "index": self.index, "embedding": self.embedding}


class EmbeddingUsage(_Result):
    prompt_tokens: int
    total_tokens: int


class EmbeddingResponse(_Result, dict=True):
    """As ``openai.types.CreateEmbeddingResponse``."""

    model: str
    data: list[EmbeddingData]
    usage: EmbeddingUsage
    object: str = "list"

    cost = _CostAttribute()

    def model_dump(self, **kw: Any) -> dict[str, Any]:
        return {
            "object": "list",
            "model": self.model,
            "data": [d.model_dump() for d in self.data],
            "usage": self.usage.model_dump(),
        }
