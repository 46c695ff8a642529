"""Stored answers: what an entry holds, a streamed answer gathered whole, and a whole one replayed as a stream.

Pure functions over the IR (no I/O), so a stream cached from an OpenAI upstream replays to an Anthropic
client as that client's events, and a whole answer replays as a stream with its usage.

    >>> resp = ir.Response(id="r1", model="m", choices=[ir.Choice(parts=[ir.TextPart("hi")], finish_reason="stop")])
    >>> [e.text for e in events_of(resp) if e.text]
    ['hi']
    >>> gather(ir.StreamMeta(id="r1", model="m"), events_of(resp)).choices[0].text
    'hi'
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import msgspec

from llmswitch import ir

FORMAT = 1
NO_BODY = msgspec.Raw(b"null")


class Answer(msgspec.Struct, omit_defaults=True):
    """One cache entry: the answer, when it was made, and the deployment that made it (for what a hit saves).

    The answer is either IR (``response``) or, for an answer the gateway relayed from an OpenAI upstream
    unread (its fast path), that upstream's JSON body as it came (``openai``): stored without decoding it,
    served to an OpenAI client as the same bytes, and decoded only for a client of another dialect or a stream.
    """

    response: ir.Response | None = None
    openai: msgspec.Raw = NO_BODY
    created: float = 0.0
    group: str = ""
    deployment: str | None = None
    provider: str | None = None
    model: str | None = None
    v: int = FORMAT

    @property
    def relayed(self) -> bool:
        """Whether the answer is held as an OpenAI body."""
        return self.openai != NO_BODY

    def resolve(self) -> ir.Response | None:
        """The answer as IR (decoding a stored OpenAI body once); ``None`` if that body is not one."""
        if self.response is None and self.relayed:
            from llmswitch.dialects import openai_chat

            try:
                body = msgspec.json.decode(self.openai)
                resp = openai_chat.decode_response(body) if isinstance(body, dict) else None
            except Exception:
                resp = None
            if resp is None or not resp.choices:
                self.openai = NO_BODY
                return None
            self.response = resp
        return self.response


class _Choice(msgspec.Struct):
    finish_reason: str | None = None


class _Finishes(msgspec.Struct):
    """Just the finish reasons of an OpenAI body (whether it is a whole answer, read without decoding it)."""

    choices: list[_Choice] = msgspec.field(default_factory=list)


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(Answer).decode
_finishes = msgspec.json.Decoder(_Finishes).decode
FINISHED = frozenset({"stop", "length", "tool_calls"})


def encode_answer(answer: Answer) -> bytes:
    return _encode(answer)


def decode_answer(data: bytes | str | None) -> Answer | None:
    """The entry stored as ``data``; ``None`` for nothing, or anything that is not a well-formed entry (a
    backend returning garbage is a miss, never an error)."""
    if not data:
        return None
    try:
        answer = _decode(data)
    except (msgspec.DecodeError, UnicodeDecodeError, TypeError, ValueError):
        return None
    if answer.v != FORMAT:
        return None
    if answer.response is not None:
        return answer if answer.response.choices else None
    return answer if answer.relayed and finished_openai(answer.openai) else None


def finished_openai(body: bytes | msgspec.Raw) -> bool:
    """Whether an OpenAI chat completion body is a whole answer (every choice finished normally)."""
    try:
        choices = _finishes(body).choices
    except (msgspec.DecodeError, TypeError, ValueError):
        return False
    return bool(choices) and all(c.finish_reason in FINISHED for c in choices)


def new_answer(response: ir.Response | bytes, group: str, route: object | None) -> Answer:
    relayed = isinstance(response, bytes)
    return Answer(
        response=None if relayed else response,  # type: ignore[arg-type]
        openai=msgspec.Raw(response) if relayed else NO_BODY,  # type: ignore[arg-type]
        created=time.time(),
        group=group,
        deployment=_text(getattr(route, "id", None)),
        provider=_text(getattr(route, "provider", None)),
        model=_text(getattr(route, "model", None)),
    )


def _text(v: object) -> str | None:
    return v if isinstance(v, str) else None


def events_of(resp: ir.Response) -> list[ir.StreamEvent]:
    """A whole answer as the events a stream of it would carry, usage last."""
    out: list[ir.StreamEvent] = []
    for ch in resp.choices:
        i = ch.index
        out.append(ir.StreamEvent(choice=i, role="assistant"))
        calls = 0
        for part in ch.parts:
            if isinstance(part, ir.TextPart):
                if part.text:
                    out.append(ir.StreamEvent(choice=i, text=part.text))
            elif isinstance(part, ir.ReasoningPart):
                out.append(ir.StreamEvent(choice=i, reasoning=part.text))
                if part.signature:
                    out.append(ir.StreamEvent(choice=i, reasoning_signature=part.signature))
            elif isinstance(part, ir.RedactedReasoningPart):
                out.append(ir.StreamEvent(choice=i, redacted_reasoning=part.data))
            elif isinstance(part, ir.ToolCallPart):
                delta = ir.ToolCallDelta(
                    index=calls,
                    id=part.id,
                    name=part.name,
                    arguments=part.arguments,
                    provider_specific=part.provider_specific,
                )
                out.append(ir.StreamEvent(choice=i, tool_calls=[delta]))
                calls += 1
            elif isinstance(part, ir.ProviderPart):
                out.append(ir.StreamEvent(choice=i, provider_part=part))
        out.append(
            ir.StreamEvent(
                choice=i,
                finish_reason=ch.finish_reason or "stop",
                native_finish_reason=ch.native_finish_reason,
                provider_specific=ch.provider_specific,
            )
        )
    if resp.usage is not None:
        out.append(ir.StreamEvent(usage=resp.usage))
    return out


def meta_of(resp: ir.Response) -> ir.StreamMeta:
    return ir.StreamMeta(id=resp.id, model=resp.model, created=resp.created, system_fingerprint=resp.system_fingerprint)


class _ChoiceDraft:
    __slots__ = ("calls", "finish", "native", "parts", "provider_specific", "reasoning", "signature", "text")

    def __init__(self) -> None:
        self.parts: list[ir.Part] = []
        self.text: list[str] = []
        self.reasoning: list[str] = []
        self.signature: str | None = None
        self.calls: dict[int, ir.ToolCallPart] = {}
        self.finish: ir.FinishReason | None = None
        self.native: str | None = None
        self.provider_specific: dict[str, object] | None = None

    def flush_reasoning(self) -> None:
        if self.reasoning or self.signature:
            self.parts.append(ir.ReasoningPart(text="".join(self.reasoning), signature=self.signature))
            self.reasoning, self.signature = [], None

    def flush_text(self) -> None:
        if self.text:
            self.parts.append(ir.TextPart(text="".join(self.text)))
            self.text = []


def gather(meta: ir.StreamMeta, events: Iterable[ir.StreamEvent]) -> ir.Response | None:
    """A stream's events as the whole answer they make; ``None`` when it never finished (not cacheable)."""
    drafts: dict[int, _ChoiceDraft] = {}
    usage: ir.Usage | None = None
    for ev in events:
        if ev.usage is not None:
            usage = ev.usage
        d = drafts.get(ev.choice)
        if d is None:
            d = drafts[ev.choice] = _ChoiceDraft()
        if ev.reasoning:
            d.flush_text()
            if d.signature is not None:  # a signed block is over: this is the next one
                d.flush_reasoning()
            d.reasoning.append(ev.reasoning)
        if ev.reasoning_signature:
            d.signature = ev.reasoning_signature
        if ev.redacted_reasoning:
            d.flush_text()
            d.flush_reasoning()
            d.parts.append(ir.RedactedReasoningPart(data=ev.redacted_reasoning))
        if ev.text:
            d.flush_reasoning()
            d.text.append(ev.text)
        if ev.provider_part is not None:
            d.flush_reasoning()
            d.flush_text()
            d.parts.append(ev.provider_part)
        for delta in ev.tool_calls or ():
            d.flush_reasoning()
            d.flush_text()
            call = d.calls.get(delta.index)
            if call is None:
                call = d.calls[delta.index] = ir.ToolCallPart(id=delta.id or "", name=delta.name or "", arguments="")
                d.parts.append(call)
            if delta.id:
                call.id = delta.id
            if delta.name:
                call.name = delta.name
            call.arguments += delta.arguments
            if delta.provider_specific:
                call.provider_specific = delta.provider_specific
        if ev.finish_reason is not None:
            d.finish, d.native = ev.finish_reason, ev.native_finish_reason
            if ev.provider_specific:
                d.provider_specific = dict(ev.provider_specific)
    choices = []
    for index in sorted(drafts):
        d = drafts[index]
        d.flush_reasoning()
        d.flush_text()
        if d.finish is None:
            if not d.parts:
                continue  # the usage-only pseudo choice
            return None
        if d.finish == "error":
            return None
        for call in d.calls.values():
            if not call.arguments:
                call.arguments = "{}"
        choices.append(
            ir.Choice(
                index=index,
                parts=d.parts,
                finish_reason=d.finish,
                native_finish_reason=d.native,
                provider_specific=d.provider_specific,
            )
        )
    if not choices:
        return None
    return ir.Response(
        id=meta.id, model=meta.model, choices=choices, created=meta.created, usage=usage,
        system_fingerprint=meta.system_fingerprint,
    )  # fmt: skip
