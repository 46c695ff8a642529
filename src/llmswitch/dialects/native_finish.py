"""A provider's own finish reason, where another dialect's word for it hides what the caller must act on.

Every client gets its own dialect's finish reason. Some native reasons say more than any client's word
can: Anthropic's ``pause_turn`` (a server-tool loop paused: send the turn back to let it go on),
``refusal`` and ``model_context_window_exceeded``, Gemini's ``SAFETY``, ``RECITATION`` … Those are told
besides: to OpenAI clients in LiteLLM's ``provider_specific_fields.native_finish_reason``, to Gemini
clients in the candidate's ``finishMessage``.

    >>> telling("pause_turn"), telling("end_turn"), telling("STOP")
    ('pause_turn', None, None)
"""

from __future__ import annotations

# what every dialect's plain words already say all of: a stop, a length limit, tool calls, a filter
_PLAIN = frozenset(
    (
        *("stop", "length", "tool_calls", "function_call", "content_filter", "eos", "error"),
        *("end_turn", "stop_sequence", "max_tokens", "model_length", "tool_use"),
        *("STOP", "MAX_TOKENS", "FINISH_REASON_UNSPECIFIED"),
    )
)


def telling(native: str | None) -> str | None:
    """``native`` when a client's own finish reason would hide it, else None."""
    if native is None or native in _PLAIN:
        return None
    return native
