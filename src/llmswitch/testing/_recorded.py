"""What the fake upstream saw: one :class:`RecordedRequest` per request received."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from llmswitch import ir
from llmswitch.testing._reply import last_user_text

FaceName = Literal["openai", "anthropic", "gemini", "ollama", "bedrock", "openai_responses"]


@dataclass
class RecordedRequest:
    """A request as the fake upstream received it.

    ``headers`` have lowercased names; ``json`` is the parsed body (``None`` when it was not JSON);
    ``chat`` is the body decoded by the face's own dialect (for chat requests that decoded cleanly),
    and ``model`` the model asked for, from the body or (Gemini) the path.
    """

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    json: Any
    face: FaceName
    number: int
    model: str | None = None
    chat: ir.Request | None = None
    path_raw: str = ""
    """The path as it was sent, percent-encoding kept (``path`` is decoded)."""

    @property
    def text(self) -> str:
        """The last user message's text ('' when there is none or the request is not a chat)."""
        return last_user_text(self.chat)
