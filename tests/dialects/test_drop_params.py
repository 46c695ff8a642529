"""drop_params / additional_drop_params read out of a request body in every dialect, never left as extras."""

from __future__ import annotations

from typing import Any

import pytest

from llmswitch import ir
from llmswitch.dialects import anthropic_messages, gemini, openai_chat
from llmswitch.errors import BadRequestError

BODIES = {
    "openai": {"model": "m", "messages": [{"role": "user", "content": "hi"}]},
    "anthropic": {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]},
    "gemini": {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
}


def decode(dialect: str, body: dict[str, Any]) -> ir.Request:
    if dialect == "openai":
        return openai_chat.decode_request(body)
    if dialect == "anthropic":
        return anthropic_messages.decode_request(body)
    return gemini.decode_request(body, model="m")


@pytest.mark.parametrize("dialect", list(BODIES))
def test_read_and_not_an_extra(dialect: str) -> None:
    req = decode(dialect, {**BODIES[dialect], "drop_params": True, "additional_drop_params": ["seed"]})
    assert req.drop_params is True and req.additional_drop_params == ["seed"]
    assert not req.extra


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"drop_params": "true"}, "drop_params"),
        ({"drop_params": 1}, "drop_params"),
        ({"additional_drop_params": "seed"}, "additional_drop_params"),
        ({"additional_drop_params": ["seed", 3]}, "additional_drop_params"),
    ],
)
@pytest.mark.parametrize("dialect", list(BODIES))
def test_a_bad_value_is_refused_naming_it(dialect: str, extra: dict[str, Any], field: str) -> None:
    with pytest.raises(BadRequestError) as info:
        decode(dialect, {**BODIES[dialect], **extra})
    assert info.value.param == field and info.value.status_code == 400
