"""The canonical request, response and stream types every dialect translates to and from.

The IR is a superset of what OpenAI Chat Completions, Anthropic Messages and Gemini generateContent
can express, so a conversation survives a trip through any of them. Dialect modules build these
values from wire dicts and turn them back into wire dicts; nothing here does I/O.

    >>> req = Request(model="gpt-4o", messages=[Message(role="user", content=[TextPart("hi")])])
    >>> req.messages[0].text
    'hi'

Conventions:
- Token counts in :class:`Usage` are in *normal form*: ``input_tokens`` counts every input token
  including cache reads and writes and Gemini's tool-use prompt; ``output_tokens`` includes reasoning
  tokens and OpenAI's rejected prediction tokens; audio tokens are counted inside both as well.
- Tool-call arguments are carried as the JSON text the model produced (``arguments``), never
  re-serialized, so a round trip keeps the bytes.
- ``provider_specific`` fields carry what a provider sends that has no common meaning (Gemini's
  grounding metadata, Anthropic server-tool blocks); they are kept, not dropped.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

Role = Literal["system", "developer", "user", "assistant", "tool"]
FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "error"]
ReasoningEffort = Literal["none", "minimal", "low", "medium", "high", "xhigh"]


class Citation(msgspec.Struct, omit_defaults=True):
    """A source that a span of an answer rests on: a web page, or a place in a document of the request.

    OpenAI's ``url_citation`` annotations, Anthropic's citation locations and Gemini's grounding and
    citation metadata all read as this. ``start`` / ``end`` are character offsets of the cited span in
    the text of the :class:`TextPart` that carries it (both None: the whole part); on a
    :class:`StreamEvent`, offsets in the text of the choice streamed so far. ``native`` is the
    provider's own form, given back unchanged to ``provider`` (an Anthropic ``encrypted_index``, a
    document's page numbers …).

        >>> Citation(url="https://example.com", title="Example", start=0, end=5).url
        'https://example.com'
    """

    url: str | None = None
    title: str | None = None
    cited_text: str | None = None
    start: int | None = None
    end: int | None = None
    provider: str | None = None
    native: dict[str, Any] | None = None


class TextPart(msgspec.Struct, tag="text", omit_defaults=True):
    """Text the model wrote, or (``refusal``) its refusal: OpenAI's ``refusal`` field, which a dialect
    without one shows as text."""

    text: str
    cache_control: dict[str, Any] | None = None
    citations: list[Citation] | None = None
    refusal: bool = False


class ImagePart(msgspec.Struct, tag="image", omit_defaults=True):
    """An image by URL or inline base64 ``data`` with its ``media_type``."""

    url: str | None = None
    data: str | None = None
    media_type: str | None = None
    detail: str | None = None
    cache_control: dict[str, Any] | None = None
    # a provider's own fields of the part, by provider (Gemini's videoMetadata, mediaResolution)
    provider_specific: dict[str, dict[str, Any]] | None = None


class FilePart(msgspec.Struct, tag="file", omit_defaults=True):
    """A document (PDF, text, audio …) by URL, provider file id, or inline base64 ``data``."""

    data: str | None = None
    url: str | None = None
    file_id: str | None = None
    media_type: str | None = None
    # the document's name (Anthropic's ``title``, OpenAI's ``filename``, Gemini's ``displayName``)
    filename: str | None = None
    cache_control: dict[str, Any] | None = None
    # Anthropic documents: text the model reads about the document, and the ask to cite it
    context: str | None = None
    citations: dict[str, Any] | None = None
    # a provider's own fields of the part, by provider (Gemini's videoMetadata, mediaResolution)
    provider_specific: dict[str, dict[str, Any]] | None = None


class ToolCallPart(msgspec.Struct, tag="tool_call", omit_defaults=True):
    """A model's request to call a tool. ``arguments`` is the raw JSON text."""

    id: str
    name: str
    arguments: str = "{}"
    # e.g. Gemini's ``thought_signature``, which must be sent back on the next turn
    provider_specific: dict[str, Any] | None = None
    cache_control: dict[str, Any] | None = None
    # an OpenAI custom tool's call: ``arguments`` is its free-form ``input``, not JSON
    custom: bool = False


class ToolResultPart(msgspec.Struct, tag="tool_result", omit_defaults=True):
    tool_call_id: str
    content: list[TextPart | ImagePart | FilePart] = msgspec.field(default_factory=list)
    is_error: bool = False
    name: str | None = None
    cache_control: dict[str, Any] | None = None
    # the result as the object it came as (Gemini's functionResponse.response), besides its JSON text
    structured: dict[str, Any] | None = None

    @property
    def text(self) -> str:
        return "".join(p.text for p in self.content if isinstance(p, TextPart))


class ReasoningPart(msgspec.Struct, tag="reasoning", omit_defaults=True):
    """Visible reasoning ("thinking"). ``signature`` must be returned unchanged on the next turn."""

    text: str
    signature: str | None = None
    # the provider that signed it: a signature means something only to its own provider
    provider: str | None = None


class RedactedReasoningPart(msgspec.Struct, tag="redacted_reasoning", omit_defaults=True):
    """Encrypted reasoning a provider returns opaque; sent back as is."""

    data: str
    provider: str | None = None


class ProviderPart(msgspec.Struct, tag="provider", omit_defaults=True):
    """A block only one provider understands (Anthropic server-tool use, Gemini executable code …).

    ``provider`` names the dialect that produced it; other dialects skip it when encoding.
    """

    provider: str
    block: dict[str, Any]


Part = (
    TextPart
    | ImagePart
    | FilePart
    | ToolCallPart
    | ToolResultPart
    | ReasoningPart
    | RedactedReasoningPart
    | ProviderPart
)


class Message(msgspec.Struct, omit_defaults=True):
    role: Role
    content: list[Part] = msgspec.field(default_factory=list)
    name: str | None = None

    @property
    def text(self) -> str:
        return "".join(p.text for p in self.content if isinstance(p, TextPart))

    @property
    def tool_calls(self) -> list[ToolCallPart]:
        return [p for p in self.content if isinstance(p, ToolCallPart)]


class Tool(msgspec.Struct, omit_defaults=True):
    """A function tool (``parameters`` is a JSON schema), or a provider's own tool in ``builtin``."""

    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None
    cache_control: dict[str, Any] | None = None
    # provider-native tool definition, passed through unchanged to the provider that knows it
    # (Anthropic ``web_search_20250305``, Gemini ``googleSearch`` / ``codeExecution``)
    builtin: dict[str, Any] | None = None
    # a provider's own fields of a function tool, by provider, sent back only to that provider
    # (Anthropic's input_examples, defer_loading, eager_input_streaming, allowed_callers)
    provider_specific: dict[str, dict[str, Any]] | None = None


class ToolChoice(msgspec.Struct, omit_defaults=True):
    """``auto`` (model decides), ``required`` (must call some tool), ``none``, or ``tool`` (``name``).

    ``allowed`` narrows ``auto`` / ``required`` to some of the tools (Gemini's ``allowedFunctionNames``,
    OpenAI's ``allowed_tools``)."""

    mode: Literal["auto", "required", "none", "tool"]
    name: str | None = None
    parallel: bool | None = None
    allowed: list[str] | None = None


class ResponseFormat(msgspec.Struct, omit_defaults=True):
    type: Literal["text", "json_object", "json_schema"]
    schema: dict[str, Any] | None = None
    name: str | None = None
    strict: bool | None = None
    description: str | None = None
    # a provider's own facts about it, by provider (Gemini: the schema came as JSON Schema)
    provider_specific: dict[str, dict[str, Any]] | None = None


class Request(msgspec.Struct, omit_defaults=True):
    model: str
    messages: list[Message]
    stream: bool = False
    include_usage: bool = False
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    max_tokens: int | None = None
    stop: list[str] | None = None
    seed: int | None = None
    n: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logit_bias: dict[str, float] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    user: str | None = None
    metadata: dict[str, Any] | None = None
    reasoning_effort: ReasoningEffort | None = None
    thinking_budget: int | None = None
    # provider extras passed through verbatim into the provider's request body
    extra: dict[str, Any] | None = None
    # the dialect the extras were written for, when a client sent them in a provider's own format
    # (Gemini's safetySettings, Anthropic's container …): they are dropped on the way to any other
    # provider. None: the SDK's keywords and OpenAI clients, whose extras go to whichever provider.
    extra_dialect: str | None = None
    # the dialect the caller wrote the request in (None: OpenAI's, or the SDK's keywords), so that an
    # error names the caller's own field
    client_dialect: str | None = None
    # what to do with parameters the deployment cannot take (LiteLLM's names): drop them rather than
    # refuse the request; always drop these. Settings of the call, never sent to a provider.
    drop_params: bool | None = None
    additional_drop_params: list[str] | None = None
    # the caller wrote OpenAI's legacy ``functions`` / ``function_call``: its answer says ``function_call``
    legacy_functions: bool | None = None

    @property
    def system_text(self) -> str:
        return "\n".join(m.text for m in self.messages if m.role in ("system", "developer"))


class Usage(msgspec.Struct, omit_defaults=True):
    """Token counts in normal form (see the module docstring)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_5m_tokens: int = 0
    cache_write_1h_tokens: int = 0
    reasoning_tokens: int = 0
    # whether reasoning_tokens was reported by the provider (rather than unknown)
    reasoning_reported: bool = False
    # audio inside input_tokens / output_tokens (OpenAI's audio_tokens, Gemini's AUDIO modality): priced apart
    input_audio_tokens: int = 0
    output_audio_tokens: int = 0
    # Predicted Outputs (OpenAI): both are inside output_tokens and billed as output
    accepted_prediction_tokens: int = 0
    rejected_prediction_tokens: int = 0
    # the prompt of Gemini's tool use (e.g. search results it read): inside input_tokens, billed as input
    tool_use_prompt_tokens: int = 0
    # token counts by modality as the provider split them (Gemini: TEXT, IMAGE, AUDIO, VIDEO, DOCUMENT)
    input_modalities: dict[str, int] | None = None
    output_modalities: dict[str, int] | None = None
    cache_modalities: dict[str, int] | None = None
    tool_use_modalities: dict[str, int] | None = None
    # server tools billed per call (Anthropic's usage.server_tool_use)
    web_search_requests: int = 0
    web_fetch_requests: int = 0
    # the tier and region that served the request, as the provider reports them beside usage
    service_tier: str | None = None
    inference_geo: str | None = None

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


class Choice(msgspec.Struct, omit_defaults=True):
    index: int = 0
    parts: list[Part] = msgspec.field(default_factory=list)
    finish_reason: FinishReason | None = None
    # the provider's own word for it ("end_turn", "SAFETY", "eos" …)
    native_finish_reason: str | None = None
    logprobs: Any = None
    provider_specific: dict[str, Any] | None = None
    # OpenAI's spoken answer (``message.audio``: id, data, transcript, expires_at), as sent
    audio: dict[str, Any] | None = None

    @property
    def text(self) -> str:
        return "".join(p.text for p in self.parts if isinstance(p, TextPart) and not p.refusal)

    @property
    def reasoning(self) -> str:
        return "".join(p.text for p in self.parts if isinstance(p, ReasoningPart))

    @property
    def tool_calls(self) -> list[ToolCallPart]:
        return [p for p in self.parts if isinstance(p, ToolCallPart)]


class Response(msgspec.Struct, omit_defaults=True):
    id: str
    model: str
    choices: list[Choice]
    created: int = 0
    usage: Usage | None = None
    system_fingerprint: str | None = None
    service_tier: str | None = None
    provider_specific: dict[str, Any] | None = None


class ToolCallDelta(msgspec.Struct, omit_defaults=True):
    """A fragment of a streamed tool call. ``id`` and ``name`` arrive with the first fragment."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""
    provider_specific: dict[str, Any] | None = None
    custom: bool = False


class StreamEvent(msgspec.Struct, omit_defaults=True):
    """One step of a streamed response; any subset of the fields may be set.

    The decoder of each dialect turns provider events into these; encoders turn them back into a
    client's wire events. ``usage`` is cumulative: the latest value replaces earlier ones.
    """

    choice: int = 0
    role: Literal["assistant"] | None = None
    text: str | None = None
    reasoning: str | None = None
    reasoning_signature: str | None = None
    redacted_reasoning: str | None = None
    tool_calls: list[ToolCallDelta] | None = None
    finish_reason: FinishReason | None = None
    native_finish_reason: str | None = None
    usage: Usage | None = None
    provider_part: ProviderPart | None = None
    provider_specific: dict[str, Any] | None = None
    # OpenAI's ``delta.refusal`` (shown as text by a dialect without one)
    refusal: str | None = None
    # the log probabilities of this event's tokens, in OpenAI's shape (``{"content": [...]}``)
    logprobs: dict[str, Any] | None = None
    # a fragment of OpenAI's spoken answer (``delta.audio``)
    audio: dict[str, Any] | None = None
    # sources of text streamed so far (offsets in the choice's text: see Citation); an empty list marks
    # where text that will be cited begins (Anthropic cites whole blocks, and says so before their text)
    citations: list[Citation] | None = None


class StreamMeta(msgspec.Struct, omit_defaults=True):
    """What a stream says about itself once: its id, model and creation time."""

    id: str = ""
    model: str = ""
    created: int = 0
    system_fingerprint: str | None = None


class Embedding(msgspec.Struct):
    index: int
    vector: list[float]


class EmbeddingRequest(msgspec.Struct, omit_defaults=True):
    model: str
    input: list[str]
    dimensions: int | None = None
    encoding_format: Literal["float", "base64"] | None = None
    user: str | None = None
    extra: dict[str, Any] | None = None


class EmbeddingResponse(msgspec.Struct, omit_defaults=True):
    model: str
    data: list[Embedding]
    usage: Usage | None = None
